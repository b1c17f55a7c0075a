#include "ra/ca/bootstrap.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <optional>
#include <stdexcept>

#include <openssl/err.h>

#include "ra/ca/certificate.h"
#include "ra/ca/local_ca.h"
#include "ra/crypto.h"
#include "ra/store/sqlite/files.h"

namespace scep {

namespace {

constexpr std::time_t kCaLifetime = 20 * 365 * kDay;
constexpr std::time_t kRaLifetime = 2 * 365 * kDay;
constexpr std::time_t kRaRenewBefore = 30 * kDay;

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
        throw std::runtime_error(saved == EEXIST
                                     ? "refusing to replace the existing key '" + key_path + "'"
                                     : "cannot write '" + key_path + "': " + std::strerror(saved));
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
    const char* cn_suffix;  // after the CA's name
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
        throw CryptoError(std::string(role) + " key '" + key_path +
                          "' does not match certificate '" + cert_path + "'");
    }
    if (hasExplicitEcParameters(*X509_get_X509_PUBKEY(pair.cert.get()))) {
        // It would sign every certificate and CRL, and RFC 5480 clients refuse it.
        throw std::runtime_error(std::string(role) + " certificate '" + cert_path +
                                 "' has an EC key with explicit curve parameters; RFC 5480 "
                                 "allows only a named curve");
    }
    return pair;
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
            "CA files were moved, put them back, or restore a backup (scep-ra restore DIR); to "
            "start "
            "a new CA on purpose, use an empty state-dir or run 'scep-ra init'");
    }
    const std::string database = stateFile(config, kDatabaseFile);
    if (fileExists(database) && sqliteSchemaVersion(database) > 0) {
        throw std::runtime_error(
            "'" + database +
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
        if (X509_check_private_key(cert.get(), key.get()) == 1 &&
            isIssuedBy(*cert, ca.certificate()) && current(*cert)) {
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

// With backend = "scep" the RA's one identity, towards phones and the
// upstream CA: identity-cert/identity-key, or a self-signed one kept in
// state-dir (its key generated once, its certificate re-signed for the
// same key when it has fewer than 30 days left).
RaIdentity loadOrCreateUpstreamIdentity(const Config& config, std::time_t now, Creation creation,
                                        std::vector<std::string>& created) {
    const UpstreamSettings& upstream = config.ca.upstream;
    const bool own = !upstream.identity_cert.empty();
    const std::string cert_path =
        own ? upstream.identity_cert : stateFile(config, "upstream-ra.pem");
    const std::string key_path = own ? upstream.identity_key : stateFile(config, "upstream-ra.key");
    if (own || (fileExists(cert_path) && fileExists(key_path))) {
        Loaded identity = loadPair(cert_path, key_path, "upstream identity");
        if (!isRsa(*identity.key)) {
            throw std::runtime_error("identity key '" + key_path +
                                     "' must be RSA: SCEP clients encrypt to it");
        }
        if (own || notAfterOf(*identity.cert) > now + kRaRenewBefore ||
            creation == Creation::none) {
            if (notAfterOf(*identity.cert) <= now) {
                throw std::runtime_error("identity certificate '" + cert_path + "' has expired");
            }
            return {std::move(identity.cert), std::move(identity.key)};
        }
    }
    if (creation == Creation::none) {
        throw std::runtime_error("state-dir '" + config.ra.state_dir +
                                 "' holds no upstream identity yet; start 'scep-ra serve' once");
    }
    const bool have_key = fileExists(key_path);
    EvpPkeyPtr key = have_key ? loadPrivateKeyFile(key_path) : generateKey("rsa:2048");
    char host[256] = {};
    ::gethostname(host, sizeof(host) - 1);
    std::string cn = std::string("scep-ra ") + host;
    cn.resize(std::min<std::size_t>(cn.size(), 64));  // the CN's upper bound
    const X509NamePtr name = makeName(cn, CaSettings{});
    CertificateSpec spec;
    spec.subject = name.get();
    spec.subject_key = key.get();
    spec.not_before = now - kClockSkew;
    spec.not_after = now + kRaLifetime;
    // Replies are signed with it and requests encrypted to it, both ways.
    spec.key_usage = "critical,digitalSignature,keyEncipherment";
    X509Ptr cert = signCertificate(spec, nullptr, *key);
    if (have_key) {
        writeFileAtomically(cert_path, certificatePem(*cert), 0644);
    } else {
        saveKeyAndCertificate(key_path, cert_path, *key, *cert);
        created.push_back(key_path);
    }
    created.push_back(cert_path);
    return {std::move(cert), std::move(key)};
}

RaIdentity loadOrCreateRa(const Config& config, LocalCa& ca, std::time_t now, Creation creation,
                          std::vector<std::string>& created) {
    if (config.ca.backend == CaBackend::scep) {
        return loadOrCreateUpstreamIdentity(config, now, creation, created);
    }
    if (!config.ra.cert.empty()) {
        Loaded ra = loadPair(config.ra.cert, config.ra.key_file, "RA");
        if (!isRsa(*ra.key)) {
            throw std::runtime_error("RA key '" + config.ra.key_file +
                                     "' must be RSA: SCEP clients encrypt to it");
        }
        if (!isIssuedBy(*ra.cert, ca.certificate())) {
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
        const int ok =
            name.type == SubjectAltName::Type::ip
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

CaMaterial bootstrapState(const Config& config, std::time_t now, Creation creation) {
    if (creation != Creation::none) {
        makeStateDir(config.ra.state_dir);
    }
    CaMaterial state;
    state.ca = loadOrCreateCa(config, now, creation, state.created);
    state.ra = loadOrCreateRa(config, *state.ca, now, creation, state.created);
    state.admin = loadOrCreateAdmin(config, *state.ca, now, creation, state.created);
    return state;
}

bool isNewStateDir(const Config& config) {
    return stateEntries(config.ra.state_dir).empty();
}

}  // namespace scep
