#include "ra/config.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <set>

#include "common/text.h"
#include "common/url.h"
#include "ra/config_limits.h"
#include "ra/crypto.h"

namespace scep {

namespace {

// Extra SCEP paths besides /scep and /cgi-bin/pkiclient.exe.
void readPaths(Reader& reader, const toml::table& table, const std::string& context,
               std::vector<std::string>& out) {
    if (const auto paths = reader.strings(table, "paths", context)) {
        for (const auto& path : *paths) {
            if (path.size() < 2 || path.front() != '/' ||
                !std::all_of(path.begin(), path.end(), [](unsigned char c) {
                    return std::isalnum(c) || std::strchr("/-_.~", c) != nullptr;
                })) {
                reader.keyProblem(*table.get("paths"), context, "paths",
                                  "entries must be URL paths such as \"/certsrv/mscep/mscep.dll\"");
            } else {
                out.push_back(path);
            }
        }
    }
}

void readRa(Reader& reader, const toml::table& root, const std::string& base_dir, RaSettings& ra) {
    const toml::table* table = subTable(reader, root, "ra");
    ra.http.max_header_size = 8 * 1024 + 2 * ra.max_body;
    if (!table) {
        ra.state_dir = resolvePath(base_dir, ra.state_dir);
        return;
    }
    const std::string context = "[ra]";
    reader.rejectUnknownKeys(
        *table,
        withListenerKeys({"listen", "state-dir", "max-body", "paths", "cert", "key-file",
                          "min-free-space", "audit-failures-per-source", "audit-failures-overall"},
                         false),
        context);
    if (const auto listen = reader.string(*table, "listen", context)) {
        if (!parseListen(*listen, ra.listen_host, ra.listen_port)) {
            reader.keyProblem(*table->get("listen"), context, "listen",
                              "must be ADDRESS:PORT, e.g. \"0.0.0.0:8080\" or \"[::]:8080\"");
        }
    }
    if (const auto dir = reader.string(*table, "state-dir", context)) {
        if (dir->empty()) {
            reader.keyProblem(*table->get("state-dir"), context, "state-dir", "must not be empty");
        } else {
            ra.state_dir = *dir;
        }
    }
    ra.state_dir = resolvePath(base_dir, ra.state_dir);
    if (const toml::node* node = table->get("max-body")) {
        const auto size = parseSize(*node);
        if (!size || *size < 1024 || *size > 16 * 1024 * 1024) {
            reader.keyProblem(*node, context, "max-body",
                              "must be a size from 1KiB to 16MiB, e.g. \"64KiB\"");
        } else {
            ra.max_body = *size;
        }
    }
    ra.http.max_header_size = 8 * 1024 + 2 * ra.max_body;
    readListenerLimits(reader, *table, context, false, ra.http);
    if (const toml::node* node = table->get("min-free-space")) {
        const auto size = parseSize(*node);
        if (!size || *size < 1024 * 1024) {
            reader.keyProblem(*node, context, "min-free-space",
                              "must be a size of at least 1MiB, e.g. \"64MiB\"");
        } else {
            ra.min_free_space = *size;
        }
    }
    for (const auto& [key, target] :
         {std::pair<std::string_view, std::size_t*>{"audit-failures-per-source",
                                                    &ra.audit_failures_per_source},
          {"audit-failures-overall", &ra.audit_failures_overall}}) {
        if (const auto value = reader.integer(*table, key, context, 1, 1000000)) {
            *target = static_cast<std::size_t>(*value);
        }
    }
    if (ra.audit_failures_per_source > ra.audit_failures_overall) {
        reader.problem(table->source(), context,
                       "audit-failures-per-source (" +
                           std::to_string(ra.audit_failures_per_source) +
                           ") must not exceed audit-failures-overall (" +
                           std::to_string(ra.audit_failures_overall) + ")");
    }
    readPaths(reader, *table, context, ra.paths);
    ra.cert = resolvePath(base_dir, reader.string(*table, "cert", context).value_or(""));
    ra.key_file = resolvePath(base_dir, reader.string(*table, "key-file", context).value_or(""));
    if (ra.cert.empty() != ra.key_file.empty()) {
        reader.problem(table->source(), context,
                       "keys 'cert' and 'key-file' go together: set both or neither");
    }
}

// The keys of one backend are mistakes with the other: each is refused by
// name rather than ignored.
const std::vector<std::string_view>& localCaKeys() {
    static const std::vector<std::string_view> keys = {
        "validity-days",       "key",     "name",    "cert", "key-file", "organization",
        "organizational-unit", "country", "crl-days"};
    return keys;
}

const std::vector<std::string_view>& upstreamCaKeys() {
    static const std::vector<std::string_view> keys = {
        "url",           "ca-fingerprint", "identity-cert", "identity-key",
        "poll-interval", "poll-timeout",   "timeout"};
    return keys;
}

void refuseKeys(Reader& reader, const toml::table& table, const std::string& context,
                const std::vector<std::string_view>& keys, const std::string& why) {
    for (const std::string_view key : keys) {
        if (const toml::node* node = table.get(key)) {
            reader.keyProblem(*node, context, key, why);
        }
    }
}

void readLocalCa(Reader& reader, const toml::table& table, const std::string& base_dir,
                 CaSettings& ca) {
    const std::string context = "[ca]";
    ca.validity_days = static_cast<int>(
        reader.integer(table, "validity-days", context, 1, 3650).value_or(ca.validity_days));
    ca.crl_days =
        static_cast<int>(reader.integer(table, "crl-days", context, 1, 365).value_or(ca.crl_days));
    if (const auto key = reader.string(table, "key", context)) {
        if (!isValidKeySpec(*key)) {
            reader.keyProblem(*table.get("key"), context, "key",
                              "must be \"rsa:2048\", \"rsa:3072\", \"rsa:4096\", \"ec:p256\" or "
                              "\"ec:p384\" (got \"" +
                                  *key + "\")");
        } else {
            ca.key = *key;
        }
    }
    const std::pair<const char*, std::string*> texts[] = {
        {"name", &ca.name},
        {"organization", &ca.organization},
        {"organizational-unit", &ca.organizational_unit},
    };
    for (const auto& [key, target] : texts) {
        if (const auto value = reader.string(table, key, context)) {
            const bool may_be_empty = std::string_view(key) != "name";  // empty: left out
            if (value->size() > 64 || !isPrintableAscii(*value) ||
                (value->empty() && !may_be_empty)) {
                reader.keyProblem(*table.get(key), context, key,
                                  "must be 1-64 printable ASCII characters");
            } else {
                *target = *value;
            }
        }
    }
    if (const auto country = reader.string(table, "country", context)) {
        if (country->size() != 2 || !std::isupper(static_cast<unsigned char>((*country)[0])) ||
            !std::isupper(static_cast<unsigned char>((*country)[1]))) {
            reader.keyProblem(*table.get("country"), context, "country",
                              "must be a two-letter upper-case ISO 3166 code such as \"NL\"");
        } else {
            ca.country = *country;
        }
    }
    ca.cert = resolvePath(base_dir, reader.string(table, "cert", context).value_or(""));
    ca.key_file = resolvePath(base_dir, reader.string(table, "key-file", context).value_or(""));
    if (ca.cert.empty() != ca.key_file.empty()) {
        reader.problem(table.source(), context,
                       "keys 'cert' and 'key-file' go together: set both or neither");
    }
}

// "sha256:3F2A..." (separators allowed in the hex, as admins paste them).
void readPin(Reader& reader, const toml::table& table, const std::string& context,
             UpstreamSettings& upstream) {
    const auto text = reader.string(table, "ca-fingerprint", context);
    if (!text) {
        if (!table.contains("ca-fingerprint")) {
            reader.problem(table.source(), context,
                           "key 'ca-fingerprint' is required with backend = \"scep\": it pins "
                           "the upstream CA (e.g. \"sha256:3F2A...\", the fingerprint of its "
                           "root certificate)");
        }
        return;
    }
    const toml::node& node = *table.get("ca-fingerprint");
    const std::size_t colon = text->find(':');
    const auto digest = digestFromName(text->substr(0, colon == std::string::npos ? 0 : colon));
    if (!digest) {
        reader.keyProblem(node, context, "ca-fingerprint",
                          "must be DIGEST:HEX with DIGEST sha1, sha256, sha384 or sha512, e.g. "
                          "\"sha256:3F2A...\"");
        return;
    }
    try {
        upstream.pin = parseHex(text->substr(colon + 1));
    } catch (const std::exception& e) {
        reader.keyProblem(node, context, "ca-fingerprint", std::string("is not hex: ") + e.what());
        return;
    }
    if (upstream.pin.size() != digestLength(*digest)) {
        reader.keyProblem(node, context, "ca-fingerprint",
                          "has " + std::to_string(upstream.pin.size()) + " bytes but a " +
                              digestName(*digest) + " fingerprint has " +
                              std::to_string(digestLength(*digest)));
        upstream.pin.clear();
        return;
    }
    upstream.pin_digest = *digest;
}

void readUpstreamCa(Reader& reader, const toml::table& table, const std::string& base_dir,
                    UpstreamSettings& upstream) {
    const std::string context = "[ca]";
    if (const auto url = reader.string(table, "url", context)) {
        const UrlParse parsed = parseUrl(*url, [](const std::string& scheme) {
            return scheme == "http" ? std::string()
                                    : "must be http (SCEP protects its messages itself)";
        });
        if (!parsed.url) {
            reader.keyProblem(*table.get("url"), context, "url",
                              "must be the upstream's SCEP URL, e.g. "
                              "\"http://ca.example.nl/certsrv/mscep/mscep.dll\": " +
                                  parsed.problem);
        } else {
            upstream.url = *url;
        }
    } else if (!table.contains("url")) {
        reader.problem(table.source(), context,
                       "key 'url' is required with backend = \"scep\" (the upstream CA's SCEP "
                       "URL)");
    }
    readPin(reader, table, context, upstream);
    upstream.identity_cert =
        resolvePath(base_dir, reader.string(table, "identity-cert", context).value_or(""));
    upstream.identity_key =
        resolvePath(base_dir, reader.string(table, "identity-key", context).value_or(""));
    if (upstream.identity_cert.empty() != upstream.identity_key.empty()) {
        reader.problem(table.source(), context,
                       "keys 'identity-cert' and 'identity-key' go together: set both or "
                       "neither (neither: a self-signed identity is generated in state-dir)");
    }
    using std::chrono::hours;
    readDuration(reader, table, "poll-interval", context, upstream.poll_interval);
    readDuration(reader, table, "poll-timeout", context, upstream.poll_timeout,
                 {std::chrono::minutes(1), hours(24 * 90), "from 1m to 90d"});
    readDuration(reader, table, "timeout", context, upstream.timeout,
                 {std::chrono::milliseconds(100), std::chrono::minutes(5), "from 100ms to 5m"});
    if (upstream.poll_timeout < upstream.poll_interval) {
        reader.problem(table.source(), context,
                       "key 'poll-timeout' must not be shorter than 'poll-interval'");
    }
}

void readCa(Reader& reader, const toml::table& root, const std::string& base_dir, CaSettings& ca) {
    const toml::table* table = subTable(reader, root, "ca");
    if (!table) {
        return;
    }
    const std::string context = "[ca]";
    std::set<std::string_view> known = {"backend"};
    known.insert(localCaKeys().begin(), localCaKeys().end());
    known.insert(upstreamCaKeys().begin(), upstreamCaKeys().end());
    reader.rejectUnknownKeys(*table, known, context);
    if (const auto backend = reader.string(*table, "backend", context)) {
        if (*backend == "scep") {
            ca.backend = CaBackend::scep;
        } else if (*backend != "local") {
            reader.keyProblem(*table->get("backend"), context, "backend",
                              "must be \"local\" (the embedded CA) or \"scep\" (an upstream "
                              "SCEP CA); got \"" +
                                  *backend + "\"");
            return;
        }
    }
    if (ca.backend == CaBackend::scep) {
        refuseKeys(reader, *table, context, localCaKeys(),
                   "belongs to the embedded CA; with backend = \"scep\" the upstream CA decides "
                   "it");
        readUpstreamCa(reader, *table, base_dir, ca.upstream);
    } else {
        refuseKeys(reader, *table, context, upstreamCaKeys(),
                   "belongs to backend = \"scep\" (an upstream CA); this [ca] is the embedded "
                   "CA");
        readLocalCa(reader, *table, base_dir, ca);
    }
}

std::optional<Approval> readApproval(Reader& reader, const toml::table& table, std::string_view key,
                                     const std::string& context) {
    const auto value = reader.string(table, key, context);
    if (!value) {
        return std::nullopt;
    }
    for (const Approval approval : {Approval::automatic, Approval::manual}) {
        if (*value == approvalName(approval)) {
            return approval;
        }
    }
    reader.keyProblem(*table.get(key), context, key,
                      "must be \"auto\" or \"manual\" (got \"" + *value + "\")");
    return std::nullopt;
}

// Names compared with certificate fields: 1-64 printable ASCII characters,
// no leading or trailing space.
bool allNames(const std::vector<std::string>& names) {
    return std::all_of(names.begin(), names.end(), [](const std::string& name) {
        return !name.empty() && name.size() <= 64 && isPrintableAscii(name) &&
               name.front() != ' ' && name.back() != ' ';
    });
}

void readAuth(Reader& reader, const toml::table& root, const std::string& base_dir,
              AuthSettings& auth) {
    auth.manufacturer_roots = base_dir + "/manufacturer-roots.pem";
    const toml::table* table = subTable(reader, root, "auth");
    if (!table) {
        return;
    }
    const std::string context = "[auth]";
    reader.rejectUnknownKeys(
        *table,
        {"manufacturer-roots", "allow-expired-mic", "challenge", "approval", "approval-mic",
         "approval-challenge", "approval-renewal", "allow-des", "revoke-superseded", "mic-issuers",
         "mic-models", "challenge-attempts", "challenge-lockout", "ra-signers", "approval-ra"},
        context);
    if (const auto roots = reader.string(*table, "manufacturer-roots", context)) {
        if (roots->empty()) {
            reader.keyProblem(*table->get("manufacturer-roots"), context, "manufacturer-roots",
                              "must name a PEM bundle");
        } else {
            auth.manufacturer_roots = resolvePath(base_dir, *roots);
        }
    }
    auth.allow_expired_mic =
        reader.boolean(*table, "allow-expired-mic", context).value_or(auth.allow_expired_mic);
    auth.allow_des = reader.boolean(*table, "allow-des", context).value_or(auth.allow_des);
    auth.revoke_superseded =
        reader.boolean(*table, "revoke-superseded", context).value_or(auth.revoke_superseded);
    if (const auto issuers = reader.strings(*table, "mic-issuers", context)) {
        if (issuers->empty() || !allNames(*issuers)) {
            reader.keyProblem(*table->get("mic-issuers"), context, "mic-issuers",
                              "must be a non-empty array of CA common names (1-64 printable ASCII "
                              "characters each), e.g. [\"Cisco Manufacturing CA SHA2\"]");
        } else {
            auth.mic_issuers = *issuers;
        }
    }
    if (const auto models = reader.strings(*table, "mic-models", context)) {
        if (!allNames(*models)) {
            reader.keyProblem(*table->get("mic-models"), context, "mic-models",
                              "entries must be phone models of 1-64 printable ASCII characters, "
                              "e.g. \"CP-8865\"");
        } else {
            auth.mic_models = *models;
        }
    }
    if (const auto challenge = reader.string(*table, "challenge", context)) {
        if (!isPrintableAscii(*challenge) || challenge->size() > 255) {
            reader.keyProblem(*table->get("challenge"), context, "challenge",
                              "must be at most 255 printable ASCII characters");
        } else if (!challenge->empty() && challenge->size() < kMinChallenge) {
            reader.keyProblem(*table->get("challenge"), context, "challenge", kShortChallenge);
        } else {
            auth.challenge = *challenge;
        }
    }
    if (const auto all = readApproval(reader, *table, "approval", context)) {
        auth.approval_mic = auth.approval_challenge = auth.approval_renewal = *all;
    }
    auth.approval_mic =
        readApproval(reader, *table, "approval-mic", context).value_or(auth.approval_mic);
    auth.approval_challenge = readApproval(reader, *table, "approval-challenge", context)
                                  .value_or(auth.approval_challenge);
    auth.approval_renewal =
        readApproval(reader, *table, "approval-renewal", context).value_or(auth.approval_renewal);
    auth.approval_ra =
        readApproval(reader, *table, "approval-ra", context).value_or(auth.approval_ra);
    if (const auto signers = reader.string(*table, "ra-signers", context)) {
        if (signers->empty()) {
            reader.keyProblem(*table->get("ra-signers"), context, "ra-signers",
                              "must name a PEM bundle of the CAs that issue downstream RA "
                              "certificates");
        } else {
            auth.ra_signers = resolvePath(base_dir, *signers);
        }
    }
    if (const auto attempts = reader.integer(*table, "challenge-attempts", context, 1, 100)) {
        auth.challenge_attempts = static_cast<std::size_t>(*attempts);
    }
    readDuration(reader, *table, "challenge-lockout", context, auth.challenge_lockout);
}

void readAdmin(Reader& reader, const toml::table& root, const std::string& base_dir,
               AdminSettings& admin) {
    const toml::table* table = subTable(reader, root, "admin");
    if (!table) {
        return;
    }
    const std::string context = "[admin]";
    reader.rejectUnknownKeys(
        *table,
        withListenerKeys(
            {"listen", "cert", "key-file", "client-ca", "client-cert-roles", "notify-url"}, true),
        context);
    readListenerLimits(reader, *table, context, true, admin.http);
    if (const auto listen = reader.string(*table, "listen", context)) {
        if (listen->empty()) {
            admin.enabled = false;
        } else if (!parseListen(*listen, admin.listen_host, admin.listen_port)) {
            reader.keyProblem(*table->get("listen"), context, "listen",
                              "must be ADDRESS:PORT such as \"127.0.0.1:8443\", or \"\" to disable "
                              "the admin listener");
        }
    }
    admin.cert = resolvePath(base_dir, reader.string(*table, "cert", context).value_or(""));
    admin.key_file = resolvePath(base_dir, reader.string(*table, "key-file", context).value_or(""));
    if (admin.cert.empty() != admin.key_file.empty()) {
        reader.problem(table->source(), context,
                       "keys 'cert' and 'key-file' go together: set both or neither");
    }
    admin.client_ca =
        resolvePath(base_dir, reader.string(*table, "client-ca", context).value_or(""));
    if (const toml::node* node = table->get("client-cert-roles")) {
        const toml::table* roles = node->as_table();
        if (!roles) {
            reader.keyProblem(*node, context, "client-cert-roles",
                              "must be a table of CN = \"viewer\" | \"approver\"");
        } else {
            for (auto&& [cn, role] : *roles) {
                const auto value = role.value<std::string>();
                if (!role.is_string() || (*value != "viewer" && *value != "approver")) {
                    reader.keyProblem(
                        role, context, "client-cert-roles",
                        "entry '" + std::string(cn.str()) + "' must be \"viewer\" or \"approver\"");
                } else {
                    admin.client_cert_roles[std::string(cn.str())] = *value;
                }
            }
            if (admin.client_ca.empty() && !admin.client_cert_roles.empty()) {
                reader.keyProblem(*node, context, "client-cert-roles",
                                  "needs 'client-ca' to say which certificates to trust");
            }
        }
    }
    if (const auto url = reader.string(*table, "notify-url", context)) {
        if (!parseUrl(*url, httpOrHttps).url) {
            reader.keyProblem(*table->get("notify-url"), context, "notify-url",
                              "must be an http:// or https:// URL");
        } else {
            admin.notify_url = *url;
        }
    }
}

}  // namespace

const char* caBackendName(CaBackend backend) {
    return backend == CaBackend::scep ? "scep" : "local";
}

const char* approvalName(Approval approval) {
    return approval == Approval::automatic ? "auto" : "manual";
}

Config parseConfig(std::string_view toml_text, const std::string& source) {
    Reader reader(source);
    const toml::table root = parseToml(reader, toml_text, source);
    Config config;
    config.path = source;
    const std::string base_dir = directoryOf(source);
    for (auto&& [key, node] : root) {
        static const std::set<std::string_view> known = {"profile", "ra", "ca", "auth", "admin"};
        if (known.count(key.str()) == 0) {
            reader.problem(key.source(), "top level",
                           "unknown table or key '" + std::string(key.str()) +
                               "' (known: [[profile]], [ra], [ca], [auth], [admin])");
        }
    }
    readProfiles(reader, root, false, config.dhcp);
    readRa(reader, root, base_dir, config.ra);
    readCa(reader, root, base_dir, config.ca);
    readAuth(reader, root, base_dir, config.auth);
    readAdmin(reader, root, base_dir, config.admin);
    if (config.ca.backend == CaBackend::scep) {
        // One identity faces both ways: the phones' RA certificate is the
        // one the upstream CA sees.
        for (const char* key : {"cert", "key-file"}) {
            if (const toml::node* node = root.at_path(std::string("ra.") + key).node()) {
                reader.keyProblem(*node, "[ra]", key,
                                  "cannot be set with [ca] backend = \"scep\": the RA's "
                                  "certificate is then [ca] identity-cert (and identity-key)");
            }
        }
    }
    reader.throwIfFailed();
    return config;
}

Config loadConfig(const std::string& path) {
    return parseConfig(readFile(path), path);
}

}  // namespace scep
