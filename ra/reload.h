// Reloading the configuration of a running `scep-ra serve` (SIGHUP). The new
// file is read and checked exactly as at start-up, then compared with the
// running configuration: keys tied to open sockets, state-dir, keys and
// certificates loaded at start need a restart, and any change to one of them
// refuses the reload as a whole. Otherwise the new RuntimeConfig is swapped in
// for new requests; requests being answered finish with the one they started
// with. Nothing here handles signals: main.cc calls reload() from its signal
// thread.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "ra/config.h"
#include "ra/ops/event_log.h"
#include "ra/runtime_config.h"
#include "ra/services.h"

namespace scep {

// One key whose value differs between two configurations.
struct KeyChange {
    std::string table;  // as in the file: "[ra]", "[[profile]]", "[admin.client-cert-roles]"
    std::string key;    // "listen"; "" for a whole table
    bool live = false;  // a reload applies it; otherwise it needs a restart
    // Both values, for restart-only keys only: a live key may be a secret
    // (the challenge), so its values are never carried.
    std::string running;
    std::string wanted;

    std::string name() const { return key.empty() ? table : table + " " + key; }
};

// Every key that differs, in the order of the README's tables.
std::vector<KeyChange> compareConfigs(const Config& running, const Config& next);

// The names of the keys a reload applies, and of those that need a restart.
std::vector<std::string> liveKeys();
std::vector<std::string> restartKeys();

struct ReloadPlan {
    std::shared_ptr<const RuntimeConfig> runtime;  // to swap in; null when refused
    // Why it is refused, each naming file, key and reason: config.cc's own
    // messages, a manufacturer-roots bundle that does not load, or a key
    // that needs a restart.
    std::vector<std::string> problems;
    std::vector<std::string> changed;  // live keys that change: "[auth] challenge"
};

// Reads `running.config.path` again and decides. Applies nothing.
ReloadPlan planReload(const RuntimeConfig& running, X509& ca_cert);

// Applies a plan to the service and records every attempt: one JSON log line
// (changed key names, or every problem), one audit event by `trigger`, and
// `on_outcome("success" | "failure")` for the metrics. Secrets never appear:
// only restart-only keys, none of them secret, are shown with values.
class ConfigReloader {
public:
    ConfigReloader(RaServices& service, EventLog& log,
                   std::function<void(const std::string&)> on_outcome = {});
    // True when the file's configuration is now in force.
    bool reload(const std::string& trigger);

private:
    RaServices& service_;
    EventLog& log_;
    std::function<void(const std::string&)> on_outcome_;
    std::mutex mutex_;  // one reload at a time
};

}  // namespace scep
