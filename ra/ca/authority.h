// What enrollment needs from a certificate authority, whichever it is: the
// embedded LocalCa (ra/ca/local_ca.h) or an upstream CA reached by SCEP
// (ra/ca/upstream/upstream_ca.h).
#pragma once

#include <ctime>
#include <optional>
#include <string>
#include <vector>

#include "common/fingerprint.h"
#include "common/openssl_ptr.h"
#include "ra/config.h"
#include "ra/store/store.h"

namespace scep {

struct SubjectAltName {
    enum class Type { dns, email, ip } type;
    std::string value;
    bool operator==(const SubjectAltName& other) const {
        return type == other.type && value == other.value;
    }
};

struct IssueRequest {
    EVP_PKEY* public_key = nullptr;  // from the CSR
    // The CSR's SubjectPublicKeyInfo, copied into the certificate as it
    // came: re-encoding the EVP_PKEY costs more than an RSA signature.
    const X509_PUBKEY* public_key_info = nullptr;
    std::string common_name;
    std::vector<SubjectAltName> sans;
    // The CSR (DER) as it reached the RA, for a CA that wants the request
    // itself (an upstream CA forwards it unchanged); empty when unknown.
    Bytes csr;
    // For a CA that forwards(): the transactionID the request goes (and
    // went, before a restart) to the CA under.
    std::string reference;
};

// What a CA answers to an issue request. The local CA issues at once; an
// upstream CA may answer later (pending, with its reference to poll with),
// refuse, or not answer at all (unreachable: ask again later).
struct CaAnswer {
    enum class Status { issued, pending, failed, unreachable };
    Status status = Status::failed;
    X509Ptr certificate;           // issued
    std::string reference;         // pending: the CA's transaction, to poll with
    std::string reason;            // failed, unreachable: what the CA (or the network) said
    std::optional<int> fail_info;  // failed: the SCEP failInfo the CA gave

    static CaAnswer issuedNow(X509Ptr certificate);
    static CaAnswer pendingAtCa(std::string reference);
    static CaAnswer failedWith(std::string reason, std::optional<int> fail_info = std::nullopt);
    static CaAnswer unreachable(std::string reason);
};

// The issuing settings ([ca] validity-days, subject names, crl-days) come
// with each call: a configuration reload applies to the next certificate.
class CertificateAuthority {
public:
    virtual ~CertificateAuthority() = default;
    virtual CaAnswer issue(const IssueRequest& request, std::time_t now,
                           const CaSettings& settings) = 0;
    virtual X509CrlPtr crl(const std::vector<CertificateRecord>& revoked, std::time_t now,
                           const CaSettings& settings) = 0;
    // The issuing CA's certificate.
    virtual X509& certificate() = 0;
    // What GetCACert serves after the RA certificate: the issuing CA and,
    // for an upstream CA, the rest of its chain.
    virtual std::vector<X509*> chain() { return {&certificate()}; }

    // A CA reached over the network: each request is recorded (with
    // IssueRequest::reference) before it is sent, and may be answered later,
    // through poll(). The local CA answers at once.
    virtual bool forwards() const { return false; }
    // The current answer about a forwarded request the CA said was pending;
    // `csr` is the request as stored (its subject and key).
    virtual CaAnswer poll(const std::string& reference, const Bytes& csr) {
        (void)reference;
        (void)csr;
        return CaAnswer::failedWith("this CA answers at once; there is nothing to poll");
    }
};

}  // namespace scep
