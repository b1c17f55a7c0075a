#include "ra/ca/local_ca.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <optional>
#include <stdexcept>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/rand.h>

#include "ra/crypto.h"
#include "ra/store/sqlite/files.h"

namespace scep {

namespace {

constexpr std::time_t kDay = 24 * 60 * 60;
constexpr std::time_t kClockSkew = 5 * 60;           // notBefore backdating
constexpr std::time_t kCaLifetime = 20 * 365 * kDay;
constexpr std::time_t kRaLifetime = 2 * 365 * kDay;
constexpr std::time_t kRaRenewBefore = 30 * kDay;

// At least 64 random bits (CA/B forum and RFC 5280 practice); 127 here,
// positive, never zero.
Asn1IntegerPtr randomSerial() {
    unsigned char bytes[16];
    if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
        throw CryptoError("RAND_bytes");
    }
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    BignumPtr number(BN_bin2bn(bytes, sizeof(bytes), nullptr));
    Asn1IntegerPtr serial(number ? BN_to_ASN1_INTEGER(number.get(), nullptr) : nullptr);
    if (!serial) {
        throw CryptoError("cannot build serial number");
    }
    return serial;
}

void addEntry(X509_NAME& name, const char* field, const std::string& value) {
    if (value.empty()) {
        return;
    }
    if (X509_NAME_add_entry_by_txt(&name, field, MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(value.data()),
                                   static_cast<int>(value.size()), -1, 0) != 1) {
        throw CryptoError(std::string("cannot set ") + field + " in a name");
    }
}

X509NamePtr makeName(const std::string& cn, const CaSettings& settings) {
    X509NamePtr name(X509_NAME_new());
    if (!name) {
        throw CryptoError("X509_NAME_new");
    }
    addEntry(*name, "C", settings.country);
    addEntry(*name, "O", settings.organization);
    addEntry(*name, "OU", settings.organizational_unit);
    addEntry(*name, "CN", cn);
    return name;
}

void addExtension(X509& cert, X509V3_CTX& ctx, int nid, const std::string& value) {
    if (value.empty()) {
        return;
    }
    X509ExtensionPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
    if (!ext || X509_add_ext(&cert, ext.get(), -1) != 1) {
        throw CryptoError(std::string("cannot add extension ") + OBJ_nid2sn(nid));
    }
}

// Built from typed values rather than a configuration string, so a CN with
// commas cannot smuggle in extra names.
void addSubjectAltNames(X509& cert, const std::vector<SubjectAltName>& sans) {
    if (sans.empty()) {
        return;
    }
    GeneralNamesPtr names(sk_GENERAL_NAME_new_null());
    for (const auto& san : sans) {
        GENERAL_NAME* name = nullptr;
        if (san.type == SubjectAltName::Type::ip) {
            name = a2i_GENERAL_NAME(nullptr, nullptr, nullptr, GEN_IPADD, san.value.c_str(), 0);
        } else {
            ASN1_IA5STRING* text = ASN1_IA5STRING_new();
            name = GENERAL_NAME_new();
            if (!text || !name ||
                ASN1_STRING_set(text, san.value.data(), static_cast<int>(san.value.size())) != 1) {
                ASN1_IA5STRING_free(text);
                GENERAL_NAME_free(name);
                name = nullptr;
            } else {
                GENERAL_NAME_set0_value(
                    name, san.type == SubjectAltName::Type::dns ? GEN_DNS : GEN_EMAIL, text);
            }
        }
        if (!name || !sk_GENERAL_NAME_push(names.get(), name)) {
            GENERAL_NAME_free(name);
            throw CryptoError("cannot build subjectAltName " + san.value);
        }
    }
    if (X509_add1_ext_i2d(&cert, NID_subject_alt_name, names.get(), 0, 0) != 1) {
        throw CryptoError("cannot add subjectAltName");
    }
}

// The SubjectPublicKeyInfo's parts, duplicated into the certificate.
bool copyPublicKey(X509& cert, const X509_PUBKEY& from) {
    ASN1_OBJECT* algorithm = nullptr;
    const unsigned char* key = nullptr;
    int key_length = 0;
    X509_ALGOR* parameters = nullptr;
    if (X509_PUBKEY_get0_param(&algorithm, &key, &key_length, &parameters, &from) != 1) {
        return false;
    }
    const ASN1_OBJECT* ignored = nullptr;
    int type = V_ASN1_UNDEF;
    const void* value = nullptr;
    X509_ALGOR_get0(&ignored, &type, &value, parameters);
    void* value_copy = nullptr;
    if (type == V_ASN1_OBJECT) {
        value_copy = OBJ_dup(static_cast<const ASN1_OBJECT*>(value));
    } else if (type == V_ASN1_SEQUENCE) {
        value_copy = ASN1_STRING_dup(static_cast<const ASN1_STRING*>(value));
    } else if (type != V_ASN1_NULL && type != V_ASN1_UNDEF) {
        return false;
    }
    auto* key_copy = static_cast<unsigned char*>(OPENSSL_memdup(key, static_cast<size_t>(key_length)));
    ASN1_OBJECT* algorithm_copy = OBJ_dup(algorithm);
    if (!key_copy || !algorithm_copy || (value == nullptr) != (value_copy == nullptr) ||
        X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(&cert), algorithm_copy, type, value_copy,
                               key_copy, key_length) != 1) {
        OPENSSL_free(key_copy);
        ASN1_OBJECT_free(algorithm_copy);
        return false;
    }
    return true;
}

