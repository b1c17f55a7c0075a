#include <doctest/doctest.h>

#include <algorithm>

#include "common/config.h"
#include "support.h"

using namespace scep;

namespace {

// A syntactically valid host name of exactly `length` characters.
std::string hostOfLength(std::size_t length) {
    std::string host;
    while (host.size() < length) {
        host += (host.size() % 50 == 49) ? '.' : 'a';
    }
    host.back() = 'z';
    return host;
}

const std::string kValid =
    "[[profile]]\nname = \"cisco-9800\"\n"
    "vendor-class = [\"DP-9841\", \"DP-9851\", \"DP-9861\", \"DP-9871\", \"CP-8875\"]\n" +
    testsupport::kSeedProfileBody;

// A minimal profile; `extra` lines are appended inside it.
std::string profile(const std::string& extra, const std::string& name = "p1",
                    const std::string& classes = "[\"CP-8875\"]") {
    std::string text = "[[profile]]\nname = \"" + name + "\"\nvendor-class = " + classes + "\n";
    if (extra.find("server") == std::string::npos) {
        text += "server = \"http://ra.example.nl\"\n";
    }
    if (extra.find("fingerprint") == std::string::npos &&
        extra.find("ca-cert") == std::string::npos) {
        text += "fingerprint = \"" + std::string(40, 'a') + "\"\n";
    }
    return text + extra + "\n";
}

// Parses `text` expecting refusal; returns the whole message.
std::string refusal(const std::string& text, const std::string& source = "/etc/scep.toml") {
    try {
        parseDhcpConfig(text, source);
    } catch (const ConfigError& e) {
        return e.what();
    }
    FAIL("configuration was accepted:\n" << text);
    return {};
}

// The message must name the file, the profile, the key and the rule.
void checkRefused(const std::string& text, const std::string& key, const std::string& rule,
                  const std::string& profile_name = "p1") {
    const std::string message = refusal(text);
    CAPTURE(message);
    CHECK(message.find("/etc/scep.toml:") != std::string::npos);
    const std::string label = profile_name[0] == '#' ? profile_name : "\"" + profile_name + "\"";
    CHECK(message.find("[[profile]] " + label) != std::string::npos);
    CHECK(message.find("'" + key + "'") != std::string::npos);
    CHECK(message.find(rule) != std::string::npos);
}

}  // namespace

TEST_CASE("the example profile loads and encodes the guide's bytes") {
    const DhcpConfig config = parseDhcpConfig(kValid, "scep.toml");
    REQUIRE(config.profiles.size() == 1);
    const Profile& p = config.profiles[0];
    CHECK(p.name == "cisco-9800");
    CHECK(p.option43.size() == 69);
    CHECK(p.domain == std::string("example.nl"));
    CHECK(p.conflicts == ConflictPolicy::warn);
    CHECK(config.match("CP-8875").profile == &p);
    CHECK(config.match("DP-9841").profile == &p);
    CHECK(config.match("CP-7821").profile == nullptr);
    CHECK_FALSE(config.match("CP-7821").ambiguous);
}

TEST_CASE("tables the hook does not own are ignored") {
    const DhcpConfig config = parseDhcpConfig(
        kValid + "\n[ra]\nlisten = \"0.0.0.0:8080\"\n[auth]\nchallenge = \"x\"\n", "scep.toml");
    CHECK(config.profiles.size() == 1);
}

TEST_CASE("server rules") {
    checkRefused(profile("", "p1").replace(profile("").find("server"), 0, "#"), "server",
                 "is required");
    checkRefused(profile("server = \"https://ra.example.nl\""), "server", "https is not supported");
    checkRefused(profile("server = \"HTTPS://ra.example.nl\""), "server", "https is not supported");
    checkRefused(profile("server = \"ftp://ra.example.nl\""), "server", "scheme 'ftp'");
    checkRefused(profile("server = \"ra.example.nl\""), "server", "bare IP address");
    checkRefused(profile("server = \"http://ra .nl\""), "server", "without spaces");
    checkRefused(profile("server = \"http://:80/x\""), "server", "no host");
    checkRefused(profile("server = \"http://bad_host!/\""), "server", "neither an IP");
    checkRefused(profile("server = \"http://ra:0\""), "server", "between 1 and 65535");
    checkRefused(profile("server = \"http://ra:99999\""), "server", "between 1 and 65535");
    checkRefused(profile("server = \"http://u:p@ra\""), "server", "user information");
    checkRefused(profile("server = \"\""), "server", "must not be empty");
    checkRefused(profile("server = 42"), "server", "must be a string");
    for (const char* ok :
         {"10.79.57.91", "2001:db8::1", "http://10.79.57.91", "http://[2001:db8::1]:8080/scep",
          "http://ra.example.nl:8080/cgi-bin/pkiclient.exe"}) {
        CAPTURE(ok);
        CHECK_NOTHROW(parseDhcpConfig(profile(std::string("server = \"") + ok + "\""), "x.toml"));
    }
}

