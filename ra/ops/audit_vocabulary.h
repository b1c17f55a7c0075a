// The words audit events and SCEP outcomes use, as enums: the stored and
// logged text is the name function's, and nowhere else spelled out.
#pragma once

namespace scep {

enum class AuditAction {
    message,  // a SCEP message before its type is known
    enroll,   // a PKCSReq/RenewalReq decided: issued or pending
    approve,
    reject,
    revoke,
    supersede,       // a certificate replaced by a newer one for its identity
    identity_clash,  // a MIC enrollment of a name another method obtained
    forward,         // a request recorded and sent to an upstream CA
    upstream,        // an upstream CA's answer, or its failure to give one
    token_create,
    token_delete,
    http,  // a refusal by the SCEP listener's HTTP layer
    api,   // a refusal by the admin API
    init,
    config_reload,
    suppressed,  // a summary of failures the per-source budget held back
};

constexpr const char* auditActionName(AuditAction action) {
    switch (action) {
    case AuditAction::message:
        return "message";
    case AuditAction::enroll:
        return "enroll";
    case AuditAction::approve:
        return "approve";
    case AuditAction::reject:
        return "reject";
    case AuditAction::revoke:
        return "revoke";
    case AuditAction::supersede:
        return "supersede";
    case AuditAction::identity_clash:
        return "identity-clash";
    case AuditAction::forward:
        return "forward";
    case AuditAction::upstream:
        return "upstream";
    case AuditAction::token_create:
        return "token-create";
    case AuditAction::token_delete:
        return "token-delete";
    case AuditAction::http:
        return "http";
    case AuditAction::api:
        return "api";
    case AuditAction::init:
        return "init";
    case AuditAction::config_reload:
        return "config-reload";
    case AuditAction::suppressed:
        return "suppressed";
    }
    return "unknown";
}

// An audit event's outcome; a SCEP reply's is one of the first three.
enum class Outcome { success, pending, failure, warning };

constexpr const char* outcomeName(Outcome outcome) {
    switch (outcome) {
    case Outcome::success:
        return "success";
    case Outcome::pending:
        return "pending";
    case Outcome::failure:
        return "failure";
    case Outcome::warning:
        return "warning";
    }
    return "unknown";
}

}  // namespace scep
