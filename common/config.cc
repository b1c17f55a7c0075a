#include "common/config.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "common/config_reader.h"
#include "common/text.h"
#include "common/url.h"

namespace scep {

namespace {

// Phones do not support https.
std::string phoneScheme(const std::string& scheme) {
    if (scheme == "https") {
        return "https is not supported by the phones; use an http:// URL";
    }
    if (scheme != "http") {
        return "scheme '" + scheme + "' is not supported; use an http:// URL";
    }
    return {};
}

// Why `server` is unusable for a phone, or empty when it is fine. Phones take
// "a URL or IP address".
std::string serverProblem(const std::string& server) {
    const UrlParse parsed = parseUrl(server, phoneScheme);
    if (!parsed.missing_scheme) {
        return parsed.problem;
    }
    if (isIpAddress(server)) {
        return {};
    }
    return "must be an http:// URL or a bare IP address (write a host name as http://" + server +
           ")";
}

const std::set<std::string_view> kProfileKeys = {
    "name",      "vendor-class", "server", "fingerprint", "ca-cert", "fingerprint-digest",
    "challenge", "fips",         "dot1x",  "cert-select", "domain",  "conflicts",
};

// Phones build their certificate CN as "<MIC CN>.<domain>"; MIC CNs of the
// supported models are 23 characters (CP-8875-SEP001A2B3C4D5E) and X.509
// caps a CN at 64, which leaves 40 for the domain.
constexpr std::size_t kMicCommonNameLength = 23;
constexpr std::size_t kMaxCommonNameLength = 64;
constexpr std::size_t kMaxDomainLength = kMaxCommonNameLength - kMicCommonNameLength - 1;

// `read_ca_cert` is false for the RA: the certificate is usually the one the
// RA itself creates on first start, and the RA needs only the profile's
// domain. A placeholder of the digest's length keeps the size rules checked.
void readFingerprint(Reader& reader, const toml::table& table, const std::string& context,
                     const std::string& base_dir, bool read_ca_cert, Profile& profile) {
    const auto text = reader.string(table, "fingerprint", context);
    const auto ca_cert = reader.string(table, "ca-cert", context);
    const auto digest_name = reader.string(table, "fingerprint-digest", context);
    const bool has_text = table.contains("fingerprint"), has_cert = table.contains("ca-cert");

    std::optional<Digest> digest;
    if (digest_name) {
        digest = digestFromName(*digest_name);
        if (!digest) {
            reader.keyProblem(
                *table.get("fingerprint-digest"), context, "fingerprint-digest",
                "must be one of sha1, sha256, sha384, sha512 (got '" + *digest_name + "')");
        }
    }
    if (has_text == has_cert) {
        reader.problem(table.source(), context,
                       "exactly one of 'fingerprint' or 'ca-cert' must be set (sub-option 12 is "
                       "mandatory)");
        return;
    }
    if (text) {
        const toml::node& node = *table.get("fingerprint");
        try {
            profile.scep.fingerprint = parseHex(*text);
        } catch (const std::invalid_argument& e) {
            reader.keyProblem(node, context, "fingerprint", std::string("is not hex: ") + e.what());
            return;
        }
        const auto length = profile.scep.fingerprint.size();
        const auto implied = digestForLength(length);
        if (!implied) {
            reader.keyProblem(node, context, "fingerprint",
                              "must decode to 20, 32, 48 or 64 bytes (SHA-1/256/384/512); got " +
                                  std::to_string(length));
        } else if (digest && *digest != *implied) {
            reader.keyProblem(node, context, "fingerprint",
                              "has " + std::to_string(length) +
                                  " bytes but fingerprint-digest is " + digestName(*digest) + " (" +
                                  std::to_string(digestLength(*digest)) + " bytes)");
        }
    } else if (ca_cert) {
        std::string path = *ca_cert;
        if (!path.empty() && path.front() != '/') {
            path = base_dir + "/" + path;
        }
        profile.ca_cert = path;
        if (!read_ca_cert) {
            profile.scep.fingerprint.assign(digestLength(digest.value_or(Digest::sha256)), 0);
            return;
        }
        try {
            const X509Ptr cert = loadCertificateFile(path);
            profile.scep.fingerprint =
                certificateFingerprint(*cert, digest.value_or(Digest::sha256));
        } catch (const std::exception& e) {
            reader.keyProblem(*table.get("ca-cert"), context, "ca-cert", e.what());
        }
    }
}

void readVendorClasses(Reader& reader, const toml::table& table, const std::string& context,
                       Profile& profile) {
    const toml::node* node = table.get("vendor-class");
    if (!node) {
        reader.problem(table.source(), context,
                       "key 'vendor-class' is required (option 60 values)");
        return;
    }
    const toml::array* list = node->as_array();
    if (!list || list->empty()) {
        reader.keyProblem(*node, context, "vendor-class",
                          "must be a non-empty array of strings, e.g. [\"CP-8875\"]");
        return;
    }
    for (const toml::node& item : *list) {
        const auto value = item.value<std::string>();
        if (!item.is_string() || !value || value->empty() || value->size() > 255) {
            reader.keyProblem(item, context, "vendor-class",
                              "entries must be non-empty strings of at most 255 bytes");
            continue;
        }
        if (value->back() == '\0') {
            reader.keyProblem(item, context, "vendor-class",
                              "entries must not end in a NUL byte: option 60's trailing NULs are "
                              "ignored, so such an entry would never match");
            continue;
        }
        profile.vendor_classes.push_back(*value);
    }
}

// The profile's name, and the context its messages carry: [[profile]] "name",
// or [[profile]] #N while the name is missing or unusable.
std::string readProfileName(Reader& reader, const toml::table& table, std::size_t ordinal,
                            Profile& profile) {
    std::string context = "[[profile]] #" + std::to_string(ordinal);
    if (const auto name = reader.string(table, "name", context)) {
        const bool safe = !name->empty() && name->size() <= 64 &&
                          std::all_of(name->begin(), name->end(), [](unsigned char c) {
                              return std::isalnum(c) || c == '-' || c == '_' || c == '.';
                          });
        if (safe) {
            profile.name = *name;
            context = "[[profile]] \"" + *name + "\"";
        } else {
            reader.keyProblem(*table.get("name"), context, "name",
                              "must be 1-64 characters of letters, digits, '-', '_' or '.' "
                              "(it names statistics)");
        }
    } else if (!table.contains("name")) {
        reader.problem(table.source(), context, "key 'name' is required");
    }
    return context;
}

// Option 43 encoded once, at load, within the phones' size limits.
void encodeProfile(Reader& reader, const toml::table& table, const std::string& context,
                   Profile& profile) {
    if (profile.scep.server.empty() || profile.scep.fingerprint.empty()) {
        return;  // already reported; the size rules below need both
    }
    const std::size_t secret = profile.scep.challenge ? profile.scep.challenge->size() : 0;
    if (profile.scep.server.size() + secret >= kServerChallengeLimit) {
        reader.problem(table.source(), context,
                       "keys 'server' + 'challenge' are " +
                           std::to_string(profile.scep.server.size()) + " + " +
                           std::to_string(secret) + " bytes; the phones need the sum below 208");
        return;
    }
    try {
        profile.option43 = encodeOption43(profile.scep);
    } catch (const std::length_error& e) {
        reader.problem(table.source(), context,
                       std::string(e.what()) +
                           " (Kea would split it per RFC 3396 and "
                           "phones do not reassemble that)");
    }
}

void readProfile(Reader& reader, const toml::table& table, std::size_t ordinal,
                 const std::string& base_dir, bool read_ca_cert, Profile& profile) {
    profile.line = table.source().begin.line;
    const std::string context = readProfileName(reader, table, ordinal, profile);
    reader.rejectUnknownKeys(table, kProfileKeys, context);
    readVendorClasses(reader, table, context, profile);

    if (const auto server = reader.string(table, "server", context)) {
        const std::string why = serverProblem(*server);
        if (why.empty()) {
            profile.scep.server = *server;
        } else {
            reader.keyProblem(*table.get("server"), context, "server", why);
        }
    } else if (!table.contains("server")) {
        reader.problem(table.source(), context, "key 'server' is required (sub-option 11)");
    }

    readFingerprint(reader, table, context, base_dir, read_ca_cert, profile);

    if (const auto challenge = reader.string(table, "challenge", context)) {
        if (!isPrintableAscii(*challenge)) {
            reader.keyProblem(*table.get("challenge"), context, "challenge",
                              "must be printable ASCII (phones show it in a text field)");
        } else if (!challenge->empty() && challenge->size() < kMinChallenge) {
            reader.keyProblem(*table.get("challenge"), context, "challenge", kShortChallenge);
        } else if (!challenge->empty()) {
            profile.scep.challenge = *challenge;
        }
    }
    profile.scep.fips = reader.boolean(table, "fips", context);
    profile.scep.dot1x = reader.boolean(table, "dot1x", context);

    if (const auto select = reader.string(table, "cert-select", context)) {
        if (*select == "manufacturing") {
            profile.scep.cert_select = CertSelect::manufacturing;
        } else if (*select == "custom") {
            profile.scep.cert_select = CertSelect::custom;
        } else {
            reader.keyProblem(*table.get("cert-select"), context, "cert-select",
                              "must be \"manufacturing\" or \"custom\" (got \"" + *select + "\")");
        }
    }

    if (const auto domain = reader.string(table, "domain", context)) {
        if (!isValidDnsName(*domain)) {
            reader.keyProblem(*table.get("domain"), context, "domain",
                              "must be a DNS name: dot-separated labels of 1-63 letters, digits "
                              "or '-', at most 253 characters (255 bytes on the wire)");
        } else if (domain->size() > kMaxDomainLength) {
            reader.keyProblem(*table.get("domain"), context, "domain",
                              "is " + std::to_string(domain->size()) +
                                  " characters; phones build their certificate CN as "
                                  "<MIC CN>.<domain> and a 23-character MIC CN leaves at most " +
                                  std::to_string(kMaxDomainLength) +
                                  " for the domain within X.509's 64-character CN limit");
        } else {
            profile.domain = *domain;
        }
    }

    if (const auto policy = reader.string(table, "conflicts", context)) {
        if (*policy == "warn") {
            profile.conflicts = ConflictPolicy::warn;
        } else if (*policy == "strip") {
            profile.conflicts = ConflictPolicy::strip;
        } else if (*policy == "skip") {
            profile.conflicts = ConflictPolicy::skip;
        } else {
            reader.keyProblem(*table.get("conflicts"), context, "conflicts",
                              "must be \"warn\", \"strip\" or \"skip\" (got \"" + *policy + "\")");
        }
    }

    encodeProfile(reader, table, context, profile);
}

std::string quoted(std::string_view text) {
    return "\"" + printable(text, 255) + "\"";
}

// Names a string two vendor-class patterns share. The only shared string can
// be "" solely when both patterns are all stars, i.e. match everything.
std::string overlapExample(const std::string& common) {
    if (common.empty()) {
        return "both match every vendor class";
    }
    return "both match " + quoted(common);
}

void indexProfiles(Reader& reader, DhcpConfig& config) {
    struct Seen {
        std::string pattern;
        std::size_t profile;
    };
    std::vector<Seen> seen;
    std::set<std::string> names;
    for (std::size_t i = 0; i < config.profiles.size(); ++i) {
        const Profile& profile = config.profiles[i];
        const std::string context = "[[profile]] \"" + profile.name + "\"";
        toml::source_region where;
        where.begin.line = static_cast<toml::source_index>(profile.line);
        if (!profile.name.empty() && !names.insert(profile.name).second) {
            reader.problem(where, context, "key 'name' duplicates another profile's name");
        }
        for (const auto& pattern : profile.vendor_classes) {
            for (const auto& other : seen) {
                if (other.profile == i) {
                    continue;
                }
                const auto common = commonVendorClass(pattern, other.pattern);
                if (common) {
                    reader.problem(where, context,
                                   "key 'vendor-class' entry " + quoted(pattern) + " and entry " +
                                       quoted(other.pattern) + " of profile \"" +
                                       config.profiles[other.profile].name + "\" " +
                                       overlapExample(*common) +
                                       "; a vendor class may belong to one profile only");
                }
            }
            seen.push_back({pattern, i});
            config.index.add(pattern, i);
        }
    }
}

}  // namespace

const char* conflictPolicyName(ConflictPolicy policy) {
    switch (policy) {
    case ConflictPolicy::warn:
        return "warn";
    case ConflictPolicy::strip:
        return "strip";
    case ConflictPolicy::skip:
        return "skip";
    }
    return "?";
}

ProfileMatch DhcpConfig::match(std::string_view vendor_class) const {
    const std::size_t found = index.find(trimVendorClass(vendor_class));
    if (found == VendorClassIndex::ambiguous) {
        return {nullptr, true};
    }
    return {found == VendorClassIndex::npos ? nullptr : &profiles[found], false};
}

void readProfiles(Reader& reader, const toml::table& root, bool for_hook, DhcpConfig& config) {
    config.path = reader.source();
    const toml::node* node = root.get("profile");
    if (!node) {
        if (for_hook) {
            reader.problem({}, "[[profile]]", "no profile defined; the hook needs at least one");
        }
        return;
    }
    const toml::array* list = node->as_array();
    if (!list || !list->is_array_of_tables()) {
        reader.problem(node->source(), "[[profile]]",
                       "'profile' must be an array of tables: write [[profile]], not [profile]");
        return;
    }
    const std::string base_dir = directoryOf(reader.source());
    std::size_t ordinal = 0;
    for (const toml::node& item : *list) {
        Profile profile;
        readProfile(reader, *item.as_table(), ++ordinal, base_dir, for_hook, profile);
        config.profiles.push_back(std::move(profile));
    }
    if (reader.ok()) {
        indexProfiles(reader, config);
    }
}

DhcpConfig parseDhcpConfig(std::string_view toml_text, const std::string& source) {
    Reader reader(source);
    const toml::table root = parseToml(reader, toml_text, source);
    DhcpConfig config;
    readProfiles(reader, root, true, config);
    reader.throwIfFailed();
    return config;
}

DhcpConfig loadDhcpConfig(const std::string& path) {
    return parseDhcpConfig(readFile(path), path);
}

}  // namespace scep
