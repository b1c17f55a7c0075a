// Logger "scep" (shown by Kea as kea-dhcp4.scep) and its messages. Debian's
// kea-dev has no message compiler, so the table is written by hand.
#pragma once

#include <log/logger.h>
#include <log/log_dbglevels.h>
#include <log/macros.h>
#include <log/message_types.h>

namespace scep::hook {

extern isc::log::Logger scep_logger;

// Kea's DBGLVL_PKT_HANDLING (55); its constant is not constexpr.
constexpr int DBG_SCEP_PACKETS = 55;

extern const isc::log::MessageID SCEP_LOAD_OK;
extern const isc::log::MessageID SCEP_LOAD_FAILED;
extern const isc::log::MessageID SCEP_PROFILE_LOADED;
extern const isc::log::MessageID SCEP_RELOAD_OK;
extern const isc::log::MessageID SCEP_RELOAD_FAILED;
extern const isc::log::MessageID SCEP_UNLOADED;
extern const isc::log::MessageID SCEP_DECORATED;
extern const isc::log::MessageID SCEP_CONFLICT_WARN;
extern const isc::log::MessageID SCEP_CONFLICT_STRIPPED;
extern const isc::log::MessageID SCEP_CONFLICT_SKIPPED;
extern const isc::log::MessageID SCEP_AMBIGUOUS;
extern const isc::log::MessageID SCEP_PROCESS_ERROR;
extern const isc::log::MessageID SCEP_COMMAND_ERROR;

}  // namespace scep::hook
