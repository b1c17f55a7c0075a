// What enrollment needs from a certificate authority, whichever it is: the
// embedded LocalCa (ra/ca/local_ca.h) or, later, an upstream CA.
#pragma once

#include <ctime>
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
};

// What a CA answers to an issue request. The local CA issues at once; an
// upstream CA may answer later (pending, with its reference to poll with) or
// refuse.
struct CaAnswer {
    enum class Status { issued, pending, failed };
    Status status = Status::failed;
    X509Ptr certificate;    // issued
    std::string reference;  // pending: the CA's transaction, to poll with
    std::string reason;     // failed: the CA's own words

    static CaAnswer issuedNow(X509Ptr certificate);
    static CaAnswer pendingAtCa(std::string reference);
    static CaAnswer failedWith(std::string reason);
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
    virtual X509& certificate() = 0;
};

}  // namespace scep
