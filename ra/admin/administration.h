// What an administrator does, from the admin API or the CLI alike: approve,
// reject, revoke, create and delete API tokens. Every action writes the
// store's audit row and the event-log line.
#pragma once

#include <cstdint>
#include <ctime>
#include <memory>
#include <string>

#include "ra/admin/admin_error.h"
#include "ra/admin/tokens.h"
#include "ra/ca/bootstrap.h"
#include "ra/ca/crl_publisher.h"
#include "ra/ca/issuance.h"
#include "ra/config.h"
#include "ra/ops/audit_trail.h"
#include "ra/ops/event_log.h"
#include "ra/runtime_config.h"
#include "ra/store/store.h"

namespace scep {

struct ApprovalResult {
    std::string serial;     // the certificate issued; "" while the CA works on it
    std::string reference;  // the CA's reference while it does
};

class Administration {
public:
    // Shares the RA's parts (RaServices: serve's admin API and the CLI).
    Administration(
        const CurrentConfig& config, Store& store, AuditTrail& trail, CertificateIssuance& issuance,
        CrlPublisher& crl, Clock clock = [] { return std::time(nullptr); });

    // Issues the certificate of a pending request. `peer` is where the
    // administrator acted from ("" for the local CLI). A CA that refuses
    // rejects the request with its reason (AdminError conflict).
    ApprovalResult approve(std::int64_t request_id, const std::string& actor,
                           const std::string& peer = "");
    void reject(std::int64_t request_id, const std::string& reason, const std::string& actor,
                const std::string& peer = "");
    // RFC 5280 reason code (0-10 without 7). Returns what the administrator
    // must still do ("" when nothing): with an upstream CA, revoke it there.
    std::string revoke(const std::string& serial, int reason, const std::string& actor,
                       const std::string& peer = "");
    // The token's text, shown once. Name and role are checked by the caller
    // (with its own wording); a taken name is an AdminError conflict.
    NewToken createToken(const std::string& name, Role role, const std::string& actor,
                         const std::string& peer = "");
    void deleteToken(const std::string& name, const std::string& actor,
                     const std::string& peer = "");

private:
    ApprovalResult forwardApproved(const RequestRecord& record, AuditEvent& event,
                                   const Config& config, std::time_t now);
    RequestRecord requestOrThrow(std::int64_t request_id);
    void checkChallengeRules(const RequestRecord& record, std::time_t now);

    const CurrentConfig& config_;
    Store& store_;
    AuditTrail& trail_;
    CertificateIssuance& issuance_;
    CrlPublisher& crl_;
    Clock clock_;
};

}  // namespace scep
