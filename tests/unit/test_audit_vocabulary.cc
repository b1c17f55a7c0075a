// The audit and outcome vocabularies: stored rows, log lines and metric
// labels keep the exact text they had as strings.
#include <doctest/doctest.h>

#include <string>

#include "ra/ops/audit_vocabulary.h"

using namespace scep;

TEST_CASE("audit actions and outcomes keep their stored names") {
    const std::pair<AuditAction, const char*> actions[] = {
        {AuditAction::message, "message"},
        {AuditAction::enroll, "enroll"},
        {AuditAction::approve, "approve"},
        {AuditAction::reject, "reject"},
        {AuditAction::revoke, "revoke"},
        {AuditAction::supersede, "supersede"},
        {AuditAction::identity_clash, "identity-clash"},
        {AuditAction::forward, "forward"},
        {AuditAction::upstream, "upstream"},
        {AuditAction::token_create, "token-create"},
        {AuditAction::token_delete, "token-delete"},
        {AuditAction::http, "http"},
        {AuditAction::api, "api"},
        {AuditAction::init, "init"},
        {AuditAction::config_reload, "config-reload"},
        {AuditAction::suppressed, "suppressed"},
    };
    for (const auto& [action, name] : actions) {
        CHECK(std::string(auditActionName(action)) == name);
    }
    CHECK(std::string(outcomeName(Outcome::success)) == "success");
    CHECK(std::string(outcomeName(Outcome::pending)) == "pending");
    CHECK(std::string(outcomeName(Outcome::failure)) == "failure");
    CHECK(std::string(outcomeName(Outcome::warning)) == "warning");
}
