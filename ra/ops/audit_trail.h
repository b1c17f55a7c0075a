// Where audit events go: the append-only table and the JSON log, together,
// with every field bounded. Failures caused by unauthenticated input also
// pass a per-source budget (FailureAudit), so a flood of hostile requests
// costs a bounded number of rows and log lines, summarised as it goes.
#pragma once

#include <ctime>
#include <functional>

#include "ra/config.h"
#include "ra/ops/abuse_limits.h"
#include "ra/ops/event_log.h"
#include "ra/store/store.h"

namespace scep {

// The budget [ra] audit-failures-* sets.
FailureAudit::Limits failureLimits(const Config& config);

class AuditTrail {
public:
    AuditTrail(Store& store, EventLog& log, std::function<std::time_t()> clock,
               FailureAudit::Limits limits = {});

    // A decision or an authenticated action: always written, to both.
    void writeAlways(const AuditEvent& event);
    // An event the store already wrote in the transaction that made the
    // decision (Store::addIssuedRequest and the like): the log's copy.
    void logStored(const AuditEvent& event);
    // A refusal of unauthenticated input: written within the source's budget,
    // otherwise counted into a later summary. Throws StoreError like the store.
    void failure(const AuditEvent& event);
    // Writes the summaries of budget windows that have ended; `all` writes
    // every pending one (at shutdown).
    void flush(bool all = false);
    // A configuration reload's [ra] audit-failures-* budgets.
    void setLimits(FailureAudit::Limits limits) { failures_.setLimits(limits); }

private:
    void write(const AuditEvent& event);

    Store& store_;
    EventLog& log_;
    std::function<std::time_t()> clock_;
    FailureAudit failures_;
};

}  // namespace scep
