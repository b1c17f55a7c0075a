// The RA's own tables ([ra], [ca], [auth], [admin]) as parseConfig reads
// them with the profiles; the profile rules themselves are in test_config.cc.
#include <doctest/doctest.h>

#include <algorithm>

#include "config_support.h"
#include "ra/config.h"
#include "support.h"

using namespace scep;
using testsupport::checkRaRefused;
using testsupport::raRefusal;

namespace {

const std::string kValid =
    "[[profile]]\nname = \"cisco-9800\"\n"
    "vendor-class = [\"DP-9841\", \"DP-9851\", \"DP-9861\", \"DP-9871\", \"CP-8875\"]\n" +
    testsupport::kSeedProfileBody;

}  // namespace

TEST_CASE("RA defaults apply without [ra], [ca] or [auth]; profiles are optional for the RA") {
    const Config config = parseConfig("", "/etc/kea-scep-ra/scep.toml");
    CHECK(config.dhcp.profiles.empty());
    CHECK(config.ra.listen_host == "0.0.0.0");
    CHECK(config.ra.listen_port == 8080);
    CHECK(config.ra.state_dir == "/var/lib/scep-ra");
    CHECK(config.ra.max_body == 64 * 1024);
    CHECK(config.ca.backend == CaBackend::local);
    CHECK(config.ca.validity_days == 365);
    CHECK(config.ca.key == "rsa:2048");
    CHECK(config.auth.manufacturer_roots == "/etc/kea-scep-ra/manufacturer-roots.pem");
    CHECK_FALSE(config.auth.allow_expired_mic);
    CHECK_FALSE(config.auth.allow_des);
    CHECK(config.auth.challenge.empty());
    CHECK(config.auth.approval_mic == Approval::automatic);
    CHECK_FALSE(config.auth.revoke_superseded);
    // Cisco's phone manufacturing CAs; not its router/switch SUDI CAs.
    CHECK(config.auth.mic_issuers == std::vector<std::string>{"Cisco Manufacturing CA",
                                                              "Cisco Manufacturing CA SHA2",
                                                              "Cisco Manufacturing CA III"});
    CHECK(config.auth.mic_models.empty());
}

TEST_CASE("[auth] identity keys: revoke-superseded, mic-issuers, mic-models") {
    const Config config = parseConfig(R"(
[auth]
revoke-superseded = true
mic-issuers = ["Test Manufacturing CA SHA2"]
mic-models = ["CP-8865", "DP-9841"]
)",
                                      "/etc/kea-scep-ra/scep.toml");
    CHECK(config.auth.revoke_superseded);
    CHECK(config.auth.mic_issuers == std::vector<std::string>{"Test Manufacturing CA SHA2"});
    CHECK(config.auth.mic_models == std::vector<std::string>{"CP-8865", "DP-9841"});
    checkRaRefused("[auth]\nrevoke-superseded = 1\n", "[auth]", "revoke-superseded",
                   "must be a boolean");
    checkRaRefused("[auth]\nmic-issuers = []\n", "[auth]", "mic-issuers", "non-empty array");
    checkRaRefused("[auth]\nmic-issuers = \"Cisco Manufacturing CA\"\n", "[auth]", "mic-issuers",
                   "array of strings");
    checkRaRefused("[auth]\nmic-issuers = [\" Cisco Manufacturing CA\"]\n", "[auth]", "mic-issuers",
                   "CA common names");
    checkRaRefused("[auth]\nmic-models = [\"\"]\n", "[auth]", "mic-models", "phone models");
    checkRaRefused("[auth]\nmic-models = [\"" + std::string(65, 'x') + "\"]\n", "[auth]",
                   "mic-models", "phone models");
}

