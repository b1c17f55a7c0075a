#include "common/config.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include <toml++/toml.h>

#include "common/text.h"

namespace scep {

namespace {

std::string joinLines(const std::vector<std::string>& lines) {
    std::string out;
    for (const auto& line : lines) {
        if (!out.empty()) {
            out += '\n';
        }
        out += line;
    }
    return out;
}

std::string directoryOf(const std::string& path) {
    const auto slash = path.rfind('/');
    return slash == std::string::npos ? std::string(".") : path.substr(0, slash);
}

bool isPrintableAscii(std::string_view text) {
    return std::all_of(text.begin(), text.end(),
                       [](char c) { return c >= 0x20 && c <= 0x7e; });
}

bool isIpAddress(const std::string& text) {
    unsigned char buf[16];
    return inet_pton(AF_INET, text.c_str(), buf) == 1 || inet_pton(AF_INET6, text.c_str(), buf) == 1;
}

// Why `server` is unusable for a phone, or empty when it is fine. Phones take
// "a URL or IP address" and do not support https.
std::string serverProblem(const std::string& server) {
    if (server.empty()) {
        return "must not be empty";
    }
    if (!isPrintableAscii(server) || server.find(' ') != std::string::npos) {
        return "must be printable ASCII without spaces";
    }
    const auto scheme_end = server.find("://");
    if (scheme_end == std::string::npos) {
        if (isIpAddress(server)) {
            return {};
        }
        return "must be an http:// URL or a bare IP address (write a host name as http://" +
               server + ")";
    }
    std::string scheme = server.substr(0, scheme_end);
    std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    if (scheme == "https") {
        return "https is not supported by the phones; use an http:// URL";
    }
    if (scheme != "http") {
        return "scheme '" + scheme + "' is not supported; use an http:// URL";
    }
    const std::string rest = server.substr(scheme_end + 3);
    const std::string authority = rest.substr(0, rest.find_first_of("/?#"));
    if (authority.find('@') != std::string::npos) {
        return "must not carry user information ('@') in the URL";
    }
    std::string host = authority;
    std::string port;
    if (!host.empty() && host.front() == '[') {
        const auto close = host.find(']');
        if (close == std::string::npos) {
            return "IPv6 address in URL lacks ']'";
        }
        port = host.substr(close + 1);
        host = host.substr(1, close - 1);
        unsigned char buf[16];
        if (inet_pton(AF_INET6, host.c_str(), buf) != 1) {
            return "'" + host + "' is not an IPv6 address";
        }
    } else {
        const auto colon = host.find(':');
        if (colon != std::string::npos) {
            port = host.substr(colon);
            host.resize(colon);
        }
        if (host.empty()) {
            return "URL has no host";
        }
        if (!isIpAddress(host) && !isValidDnsName(host)) {
            return "'" + host + "' is neither an IP address nor a valid host name";
        }
    }
    if (!port.empty()) {
        const std::string digits = port.substr(1);
        if (port[0] != ':' || digits.empty() || digits.size() > 5 ||
            !std::all_of(digits.begin(), digits.end(),
                         [](unsigned char c) { return std::isdigit(c); }) ||
            std::stoul(digits) == 0 || std::stoul(digits) > 65535) {
            return "port '" + port + "' is not a number between 1 and 65535";
        }
    }
    return {};
}

// A shared secret that travels in DHCP broadcasts; the RA throttles wrong
// guesses, but a short one still falls fast. 8 is the floor, not a goal:
// the phone guide's example is 16 hex digits, and the option-43 space
// (server + challenge < 208 bytes) leaves room for far more.
constexpr std::size_t kMinChallenge = 8;
constexpr const char* kShortChallenge =
    "must be at least 8 characters (or \"\" for none); use a random one, e.g. "
    "`openssl rand -hex 8`";

// Collects problems instead of stopping at the first: an operator fixing a
// file wants every mistake in one go.
class Reader {
public:
    explicit Reader(std::string source) : source_(std::move(source)) {}

