#include <config.h>

#include "hooks/scep_log.h"

namespace scep::hook {

isc::log::Logger scep_logger("scep");

}  // namespace scep::hook