TEST_CASE("fingerprint rules") {
    checkRefused(profile("fingerprint = \"" + std::string(38, 'a') + "\""), "fingerprint",
                 "must decode to 20, 32, 48 or 64 bytes");
    checkRefused(profile("fingerprint = \"zz" + std::string(38, 'a') + "\""), "fingerprint",
                 "is not hex");
    checkRefused(
        profile("fingerprint = \"" + std::string(64, 'a') + "\"\nfingerprint-digest = \"sha1\""),
        "fingerprint", "fingerprint-digest is sha1");
    checkRefused(profile("ca-cert = \"x.pem\"\nfingerprint-digest = \"md5\""), "fingerprint-digest",
                 "must be one of sha1, sha256");
    const std::string both =
        profile("ca-cert = \"ca.pem\"") + "fingerprint = \"" + std::string(40, 'a') + "\"\n";
    const std::string message = refusal(both);
    CHECK(message.find("exactly one of 'fingerprint' or 'ca-cert'") != std::string::npos);
    CHECK(refusal("[[profile]]\nname=\"p1\"\nvendor-class=[\"A\"]\nserver=\"10.0.0.1\"\n")
              .find("exactly one of 'fingerprint' or 'ca-cert'") != std::string::npos);
    // ':' and spaces as separators are fine.
    CHECK_NOTHROW(parseDhcpConfig(
        profile("fingerprint = \"12:04:08:70:62:5C:5B:75:5D:73:F5:92:52:85:F8:F5:FF:5D:55:AF\""),
        "x.toml"));
}

TEST_CASE("ca-cert is hashed with fingerprint-digest, relative to the config file") {
    testsupport::requireTool("openssl", "openssl");
    testsupport::TempDir dir;
    testsupport::run(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout '" +
        dir.file("ca.key") + "' -out '" + dir.file("ca.pem") +
        "' -days 30 -subj '/CN=Config Test CA'");
    const std::string config = dir.file("scep.toml");
    const auto cert = loadCertificateFile(dir.file("ca.pem"));

    const DhcpConfig sha256 = parseDhcpConfig(profile("ca-cert = \"ca.pem\""), config);
    CHECK(sha256.profiles[0].scep.fingerprint == certificateFingerprint(*cert, Digest::sha256));
    CHECK(sha256.profiles[0].ca_cert == dir.file("ca.pem"));

    const DhcpConfig sha1 =
        parseDhcpConfig(profile("ca-cert = \"ca.pem\"\nfingerprint-digest = \"sha1\""), config);
    CHECK(sha1.profiles[0].scep.fingerprint == certificateFingerprint(*cert, Digest::sha1));

    const std::string missing = refusal(profile("ca-cert = \"nope.pem\""), config);
    CHECK(missing.find("'ca-cert'") != std::string::npos);
    CHECK(missing.find("cannot open certificate file '" + dir.file("nope.pem") + "'") !=
          std::string::npos);
    dir.write("junk.pem", "hello");
    CHECK(refusal(profile("ca-cert = \"junk.pem\""), config).find("no PEM or DER") !=
          std::string::npos);
}

TEST_CASE("server plus challenge must stay below 208 bytes") {
    const std::string server = "http://" + hostOfLength(150);
    checkRefused(
        profile("server = \"" + server + "\"\nchallenge = \"" + std::string(51, 'c') + "\""),
        "challenge", "below 208");
    CHECK_NOTHROW(parseDhcpConfig(
        profile("server = \"" + server + "\"\nchallenge = \"" + std::string(50, 'c') + "\""),
        "x.toml"));
}

TEST_CASE("the whole option must fit in 255 bytes") {
    const std::string server = "http://" + hostOfLength(123);  // 130 bytes
    const std::string text =
        profile("server = \"" + server + "\"\nchallenge = \"" + std::string(50, 'c') +
                "\"\nfingerprint = \"" + std::string(128, 'b') +
                "\"\nfips = true\ndot1x = true\ncert-select = \"custom\"");
    const std::string message = refusal(text);
    CHECK(message.find("option 43 would be 259 bytes") != std::string::npos);
    CHECK(message.find("\"p1\"") != std::string::npos);
}

