#include "ra/ops/audit_trail.h"

namespace scep {

AuditTrail::AuditTrail(Store& store, EventLog& log, std::function<std::time_t()> clock,
                       FailureAudit::Limits limits)
    : store_(store), log_(log), clock_(std::move(clock)), failures_(limits) {}

void AuditTrail::write(const AuditEvent& event) {
    // The log first: when the table cannot take the event (disk full), the
    // log still has it. Both bound every field themselves.
    log_.audit(event);
    store_.audit(event);
}

FailureAudit::Limits failureLimits(const Config& config) {
    return {config.ra.audit_failures_per_source, config.ra.audit_failures_overall, 60, 4096};
}

void AuditTrail::writeAlways(const AuditEvent& event) {
    write(event);
}

void AuditTrail::logStored(const AuditEvent& event) {
    log_.audit(event);
}

void AuditTrail::failure(const AuditEvent& event) {
    const FailureAudit::Decision decision = failures_.admit(event, clock_());
    for (const AuditEvent& summary : decision.summaries) {
        write(summary);
    }
    if (decision.write) {
        write(event);
    }
}

void AuditTrail::flush(bool all) {
    for (const AuditEvent& summary : failures_.flush(all ? 0 : clock_())) {
        write(summary);
    }
}

}  // namespace scep