void setTime(ASN1_TIME* field, std::time_t when, const char* what) {
    if (!ASN1_TIME_set(field, when)) {
        throw CryptoError(std::string("cannot set ") + what);
    }
}

std::time_t notAfterOf(const X509& cert) {
    return asn1TimeToUnix(X509_get0_notAfter(&cert));
}



// A new key appears under its name with link(), which fails when the name
// exists: no start-up ever replaces a key (a rename would, silently).
void publishKey(const std::string& key_path, const EVP_PKEY& key) {
    const std::string temporary = key_path + ".tmp";
    ::unlink(temporary.c_str());
    writePrivateKeyFile(temporary, key);
    const int rc = ::link(temporary.c_str(), key_path.c_str());
    const int saved = errno;
    ::unlink(temporary.c_str());
    if (rc != 0) {
        throw std::runtime_error(saved == EEXIST ? "refusing to replace the existing key '" +
                                                       key_path + "'"
                                                 : "cannot write '" + key_path +
                                                       "': " + std::strerror(saved));
    }
}

// Key first, certificate last: a certificate on disk always has its key.
void saveKeyAndCertificate(const std::string& key_path, const std::string& cert_path,
                           const EVP_PKEY& key, const X509& cert) {
    publishKey(key_path, key);
    writeFileAtomically(cert_path, certificatePem(cert), 0644);
    syncDirectory(cert_path.substr(0, cert_path.rfind('/')));
}

// A certificate for one of the RA's own services (SCEP RA, admin TLS),
// issued by the CA and saved in state-dir.
struct ServiceSpec {
    const char* key_type;
    const char* cn_suffix;       // after the CA's name
    const char* key_usage;
    const char* extended_key_usage;
    std::vector<SubjectAltName> sans;
};

struct Loaded {
    X509Ptr cert;
    EvpPkeyPtr key;
};

X509Ptr issueServiceCertificate(const Config& config, LocalCa& ca, std::time_t now,
                                const ServiceSpec& service, EVP_PKEY& key) {
    CaSettings subject_only;
    subject_only.organization = config.ca.organization;
    const X509NamePtr name = makeName(config.ca.name + service.cn_suffix, subject_only);
    CertificateSpec spec;
    spec.subject = name.get();
    spec.subject_key = &key;
    spec.not_before = now - kClockSkew;
    spec.not_after = std::min(now + kRaLifetime, notAfterOf(ca.certificate()));
    spec.key_usage = service.key_usage;
    spec.extended_key_usage = service.extended_key_usage;
    spec.sans = service.sans;
    return signCertificate(spec, &ca.certificate(), ca.key());
}

Loaded loadPair(const std::string& cert_path, const std::string& key_path, const char* role) {
    Loaded pair{loadCertificateFile(cert_path), loadPrivateKeyFile(key_path)};
    if (X509_check_private_key(pair.cert.get(), pair.key.get()) != 1) {
        throw CryptoError(std::string(role) + " key '" + key_path + "' does not match certificate '" +
                          cert_path + "'");
    }
    if (hasExplicitEcParameters(*X509_get_X509_PUBKEY(pair.cert.get()))) {
        // It would sign every certificate and CRL, and RFC 5480 clients refuse it.
        throw std::runtime_error(std::string(role) + " certificate '" + cert_path +
                                 "' has an EC key with explicit curve parameters; RFC 5480 "
                                 "allows only a named curve");
    }
    return pair;
}

