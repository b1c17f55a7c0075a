#include "ra/ca/issuance.h"

#include <nlohmann/json.hpp>

#include <openssl/objects.h>

#include "ra/auth/authenticator.h"
#include "ra/ca/upstream/scep_upstream.h"
#include "ra/crypto.h"
#include "ra/ops/audit_vocabulary.h"

namespace scep {

IssueRules issueRules(const Config& config, const std::string& method, const std::string& renews,
                      std::time_t now) {
    IssueRules rules;
    rules.exclusive = method == authMethodName(AuthMethod::challenge);
    rules.renews = method == authMethodName(AuthMethod::renewal) ? renews : std::string();
    rules.revoke_superseded = config.auth.revoke_superseded;
    rules.now = now;
    return rules;
}

std::string renewsFromDetails(const std::string& details) {
    const auto parsed = nlohmann::json::parse(details, nullptr, false);
    return parsed.is_object() && parsed.contains("renews") && parsed["renews"].is_string()
               ? parsed["renews"].get<std::string>()
               : std::string();
}

std::vector<SubjectAltName> sansFromDetails(const std::string& details) {
    std::vector<SubjectAltName> out;
    const auto parsed = nlohmann::json::parse(details, nullptr, false);
    if (parsed.is_object() && parsed.contains("sans") && parsed["sans"].is_array()) {
        for (const auto& san : parsed["sans"]) {
            out.push_back({san.value("type", "") == "dns" ? SubjectAltName::Type::dns
                                                          : SubjectAltName::Type::email,
                           san.value("value", "")});
        }
    }
    return out;
}

CertificateRecord certificateRecordOf(X509& cert, std::int64_t request_id) {
    CertificateRecord record;
    record.serial = serialHex(X509_get0_serialNumber(&cert));
    record.subject = nameText(X509_get_subject_name(&cert));
    record.issuer = nameText(X509_get_issuer_name(&cert));
    record.common_name = nameEntry(X509_get_subject_name(&cert), NID_commonName);
    record.not_before = asn1TimeToUnix(X509_get0_notBefore(&cert));
    record.not_after = asn1TimeToUnix(X509_get0_notAfter(&cert));
    record.der = certificateDer(cert);
    record.request_id = request_id;
    return record;
}

CertificateIssuance::CertificateIssuance(CertificateAuthority& ca, Store& store, AuditTrail& trail,
                                         CrlPublisher& crl)
    : ca_(ca), store_(store), trail_(trail), crl_(crl) {}

CertificateIssuance::Outcome CertificateIssuance::issueForNewRequest(
    RequestRecord& record, const IssueRequest& request, AuditEvent& event, const Config& config,
    const std::string& renews, std::time_t now) {
    return issueAndRecord(request, 0, event, config, now, [&](const CertificateRecord& cert) {
        record.status = RequestStatus::issued;
        record.cert_serial = cert.serial;
        // The store checks the identity rules again inside the transaction
        // that inserts: concurrent requests cannot both pass.
        auto superseded = store_.addIssuedRequest(record, cert, event,
                                                  issueRules(config, record.method, renews, now));
        event.request_id = record.id;
        return superseded;
    });
}

CertificateIssuance::Outcome CertificateIssuance::issueForPendingRequest(
    const RequestRecord& record, AuditEvent& event, const Config& config, std::time_t now) {
    const CertificationRequest csr = requestFromDer(record.csr);
    const IssueRequest request{csr.key.get(),      X509_REQ_get_X509_PUBKEY(csr.request.get()),
                               record.common_name, sansFromDetails(record.details),
                               record.csr,         ""};
    return issueAndRecord(
        request, record.id, event, config, now, [&](const CertificateRecord& cert) {
            std::vector<std::string> superseded;
            if (!store_.issuePending(
                    record.id, cert, event,
                    issueRules(config, record.method, renewsFromDetails(record.details), now),
                    &superseded)) {
                throw RequestDecided("request " + std::to_string(record.id) +
                                     " was decided meanwhile");
            }
            return superseded;
        });
}

CertificateIssuance::Outcome CertificateIssuance::issueAndRecord(
    const IssueRequest& request, std::int64_t request_id, AuditEvent& event, const Config& config,
    std::time_t now, const StoreWrite& write) {
    CaAnswer answer = ca_.issue(request, now, config.ca);
    Outcome outcome;
    outcome.status = answer.status;
    outcome.reference = std::move(answer.reference);
    outcome.reason = std::move(answer.reason);
    if (answer.status != CaAnswer::Status::issued) {
        return outcome;
    }
    const CertificateRecord cert = certificateRecordOf(*answer.certificate, request_id);
    event.serial = cert.serial;
    const std::vector<std::string> superseded = write(cert);
    trail_.logStored(event);
    logSuperseded(event, superseded, cert.serial, config.auth.revoke_superseded);
    if (config.auth.revoke_superseded && !superseded.empty()) {
        crl_.crl();  // they are revoked now
    }
    outcome.certificate = std::move(answer.certificate);
    outcome.serial = cert.serial;
    return outcome;
}

void CertificateIssuance::logSuperseded(const AuditEvent& event,
                                        const std::vector<std::string>& serials,
                                        const std::string& new_serial, bool revoked) {
    // The store wrote these rows in the issuing transaction; this is the
    // JSON log's copy.
    for (const std::string& serial : serials) {
        AuditEvent superseded = event;
        superseded.action = auditActionName(revoked ? AuditAction::revoke : AuditAction::supersede);
        superseded.reason = revoked ? "CRLReason 4 (superseded by " + new_serial + ")"
                                    : "superseded by " + new_serial;
        superseded.serial = serial;
        trail_.logStored(superseded);
    }
}

namespace {

// What every event about a request at the CA says, whoever writes it.
AuditEvent eventAbout(const RequestRecord& record, AuditAction action, Outcome outcome,
                      std::string reason) {
    AuditEvent event;
    event.actor = "scep";
    event.action = auditActionName(action);
    event.outcome = outcomeName(outcome);
    event.method = record.method;
    event.identity = record.identity;
    event.reason = std::move(reason);
    event.request_id = record.id;
    event.peer = record.peer;
    event.transaction_id = record.transaction_id;
    return event;
}

// `record`'s progress once it goes to the CA: forwarding, under the
// reference derived from it, from `now` on (its CSR as it holds it).
CaProgress sentToCa(const RequestRecord& record, std::time_t now) {
    CaProgress ca = record.ca;
    ca.state = CaState::forwarding;
    ca.reference = upstreamTransactionId(record.transaction_id, record.public_key_id);
    ca.since = now;
    return ca;
}

IssueRequest forwardedRequest(const RequestRecord& record) {
    IssueRequest request;
    request.common_name = record.common_name;
    request.csr = record.ca.csr;
    request.reference = record.ca.reference;
    return request;
}

}  // namespace

CertificateIssuance::Outcome CertificateIssuance::forwardNewRequest(RequestRecord& record,
                                                                    AuditEvent& event,
                                                                    const Config& config,
                                                                    std::time_t now) {
    record.ca = sentToCa(record, now);
    record.reason = "at the CA (reference " + record.ca.reference + ")";
    event.action = auditActionName(AuditAction::forward);
    event.outcome = outcomeName(scep::Outcome::pending);
    event.reason = record.reason;
    // Written before anything is sent: after a crash the poller sends the
    // same request under the same reference, never a second one.
    store_.addPendingRequest(record, event);
    event.request_id = record.id;
    trail_.logStored(event);
    return continueAtCa(record.id, config, now);
}

CertificateIssuance::Outcome CertificateIssuance::forwardApproved(const RequestRecord& record,
                                                                  AuditEvent& event,
                                                                  const Config& config,
                                                                  std::time_t now) {
    CaProgress ca = sentToCa(record, now);
    if (ca.csr.empty()) {
        ca.csr = record.csr;  // held before forwarding existed: without its secrets
    }
    event.reason = "approved; sent to the CA (reference " + ca.reference + ")";
    if (!store_.forwardPending(record.id, ca, event)) {
        throw RequestDecided("request " + std::to_string(record.id) + " was decided meanwhile");
    }
    trail_.logStored(event);
    return continueAtCa(record.id, config, now);
}

std::mutex& CertificateIssuance::lockFor(std::int64_t request_id) {
    return ca_locks_[static_cast<std::size_t>(request_id) % ca_locks_.size()];
}

CertificateIssuance::Outcome CertificateIssuance::continueAtCa(std::int64_t request_id,
                                                               const Config& config,
                                                               std::time_t now) {
    // One exchange per request at a time: the poller and the request that
    // just stored it must not both send it and both record the answer.
    const std::lock_guard<std::mutex> lock(lockFor(request_id));
    const auto record = store_.findRequest(request_id);
    Outcome outcome;
    if (!record || record->status != RequestStatus::pending || record->ca.state == CaState::none) {
        // Decided meanwhile (by the other caller, or an administrator).
        outcome.status = record && record->status == RequestStatus::issued
                             ? CaAnswer::Status::issued
                             : CaAnswer::Status::failed;
        outcome.serial = record ? record->cert_serial : std::string();
        return outcome;
    }
    const auto waited = std::chrono::seconds(now - record->ca.since);
    if (waited > config.ca.upstream.poll_timeout) {
        const std::string reason = "no certificate within poll-timeout (" +
                                   std::to_string(waited.count()) + " s since it was forwarded)";
        return applyAnswer(*record,
                           CaAnswer::failedWith(reason, static_cast<int>(FailInfo::badRequest)),
                           config, now);
    }
    CaAnswer answer = record->ca.state == CaState::forwarding
                          ? ca_.issue(forwardedRequest(*record), now, config.ca)
                          : ca_.poll(record->ca.reference, record->csr);
    return applyAnswer(*record, std::move(answer), config, now);
}

CertificateIssuance::Outcome CertificateIssuance::applyAnswer(const RequestRecord& record,
                                                              CaAnswer answer, const Config& config,
                                                              std::time_t now) {
    Outcome outcome;
    outcome.status = answer.status;
    outcome.reference = record.ca.reference;
    outcome.reason = answer.reason;
    outcome.fail_info = answer.fail_info;
    switch (answer.status) {
    case CaAnswer::Status::issued:
        return recordIssued(record, std::move(answer.certificate), config, now);
    case CaAnswer::Status::pending:
        if (record.ca.state == CaState::forwarding) {
            const AuditEvent event = eventAbout(record, AuditAction::upstream,
                                                scep::Outcome::pending, "the CA answered PENDING");
            if (store_.acknowledgedByCa(record.id, event)) {
                trail_.logStored(event);
            }
        } else if (!record.ca.last_error.empty()) {
            store_.noteCaError(record.id, "", nullptr);  // reachable again
        }
        return outcome;
    case CaAnswer::Status::failed: {
        const std::string reason = "the CA refused the request: " + answer.reason;
        const AuditEvent event =
            eventAbout(record, AuditAction::upstream, scep::Outcome::failure, reason);
        if (store_.rejectPending(record.id, reason, event, answer.fail_info)) {
            trail_.logStored(event);
        }
        return outcome;
    }
    case CaAnswer::Status::unreachable:
        // Audited once per new kind of failure, not on every poll.
        if (answer.reason != record.ca.last_error) {
            const AuditEvent event =
                eventAbout(record, AuditAction::upstream, scep::Outcome::failure,
                           "no answer from the CA: " + answer.reason);
            if (store_.noteCaError(record.id, answer.reason, &event)) {
                trail_.logStored(event);
            }
        }
        outcome.status = CaAnswer::Status::pending;  // the phone is told PENDING, never FAILURE
        return outcome;
    }
    return outcome;
}

CertificateIssuance::Outcome CertificateIssuance::recordIssued(const RequestRecord& record,
                                                               X509Ptr certificate,
                                                               const Config& config,
                                                               std::time_t now) {
    const CertificateRecord cert = certificateRecordOf(*certificate, record.id);
    AuditEvent event = eventAbout(record, AuditAction::upstream, scep::Outcome::success,
                                  "the CA issued certificate " + cert.serial);
    event.serial = cert.serial;
    Outcome outcome;
    outcome.reference = record.ca.reference;
    std::vector<std::string> superseded;
    try {
        const IssueRules rules =
            issueRules(config, record.method, renewsFromDetails(record.details), now);
        if (!store_.issuePending(record.id, cert, event, rules, &superseded)) {
            const auto now_stored = store_.findRequest(record.id);
            if (now_stored && now_stored->cert_serial == cert.serial) {
                outcome.status = CaAnswer::Status::issued;  // recorded by another caller
                outcome.serial = cert.serial;
                return outcome;
            }
            // Decided meanwhile (an administrator, or poll-timeout): the CA's
            // certificate is not ours to hand out; its serial is in the log.
            event.outcome = outcomeName(scep::Outcome::warning);
            event.reason = "the CA issued certificate " + cert.serial +
                           " for a request decided meanwhile; revoke it at the CA";
            trail_.writeAlways(event);
            outcome.status = CaAnswer::Status::failed;
            outcome.reason = event.reason;
            return outcome;
        }
    } catch (const StoreError& e) {
        // The identity rules, checked when the certificate is recorded, or a
        // CA that gave a serial number twice (micromdm's scepserver does
        // under concurrent requests): the CA issued what this RA may not
        // hand out.
        std::string why = e.what();
        if (!dynamic_cast<const IdentityTaken*>(&e) &&
            !dynamic_cast<const RenewedCertificateGone*>(&e)) {
            const auto clash = store_.findCertificate(cert.serial);
            if (!clash || clash->der == cert.der) {
                throw;
            }
            why = "the CA issued serial " + cert.serial +
                  " a second time (another certificate has it); its serial numbers must be unique";
        }
        const std::string reason =
            why + "; revoke certificate " + cert.serial + " at the CA, which issued it";
        return applyAnswer(record,
                           CaAnswer::failedWith(reason, static_cast<int>(FailInfo::badRequest)),
                           config, now);
    }
    trail_.logStored(event);
    logSuperseded(event, superseded, cert.serial, config.auth.revoke_superseded);
    outcome.status = CaAnswer::Status::issued;
    outcome.certificate = std::move(certificate);
    outcome.serial = cert.serial;
    return outcome;
}

}  // namespace scep
