// The issuing side. CertificateAuthority is what enrollment needs from a CA;
// LocalCa is the embedded one (a key and self-signed root in state-dir).
// bootstrapState() prepares state-dir on first start: CA, RA certificate,
// keys created 0600.
#pragma once

#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "ra/config.h"
#include "common/openssl_ptr.h"
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
};

// The issuing settings ([ca] validity-days, subject names, crl-days) come
// with each call: a configuration reload applies to the next certificate.
class CertificateAuthority {
public:
    virtual ~CertificateAuthority() = default;
    virtual X509Ptr issue(const IssueRequest& request, std::time_t now,
                          const CaSettings& settings) = 0;
    virtual X509CrlPtr crl(const std::vector<CertificateRecord>& revoked, std::time_t now,
                           const CaSettings& settings) = 0;
    virtual X509& certificate() = 0;
};

class LocalCa : public CertificateAuthority {
public:
    LocalCa(X509Ptr cert, EvpPkeyPtr key);
    X509Ptr issue(const IssueRequest& request, std::time_t now,
                  const CaSettings& settings) override;
    X509CrlPtr crl(const std::vector<CertificateRecord>& revoked, std::time_t now,
                   const CaSettings& settings) override;
    X509& certificate() override { return *cert_; }
    EVP_PKEY& key() { return *key_; }

private:
    X509Ptr cert_;
    EvpPkeyPtr key_;
};

// The certificate and key the RA signs replies with and receives requests
// encrypted to. Always RSA: SCEP clients cannot use anything else.
struct RaIdentity {
    X509Ptr cert;
    EvpPkeyPtr key;
};

struct State {
    std::unique_ptr<LocalCa> ca;
    RaIdentity ra;
    RaIdentity admin;  // TLS server identity of the admin listener (empty when disabled)
    std::vector<std::string> created;  // files created by this start, for the operator
};

// File names inside state-dir: the database, and the lock `serve`,
// `init` and `restore` hold so that only one of them works on it at a time.
constexpr const char* kDatabaseFile = "scep-ra.db";
constexpr const char* kLockFile = "scep-ra.lock";

// What bootstrapState() may create. No mode ever replaces an existing key.
enum class Creation {
    none,         // admin commands: load what exists; missing material is an error
    first_start,  // serve: a CA only in a new (empty) state-dir; service certificates as needed
    init,         // scep-ra init: a CA wherever none exists and no earlier CA's records remain
};

// Loads or creates CA and RA material per `config` and checks that it fits
// together (keys match certificates, the RA certificate is issued by the CA,
// RSA, not expired). The RA and admin certificates are re-issued for their
// existing keys when they have fewer than 30 days left (or no longer fit);
// their keys are only generated where none exist. A state-dir with a CA key
// but no CA certificate (or the reverse), or one that is not empty but has
// no CA, is refused with the file and the fix named.
State bootstrapState(const Config& config, std::time_t now, Creation creation = Creation::first_start);

// Creates state-dir with mode 0700 unless it exists; throws if it cannot,
// or if the path is not a directory.
void makeStateDir(const std::string& dir);

// True when state-dir does not exist or holds nothing but the lock.
bool isNewStateDir(const Config& config);

// The paths bootstrapState() uses inside state-dir.
std::string stateFile(const Config& config, const char* name);

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

}  // namespace scep