bool issuedBy(X509& cert, X509& issuer) {
    const bool ok = X509_check_issued(&issuer, &cert) == X509_V_OK &&
                    X509_verify(&cert, X509_get0_pubkey(&issuer)) == 1;
    ERR_clear_error();
    return ok;
}

// Entries of a state-dir other than the lock serve holds while running.
std::vector<std::string> stateEntries(const std::string& dir) {
    std::vector<std::string> entries;
    DIR* handle = ::opendir(dir.c_str());
    if (!handle) {
        return entries;
    }
    while (const dirent* entry = ::readdir(handle)) {
        const std::string name = entry->d_name;
        if (name != "." && name != ".." && name != kLockFile) {
            entries.push_back(name);
        }
    }
    ::closedir(handle);
    std::sort(entries.begin(), entries.end());
    return entries;
}

std::string listed(const std::vector<std::string>& names) {
    std::string out;
    for (std::size_t i = 0; i < names.size() && i < 5; ++i) {
        out += (i ? ", '" : "'") + names[i] + "'";
    }
    return names.size() > 5 ? out + ", ..." : out;
}

// When may a CA be generated? Only where it cannot orphan anything: a new
// state-dir on first start, or on the operator's explicit `scep-ra init`
// as long as no record of an earlier CA is left.
void checkMayCreateCa(const Config& config, Creation creation) {
    const std::string& dir = config.ra.state_dir;
    if (creation == Creation::none) {
        throw std::runtime_error("state-dir '" + dir +
                                 "' holds no CA yet; start 'scep-ra serve' once to create it");
    }
    const std::vector<std::string> entries = stateEntries(dir);
    if (creation == Creation::first_start && !entries.empty()) {
        throw std::runtime_error(
            "state-dir '" + dir + "' holds " + listed(entries) +
            " but no CA (ca.pem, ca.key): refusing to create a new CA over existing state. If the "
            "CA files were moved, put them back, or restore a backup (scep-ra restore DIR); to start "
            "a new CA on purpose, use an empty state-dir or run 'scep-ra init'");
    }
    const std::string database = stateFile(config, kDatabaseFile);
    if (fileExists(database) && sqliteSchemaVersion(database) > 0) {
        throw std::runtime_error("'" + database +
                                 "' holds the records of an earlier CA: a new CA would be unable to "
                                 "revoke what it lists. Move scep-ra.db* out of state-dir first");
    }
}

std::unique_ptr<LocalCa> loadOrCreateCa(const Config& config, std::time_t now, Creation creation,
                                        std::vector<std::string>& created) {
    const bool own = !config.ca.cert.empty();
    const std::string cert_path = own ? config.ca.cert : stateFile(config, "ca.pem");
    const std::string key_path = own ? config.ca.key_file : stateFile(config, "ca.key");
    if (!own && fileExists(key_path) && !fileExists(cert_path)) {
        throw std::runtime_error(
            "'" + key_path + "' exists but '" + cert_path +
            "' does not: refusing to start, a new CA would orphan every certificate the existing "
            "one issued. Put ca.pem back, or restore a backup (scep-ra restore DIR); never delete "
            "ca.key");
    }
    if (own || fileExists(cert_path)) {
        if (!own && !fileExists(key_path)) {
            throw std::runtime_error("'" + cert_path + "' exists but its key '" + key_path +
                                     "' does not: restore ca.key from a backup (scep-ra restore "
                                     "DIR)");
        }
        Loaded ca = loadPair(cert_path, key_path, "CA");
        if (X509_check_ca(ca.cert.get()) == 0) {
            throw std::runtime_error("'" + cert_path + "' is not a CA certificate");
        }
        if (notAfterOf(*ca.cert) <= now) {
            throw std::runtime_error("CA certificate '" + cert_path + "' has expired");
        }
        return std::make_unique<LocalCa>(std::move(ca.cert), std::move(ca.key));
    }
    checkMayCreateCa(config, creation);
    EvpPkeyPtr key = generateKey(config.ca.key);
    CaSettings subject_only = config.ca;
    subject_only.organizational_unit.clear();
    const X509NamePtr name = makeName(config.ca.name, subject_only);
    CertificateSpec spec;
    spec.subject = name.get();
    spec.subject_key = key.get();
    spec.not_before = now - kClockSkew;
    spec.not_after = now + kCaLifetime;
    spec.ca = true;
    spec.key_usage = "critical,keyCertSign,cRLSign,digitalSignature";
    X509Ptr cert = signCertificate(spec, nullptr, *key);
    saveKeyAndCertificate(key_path, cert_path, *key, *cert);
    created.push_back(key_path);
    created.push_back(cert_path);
    return std::make_unique<LocalCa>(std::move(cert), std::move(key));
}