TEST_CASE("the issue's example RA tables load") {
    const Config config = parseConfig(kValid + R"(
[ra]
listen = "127.0.0.1:8080"
state-dir = "state"
max-body = "64KiB"
paths = ["/certsrv/mscep/mscep.dll"]
[ca]
backend = "local"
validity-days = 730
key = "ec:p256"
organization = "Example"
country = "NL"
[auth]
manufacturer-roots = "roots/cisco.pem"
allow-expired-mic = true
challenge = "s3cret-challenge"
approval = "manual"
approval-renewal = "auto"
allow-des = true
)",
                                      "/etc/kea-scep-ra/scep.toml");
    CHECK(config.dhcp.profiles.size() == 1);
    CHECK(config.ra.listen_host == "127.0.0.1");
    CHECK(config.ra.state_dir == "/etc/kea-scep-ra/state");
    CHECK(config.ra.paths == std::vector<std::string>{"/certsrv/mscep/mscep.dll"});
    CHECK(config.ca.validity_days == 730);
    CHECK(config.ca.key == "ec:p256");
    CHECK(config.ca.organization == "Example");
    CHECK(config.auth.manufacturer_roots == "/etc/kea-scep-ra/roots/cisco.pem");
    CHECK(config.auth.allow_expired_mic);
    CHECK(config.auth.challenge == "s3cret-challenge");
    CHECK(config.auth.approval_mic == Approval::manual);
    CHECK(config.auth.approval_challenge == Approval::manual);
    CHECK(config.auth.approval_renewal == Approval::automatic);
    CHECK(config.auth.allow_des);
    const Config sizes = parseConfig("[ra]\nmax-body = 2097152\nlisten = \"[::]:80\"\n", "x.toml");
    CHECK(sizes.ra.max_body == 2 * 1024 * 1024);
    CHECK(sizes.ra.listen_host == "::");
}

TEST_CASE("every RA key is validated with file, table, key and rule") {
    checkRaRefused("[ra]\nlisten = \"8080\"\n", "[ra]", "listen", "ADDRESS:PORT");
    checkRaRefused("[ra]\nlisten = \"0.0.0.0:70000\"\n", "[ra]", "listen", "ADDRESS:PORT");
    checkRaRefused("[ra]\nmax-body = \"64 KiB\"\n", "[ra]", "max-body", "from 1KiB to 16MiB");
    checkRaRefused("[ra]\nmax-body = \"1GiB\"\n", "[ra]", "max-body", "from 1KiB to 16MiB");
    checkRaRefused("[ra]\nmax-body = 100\n", "[ra]", "max-body", "from 1KiB to 16MiB");
    checkRaRefused("[ra]\npaths = [\"scep\"]\n", "[ra]", "paths", "URL paths");
    checkRaRefused("[ra]\nstate-dir = \"\"\n", "[ra]", "state-dir", "must not be empty");
    checkRaRefused("[ra]\nlistn = \"x\"\n", "[ra]", "listn", "unknown key");
    checkRaRefused("[ra]\ncert = \"ra.pem\"\n", "[ra]", "key-file", "go together");
    checkRaRefused("[ca]\nbackend = \"upstream\"\n", "[ca]", "backend", "must be \"local\"");
    checkRaRefused("[ca]\nvalidity-days = 0\n", "[ca]", "validity-days", "from 1 to 3650");
    checkRaRefused("[ca]\nvalidity-days = \"365\"\n", "[ca]", "validity-days", "whole number");
    checkRaRefused("[ca]\nkey = \"rsa:1024\"\n", "[ca]", "key", "\"rsa:2048\"");
    checkRaRefused("[ca]\ncountry = \"nl\"\n", "[ca]", "country", "two-letter");
    checkRaRefused("[ca]\nname = \"\"\n", "[ca]", "name", "1-64 printable");
    checkRaRefused("[auth]\napproval = \"yes\"\n", "[auth]", "approval", "\"auto\" or \"manual\"");
    checkRaRefused("[auth]\napproval-mic = \"always\"\n", "[auth]", "approval-mic",
                   "\"auto\" or \"manual\"");
    checkRaRefused("[auth]\nallow-des = \"true\"\n", "[auth]", "allow-des", "must be a boolean");
    checkRaRefused("[auth]\nchallenge = \"a\\u0001b\"\n", "[auth]", "challenge", "printable ASCII");
    // The reported weakness: a one-character challenge was accepted.
    checkRaRefused("[auth]\nchallenge = \"x\"\n", "[auth]", "challenge", "at least 8 characters");
    checkRaRefused("[auth]\nmanufacturer-roots = \"\"\n", "[auth]", "manufacturer-roots",
                   "PEM bundle");
    checkRaRefused("[auth]\nchallange = \"x\"\n", "[auth]", "challange", "unknown key");
    checkRaRefused("ra = 1\n", "[ra]", "ra", "must be a table");
}

TEST_CASE("the RA owns every table: unknown ones are typos") {
    const std::string message = raRefusal("[ath]\nchallenge = \"x\"\n");
    CHECK(message.find("unknown table or key 'ath'") != std::string::npos);
    // ...while the hook ignores tables it does not own.
    CHECK_NOTHROW(parseDhcpConfig(kValid + "[ath]\nx = 1\n", "x.toml"));
}