    void problem(const toml::source_region& where, const std::string& context,
                 const std::string& text) {
        std::ostringstream out;
        out << source_;
        if (where.begin.line > 0) {
            out << ':' << where.begin.line;
        }
        out << ": " << context << ": " << text;
        problems_.push_back(out.str());
    }

    void keyProblem(const toml::node& node, const std::string& context, std::string_view key,
                    const std::string& text) {
        problem(node.source(), context, "key '" + std::string(key) + "' " + text);
    }

    std::optional<std::string> string(const toml::table& table, std::string_view key,
                                      const std::string& context) {
        const toml::node* node = table.get(key);
        if (!node) {
            return std::nullopt;
        }
        if (!node->is_string()) {
            keyProblem(*node, context, key, "must be a string");
            return std::nullopt;
        }
        return node->value<std::string>();
    }

    std::optional<bool> boolean(const toml::table& table, std::string_view key,
                                const std::string& context) {
        const toml::node* node = table.get(key);
        if (!node) {
            return std::nullopt;
        }
        if (!node->is_boolean()) {
            keyProblem(*node, context, key, "must be a boolean (true or false, unquoted)");
            return std::nullopt;
        }
        return node->value<bool>();
    }

    std::optional<std::int64_t> integer(const toml::table& table, std::string_view key,
                                        const std::string& context, std::int64_t min,
                                        std::int64_t max) {
        const toml::node* node = table.get(key);
        if (!node) {
            return std::nullopt;
        }
        const auto value = node->value<std::int64_t>();
        if (!node->is_integer() || !value || *value < min || *value > max) {
            keyProblem(*node, context, key,
                       "must be a whole number from " + std::to_string(min) + " to " +
                           std::to_string(max));
            return std::nullopt;
        }
        return value;
    }

    std::optional<std::vector<std::string>> strings(const toml::table& table, std::string_view key,
                                                    const std::string& context) {
        const toml::node* node = table.get(key);
        if (!node) {
            return std::nullopt;
        }
        const toml::array* list = node->as_array();
        std::vector<std::string> out;
        bool ok = list != nullptr;
        for (std::size_t i = 0; ok && i < list->size(); ++i) {
            const auto value = (*list)[i].value<std::string>();
            ok = (*list)[i].is_string() && value;
            if (ok) {
                out.push_back(*value);
            }
        }
        if (!ok) {
            keyProblem(*node, context, key, "must be an array of strings");
            return std::nullopt;
        }
        return out;
    }

    void rejectUnknownKeys(const toml::table& table, const std::set<std::string_view>& allowed,
                           const std::string& context) {
        for (auto&& [key, node] : table) {
            if (allowed.count(key.str()) == 0) {
                std::string list;
                for (auto name : allowed) {
                    list += (list.empty() ? "" : ", ") + std::string(name);
                }
                problem(key.source(), context,
                        "unknown key '" + std::string(key.str()) + "' (known keys: " + list + ")");
            }
        }
    }