TEST_CASE("booleans, cert-select, challenge and conflicts have fixed vocabularies") {
    checkRefused(profile("fips = 1"), "fips", "must be a boolean");
    checkRefused(profile("dot1x = \"yes\""), "dot1x", "must be a boolean");
    checkRefused(profile("cert-select = \"mic\""), "cert-select",
                 "\"manufacturing\" or \"custom\"");
    checkRefused(profile("conflicts = \"ignore\""), "conflicts", "\"warn\", \"strip\" or \"skip\"");
    checkRefused(profile("challenge = \"tab\\there\""), "challenge", "printable ASCII");
    checkRefused(profile("challenge = \"1234567\""), "challenge", "at least 8 characters");
    CHECK(
        parseDhcpConfig(profile("challenge = \"12345678\""), "x.toml").profiles[0].scep.challenge);
    const DhcpConfig empty = parseDhcpConfig(profile("challenge = \"\""), "x.toml");
    CHECK_FALSE(empty.profiles[0].scep.challenge);
    const DhcpConfig skip = parseDhcpConfig(profile("conflicts = \"skip\""), "x.toml");
    CHECK(skip.profiles[0].conflicts == ConflictPolicy::skip);
}

TEST_CASE("domain must be a DNS name that still fits the phone's 64-character CN") {
    checkRefused(profile("domain = \"exa mple.nl\""), "domain", "must be a DNS name");
    checkRefused(profile("domain = \"-bad.nl\""), "domain", "must be a DNS name");
    checkRefused(profile("domain = \"a..nl\""), "domain", "must be a DNS name");
    checkRefused(profile("domain = \"" + std::string(64, 'a') + ".nl\""), "domain",
                 "must be a DNS name");
    std::string long_name;
    while (long_name.size() < 254) {
        long_name += "abcdefghi.";
    }
    long_name += "nl";
    checkRefused(profile("domain = \"" + long_name + "\""), "domain", "at most 253 characters");
    // 41 characters is a valid DNS name but the phone's CN would exceed 64.
    checkRefused(profile("domain = \"" + std::string(38, 'd') + ".nl\""), "domain",
                 "leaves at most 40");
    CHECK_NOTHROW(
        parseDhcpConfig(profile("domain = \"" + std::string(37, 'd') + ".nl\""), "x.toml"));
}

TEST_CASE("vendor-class must be a non-empty list of non-empty strings") {
    checkRefused(profile("", "p1", "[]"), "vendor-class", "non-empty array");
    checkRefused(profile("", "p1", "\"CP-8875\""), "vendor-class", "non-empty array");
    checkRefused(profile("", "p1", "[\"\"]"), "vendor-class", "non-empty strings");
    checkRefused(profile("", "p1", "[1]"), "vendor-class", "non-empty strings");
    checkRefused(profile("", "p1", "[\"CP-8875\\u0000\"]"), "vendor-class", "NUL byte");
    CHECK_NOTHROW(parseDhcpConfig(profile("", "p1", "[\"CP\\u0000-8875\"]"), "x.toml"));
    const std::string missing = refusal(
        "[[profile]]\nname = \"p1\"\nserver = \"10.0.0.1\"\n"
        "fingerprint = \"" +
        std::string(40, 'a') + "\"\n");
    CHECK(missing.find("key 'vendor-class' is required") != std::string::npos);
}

TEST_CASE("unknown keys inside a profile are errors") {
    checkRefused(profile("fingerprnt = \"x\""), "fingerprnt", "unknown key");
    checkRefused(profile("Domain = \"example.nl\""), "Domain", "unknown key");
}

TEST_CASE("one vendor class belongs to one profile only, wildcards included") {
    const std::string exact = profile("", "a") + profile("", "b", "[\"DP-9841\", \"CP-8875\"]");
    checkRefused(exact, "vendor-class",
                 "entry \"CP-8875\" and entry \"CP-8875\" of profile \"a\" both match \"CP-8875\"",
                 "b");
    const std::string wild = profile("", "a", "[\"*CP-8875*\"]") +
                             profile("", "b", "[\"Cisco Systems, Inc. IP Phone CP-8875\"]");
    checkRefused(wild, "vendor-class",
                 "of profile \"a\" both match \"Cisco Systems, Inc. IP Phone CP-8875\"", "b");
    checkRefused(profile("", "a", "[\"*8875*\"]") + profile("", "b", "[\"*CP-8875*\"]"),
                 "vendor-class", "both match \"CP-8875\"", "b");
}