TEST_CASE("the RA also validates profiles and never echoes a secret") {
    const std::string message = raRefusal(
        "[[profile]]\nname = \"p\"\nvendor-class = [\"A\"]\nserver = \"https://x\"\n"
        "fingerprint = \"" +
        std::string(40, 'a') + "\"\n[auth]\nchallenge = 42\n");
    CHECK(message.find("https is not supported") != std::string::npos);
    CHECK(message.find("'challenge' must be a string") != std::string::npos);
}

TEST_CASE("[admin]: listener, TLS files, client-certificate roles, webhook") {
    const Config defaults = parseConfig("", "/etc/kea-scep-ra/scep.toml");
    CHECK(defaults.admin.enabled);
    CHECK(defaults.admin.listen_host == "127.0.0.1");
    CHECK(defaults.admin.listen_port == 8443);
    const Config config = parseConfig(R"(
[admin]
listen = "[::1]:9443"
client-ca = "admins.pem"
notify-url = "https://hooks.example.nl:8443/scep?x=1"
[admin.client-cert-roles]
"alice" = "approver"
"Bob Viewer" = "viewer"
)",
                                      "/etc/kea-scep-ra/scep.toml");
    CHECK(config.admin.listen_host == "::1");
    CHECK(config.admin.listen_port == 9443);
    CHECK(config.admin.client_ca == "/etc/kea-scep-ra/admins.pem");
    CHECK(config.admin.client_cert_roles.at("alice") == "approver");
    CHECK(config.admin.client_cert_roles.at("Bob Viewer") == "viewer");
    CHECK(config.admin.notify_url == "https://hooks.example.nl:8443/scep?x=1");
    CHECK_FALSE(parseConfig("[admin]\nlisten = \"\"\n", "x.toml").admin.enabled);

    checkRaRefused("[admin]\nlisten = \"8443\"\n", "[admin]", "listen", "ADDRESS:PORT");
    checkRaRefused("[admin]\nnotify-url = \"ftp://x\"\n", "[admin]", "notify-url",
                   "http:// or https://");
    checkRaRefused("[admin]\ncert = \"a.pem\"\n", "[admin]", "key-file", "go together");
    checkRaRefused("[admin]\nclient-ca = \"a.pem\"\n[admin.client-cert-roles]\nalice = \"root\"\n",
                   "[admin]", "client-cert-roles", "\"viewer\" or \"approver\"");
    checkRaRefused("[admin.client-cert-roles]\nalice = \"viewer\"\n", "[admin]",
                   "client-cert-roles", "needs 'client-ca'");
    checkRaRefused("[admin]\nlistn = \"x\"\n", "[admin]", "listn", "unknown key");
}

TEST_CASE("abuse limits: disk floor, audit budgets and challenge throttling are validated") {
    const Config defaults = parseConfig("", "/etc/kea-scep-ra/scep.toml");
    CHECK(defaults.ra.min_free_space == 64u * 1024 * 1024);
    CHECK(defaults.ra.audit_failures_per_source == 30);
    CHECK(defaults.ra.audit_failures_overall == 300);
    CHECK(defaults.auth.challenge_attempts == 5);
    CHECK(defaults.auth.challenge_lockout == std::chrono::minutes(15));
    const Config set = parseConfig(
        "[ra]\nmin-free-space = \"1024MiB\"\naudit-failures-per-source = 10\n"
        "audit-failures-overall = 100\n[auth]\nchallenge-attempts = 3\nchallenge-lockout = "
        "\"1h\"\n",
        "/etc/kea-scep-ra/scep.toml");
    CHECK(set.ra.min_free_space == 1024u * 1024 * 1024);
    CHECK(set.ra.audit_failures_per_source == 10);
    CHECK(set.auth.challenge_attempts == 3);
    CHECK(set.auth.challenge_lockout == std::chrono::hours(1));
    checkRaRefused("[ra]\nmin-free-space = \"512KiB\"\n", "[ra]", "min-free-space",
                   "at least 1MiB");
    checkRaRefused("[ra]\naudit-failures-per-source = 0\n", "[ra]", "audit-failures-per-source",
                   "");
    const std::string clash = raRefusal("[ra]\naudit-failures-per-source = 500\n");
    CHECK(clash.find("must not exceed audit-failures-overall (300)") != std::string::npos);
    checkRaRefused("[auth]\nchallenge-attempts = 0\n", "[auth]", "challenge-attempts", "");
    checkRaRefused("[auth]\nchallenge-lockout = \"forever\"\n", "[auth]", "challenge-lockout",
                   "duration");
}

