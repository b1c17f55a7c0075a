#include "ra/reload.h"
#include "ra/ops/audit_vocabulary.h"

#include <toml++/toml.h>

#include <sstream>
#include <utility>

namespace scep {

namespace {

// One key of the file, how to read its value from a Config (as text, only
// to compare and, for restart-only keys, to show), and whether a reload
// applies it.
struct KeyRule {
    std::string table;
    std::string key;
    bool live;
    std::function<std::string(const Config&)> value;
};

std::string joined(const std::vector<std::string>& items, const char* separator = ", ") {
    std::string out;
    for (const auto& item : items) {
        out += (out.empty() ? "" : separator) + item;
    }
    return out;
}

std::string boolText(bool value) {
    return value ? "true" : "false";
}

std::string milliseconds(std::chrono::milliseconds value) {
    return std::to_string(value.count()) + "ms";
}

std::string endpointText(const std::string& host, std::uint16_t port) {
    return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
           std::to_string(port);
}

// The RA uses the profiles' vendor classes and domains; the option 43 holds
// everything else a profile says (the challenge too: never shown).
std::string profilesText(const DhcpConfig& dhcp) {
    std::ostringstream out;
    for (const Profile& profile : dhcp.profiles) {
        out << profile.name << '|' << joined(profile.vendor_classes) << '|'
            << profile.domain.value_or("") << '|' << conflictPolicyName(profile.conflicts) << '|';
        for (const auto byte : profile.option43) {
            out << static_cast<int>(byte) << ',';
        }
        out << ';';
    }
    return out.str();
}

std::string rolesText(const std::map<std::string, std::string>& roles) {
    std::string out;
    for (const auto& [cn, role] : roles) {
        out += cn + "=" + role + ";";
    }
    return out;
}

using Read = std::function<std::string(const Config&)>;

KeyRule live(const char* table, const char* key, Read read) {
    return {table, key, true, std::move(read)};
}

KeyRule restart(const char* table, const char* key, Read read) {
    return {table, key, false, std::move(read)};
}

std::string number(std::size_t value) {
    return std::to_string(value);
}

using Limits = const ListenerLimits& (*)(const Config&);

// The listener keys [ra] and [admin] share: the server is built with them at
// start (threads, queues, admission), so they need a restart.
void addListenerRules(std::vector<KeyRule>& rules, const char* table, Limits limits, bool admin) {
    using L = const ListenerLimits&;
    const std::vector<std::pair<const char*, std::function<std::string(L)>>> keys = {
        {"max-connections", [](L l) { return number(l.max_connections); }},
        {"max-connections-per-address", [](L l) { return number(l.max_connections_per_address); }},
        {"max-header-size", [](L l) { return number(l.max_header_size); }},
        {"max-header-fields", [](L l) { return number(l.max_header_fields); }},
        {"idle-timeout", [](L l) { return milliseconds(l.idle_timeout); }},
        {"header-timeout", [](L l) { return milliseconds(l.header_timeout); }},
        {"body-timeout", [](L l) { return milliseconds(l.body_timeout); }},
        {"write-timeout", [](L l) { return milliseconds(l.write_timeout); }},
        {"workers", [](L l) { return number(l.workers); }},
        {"max-queue", [](L l) { return number(l.max_queue); }},
    };
    for (const auto& [key, read] : keys) {
        rules.push_back(restart(
            table, key, [limits, read = read](const Config& c) { return read(limits(c)); }));
    }
    if (admin) {
        rules.push_back(restart(table, "tls-handshake-timeout", [limits](const Config& c) {
            return milliseconds(limits(c).tls_handshake_timeout);
        }));
    }
}

const ListenerLimits& raLimits(const Config& c) {
    return c.ra.http;
}
const ListenerLimits& adminLimits(const Config& c) {
    return c.admin.http;
}

// [ca]: the CA's key and certificate are loaded (or generated) at start;
// what goes into each new certificate and CRL is read per issue. The
// upstream CA's client, identity and poller are built at start.
void addCaRules(std::vector<KeyRule>& r) {
    using C = const Config&;
    r.push_back(restart("[ca]", "backend", [](C c) { return caBackendName(c.ca.backend); }));
    r.push_back(restart("[ca]", "key", [](C c) { return c.ca.key; }));
    r.push_back(restart("[ca]", "name", [](C c) { return c.ca.name; }));
    r.push_back(restart("[ca]", "cert", [](C c) { return c.ca.cert; }));
    r.push_back(restart("[ca]", "key-file", [](C c) { return c.ca.key_file; }));
    r.push_back(live("[ca]", "validity-days", [](C c) { return number(c.ca.validity_days); }));
    r.push_back(live("[ca]", "organization", [](C c) { return c.ca.organization; }));
    r.push_back(live("[ca]", "organizational-unit", [](C c) { return c.ca.organizational_unit; }));
    r.push_back(live("[ca]", "country", [](C c) { return c.ca.country; }));
    r.push_back(live("[ca]", "crl-days", [](C c) { return number(c.ca.crl_days); }));
    r.push_back(restart("[ca]", "url", [](C c) { return c.ca.upstream.url; }));
    r.push_back(restart("[ca]", "ca-fingerprint", [](C c) {
        return std::string(digestName(c.ca.upstream.pin_digest)) + ":" + toHex(c.ca.upstream.pin);
    }));
    r.push_back(restart("[ca]", "identity-cert", [](C c) { return c.ca.upstream.identity_cert; }));
    r.push_back(restart("[ca]", "identity-key", [](C c) { return c.ca.upstream.identity_key; }));
    r.push_back(restart("[ca]", "poll-interval",
                        [](C c) { return milliseconds(c.ca.upstream.poll_interval); }));
    r.push_back(restart("[ca]", "poll-timeout",
                        [](C c) { return milliseconds(c.ca.upstream.poll_timeout); }));
    r.push_back(
        restart("[ca]", "timeout", [](C c) { return milliseconds(c.ca.upstream.timeout); }));
}

// Which keys reload live, and why the others cannot (README, "Reloading the
// configuration"). Live keys are read per request from the RuntimeConfig.
std::vector<KeyRule> makeKeyRules() {
    using C = const Config&;
    std::vector<KeyRule> r;
    // The RA uses the profiles' domains and vendor classes in its MIC rules.
    r.push_back(live("[[profile]]", "", [](C c) { return profilesText(c.dhcp); }));
    // [ra]: the socket, routes and server limits, and state-dir (locked,
    // holding the CA and database) are fixed at start.
    r.push_back(restart("[ra]", "listen",
                        [](C c) { return endpointText(c.ra.listen_host, c.ra.listen_port); }));
    r.push_back(restart("[ra]", "state-dir", [](C c) { return c.ra.state_dir; }));
    r.push_back(restart("[ra]", "max-body", [](C c) { return number(c.ra.max_body); }));
    r.push_back(restart("[ra]", "paths", [](C c) { return joined(c.ra.paths); }));
    r.push_back(restart("[ra]", "cert", [](C c) { return c.ra.cert; }));
    r.push_back(restart("[ra]", "key-file", [](C c) { return c.ra.key_file; }));
    addListenerRules(r, "[ra]", raLimits, false);
    r.push_back(live("[ra]", "min-free-space", [](C c) { return number(c.ra.min_free_space); }));
    r.push_back(live("[ra]", "audit-failures-per-source",
                     [](C c) { return number(c.ra.audit_failures_per_source); }));
    r.push_back(live("[ra]", "audit-failures-overall",
                     [](C c) { return number(c.ra.audit_failures_overall); }));
    addCaRules(r);
    // [auth]: all live (the bundle is read again on every reload), except
    // allow-des: OpenSSL's legacy provider is loaded before threads start.
    r.push_back(
        live("[auth]", "manufacturer-roots", [](C c) { return c.auth.manufacturer_roots; }));
    r.push_back(live("[auth]", "allow-expired-mic",
                     [](C c) { return boolText(c.auth.allow_expired_mic); }));
    r.push_back(live("[auth]", "challenge", [](C c) { return c.auth.challenge; }));
    r.push_back(
        live("[auth]", "approval-mic", [](C c) { return approvalName(c.auth.approval_mic); }));
    r.push_back(live("[auth]", "approval-challenge",
                     [](C c) { return approvalName(c.auth.approval_challenge); }));
    r.push_back(live("[auth]", "approval-renewal",
                     [](C c) { return approvalName(c.auth.approval_renewal); }));
    r.push_back(
        live("[auth]", "approval-ra", [](C c) { return approvalName(c.auth.approval_ra); }));
    r.push_back(live("[auth]", "ra-signers", [](C c) { return c.auth.ra_signers; }));
    r.push_back(restart("[auth]", "allow-des", [](C c) { return boolText(c.auth.allow_des); }));
    r.push_back(live("[auth]", "revoke-superseded",
                     [](C c) { return boolText(c.auth.revoke_superseded); }));
    r.push_back(live("[auth]", "mic-issuers", [](C c) { return joined(c.auth.mic_issuers); }));
    r.push_back(live("[auth]", "mic-models", [](C c) { return joined(c.auth.mic_models); }));
    r.push_back(live("[auth]", "challenge-attempts",
                     [](C c) { return number(c.auth.challenge_attempts); }));
    r.push_back(live("[auth]", "challenge-lockout",
                     [](C c) { return milliseconds(c.auth.challenge_lockout); }));
    // [admin]: the socket, the TLS context (identity, client CA) and the
    // webhook's sender are built at start; roles are read per request.
    r.push_back(restart("[admin]", "listen", [](C c) {
        return c.admin.enabled ? endpointText(c.admin.listen_host, c.admin.listen_port) : "";
    }));
    r.push_back(restart("[admin]", "cert", [](C c) { return c.admin.cert; }));
    r.push_back(restart("[admin]", "key-file", [](C c) { return c.admin.key_file; }));
    r.push_back(restart("[admin]", "client-ca", [](C c) { return c.admin.client_ca; }));
    r.push_back(restart("[admin]", "notify-url", [](C c) { return c.admin.notify_url; }));
    addListenerRules(r, "[admin]", adminLimits, true);
    r.push_back(live("[admin.client-cert-roles]", "",
                     [](C c) { return rolesText(c.admin.client_cert_roles); }));
    return r;
}

const std::vector<KeyRule>& keyRules() {
    static const std::vector<KeyRule> rules = makeKeyRules();
    return rules;
}

std::vector<std::string> keyNames(bool live) {
    std::vector<std::string> names;
    for (const KeyRule& rule : keyRules()) {
        if (rule.live == live) {
            names.push_back(rule.key.empty() ? rule.table : rule.table + " " + rule.key);
        }
    }
    return names;
}

// The line of table.key in the file, for messages like config.cc's; 0 when
// the key is absent (back to its default) or the file cannot be read again.
std::size_t lineOf(const std::string& path, const KeyChange& change) {
    try {
        const toml::table root = toml::parse_file(path);
        const std::string table = change.table.substr(1, change.table.size() - 2);
        const toml::node* node =
            change.key.empty() ? root[table].node() : root[table][change.key].node();
        return node ? node->source().begin.line : 0;
    } catch (const std::exception&) {
        return 0;
    }
}

std::string restartProblem(const std::string& path, const KeyChange& change) {
    std::ostringstream out;
    out << path;
    if (const std::size_t line = lineOf(path, change)) {
        out << ':' << line;
    }
    out << ": " << change.table << ": key '" << change.key << "' changed from '" << change.running
        << "' to '" << change.wanted << "': needs a restart";
    return out.str();
}

}  // namespace

std::vector<KeyChange> compareConfigs(const Config& running, const Config& next) {
    std::vector<KeyChange> changes;
    for (const KeyRule& rule : keyRules()) {
        std::string before = rule.value(running);
        std::string after = rule.value(next);
        if (before == after) {
            continue;
        }
        KeyChange change{rule.table, rule.key, rule.live, {}, {}};
        if (!rule.live) {
            change.running = std::move(before);
            change.wanted = std::move(after);
        }
        changes.push_back(std::move(change));
    }
    return changes;
}

std::vector<std::string> liveKeys() {
    return keyNames(true);
}
std::vector<std::string> restartKeys() {
    return keyNames(false);
}

ReloadPlan planReload(const RuntimeConfig& running, X509& ca_cert) {
    const std::string& path = running.config.path;
    ReloadPlan plan;
    Config next;
    try {
        next = loadConfig(path);
    } catch (const ConfigError& e) {
        plan.problems = e.problems();
        return plan;
    }
    for (const KeyChange& change : compareConfigs(running.config, next)) {
        if (change.live) {
            plan.changed.push_back(change.name());
        } else {
            plan.problems.push_back(restartProblem(path, change));
        }
    }
    if (!plan.problems.empty()) {
        plan.changed.clear();
        return plan;
    }
    try {
        plan.runtime = std::make_shared<const RuntimeConfig>(std::move(next), ca_cert);
    } catch (const std::exception& e) {
        // The bundles RuntimeConfig reads name their own key in `e`.
        plan.problems.push_back(path + ": [auth]: " + e.what());
        plan.changed.clear();
    }
    return plan;
}

ConfigReloader::ConfigReloader(RaServices& service, EventLog& log,
                               std::function<void(const std::string&)> on_outcome)
    : service_(service), log_(log), on_outcome_(std::move(on_outcome)) {}

bool ConfigReloader::reload(const std::string& trigger) {
    const std::lock_guard<std::mutex> lock(mutex_);
    const auto running = service_.runtime();
    const std::string& path = running->config.path;
    ReloadPlan plan;
    try {
        plan = planReload(*running, service_.authority().certificate());
    } catch (const std::exception& e) {
        plan.problems.push_back(path + ": " + e.what());
    }
    const bool ok = plan.runtime != nullptr;
    if (on_outcome_) {
        on_outcome_(ok ? "success" : "failure");
    }
    AuditEvent event;
    event.actor = trigger;
    event.action = auditActionName(AuditAction::config_reload);
    event.identity = path;
    if (ok) {
        const ManufacturerRoots& roots = plan.runtime->authenticator.manufacturerRoots();
        service_.setRuntime(plan.runtime);
        event.outcome = outcomeName(Outcome::success);
        event.reason = plan.changed.empty() ? "no key changed" : "changed: " + joined(plan.changed);
        log_.info("configuration reloaded",
                  {{"file", path},
                   {"trigger", trigger},
                   {"changed", plan.changed},
                   {"manufacturer_roots", plan.runtime->config.auth.manufacturer_roots},
                   {"manufacturer_anchors", roots.anchorCount()},
                   {"manufacturer_intermediates", roots.intermediateCount()}});
    } else {
        event.outcome = outcomeName(Outcome::failure);
        event.reason =
            "refused, the running configuration stays in force: " + joined(plan.problems, "; ");
        log_.error("configuration reload refused; the running configuration stays in force",
                   {{"file", path}, {"trigger", trigger}, {"problems", plan.problems}});
    }
    try {
        service_.auditTrail().writeAlways(event);  // last: its row means the reload is done
    } catch (const std::exception& e) {
        log_.error("cannot audit the configuration reload", {{"error", e.what()}});
    }
    return ok;
}

}  // namespace scep