TEST_CASE("wildcards of two profiles that can meet on any string are refused") {
    // The issue's case: "Cisco Systems, Inc. IP Phone CP-8875" matches both,
    // so that phone would get no option 43.
    const std::string message = refusal(profile("", "cp", "[\"DP-9841\", \"*CP-*\"]") +
                                        profile("", "m8875", "[\"*8875*\"]"));
    CAPTURE(message);
    CHECK(message.find("[[profile]] \"m8875\": key 'vendor-class' entry \"*8875*\" and entry "
                       "\"*CP-*\" of profile \"cp\" both match \"") != std::string::npos);
    CHECK((message.find("both match \"CP-8875\"") != std::string::npos ||
           message.find("both match \"8875CP-\"") != std::string::npos));
    // Infix wildcards for two models meet on both models side by side.
    checkRefused(profile("", "a", "[\"*CP-8875*\"]") + profile("", "b", "[\"*DP-98*\"]"),
                 "vendor-class", "of profile \"a\" both match \"", "b");
    checkRefused(profile("", "a", "[\"Cisco*\"]") + profile("", "b", "[\"*CP-8875\"]"),
                 "vendor-class", "both match \"CiscoCP-8875\"", "b");
    checkRefused(profile("", "a", "[\"*\"]") + profile("", "b", "[\"**\"]"), "vendor-class",
                 "both match every vendor class", "b");
    // Every overlapping pair is listed.
    const std::string many =
        refusal(profile("", "a", "[\"*A*\", \"*B*\"]") + profile("", "b", "[\"*C*\"]"));
    CHECK(many.find("\"*C*\" and entry \"*A*\"") != std::string::npos);
    CHECK(many.find("\"*C*\" and entry \"*B*\"") != std::string::npos);
}

TEST_CASE("per-model suffix wildcards load, and entries of one profile may overlap") {
    const DhcpConfig config =
        parseDhcpConfig(profile("", "a", "[\"*CP-8875\", \"CP-8875\", \"Cisco*CP-8875\"]") +
                            profile("", "b", "[\"*DP-9841\", \"*DP-9871\"]") +
                            profile("", "c", "[\"Polycom*VVX411\"]"),
                        "x.toml");
    CHECK(config.match("Cisco Systems, Inc. IP Phone CP-8875").profile == &config.profiles[0]);
    CHECK(config.match("CP-8875").profile == &config.profiles[0]);
    CHECK(config.match("Cisco Systems, Inc. IP Phone DP-9871").profile == &config.profiles[1]);
    CHECK(config.match("Polycom-VVX411").profile == &config.profiles[2]);
    CHECK_FALSE(config.match("Cisco Systems, Inc. IP Phone CP-7821").profile);
}

TEST_CASE("profile names are required, safe and unique") {
    const std::string unnamed =
        "[[profile]]\nvendor-class = [\"A\"]\nserver = \"10.0.0.1\"\n"
        "fingerprint = \"" +
        std::string(40, 'a') + "\"\n";
    const std::string message = refusal(unnamed);
    CHECK(message.find("[[profile]] #1") != std::string::npos);
    CHECK(message.find("key 'name' is required") != std::string::npos);
    checkRefused(profile("", "has space"), "name", "letters, digits", "#1");
    checkRefused(profile("", "dup") + profile("", "dup", "[\"DP-9841\"]"), "name",
                 "duplicates another profile", "dup");
}

TEST_CASE("file-level mistakes") {
    CHECK(refusal("[ra]\nlisten = \"x\"\n").find("no profile defined") != std::string::npos);
    CHECK(refusal("[profile]\nname = \"x\"\n").find("write [[profile]], not [profile]") !=
          std::string::npos);
    const std::string syntax = refusal("[[profile]]\nname = \"x\n");
    CHECK(syntax.find("/etc/scep.toml:2") != std::string::npos);
    CHECK(syntax.find("TOML syntax") != std::string::npos);
    CHECK_THROWS_WITH(loadDhcpConfig("/nonexistent/scep.toml"),
                      doctest::Contains("/nonexistent/scep.toml: cannot read the file"));
}

TEST_CASE("every problem in a file is reported at once, each with its line") {
    const std::string text = profile("fips = 1\ncert-select = \"x\"") +
                             profile("server = \"https://x\"", "p2", "[\"DP-9841\"]");
    try {
        parseDhcpConfig(text, "/etc/scep.toml");
        FAIL("accepted");
    } catch (const ConfigError& e) {
        CHECK(e.problems().size() == 3);
        for (const auto& problem : e.problems()) {
            CHECK(problem.rfind("/etc/scep.toml:", 0) == 0);
        }
    }
}

TEST_CASE("DNS name validator") {
    CHECK(isValidDnsName("example.nl"));
    CHECK(isValidDnsName("a"));
    CHECK(isValidDnsName("x-1.y-2.example"));
    CHECK_FALSE(isValidDnsName("example.nl."));
    CHECK_FALSE(isValidDnsName("ex_ample.nl"));
    CHECK_FALSE(isValidDnsName(""));
    CHECK_FALSE(isValidDnsName("a-.nl"));
}