// One URL parser (common/url.h) now serves the listeners and notify-url as it
// serves a profile's server: IPv6 only in brackets, the scheme in any case.
TEST_CASE("listen and notify-url follow the profile server's URL rules") {
    const Config config = parseConfig(
        "[ra]\nlisten = \"[::1]:8080\"\n[admin]\nnotify-url = \"http://[::1]/hook\"\n", "x.toml");
    CHECK(config.ra.listen_host == "::1");
    CHECK(config.ra.listen_port == 8080);
    CHECK(config.admin.notify_url == "http://[::1]/hook");
    CHECK(parseConfig("[admin]\nnotify-url = \"HTTPS://h.example.nl/x\"\n", "x.toml")
              .admin.notify_url == "HTTPS://h.example.nl/x");

    // An IPv6 address without brackets is ambiguous with a port.
    checkRaRefused("[ra]\nlisten = \"::1:8080\"\n", "[ra]", "listen", "ADDRESS:PORT");
    checkRaRefused("[admin]\nlisten = \"::1:8443\"\n", "[admin]", "listen", "ADDRESS:PORT");
    checkRaRefused("[admin]\nnotify-url = \"http://::1/hook\"\n", "[admin]", "notify-url",
                   "http:// or https://");
    // Brackets hold an IPv6 address, nothing else.
    checkRaRefused("[ra]\nlisten = \"[localhost]:8080\"\n", "[ra]", "listen", "ADDRESS:PORT");
    checkRaRefused("[admin]\nnotify-url = \"http://u:p@h.example.nl/\"\n", "[admin]", "notify-url",
                   "http:// or https://");
    checkRaRefused("[admin]\nnotify-url = \"http://h.example.nl:0/\"\n", "[admin]", "notify-url",
                   "http:// or https://");
}

namespace {

const std::string kPin = "sha256:3F2A02030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F";
const std::string kUpstream =
    "[ca]\nbackend = \"scep\"\nurl = \"http://ca.example.nl/certsrv/"
    "mscep/mscep.dll\"\nca-fingerprint = \"" +
    kPin + "\"\n";

}  // namespace

TEST_CASE("[ca] backend = \"scep\": the upstream CA's keys, with their defaults") {
    Config config = parseConfig(kUpstream, "/etc/kea-scep-ra/scep.toml");
    CHECK(config.ca.backend == CaBackend::scep);
    CHECK(std::string(caBackendName(config.ca.backend)) == "scep");
    const UpstreamSettings& up = config.ca.upstream;
    CHECK(up.url == "http://ca.example.nl/certsrv/mscep/mscep.dll");
    CHECK(up.pin_digest == Digest::sha256);
    CHECK(toHex(up.pin) == "3F2A02030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F");
    CHECK(up.identity_cert.empty());
    CHECK(up.poll_interval == std::chrono::seconds(30));
    CHECK(up.poll_timeout == std::chrono::hours(24 * 7));
    CHECK(up.timeout == std::chrono::seconds(10));

    config =
        parseConfig(kUpstream +
                        "identity-cert = \"upstream-ra.pem\"\n"
                        "identity-key = \"/secure/upstream-ra.key\"\n"
                        "poll-interval = \"2s\"\npoll-timeout = \"30d\"\ntimeout = \"500ms\"\n",
                    "/etc/kea-scep-ra/scep.toml");
    CHECK(config.ca.upstream.identity_cert == "/etc/kea-scep-ra/upstream-ra.pem");
    CHECK(config.ca.upstream.identity_key == "/secure/upstream-ra.key");
    CHECK(config.ca.upstream.poll_interval == std::chrono::seconds(2));
    CHECK(config.ca.upstream.poll_timeout == std::chrono::hours(24 * 30));
    CHECK(config.ca.upstream.timeout == std::chrono::milliseconds(500));
    // Separators as admins paste fingerprints; another digest.
    config = parseConfig(
        "[ca]\nbackend = \"scep\"\nurl = \"http://[::1]:8080/scep\"\n"
        "ca-fingerprint = \"sha1:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:"
        "00:11:22:33\"\n",
        "/etc/kea-scep-ra/scep.toml");
    CHECK(config.ca.upstream.pin_digest == Digest::sha1);
    CHECK(config.ca.upstream.pin.size() == 20);
}

