// Building and checking X.509 certificates, for the CA, the RA's own
// service certificates and issued ones alike.
#pragma once

#include <ctime>
#include <string>
#include <vector>

#include "common/openssl_ptr.h"
#include "ra/ca/authority.h"
#include "ra/config.h"

namespace scep {

constexpr std::time_t kDay = 24 * 60 * 60;
constexpr std::time_t kClockSkew = 5 * 60;  // notBefore backdating

// A certificate signed by `issuer_cert`/`issuer_key` (or self-signed when
// both are null) with the given subject key; used for the CA, the RA
// certificate and issued certificates alike.
struct CertificateSpec {
    X509_NAME* subject = nullptr;
    EVP_PKEY* subject_key = nullptr;
    // Preferred over subject_key when set. The returned certificate's
    // X509_get0_pubkey() is then unset until it is encoded and decoded again;
    // callers only encode it.
    const X509_PUBKEY* subject_key_info = nullptr;
    std::time_t not_before = 0;
    std::time_t not_after = 0;
    bool ca = false;
    // Key usage / extended key usage in OpenSSL's configuration syntax,
    // e.g. "critical,digitalSignature,keyEncipherment" and "clientAuth".
    std::string key_usage;
    std::string extended_key_usage;
    std::vector<SubjectAltName> sans;
};
X509Ptr signCertificate(const CertificateSpec& spec, X509* issuer_cert, EVP_PKEY& issuer_key);

// C, O, OU from `settings` (each when set) and the CN.
X509NamePtr makeName(const std::string& cn, const CaSettings& settings);

std::time_t notAfterOf(const X509& cert);

// True when `issuer` issued `cert`: names and key identifiers match and its
// signature verifies with the issuer's key. Clears OpenSSL's error queue.
bool isIssuedBy(X509& cert, X509& issuer);

}  // namespace scep