// One of the RA's own service identities in state-dir. Its key is kept for
// good once it exists; only the certificate is re-issued (for that key) when
// `current` says it no longer fits. Without `creation` nothing is written
// and a missing identity is nullopt.
std::optional<RaIdentity> loadOrIssueService(const Config& config, LocalCa& ca, std::time_t now,
                                             Creation creation, const ServiceSpec& service,
                                             const char* name,
                                             const std::function<bool(X509&)>& current,
                                             std::vector<std::string>& created) {
    const std::string cert_path = stateFile(config, (std::string(name) + ".pem").c_str());
    const std::string key_path = stateFile(config, (std::string(name) + ".key").c_str());
    const bool have_key = fileExists(key_path);
    if (creation == Creation::none) {
        if (!have_key || !fileExists(cert_path)) {
            return std::nullopt;
        }
        Loaded pair = loadPair(cert_path, key_path, name);
        return RaIdentity{std::move(pair.cert), std::move(pair.key)};
    }
    EvpPkeyPtr key = have_key ? loadPrivateKeyFile(key_path) : generateKey(service.key_type);
    if (have_key && fileExists(cert_path)) {
        X509Ptr cert = loadCertificateFile(cert_path);
        if (X509_check_private_key(cert.get(), key.get()) == 1 && issuedBy(*cert, ca.certificate()) &&
            current(*cert)) {
            return RaIdentity{std::move(cert), std::move(key)};
        }
        ERR_clear_error();
    }
    X509Ptr cert = issueServiceCertificate(config, ca, now, service, *key);
    if (have_key) {
        writeFileAtomically(cert_path, certificatePem(*cert), 0644);
    } else {
        saveKeyAndCertificate(key_path, cert_path, *key, *cert);
        created.push_back(key_path);
    }
    created.push_back(cert_path);
    return RaIdentity{std::move(cert), std::move(key)};
}

RaIdentity loadOrCreateRa(const Config& config, LocalCa& ca, std::time_t now, Creation creation,
                          std::vector<std::string>& created) {
    if (!config.ra.cert.empty()) {
        Loaded ra = loadPair(config.ra.cert, config.ra.key_file, "RA");
        if (!isRsa(*ra.key)) {
            throw std::runtime_error("RA key '" + config.ra.key_file +
                                     "' must be RSA: SCEP clients encrypt to it");
        }
        if (!issuedBy(*ra.cert, ca.certificate())) {
            throw std::runtime_error("RA certificate '" + config.ra.cert +
                                     "' is not issued by the CA certificate");
        }
        if (notAfterOf(*ra.cert) <= now) {
            throw std::runtime_error("RA certificate '" + config.ra.cert + "' has expired");
        }
        return {std::move(ra.cert), std::move(ra.key)};
    }
    // Windows/Intune-style clients want both key usages: replies are signed
    // with this key and requests are encrypted to it.
    auto identity = loadOrIssueService(
        config, ca, now, creation,
        {"rsa:2048", " SCEP RA", "critical,digitalSignature,keyEncipherment", "", {}}, "ra",
        [now](X509& cert) { return notAfterOf(cert) > now + kRaRenewBefore; }, created);
    if (!identity) {
        throw std::runtime_error("state-dir '" + config.ra.state_dir +
                                 "' holds no RA certificate yet; start 'scep-ra serve' once");
    }
    if (!isRsa(*identity->key)) {
        throw std::runtime_error("RA key '" + stateFile(config, "ra.key") +
                                 "' must be RSA: SCEP clients encrypt to it");
    }
    return std::move(*identity);
}

// Names a browser may use to reach the admin listener.
std::vector<SubjectAltName> adminNames(const AdminSettings& admin) {
    std::vector<SubjectAltName> names = {{SubjectAltName::Type::dns, "localhost"},
                                         {SubjectAltName::Type::ip, "127.0.0.1"},
                                         {SubjectAltName::Type::ip, "::1"}};
    char host[256] = {};
    if (::gethostname(host, sizeof(host) - 1) == 0 && isValidDnsName(host) &&
        std::string(host) != "localhost") {
        names.push_back({SubjectAltName::Type::dns, host});
    }
    const std::string& listen = admin.listen_host;
    const bool wildcard = listen == "0.0.0.0" || listen == "::";
    const bool ip = listen.find(':') != std::string::npos ||
                    listen.find_first_not_of("0123456789.") == std::string::npos;
    const SubjectAltName own{ip ? SubjectAltName::Type::ip : SubjectAltName::Type::dns, listen};
    if (!wildcard && std::find(names.begin(), names.end(), own) == names.end()) {
        names.push_back(own);
    }
    return names;
}

