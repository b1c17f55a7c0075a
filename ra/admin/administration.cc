#include "ra/admin/administration.h"

#include "ra/auth/authenticator.h"
#include "ra/ops/audit_vocabulary.h"

namespace scep {

Administration::Administration(const CurrentConfig& config, Store& store, AuditTrail& trail,
                               CertificateIssuance& issuance, CrlPublisher& crl, Clock clock)
    : config_(config),
      store_(store),
      trail_(trail),
      issuance_(issuance),
      crl_(crl),
      clock_(std::move(clock)) {}

namespace {

// An administrator's decision on a request, for the audit trail. The peer
// is the administrator's address; the phone's is on the request itself.
AuditEvent decisionEvent(const RequestRecord& record, const std::string& actor, AuditAction action,
                         const std::string& peer) {
    AuditEvent event;
    event.actor = actor;
    event.action = auditActionName(action);
    event.outcome = outcomeName(Outcome::success);
    event.method = record.method;
    event.identity = record.identity;
    event.request_id = record.id;
    event.transaction_id = record.transaction_id;
    event.peer = peer;
    return event;
}

AuditEvent adminEvent(const std::string& actor, AuditAction action, const std::string& peer) {
    AuditEvent event;
    event.actor = actor;
    event.action = auditActionName(action);
    event.outcome = outcomeName(Outcome::success);
    event.peer = peer;
    return event;
}

}  // namespace

RequestRecord Administration::requestOrThrow(std::int64_t request_id) {
    auto record = store_.findRequest(request_id);
    if (!record) {
        throw AdminError(AdminError::Kind::not_found, "no request " + std::to_string(request_id));
    }
    return std::move(*record);
}

// The challenge rules hold for approvals too: two requests for one CN may be
// pending at the same time (the store decides, atomically), and a request
// that predates the MIC-name rule does not get past it.
void Administration::checkChallengeRules(const RequestRecord& record, std::time_t now) {
    if (record.method != authMethodName(AuthMethod::challenge)) {
        return;
    }
    if (isMicShapedName(record.common_name)) {
        throw AdminError(AdminError::Kind::conflict,
                         "CN '" + record.common_name +
                             "' has the shape of a phone's MIC name; only that phone's MIC "
                             "may obtain it: reject this request");
    }
    const auto active =
        store_.activeCertificatesFor(record.common_name, now, Store::Superseded::include);
    if (!active.empty()) {
        throw AdminError(AdminError::Kind::conflict,
                         "CN '" + record.common_name + "' already holds active certificate " +
                             active.front().serial + "; revoke it first or reject this request");
    }
}

ApprovalResult Administration::approve(std::int64_t request_id, const std::string& actor,
                                       const std::string& peer) {
    const auto record = requestOrThrow(request_id);
    if (record.status != RequestStatus::pending) {
        throw AdminError(AdminError::Kind::conflict, "request " + std::to_string(request_id) +
                                                         " is already " +
                                                         requestStatusName(record.status));
    }
    const std::time_t now = clock_();
    const auto snapshot = config_.get();
    checkChallengeRules(record, now);
    AuditEvent event = decisionEvent(record, actor, AuditAction::approve, peer);
    CertificateIssuance::Outcome outcome;
    try {
        if (issuance_.forwards()) {
            return forwardApproved(record, event, snapshot->config, now);
        }
        outcome = issuance_.issueForPendingRequest(record, event, snapshot->config, now);
    } catch (const RequestDecided& e) {
        throw AdminError(AdminError::Kind::conflict, e.what());
    } catch (const IdentityTaken& e) {
        throw AdminError(AdminError::Kind::conflict,
                         std::string(e.what()) + " (or reject this request)");
    } catch (const RenewedCertificateGone& e) {
        throw AdminError(AdminError::Kind::conflict,
                         std::string(e.what()) + ": reject this request");
    }
    switch (outcome.status) {
    case CaAnswer::Status::issued:
        return {outcome.serial, ""};
    case CaAnswer::Status::pending:
        // Approved here; the request stays pending until the CA answers.
        event.outcome = outcomeName(Outcome::pending);
        event.reason = "pending at the CA (reference " + outcome.reference + ")";
        trail_.writeAlways(event);
        return {"", outcome.reference};
    case CaAnswer::Status::failed:
    case CaAnswer::Status::unreachable:  // only a forwarding CA is retried later
        break;
    }
    // The phone's next poll gets FAILURE with this reason; no certificate.
    event.outcome = outcomeName(Outcome::failure);
    event.reason = "the CA refused the request: " + outcome.reason;
    if (store_.rejectPending(request_id, event.reason, event)) {
        trail_.logStored(event);
    }
    throw AdminError(AdminError::Kind::conflict,
                     "request " + std::to_string(request_id) + " is rejected: " + event.reason);
}

// Approved here, the request goes to the upstream CA, which decides; the
// phone collects what it answers.
ApprovalResult Administration::forwardApproved(const RequestRecord& record, AuditEvent& event,
                                               const Config& config, std::time_t now) {
    const CertificateIssuance::Outcome outcome =
        issuance_.forwardApproved(record, event, config, now);
    switch (outcome.status) {
    case CaAnswer::Status::issued:
        return {outcome.serial, outcome.reference};
    case CaAnswer::Status::failed:
        throw AdminError(AdminError::Kind::conflict,
                         "request " + std::to_string(record.id) +
                             " is rejected: the CA refused it: " + outcome.reason);
    case CaAnswer::Status::pending:
    case CaAnswer::Status::unreachable:
        break;
    }
    return {"", outcome.reference};
}

void Administration::reject(std::int64_t request_id, const std::string& reason,
                            const std::string& actor, const std::string& peer) {
    if (reason.empty()) {
        throw AdminError(AdminError::Kind::invalid, "a rejection needs a reason");
    }
    AuditEvent event = decisionEvent(requestOrThrow(request_id), actor, AuditAction::reject, peer);
    event.reason = reason;
    if (!store_.rejectPending(request_id, reason, event)) {
        throw AdminError(AdminError::Kind::conflict,
                         "request " + std::to_string(request_id) + " is not pending");
    }
    trail_.logStored(event);
}

std::string Administration::revoke(const std::string& serial, int reason, const std::string& actor,
                                   const std::string& peer) {
    if (reason < 0 || reason > 10 || reason == 7) {
        throw AdminError(AdminError::Kind::invalid,
                         "revocation reason must be an RFC 5280 CRLReason (0-10, not 7)");
    }
    const auto record = store_.findCertificate(serial);
    if (!record) {
        throw AdminError(AdminError::Kind::not_found, "no certificate " + serial);
    }
    AuditEvent event = adminEvent(actor, AuditAction::revoke, peer);
    event.identity = record->subject;
    event.serial = serial;
    event.reason = "CRLReason " + std::to_string(reason);
    if (record->request_id != 0) {
        event.request_id = record->request_id;
    }
    if (!store_.revoke(serial, reason, clock_(), event)) {
        throw AdminError(AdminError::Kind::conflict,
                         "certificate " + serial + " is already revoked");
    }
    trail_.logStored(event);
    if (issuance_.forwards()) {
        // The CRL phones and servers check is the upstream CA's.
        return "certificate " + serial +
               " is marked revoked in this RA's records only: revoke it at the upstream CA "
               "too, which issued it (SCEP has no message to ask it to)";
    }
    crl_.crl();  // regenerated on every revocation
    return "";
}

NewToken Administration::createToken(const std::string& name, Role role, const std::string& actor,
                                     const std::string& peer) {
    NewToken token = makeToken(name, role, actor);
    AuditEvent event = adminEvent(actor, AuditAction::token_create, peer);
    event.identity = name;
    event.reason = std::string("role ") + roleName(role);
    try {
        store_.addToken(token.record, event);
    } catch (const DuplicateToken&) {
        throw AdminError(AdminError::Kind::conflict, "a token named '" + name + "' exists");
    }
    trail_.logStored(event);
    return token;
}

void Administration::deleteToken(const std::string& name, const std::string& actor,
                                 const std::string& peer) {
    AuditEvent event = adminEvent(actor, AuditAction::token_delete, peer);
    event.identity = name;
    if (!store_.deleteToken(name, event)) {
        throw AdminError(AdminError::Kind::not_found, "no token named '" + name + "'");
    }
    trail_.logStored(event);
}

}  // namespace scep
