// The RA's own tables of the shared TOML file: [ra], [ca], [auth] and
// [admin], validated with the [[profile]] tables (common/config.h) into one
// Config. The hook never links this: it ignores these tables.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/config.h"

namespace scep {

enum class Approval { automatic, manual };
// "auto" or "manual", as written in [auth] (and shown by a reload).
const char* approvalName(Approval approval);

// "500ms", "10s", "2m", "1h", "7d": a whole number and a unit; nullopt
// when malformed or beyond a year.
std::optional<std::chrono::milliseconds> parseDuration(std::string_view text);

// What one HTTP listener lets its clients hold ([ra] and [admin] share the
// keys): idle or slow clients cost a little memory each, never a worker.
struct ListenerLimits {
    std::size_t max_connections = 1024;
    std::size_t max_connections_per_address = 32;
    std::size_t max_header_size = 16 * 1024;  // request line and header fields
    std::size_t max_header_fields = 100;
    std::chrono::milliseconds idle_timeout{std::chrono::seconds(5)};     // to a request's 1st byte
    std::chrono::milliseconds header_timeout{std::chrono::seconds(10)};  // to its whole header
    std::chrono::milliseconds body_timeout{std::chrono::seconds(30)};    // header to end of body
    std::chrono::milliseconds write_timeout{std::chrono::seconds(30)};   // one response
    std::chrono::milliseconds tls_handshake_timeout{std::chrono::seconds(10)};  // [admin] only
    std::size_t workers = 4;     // threads that run handlers
    std::size_t max_queue = 64;  // complete requests waiting for a worker; beyond: 503
};

// [ra]: the SCEP listener and where state lives.
struct RaSettings {
    std::string listen_host = "0.0.0.0";
    std::uint16_t listen_port = 8080;
    std::string state_dir = "/var/lib/scep-ra";
    std::size_t max_body = 64 * 1024;
    // Served besides /scep and /cgi-bin/pkiclient.exe.
    std::vector<std::string> paths;
    // Bring-your-own RA certificate and key; generated in state_dir when empty.
    std::string cert;
    std::string key_file;
    // max_header_size defaults to 8 KiB + 2 x max_body: room for a GET
    // PKIOperation whose message is as large as a POST body may be.
    ListenerLimits http;
    // Below this much free space in state-dir, enrollments get 503 and
    // /healthz fails, before SQLite runs out of disk mid-transaction.
    std::size_t min_free_space = 64 * 1024 * 1024;
    // Failures caused by clients, audited one by one per minute: per source
    // address (IPv6: /64) and for all sources together; the rest summarised.
    std::size_t audit_failures_per_source = 30;
    std::size_t audit_failures_overall = 300;
};

enum class CaBackend { local, scep };
const char* caBackendName(CaBackend backend);  // "local", "scep"

// [ca] with backend = "scep": the enterprise CA scep-ra forwards to.
struct UpstreamSettings {
    std::string url;                     // http:// SCEP endpoint
    Digest pin_digest = Digest::sha256;  // ca-fingerprint = "<digest>:<hex>"
    Bytes pin;                           // fingerprint of a CA certificate it serves
    // How scep-ra signs what it sends upstream, and the RA certificate its
    // own phones see; generated self-signed in state-dir when empty.
    std::string identity_cert;
    std::string identity_key;
    std::chrono::milliseconds poll_interval{std::chrono::seconds(30)};
    std::chrono::milliseconds poll_timeout{std::chrono::hours(24 * 7)};
    std::chrono::milliseconds timeout{std::chrono::seconds(10)};  // per HTTP exchange
};

// [ca]: the issuing CA.
struct CaSettings {
    CaBackend backend = CaBackend::local;
    UpstreamSettings upstream;  // backend = scep
    int validity_days = 365;
    std::string key = "rsa:2048";              // key type of a generated CA
    std::string name = "kea-scep-ra Root CA";  // CN of a generated CA
    // Bring-your-own CA certificate and key; generated in state_dir when empty.
    std::string cert;
    std::string key_file;
    // Added to every issued certificate's subject after the CN.
    std::string organization;
    std::string organizational_unit;
    std::string country;
    int crl_days = 7;  // nextUpdate of the CRL
};

// [auth]: who may enroll and how requests are decided.
struct AuthSettings {
    std::string manufacturer_roots;  // default: manufacturer-roots.pem beside the TOML
    bool allow_expired_mic = false;
    std::string challenge;  // empty disables challenge authentication
    Approval approval_mic = Approval::automatic;
    Approval approval_challenge = Approval::automatic;
    Approval approval_renewal = Approval::automatic;
    // CA certificates (PEM) whose holders are RAs sending requests on
    // behalf of devices (scep-ra as the CA of site RAs); empty: none.
    std::string ra_signers;
    Approval approval_ra = Approval::manual;
    bool allow_des = false;
    // A new certificate always supersedes the identity's current one; this
    // also revokes the superseded one (CRLReason superseded). Off: a phone
    // that never fetched its new certificate still needs the old one.
    bool revoke_superseded = false;
    // CNs of the CAs that issue phone MICs (the MIC's direct issuer in the
    // verified chain). Cisco's bundle also holds router/switch SUDI CAs.
    std::vector<std::string> mic_issuers = {"Cisco Manufacturing CA", "Cisco Manufacturing CA SHA2",
                                            "Cisco Manufacturing CA III"};
    // Phone models accepted besides those a [[profile]] vendor-class covers.
    std::vector<std::string> mic_models;
    // Wrong challenges tolerated per source address and per CN within
    // challenge_lockout; beyond, challenge requests are refused unchecked.
    std::size_t challenge_attempts = 5;
    std::chrono::milliseconds challenge_lockout{std::chrono::minutes(15)};
};

// [admin]: the HTTPS listener of the admin API and web console.
struct AdminSettings {
    bool enabled = true;  // listen = "" disables it
    std::string listen_host = "127.0.0.1";
    std::uint16_t listen_port = 8443;
    // TLS server certificate and key; issued by the embedded CA when empty.
    std::string cert;
    std::string key_file;
    // Client certificates chaining to this PEM bundle may log in, with the
    // role their CN is given in `client_cert_roles`.
    std::string client_ca;
    std::map<std::string, std::string> client_cert_roles;  // CN -> "viewer" | "approver"
    std::string notify_url;                                // webhook for new pending requests
    ListenerLimits http = [] {
        ListenerLimits limits;
        limits.workers = 2;
        limits.max_queue = 32;
        return limits;
    }();
};

// The whole file as the RA reads it: profiles are optional here (the RA uses
// their domains for CN checks), every table is validated and unknown tables
// are errors.
struct Config {
    std::string path;
    DhcpConfig dhcp;
    RaSettings ra;
    CaSettings ca;
    AuthSettings auth;
    AdminSettings admin;
};

Config parseConfig(std::string_view toml_text, const std::string& source);
Config loadConfig(const std::string& path);

}  // namespace scep