bool coversNames(X509& cert, const std::vector<SubjectAltName>& wanted) {
    for (const auto& name : wanted) {
        const int ok = name.type == SubjectAltName::Type::ip
                           ? X509_check_ip_asc(&cert, name.value.c_str(), 0)
                           : X509_check_host(&cert, name.value.c_str(), name.value.size(), 0, nullptr);
        if (ok != 1) {
            return false;
        }
    }
    return true;
}

RaIdentity loadOrCreateAdmin(const Config& config, LocalCa& ca, std::time_t now, Creation creation,
                             std::vector<std::string>& created) {
    if (!config.admin.enabled) {
        return {};
    }
    if (!config.admin.cert.empty()) {
        Loaded own = loadPair(config.admin.cert, config.admin.key_file, "admin TLS");
        return {std::move(own.cert), std::move(own.key)};
    }
    const std::vector<SubjectAltName> names = adminNames(config.admin);
    auto identity = loadOrIssueService(
        config, ca, now, creation,
        {"ec:p256", " admin console", "critical,digitalSignature", "serverAuth", names}, "admin",
        [now, &names](X509& cert) {
            return notAfterOf(cert) > now + kRaRenewBefore && coversNames(cert, names);
        },
        created);
    return identity ? std::move(*identity) : RaIdentity{};  // admin commands serve no TLS
}

}  // namespace

X509Ptr signCertificate(const CertificateSpec& spec, X509* issuer_cert, EVP_PKEY& issuer_key) {
    X509Ptr cert(X509_new());
    if (!cert || X509_set_version(cert.get(), 2) != 1) {
        throw CryptoError("X509_new");
    }
    const Asn1IntegerPtr serial = randomSerial();
    if (X509_set_serialNumber(cert.get(), serial.get()) != 1 ||
        X509_set_subject_name(cert.get(), spec.subject) != 1 ||
        X509_set_issuer_name(cert.get(), issuer_cert ? X509_get_subject_name(issuer_cert)
                                                     : spec.subject) != 1 ||
        !(spec.subject_key_info ? copyPublicKey(*cert, *spec.subject_key_info)
                                : X509_set_pubkey(cert.get(), spec.subject_key) == 1)) {
        throw CryptoError("cannot fill certificate");
    }
    setTime(X509_getm_notBefore(cert.get()), spec.not_before, "notBefore");
    setTime(X509_getm_notAfter(cert.get()), spec.not_after, "notAfter");

    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer_cert ? issuer_cert : cert.get(), cert.get(), nullptr, nullptr, 0);
    addExtension(*cert, ctx, NID_basic_constraints, spec.ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    addExtension(*cert, ctx, NID_key_usage, spec.key_usage);
    addExtension(*cert, ctx, NID_ext_key_usage, spec.extended_key_usage);
    addExtension(*cert, ctx, NID_subject_key_identifier, "hash");
    if (issuer_cert) {
        addExtension(*cert, ctx, NID_authority_key_identifier, "keyid:always");
    }
    addSubjectAltNames(*cert, spec.sans);
    if (X509_sign(cert.get(), &issuer_key, EVP_sha256()) <= 0) {
        throw CryptoError("cannot sign certificate");
    }
    return cert;
}

LocalCa::LocalCa(X509Ptr cert, EvpPkeyPtr key) : cert_(std::move(cert)), key_(std::move(key)) {}

X509Ptr LocalCa::issue(const IssueRequest& request, std::time_t now, const CaSettings& settings) {
    const X509NamePtr subject = makeName(request.common_name, settings);
    CertificateSpec spec;
    spec.subject = subject.get();
    spec.subject_key = request.public_key;
    spec.subject_key_info = request.public_key_info;
    spec.not_before = now - kClockSkew;
    // Never outlive the CA: relying parties would reject the chain anyway.
    spec.not_after =
        std::min(now + static_cast<std::time_t>(settings.validity_days) * kDay, notAfterOf(*cert_));
    spec.key_usage = isRsa(*request.public_key) ? "critical,digitalSignature,keyEncipherment"
                                                : "critical,digitalSignature,keyAgreement";
    spec.extended_key_usage = "clientAuth";
    spec.sans = request.sans;
    return signCertificate(spec, cert_.get(), *key_);
}