    const std::string& source() const { return source_; }
    bool ok() const { return problems_.empty(); }
    void throwIfFailed() const {
        if (!problems_.empty()) {
            throw ConfigError(problems_);
        }
    }

private:
    std::string source_;
    std::vector<std::string> problems_;
};

const std::set<std::string_view> kProfileKeys = {
    "name", "vendor-class", "server", "fingerprint", "ca-cert", "fingerprint-digest",
    "challenge", "fips", "dot1x", "cert-select", "domain", "conflicts",
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
            reader.keyProblem(*table.get("fingerprint-digest"), context, "fingerprint-digest",
                              "must be one of sha1, sha256, sha384, sha512 (got '" +
                                  *digest_name + "')");
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
                              "has " + std::to_string(length) + " bytes but fingerprint-digest is " +
                                  digestName(*digest) + " (" +
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
        reader.problem(table.source(), context, "key 'vendor-class' is required (option 60 values)");
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

void readProfile(Reader& reader, const toml::table& table, std::size_t ordinal,
                 const std::string& base_dir, bool read_ca_cert, Profile& profile) {
    profile.line = table.source().begin.line;
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
        reader.problem(table.source(), context, std::string(e.what()) +
                                                    " (Kea would split it per RFC 3396 and "
                                                    "phones do not reassemble that)");
    }
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

ConfigError::ConfigError(std::vector<std::string> problems)
    : std::runtime_error(joinLines(problems)), problems_(std::move(problems)) {}

const char* conflictPolicyName(ConflictPolicy policy) {
    switch (policy) {
    case ConflictPolicy::warn: return "warn";
    case ConflictPolicy::strip: return "strip";
    case ConflictPolicy::skip: return "skip";
    }
    return "?";
}

bool isValidDnsName(std::string_view name) {
    if (name.empty() || name.size() > 253) {
        return false;
    }
    std::size_t start = 0;
    while (start <= name.size()) {
        const std::size_t dot = std::min(name.find('.', start), name.size());
        const std::string_view label = name.substr(start, dot - start);
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
            return false;
        }
        for (unsigned char c : label) {
            if (!std::isalnum(c) && c != '-') {
                return false;
            }
        }
        start = dot + 1;
    }
    return true;
}

ProfileMatch DhcpConfig::match(std::string_view vendor_class) const {
    const std::size_t found = index.find(trimVendorClass(vendor_class));
    if (found == VendorClassIndex::ambiguous) {
        return {nullptr, true};
    }
    return {found == VendorClassIndex::npos ? nullptr : &profiles[found], false};
}

namespace {

toml::table parseToml(Reader& reader, std::string_view toml_text, const std::string& source) {
    try {
        return toml::parse(toml_text, source);
    } catch (const toml::parse_error& e) {
        reader.problem(e.source(), "TOML syntax", std::string(e.description()));
        reader.throwIfFailed();
    }
    return {};
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

std::string readFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw ConfigError({path + ": cannot read the file"});
    }
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

// Relative paths in the file are relative to the file's directory.
std::string resolvePath(const std::string& base_dir, const std::string& path) {
    return path.empty() || path.front() == '/' ? path : base_dir + "/" + path;
}

const toml::table* subTable(Reader& reader, const toml::table& root, std::string_view name) {
    const toml::node* node = root.get(name);
    if (!node) {
        return nullptr;
    }
    if (!node->is_table()) {
        reader.problem(node->source(), "[" + std::string(name) + "]",
                       "'" + std::string(name) + "' must be a table: write [" + std::string(name) +
                           "]");
        return nullptr;
    }
    return node->as_table();
}

// "64KiB", "2MiB", "65536" or an integer: a byte count.
std::optional<std::size_t> parseSize(const toml::node& node) {
    if (const auto value = node.value<std::int64_t>(); node.is_integer() && value && *value > 0) {
        return static_cast<std::size_t>(*value);
    }
    const auto text = node.value<std::string>();
    if (!node.is_string() || !text) {
        return std::nullopt;
    }
    std::size_t digits = 0;
    while (digits < text->size() && std::isdigit(static_cast<unsigned char>((*text)[digits]))) {
        ++digits;
    }
    if (digits == 0 || digits > 9) {
        return std::nullopt;
    }
    const std::size_t number = std::stoul(text->substr(0, digits));
    const std::string unit = text->substr(digits);
    const std::pair<const char*, std::size_t> units[] = {
        {"", 1}, {"B", 1}, {"KiB", 1024}, {"MiB", 1024 * 1024}, {"KB", 1000}, {"MB", 1000 * 1000}};
    for (const auto& [name, factor] : units) {
        if (unit == name) {
            return number * factor;
        }
    }
    return std::nullopt;
}

// "ADDRESS:PORT" or "[IPv6]:PORT" into host and port; false when malformed.
bool parseListen(const std::string& text, std::string& host, std::uint16_t& port) {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos) {
        return false;
    }
    std::string address = text.substr(0, colon);
    const std::string digits = text.substr(colon + 1);
    if (address.size() > 2 && address.front() == '[' && address.back() == ']') {
        address = address.substr(1, address.size() - 2);
    }
    const bool port_ok = !digits.empty() && digits.size() <= 5 &&
                         std::all_of(digits.begin(), digits.end(),
                                     [](unsigned char c) { return std::isdigit(c); }) &&
                         std::stoul(digits) >= 1 && std::stoul(digits) <= 65535;
    if (address.empty() || !port_ok || !(isIpAddress(address) || isValidDnsName(address))) {
        return false;
    }
    host = address;
    port = static_cast<std::uint16_t>(std::stoul(digits));
    return true;
}

// The keys of ListenerLimits, in [ra] and in [admin] (which adds the TLS one).
const std::vector<std::string_view> kListenerKeys = {
    "max-connections", "max-connections-per-address", "max-header-size", "max-header-fields",
    "idle-timeout", "header-timeout", "body-timeout", "write-timeout", "workers", "max-queue"};

std::set<std::string_view> withListenerKeys(std::set<std::string_view> keys, bool tls) {
    keys.insert(kListenerKeys.begin(), kListenerKeys.end());
    if (tls) {
        keys.insert("tls-handshake-timeout");
    }
    return keys;
}

void readDuration(Reader& reader, const toml::table& table, std::string_view key,
                  const std::string& context, std::chrono::milliseconds& target) {
    const toml::node* node = table.get(key);
    if (!node) {
        return;
    }
    const auto text = node->value<std::string>();
    const auto duration = node->is_string() && text ? parseDuration(*text) : std::nullopt;
    if (!duration || *duration < std::chrono::seconds(1) || *duration > std::chrono::hours(24)) {
        reader.keyProblem(*node, context, key,
                          "must be a duration from 1s to 24h such as \"10s\" or \"2m\"");
        return;
    }
    target = *duration;
}

void readListenerLimits(Reader& reader, const toml::table& table, const std::string& context,
                        bool tls, ListenerLimits& limits) {
    const auto count = [&](std::string_view key, std::int64_t max, std::size_t& target) {
        const auto value = reader.integer(table, key, context, 1, max);
        target = value ? static_cast<std::size_t>(*value) : target;
    };
    count("max-connections", 1000000, limits.max_connections);
    count("max-connections-per-address", 1000000, limits.max_connections_per_address);
    count("max-header-fields", 10000, limits.max_header_fields);
    count("workers", 256, limits.workers);
    count("max-queue", 100000, limits.max_queue);
    // Defaults agree, so one of the two keys of a clash is always set.
    const auto clash = [&](std::string_view small, std::string_view large,
                           const std::string& rule) {
        const std::string_view key = table.get(small) ? small : large;
        reader.keyProblem(*table.get(key), context, key, rule);
    };
    if (limits.max_connections_per_address > limits.max_connections) {
        clash("max-connections-per-address", "max-connections",
              "makes max-connections-per-address (" +
                  std::to_string(limits.max_connections_per_address) +
                  ") exceed max-connections (" + std::to_string(limits.max_connections) + ")");
    }
    if (const toml::node* node = table.get("max-header-size")) {
        const auto size = parseSize(*node);
        if (!size || *size < 1024 || *size > 16 * 1024 * 1024) {
            reader.keyProblem(*node, context, "max-header-size",
                              "must be a size from 1KiB to 16MiB, e.g. \"16KiB\"");
        } else {
            limits.max_header_size = *size;
        }
    }
    readDuration(reader, table, "idle-timeout", context, limits.idle_timeout);
    readDuration(reader, table, "header-timeout", context, limits.header_timeout);
    readDuration(reader, table, "body-timeout", context, limits.body_timeout);
    readDuration(reader, table, "write-timeout", context, limits.write_timeout);
    if (tls) {
        readDuration(reader, table, "tls-handshake-timeout", context, limits.tls_handshake_timeout);
    }
    if (limits.idle_timeout > limits.header_timeout) {
        clash("idle-timeout", "header-timeout",
              "makes idle-timeout exceed header-timeout (the whole header must arrive within "
              "header-timeout)");
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
                       "audit-failures-per-source (" + std::to_string(ra.audit_failures_per_source) +
                           ") must not exceed audit-failures-overall (" +
                           std::to_string(ra.audit_failures_overall) + ")");
    }
    if (const auto paths = reader.strings(*table, "paths", context)) {
        for (const auto& path : *paths) {
            if (path.size() < 2 || path.front() != '/' ||
                !std::all_of(path.begin(), path.end(), [](unsigned char c) {
                    return std::isalnum(c) || std::strchr("/-_.~", c) != nullptr;
                })) {
                reader.keyProblem(*table->get("paths"), context, "paths",
                                  "entries must be URL paths such as \"/certsrv/mscep/mscep.dll\"");
            } else {
                ra.paths.push_back(path);
            }
        }
    }
    ra.cert = resolvePath(base_dir, reader.string(*table, "cert", context).value_or(""));
    ra.key_file = resolvePath(base_dir, reader.string(*table, "key-file", context).value_or(""));
    if (ra.cert.empty() != ra.key_file.empty()) {
        reader.problem(table->source(), context,
                       "keys 'cert' and 'key-file' go together: set both or neither");
    }
}

bool isKeySpec(const std::string& spec) {
    return spec == "rsa:2048" || spec == "rsa:3072" || spec == "rsa:4096" || spec == "ec:p256" ||
           spec == "ec:p384";
}

void readCa(Reader& reader, const toml::table& root, const std::string& base_dir, CaSettings& ca) {
    const toml::table* table = subTable(reader, root, "ca");
    if (!table) {
        return;
    }
    const std::string context = "[ca]";
    reader.rejectUnknownKeys(*table,
                             {"backend", "validity-days", "key", "name", "cert", "key-file",
                              "organization", "organizational-unit", "country", "crl-days"},
                             context);
    if (const auto backend = reader.string(*table, "backend", context)) {
        if (*backend != "local") {
            reader.keyProblem(*table->get("backend"), context, "backend",
                              "must be \"local\" (the embedded CA; got \"" + *backend + "\")");
        }
    }
    ca.validity_days = static_cast<int>(
        reader.integer(*table, "validity-days", context, 1, 3650).value_or(ca.validity_days));
    ca.crl_days =
        static_cast<int>(reader.integer(*table, "crl-days", context, 1, 365).value_or(ca.crl_days));
    if (const auto key = reader.string(*table, "key", context)) {
        if (!isKeySpec(*key)) {
            reader.keyProblem(*table->get("key"), context, "key",
                              "must be \"rsa:2048\", \"rsa:3072\", \"rsa:4096\", \"ec:p256\" or "
                              "\"ec:p384\" (got \"" + *key + "\")");
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
        if (const auto value = reader.string(*table, key, context)) {
            const bool may_be_empty = std::string_view(key) != "name";  // empty: left out
            if (value->size() > 64 || !isPrintableAscii(*value) ||
                (value->empty() && !may_be_empty)) {
                reader.keyProblem(*table->get(key), context, key,
                                  "must be 1-64 printable ASCII characters");
            } else {
                *target = *value;
            }
        }
    }
    if (const auto country = reader.string(*table, "country", context)) {
        if (country->size() != 2 || !std::isupper(static_cast<unsigned char>((*country)[0])) ||
            !std::isupper(static_cast<unsigned char>((*country)[1]))) {
            reader.keyProblem(*table->get("country"), context, "country",
                              "must be a two-letter upper-case ISO 3166 code such as \"NL\"");
        } else {
            ca.country = *country;
        }
    }
    ca.cert = resolvePath(base_dir, reader.string(*table, "cert", context).value_or(""));
    ca.key_file = resolvePath(base_dir, reader.string(*table, "key-file", context).value_or(""));
    if (ca.cert.empty() != ca.key_file.empty()) {
        reader.problem(table->source(), context,
                       "keys 'cert' and 'key-file' go together: set both or neither");
    }
}

std::optional<Approval> readApproval(Reader& reader, const toml::table& table, std::string_view key,
                                     const std::string& context) {
    const auto value = reader.string(table, key, context);
    if (!value) {
        return std::nullopt;
    }
    if (*value == "auto") {
        return Approval::automatic;
    }
    if (*value == "manual") {
        return Approval::manual;
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
    reader.rejectUnknownKeys(*table,
                             {"manufacturer-roots", "allow-expired-mic", "challenge", "approval",
                              "approval-mic", "approval-challenge", "approval-renewal", "allow-des",
                              "revoke-superseded", "mic-issuers", "mic-models",
                              "challenge-attempts", "challenge-lockout"},
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
    auth.approval_mic = readApproval(reader, *table, "approval-mic", context).value_or(auth.approval_mic);
    auth.approval_challenge =
        readApproval(reader, *table, "approval-challenge", context).value_or(auth.approval_challenge);
    auth.approval_renewal =
        readApproval(reader, *table, "approval-renewal", context).value_or(auth.approval_renewal);
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
    reader.rejectUnknownKeys(*table,
                             withListenerKeys({"listen", "cert", "key-file", "client-ca",
                                               "client-cert-roles", "notify-url"},
                                              true),
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
    admin.client_ca = resolvePath(base_dir, reader.string(*table, "client-ca", context).value_or(""));
    if (const toml::node* node = table->get("client-cert-roles")) {
        const toml::table* roles = node->as_table();
        if (!roles) {
            reader.keyProblem(*node, context, "client-cert-roles",
                              "must be a table of CN = \"viewer\" | \"approver\"");
        } else {
            for (auto&& [cn, role] : *roles) {
                const auto value = role.value<std::string>();
                if (!role.is_string() || (*value != "viewer" && *value != "approver")) {
                    reader.keyProblem(role, context, "client-cert-roles",
                                      "entry '" + std::string(cn.str()) +
                                          "' must be \"viewer\" or \"approver\"");
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
        const bool http = url->rfind("http://", 0) == 0 || url->rfind("https://", 0) == 0;
        const std::string rest = http ? url->substr(url->find("://") + 3) : "";
        const std::string authority = rest.substr(0, rest.find('/'));
        std::string host;
        std::uint16_t port = 0;
        const bool ok = http && isPrintableAscii(*url) && url->find(' ') == std::string::npos &&
                        !authority.empty() &&
                        (parseListen(authority, host, port) || isIpAddress(authority) ||
                         isValidDnsName(authority));
        if (!ok) {
            reader.keyProblem(*table->get("notify-url"), context, "notify-url",
                              "must be an http:// or https:// URL");
        } else {
            admin.notify_url = *url;
        }
    }
}

}  // namespace

std::optional<std::chrono::milliseconds> parseDuration(std::string_view text) {
    std::size_t digits = 0;
    while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) {
        ++digits;
    }
    if (digits == 0 || digits > 9) {
        return std::nullopt;
    }
    const std::int64_t number = std::stoll(std::string(text.substr(0, digits)));
    const std::string_view unit = text.substr(digits);
    const std::pair<std::string_view, std::int64_t> units[] = {
        {"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 3600 * 1000}, {"d", 86400 * 1000}};
    for (const auto& [name, factor] : units) {
        if (unit == name) {
            const std::chrono::milliseconds value(number * factor);
            return value <= std::chrono::hours(24 * 366) ? std::optional(value) : std::nullopt;
        }
    }
    return std::nullopt;
}

const char* approvalName(Approval approval) {
    return approval == Approval::automatic ? "auto" : "manual";
}

DhcpConfig parseDhcpConfig(std::string_view toml_text, const std::string& source) {
    Reader reader(source);
    const toml::table root = parseToml(reader, toml_text, source);
    DhcpConfig config;
    readProfiles(reader, root, true, config);
    reader.throwIfFailed();
    return config;
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
    reader.throwIfFailed();
    return config;
}

Config loadConfig(const std::string& path) {
    return parseConfig(readFile(path), path);
}

DhcpConfig loadDhcpConfig(const std::string& path) {
    return parseDhcpConfig(readFile(path), path);
}

}  // namespace scep
