#include <config.h>

#include "hooks/scep_log.h"

#include <log/message_initializer.h>

namespace scep::hook {

isc::log::Logger scep_logger("scep");

const isc::log::MessageID SCEP_LOAD_OK = "SCEP_LOAD_OK";
const isc::log::MessageID SCEP_LOAD_FAILED = "SCEP_LOAD_FAILED";
const isc::log::MessageID SCEP_PROFILE_LOADED = "SCEP_PROFILE_LOADED";
const isc::log::MessageID SCEP_RELOAD_OK = "SCEP_RELOAD_OK";
const isc::log::MessageID SCEP_RELOAD_FAILED = "SCEP_RELOAD_FAILED";
const isc::log::MessageID SCEP_UNLOADED = "SCEP_UNLOADED";
const isc::log::MessageID SCEP_DECORATED = "SCEP_DECORATED";
const isc::log::MessageID SCEP_CONFLICT_WARN = "SCEP_CONFLICT_WARN";
const isc::log::MessageID SCEP_CONFLICT_STRIPPED = "SCEP_CONFLICT_STRIPPED";
const isc::log::MessageID SCEP_CONFLICT_SKIPPED = "SCEP_CONFLICT_SKIPPED";
const isc::log::MessageID SCEP_AMBIGUOUS = "SCEP_AMBIGUOUS";
const isc::log::MessageID SCEP_PROCESS_ERROR = "SCEP_PROCESS_ERROR";
const isc::log::MessageID SCEP_COMMAND_ERROR = "SCEP_COMMAND_ERROR";

namespace {

const char* messages[] = {
    "SCEP_LOAD_OK", "loaded %1 SCEP profile(s) from %2",
    "SCEP_LOAD_FAILED", "SCEP hook not loaded: %1",
    "SCEP_PROFILE_LOADED", "profile %1: vendor classes %2, option 43 %3 (%4 bytes), option 15 %5, conflicts %6",
    "SCEP_RELOAD_OK", "scep-reload: loaded %1 profile(s) from %2",
    "SCEP_RELOAD_FAILED", "scep-reload refused, previous configuration stays in force: %1",
    "SCEP_UNLOADED", "SCEP hook unloaded",
    "SCEP_DECORATED", "%1: option 43 (%2 bytes)%3 added for vendor class '%4' by profile %5",
    "SCEP_CONFLICT_WARN", "%1: reply for profile %2 also carries option(s) %3; phones may ignore option 43 (conflicts = warn)",
    "SCEP_CONFLICT_STRIPPED", "%1: removed option(s) %2 from the reply for profile %3 (conflicts = strip)",
    "SCEP_CONFLICT_SKIPPED", "%1: reply carries option(s) %2, so profile %3 was not applied (conflicts = skip)",
    "SCEP_AMBIGUOUS", "%1: vendor class '%2' matches wildcards of two profiles; reply not decorated",
    "SCEP_PROCESS_ERROR", "%1: SCEP options not added: %2",
    "SCEP_COMMAND_ERROR", "command %1 failed: %2",
    nullptr,
};

const isc::log::MessageInitializer initializer(messages);

}  // namespace

}  // namespace scep::hook
