// One JSON object per line on stderr (journald and log shippers read that):
// every audit event as it is decided, plus operational messages. Callers
// never hand it secrets; untrusted text is escaped by the JSON encoder.
#pragma once

#include <exception>
#include <string>

#include <nlohmann/json.hpp>

#include "ra/store/store.h"

namespace scep {

// The message of whatever `error` holds, for a log line.
std::string describe(std::exception_ptr error);

class EventLog {
public:
    void audit(const AuditEvent& event);
    void info(const std::string& message, nlohmann::json fields = nlohmann::json::object());
    void warn(const std::string& message, nlohmann::json fields = nlohmann::json::object());
    void error(const std::string& message, nlohmann::json fields = nlohmann::json::object());

private:
    void write(const char* level, const std::string& message, nlohmann::json fields);
};

}  // namespace scep
