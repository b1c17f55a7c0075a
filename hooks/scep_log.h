// Logger "scep" (shown by Kea as kea-dhcp4.scep). Its messages are written
// once, in scep_messages.mes; the build generates scep_messages.h/.cc.
#pragma once

#include <log/log_dbglevels.h>
#include <log/logger.h>
#include <log/macros.h>

#include "hooks/scep_messages.h"

namespace scep::hook {

extern isc::log::Logger scep_logger;

// Kea's DBGLVL_PKT_HANDLING (55); its constant is not constexpr.
constexpr int DBG_SCEP_PACKETS = 55;

}  // namespace scep::hook