X509CrlPtr LocalCa::crl(const std::vector<CertificateRecord>& revoked, std::time_t now,
                        const CaSettings& settings) {
    X509CrlPtr crl(X509_CRL_new());
    if (!crl || X509_CRL_set_version(crl.get(), 1) != 1 ||
        X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(cert_.get())) != 1) {
        throw CryptoError("X509_CRL_new");
    }
    const Asn1TimePtr this_update(ASN1_TIME_set(nullptr, now));
    const Asn1TimePtr next_update(
        ASN1_TIME_set(nullptr, now + static_cast<std::time_t>(settings.crl_days) * kDay));
    if (!this_update || !next_update || X509_CRL_set1_lastUpdate(crl.get(), this_update.get()) != 1 ||
        X509_CRL_set1_nextUpdate(crl.get(), next_update.get()) != 1) {
        throw CryptoError("cannot set CRL times");
    }
    for (const auto& record : revoked) {
        X509_REVOKED* entry = X509_REVOKED_new();
        BIGNUM* number = nullptr;
        Asn1IntegerPtr serial(BN_hex2bn(&number, record.serial.c_str()) > 0
                                  ? BN_to_ASN1_INTEGER(number, nullptr)
                                  : nullptr);
        BN_free(number);
        const Asn1TimePtr when(ASN1_TIME_set(nullptr, record.revoked_at));
        bool ok = entry && serial && when && X509_REVOKED_set_serialNumber(entry, serial.get()) == 1 &&
                  X509_REVOKED_set_revocationDate(entry, when.get()) == 1;
        if (ok && record.revocation_reason != 0) {  // 0 = unspecified: RFC 5280 says leave it out
            ASN1_ENUMERATED* reason = ASN1_ENUMERATED_new();
            ok = reason && ASN1_ENUMERATED_set(reason, record.revocation_reason) == 1 &&
                 X509_REVOKED_add1_ext_i2d(entry, NID_crl_reason, reason, 0, 0) == 1;
            ASN1_ENUMERATED_free(reason);
        }
        if (!ok || X509_CRL_add0_revoked(crl.get(), entry) != 1) {
            X509_REVOKED_free(entry);
            throw CryptoError("cannot add revoked certificate " + record.serial + " to the CRL");
        }
    }
    X509_CRL_sort(crl.get());
    // The CRL number must grow; the issuing time in seconds does.
    const Asn1IntegerPtr number(ASN1_INTEGER_new());
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, cert_.get(), nullptr, nullptr, crl.get(), 0);
    X509ExtensionPtr aki(X509V3_EXT_conf_nid(nullptr, &ctx, NID_authority_key_identifier, "keyid:always"));
    if (!number || ASN1_INTEGER_set_int64(number.get(), now) != 1 ||
        X509_CRL_add1_ext_i2d(crl.get(), NID_crl_number, number.get(), 0, 0) != 1 || !aki ||
        X509_CRL_add_ext(crl.get(), aki.get(), -1) != 1 ||
        X509_CRL_sign(crl.get(), key_.get(), EVP_sha256()) <= 0) {
        throw CryptoError("cannot sign CRL");
    }
    return crl;
}

void makeStateDir(const std::string& dir) {
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
        throw std::runtime_error("cannot create state-dir '" + dir + "': " + std::strerror(errno));
    }
    struct stat info {};
    if (::stat(dir.c_str(), &info) != 0 || !S_ISDIR(info.st_mode)) {
        throw std::runtime_error("state-dir '" + dir + "' is not a directory");
    }
}

std::string stateFile(const Config& config, const char* name) {
    return config.ra.state_dir + "/" + name;
}

State bootstrapState(const Config& config, std::time_t now, Creation creation) {
    if (creation != Creation::none) {
        makeStateDir(config.ra.state_dir);
    }
    State state;
    state.ca = loadOrCreateCa(config, now, creation, state.created);
    state.ra = loadOrCreateRa(config, *state.ca, now, creation, state.created);
    state.admin = loadOrCreateAdmin(config, *state.ca, now, creation, state.created);
    return state;
}

bool isNewStateDir(const Config& config) {
    return stateEntries(config.ra.state_dir).empty();
}

}  // namespace scep
