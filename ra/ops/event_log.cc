#include "ra/ops/event_log.h"

#include <cstdio>
#include <ctime>
#include <mutex>

#include "ra/ops/abuse_limits.h"
#include "ra/ops/audit_vocabulary.h"

namespace scep {

namespace {

std::string utcNow() {
    const std::time_t now = std::time(nullptr);
    struct tm parts {};
    gmtime_r(&now, &parts);
    char text[32];
    std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &parts);
    return text;
}

std::mutex output_mutex;

}  // namespace

std::string describe(std::exception_ptr error) {
    try {
        std::rethrow_exception(error);
    } catch (const std::exception& e) {
        return e.what();
    } catch (...) {
        return "unknown error";
    }
}

void EventLog::write(const char* level, const std::string& message, nlohmann::json fields) {
    fields["ts"] = utcNow();
    fields["level"] = level;
    fields["msg"] = message;
    // Replace, not throw, on invalid UTF-8 from hostile input.
    const std::string line = fields.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    const std::lock_guard<std::mutex> lock(output_mutex);
    std::fprintf(stderr, "%s\n", line.c_str());
    std::fflush(stderr);
}

void EventLog::audit(const AuditEvent& original) {
    // Fields carry client-chosen text (certificate subjects, CNs): bounded,
    // as in the audit table.
    const AuditEvent event = boundedEvent(original);
    nlohmann::json fields = {{"actor", event.actor},
                             {"action", event.action},
                             {"outcome", event.outcome},
                             {"method", event.method},
                             {"identity", event.identity},
                             {"reason", event.reason},
                             {"serial", event.serial},
                             {"peer", event.peer},
                             {"transaction_id", event.transaction_id}};
    if (event.request_id) {
        fields["request_id"] = *event.request_id;
    }
    write(event.outcome == outcomeName(Outcome::failure) ? "warn" : "info", "audit",
          std::move(fields));
}

void EventLog::info(const std::string& message, nlohmann::json fields) {
    write("info", message, std::move(fields));
}

void EventLog::warn(const std::string& message, nlohmann::json fields) {
    write("warn", message, std::move(fields));
}

void EventLog::error(const std::string& message, nlohmann::json fields) {
    write("error", message, std::move(fields));
}

}  // namespace scep
