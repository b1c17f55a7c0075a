// The step automatic enrollment and an administrator's approval share:
// the CA issues, and the certificate is recorded with its request, replacing
// what the identity held (revoked when [auth] revoke-superseded), in one
// store transaction; then the log's copies and, after revocations, a new CRL.
#pragma once

#include <array>
#include <cstdint>
#include <ctime>
#include <functional>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "ra/ca/authority.h"
#include "ra/ca/crl_publisher.h"
#include "ra/config.h"
#include "ra/ops/audit_trail.h"
#include "ra/store/store.h"

namespace scep {

// The pending request was decided by someone else meanwhile.
class RequestDecided : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// The store's identity rules for a request authenticated by `method`.
IssueRules issueRules(const Config& config, const std::string& method, const std::string& renews,
                      std::time_t now);

// What a stored request's details (JSON) say: the certificate a renewal
// replaces ("" for other requests) and the subjectAltNames to issue.
std::string renewsFromDetails(const std::string& details);
std::vector<SubjectAltName> sansFromDetails(const std::string& details);

// A stored certificate row for `cert`.
CertificateRecord certificateRecordOf(X509& cert, std::int64_t request_id);

class CertificateIssuance {
public:
    CertificateIssuance(CertificateAuthority& ca, Store& store, AuditTrail& trail,
                        CrlPublisher& crl);

    struct Outcome {
        CaAnswer::Status status = CaAnswer::Status::failed;
        X509Ptr certificate;           // issued
        std::string serial;            // issued
        std::string reference;         // pending at the CA
        std::string reason;            // failed at the CA (or unreachable)
        std::optional<int> fail_info;  // failed: the CA's failInfo
    };

    // Whether the CA forwards (CertificateAuthority::forwards): then new
    // requests go through forwardNewRequest, approvals through
    // forwardApproved, and the poller calls continueAtCa.
    bool forwards() const { return ca_.forwards(); }
    CertificateAuthority& authority() { return ca_; }

    // A request authenticated just now, for a forwarding CA: stored as
    // forwarding (with `event`) under its reference before the CA is asked,
    // then the CA's answer is applied: issued, pending there, refused
    // (rejected, with the CA's failInfo) or unreachable (still forwarding:
    // the poller sends it again). Sets record.id. Never throws for the CA's
    // sake; StoreError and DuplicateTransaction as the store throws them.
    Outcome forwardNewRequest(RequestRecord& record, AuditEvent& event, const Config& config,
                              std::time_t now);
    // A pending request an administrator approved, for a forwarding CA:
    // to the CA as above. Throws RequestDecided.
    Outcome forwardApproved(const RequestRecord& record, AuditEvent& event, const Config& config,
                            std::time_t now);
    // The step for a request at the CA (the poller's, and the two above
    // after they stored it): sends it again while it is forwarding, polls
    // while it is pending there, and rejects it once poll-timeout has passed
    // since it was first forwarded. Read again under a per-request lock; a
    // request decided meanwhile is left alone (issued, or failed).
    Outcome continueAtCa(std::int64_t request_id, const Config& config, std::time_t now);

    // A request authenticated just now. When the CA issues, `record` is
    // inserted as issued with the certificate and `event` (its serial and
    // request id filled in); otherwise nothing is written. Throws
    // IdentityTaken and RenewedCertificateGone like Store::addIssuedRequest.
    Outcome issueForNewRequest(RequestRecord& record, const IssueRequest& request,
                               AuditEvent& event, const Config& config, const std::string& renews,
                               std::time_t now);
    // A pending request an administrator approved. When the CA issues, the
    // request becomes issued with `event`; otherwise nothing is written.
    // Throws RequestDecided, IdentityTaken and RenewedCertificateGone.
    Outcome issueForPendingRequest(const RequestRecord& record, AuditEvent& event,
                                   const Config& config, std::time_t now);

private:
    // The CA's answer about `record` (at the CA), into the store.
    Outcome applyAnswer(const RequestRecord& record, CaAnswer answer, const Config& config,
                        std::time_t now);
    Outcome recordIssued(const RequestRecord& record, X509Ptr certificate, const Config& config,
                         std::time_t now);
    using StoreWrite = std::function<std::vector<std::string>(const CertificateRecord&)>;
    Outcome issueAndRecord(const IssueRequest& request, std::int64_t request_id, AuditEvent& event,
                           const Config& config, std::time_t now, const StoreWrite& write);
    void logSuperseded(const AuditEvent& event, const std::vector<std::string>& serials,
                       const std::string& new_serial, bool revoked);

    std::mutex& lockFor(std::int64_t request_id);

    CertificateAuthority& ca_;
    std::array<std::mutex, 64> ca_locks_;
    Store& store_;
    AuditTrail& trail_;
    CrlPublisher& crl_;
};

}  // namespace scep
