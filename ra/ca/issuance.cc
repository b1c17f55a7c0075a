#include "ra/ca/issuance.h"

#include <nlohmann/json.hpp>

#include <openssl/objects.h>

#include "ra/auth/authenticator.h"
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
    const X509ReqPtr csr = requestFromDer(record.csr);
    const IssueRequest request{X509_REQ_get0_pubkey(csr.get()), X509_REQ_get_X509_PUBKEY(csr.get()),
                               record.common_name, sansFromDetails(record.details), record.csr};
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

}  // namespace scep