TEST_CASE("[ca] backend = \"scep\": every key validated; each backend refuses the other's") {
    checkRaRefused("[ca]\nbackend = \"scep\"\nca-fingerprint = \"" + kPin + "\"\n", "[ca]", "url",
                   "required with backend = \"scep\"");
    checkRaRefused("[ca]\nbackend = \"scep\"\nurl = \"http://ca/scep\"\n", "[ca]", "ca-fingerprint",
                   "required with backend = \"scep\"");
    checkRaRefused(kUpstream + "validity-days = 30\n", "[ca]", "validity-days",
                   "belongs to the embedded CA");
    checkRaRefused(kUpstream + "name = \"x\"\n", "[ca]", "name", "belongs to the embedded CA");
    checkRaRefused("[ca]\nurl = \"http://ca/scep\"\n", "[ca]", "url",
                   "belongs to backend = \"scep\"");
    checkRaRefused("[ca]\nbackend = \"local\"\npoll-interval = \"5s\"\n", "[ca]", "poll-interval",
                   "belongs to backend = \"scep\"");
    const std::string head = "[ca]\nbackend = \"scep\"\nurl = \"http://ca/scep\"\n";
    checkRaRefused(head + "ca-fingerprint = \"3F2A\"\n", "[ca]", "ca-fingerprint", "DIGEST:HEX");
    checkRaRefused(head + "ca-fingerprint = \"md5:00\"\n", "[ca]", "ca-fingerprint", "DIGEST:HEX");
    checkRaRefused(head + "ca-fingerprint = \"sha256:XYZ\"\n", "[ca]", "ca-fingerprint",
                   "is not hex");
    checkRaRefused(head + "ca-fingerprint = \"sha256:0011\"\n", "[ca]", "ca-fingerprint",
                   "has 2 bytes but a sha256 fingerprint has 32");
    const std::string pinned = head + "ca-fingerprint = \"" + kPin + "\"\n";
    checkRaRefused(
        "[ca]\nbackend = \"scep\"\nurl = \"ftp://ca/scep\"\nca-fingerprint = \"" + kPin + "\"\n",
        "[ca]", "url", "must be http");
    checkRaRefused(
        "[ca]\nbackend = \"scep\"\nurl = \"ca.example.nl\"\nca-fingerprint = \"" + kPin + "\"\n",
        "[ca]", "url", "SCEP URL");
    checkRaRefused(pinned + "identity-cert = \"ra.pem\"\n", "[ca]", "identity-key", "go together");
    checkRaRefused(pinned + "poll-interval = \"0s\"\n", "[ca]", "poll-interval", "from 1s to 24h");
    checkRaRefused(pinned + "poll-timeout = \"10s\"\n", "[ca]", "poll-timeout", "from 1m to 90d");
    checkRaRefused(pinned + "timeout = \"10m\"\n", "[ca]", "timeout", "from 100ms to 5m");
    checkRaRefused(pinned + "poll-interval = \"2h\"\npoll-timeout = \"1h\"\n", "[ca]",
                   "poll-timeout", "must not be shorter than 'poll-interval'");
    checkRaRefused("[ca]\nbackend = \"Scep\"\n", "[ca]", "backend", "or \"scep\"");
    checkRaRefused("[ra]\ncert = \"ra.pem\"\nkey-file = \"ra.key\"\n" + pinned, "[ra]", "cert",
                   "the RA's certificate is then [ca] identity-cert");
}

TEST_CASE("[auth] ra-signers and approval-ra") {
    Config config = parseConfig("", "/etc/kea-scep-ra/scep.toml");
    CHECK(config.auth.ra_signers.empty());
    CHECK(config.auth.approval_ra == Approval::manual);
    config = parseConfig("[auth]\nra-signers = \"downstream-ras.pem\"\napproval-ra = \"auto\"\n",
                         "/etc/kea-scep-ra/scep.toml");
    CHECK(config.auth.ra_signers == "/etc/kea-scep-ra/downstream-ras.pem");
    CHECK(config.auth.approval_ra == Approval::automatic);
    // "approval" sets the phones' methods; RAs are decided on their own.
    config = parseConfig("[auth]\napproval = \"auto\"\n", "/etc/kea-scep-ra/scep.toml");
    CHECK(config.auth.approval_ra == Approval::manual);
    checkRaRefused("[auth]\nra-signers = \"\"\n", "[auth]", "ra-signers", "PEM bundle");
    checkRaRefused("[auth]\napproval-ra = \"yes\"\n", "[auth]", "approval-ra",
                   "\"auto\" or \"manual\"");
}
