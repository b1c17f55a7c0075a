// `scep-ra serve`: start-up, the SCEP and admin listeners, SIGHUP reloads,
// the periodic CRL refresh and a clean stop on SIGINT/SIGTERM.
#include <signal.h>
#include <sys/resource.h>

#include <algorithm>
#include <condition_variable>
#include <ctime>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "ra/admin/api.h"
#include "ra/ca/upstream/poller.h"
#include "ra/ca/upstream/upstream_ca.h"
#include "ra/cli/commands.h"
#include "ra/http/server.h"
#include "ra/ops/audit_trail.h"
#include "ra/ops/audit_vocabulary.h"
#include "ra/ops/event_log.h"
#include "ra/ops/metrics.h"
#include "ra/ops/notifier.h"
#include "ra/reload.h"
#include "ra/scep/responder.h"
#include "ra/scep/routes.h"
#include "ra/store/state_dir.h"

namespace scep::cli {

namespace {

std::string endpoint(const std::string& host, std::uint16_t port) {
    return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
           std::to_string(port);
}

// SIGINT/SIGTERM/SIGHUP, blocked in every thread (call before starting any)
// and taken by SignalAndMaintenanceThreads' own thread with sigwait(): no
// work runs in a signal handler, and a SIGHUP during start-up waits instead
// of killing.
sigset_t blockServeSignals() {
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    return signals;
}

// Everything `serve` runs besides the listeners' own threads: the CRL kept
// fresh (and published to state-dir), a clean stop on SIGINT/SIGTERM and a
// configuration reload on SIGHUP.
class SignalAndMaintenanceThreads {
public:
    // `stop_actions` are known before the signal thread starts: a SIGTERM
    // that arrives during start-up still stops the listeners (a stop posted
    // before they start is run when they do).
    SignalAndMaintenanceThreads(RaServices& service, EventLog& log, sigset_t signals,
                                std::function<void()> reload,
                                std::vector<std::function<void()>> stop_actions)
        : service_(service),
          log_(log),
          reload_(std::move(reload)),
          stop_actions_(std::move(stop_actions)) {
        signals_ = std::thread([this, signals] { takeSignals(signals); });
        maintenance_ = std::thread([this] { maintain(); });
    }
    ~SignalAndMaintenanceThreads() {
        stop();
        maintenance_.join();
        // The signal thread may still be waiting: hand it the signal it
        // waits for (blocked everywhere else), so it ends and can be joined.
        pthread_kill(signals_.native_handle(), SIGTERM);
        signals_.join();
    }

private:
    void takeSignals(sigset_t signals) {
        for (;;) {
            int received = 0;
            if (sigwait(&signals, &received) != 0) {
                continue;
            }
            if (received != SIGHUP) {
                stop();
                return;
            }
            try {
                reload_();
            } catch (const std::exception& e) {
                log_.error("configuration reload failed", {{"error", e.what()}});
            }
        }
    }
    void stop() {
        {
            const std::lock_guard<std::mutex> lock(mutex_);
            if (stopping_) {
                return;
            }
            stopping_ = true;
        }
        wake_.notify_all();
        for (auto& action : stop_actions_) {
            action();
        }
    }
    // Every 30 s: revocations by other processes (the CLI) and the
    // approaching nextUpdate are picked up even when nobody asks for the CRL,
    // and the summaries of suppressed failures are written once their
    // minute is over (serve writes the rest when the listeners have stopped).
    void maintain() {
        std::unique_lock<std::mutex> lock(mutex_);
        while (!stopping_) {
            lock.unlock();
            try {
                service_.crlPublisher().crl();
            } catch (const std::exception& e) {
                log_.error("cannot refresh the CRL", {{"error", e.what()}});
            }
            try {
                service_.auditTrail().flush();
            } catch (const std::exception& e) {
                log_.error("cannot write audit summaries", {{"error", e.what()}});
            }
            lock.lock();
            wake_.wait_for(lock, std::chrono::seconds(30), [this] { return stopping_; });
        }
    }

    RaServices& service_;
    EventLog& log_;
    std::function<void()> reload_;
    const std::vector<std::function<void()>> stop_actions_;
    std::mutex mutex_;
    std::condition_variable wake_;
    bool stopping_ = false;
    std::thread signals_;
    std::thread maintenance_;
};

// Every connection the listeners may hold needs a file descriptor; the
// usual soft limit (1024) is below the default caps.
void raiseFileLimit(const Config& config, EventLog& log) {
    const rlim_t wanted = config.ra.http.max_connections +
                          (config.admin.enabled ? config.admin.http.max_connections : 0) + 256;
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= wanted) {
        return;
    }
    limit.rlim_cur = limit.rlim_max == RLIM_INFINITY ? wanted : std::min(wanted, limit.rlim_max);
    setrlimit(RLIMIT_NOFILE, &limit);
    if (limit.rlim_cur < wanted) {
        log.warn("the file descriptor limit is below what max-connections needs",
                 {{"limit", limit.rlim_cur}, {"needed", wanted}});
    }
}

// Each answered PKIOperation counts in the metrics; a pending request goes
// to the webhook, when one is configured.
void observe(RaServices& service, Metrics& metrics, std::unique_ptr<Notifier>& notifier) {
    service.responder().setObservers(
        {[&metrics](const MessageOutcome& outcome) {
             metrics.countScep("PKIOperation", outcome.message_type, outcome.outcome,
                               outcome.method);
             if (outcome.issued) {
                 metrics.observeIssuance(outcome.seconds);
             }
             if (!outcome.clash.empty()) {
                 metrics.countIdentityClash(outcome.clash);
             }
         },
         [&notifier](const RequestRecord& request) {
             if (notifier) {
                 notifier->notify(
                     {{"event", "request.pending"}, {"request", requestToJson(request)}});
             }
         }});
}

// The SCEP listener, bound; null (and logged) when the address is unusable.
std::unique_ptr<http::Server> listenScep(const Config& config, RaServices& service, EventLog& log,
                                         Metrics& metrics) {
    http::Router scep_routes;
    http::ServerHooks scep_hooks;
    ScepRoutes(service.responder(), service.crlPublisher(), service.auditTrail(), log, config.ra,
               metrics)
        .install(scep_routes, scep_hooks);
    http::ServerOptions scep_options;
    scep_options.name = "scep";
    scep_options.host = config.ra.listen_host;
    scep_options.port = config.ra.listen_port;
    scep_options.limits = config.ra.http;
    scep_options.max_body = config.ra.max_body;
    auto scep = std::make_unique<http::Server>(scep_options, std::move(scep_routes),
                                               std::move(scep_hooks), log);
    try {
        scep->listen();
    } catch (const std::exception& e) {
        log.error("cannot listen",
                  {{"listen", endpoint(config.ra.listen_host, config.ra.listen_port)},
                   {"error", e.what()}});
        return nullptr;
    }
    return scep;
}

// The admin API's HTTPS listener, bound; null (and logged) when the address
// is unusable. `api` must outlive it.
std::unique_ptr<http::Server> listenAdmin(const Config& config, AdminApi& api, EventLog& log) {
    http::Router admin_routes;
    http::ServerHooks admin_hooks;
    api.install(admin_routes, admin_hooks);
    http::ServerOptions admin_options;
    admin_options.name = "admin";
    admin_options.host = config.admin.listen_host;
    admin_options.port = config.admin.listen_port;
    admin_options.limits = config.admin.http;
    admin_options.max_body = 64 * 1024;  // API bodies are tiny; refuse floods unread
    admin_options.tls = [&api](SSL_CTX& ctx) { return api.configureTls(ctx); };
    try {
        auto admin = std::make_unique<http::Server>(admin_options, std::move(admin_routes),
                                                    std::move(admin_hooks), log);
        admin->listen();
        return admin;
    } catch (const std::exception& e) {
        const std::string where = endpoint(config.admin.listen_host, config.admin.listen_port);
        log.error("cannot listen", {{"admin_listen", where}, {"error", e.what()}});
        return nullptr;
    }
}

// backend = "scep": the upstream CA, asked (and pinned) before anything is
// served. One that cannot be reached is asked again with backoff, unless an
// earlier start kept its chain; a stop signal meanwhile ends serve. Null
// when serve should end (the reason is logged).
std::unique_ptr<UpstreamCa> startUpstream(const Config& config, const RaIdentity& identity,
                                          sigset_t signals, Store& store, EventLog& log) {
    auto upstream =
        std::make_unique<UpstreamCa>(config, identity, [] { return std::time(nullptr); });
    for (int attempt = 0;; ++attempt) {
        try {
            upstream->start();
            const UpstreamHealth health = upstream->health();
            if (!health.reachable) {
                log.warn(
                    "the upstream CA cannot be reached: serving with the chain kept from an "
                    "earlier start; requests wait for it",
                    {{"url", config.ca.upstream.url}, {"error", health.last_error}});
            }
            return upstream;
        } catch (const UpstreamPinMismatch& e) {
            AuditEvent refused;
            refused.actor = "serve";
            refused.action = auditActionName(AuditAction::upstream);
            refused.outcome = outcomeName(Outcome::failure);
            refused.identity = config.ca.upstream.url;
            refused.reason = std::string("the upstream CA is not the pinned one: ") + e.what();
            AuditTrail(store, log, [] { return std::time(nullptr); }).writeAlways(refused);
            log.error("refusing to use the upstream CA", {{"url", config.ca.upstream.url}});
            return nullptr;
        } catch (const UpstreamUnavailable& e) {
            const auto wait = UpstreamPoller::backoff(std::chrono::seconds(2), attempt);
            log.error(
                "the upstream CA cannot be reached and no chain of it is kept yet; "
                "asking again",
                {{"url", config.ca.upstream.url},
                 {"error", e.what()},
                 {"retry_in_ms", wait.count()}});
            timespec timeout{static_cast<time_t>(wait.count() / 1000),
                             static_cast<long>(wait.count() % 1000) * 1000000};
            int received = sigtimedwait(&signals, nullptr, &timeout);
            if (received == SIGINT || received == SIGTERM) {
                log.info("stopped before the upstream CA answered");
                return nullptr;
            }
        }
    }
}

std::unique_ptr<UpstreamPoller> startPoller(UpstreamCa& upstream, RaServices& service, Store& store,
                                            EventLog& log) {
    auto poller = std::make_unique<UpstreamPoller>(upstream, service.issuance(), store,
                                                   service.currentConfig(), log,
                                                   [] { return std::time(nullptr); });
    poller->start();
    return poller;
}

// CA and RA material (created on a first start) and the database's
// presence, under serve's lock on state-dir.
CaMaterial loadState(const Config& config, EventLog& log) {
    const bool first_start = isNewStateDir(config);
    CaMaterial state = bootstrapState(config, std::time(nullptr), Creation::first_start);
    if (!first_start) {
        requireDatabase(config);
    }
    for (const auto& file : state.created) {
        log.info("created", {{"file", file}});
    }
    return state;
}

}  // namespace

int serve(const Config& config) {
    const sigset_t signals = blockServeSignals();  // before any thread exists
    EventLog log;
    makeStateDir(config.ra.state_dir);
    const StateDirLock lock(config);
    CaMaterial state = loadState(config, log);
    const auto store = openSqliteStore(stateFile(config, kDatabaseFile));
    std::unique_ptr<UpstreamCa> upstream;
    if (config.ca.backend == CaBackend::scep) {
        upstream = startUpstream(config, state.ra, signals, *store, log);
        if (!upstream) {
            return 1;
        }
    }
    CertificateAuthority& issuing = upstream ? static_cast<CertificateAuthority&>(*upstream)
                                             : static_cast<CertificateAuthority&>(*state.ca);
    // Option 43 sub-option 12 pins the root phones must trust.
    printFingerprints(upstream ? upstream->root() : state.ca->certificate(), std::cout);
    std::cout.flush();
    RaServices service(config, state, issuing, *store, log);
    Metrics metrics;
    std::unique_ptr<Notifier> notifier;
    if (!config.admin.notify_url.empty()) {
        notifier = std::make_unique<Notifier>(config.admin.notify_url, log, metrics);
    }
    observe(service, metrics, notifier);

    const auto scep = listenScep(config, service, log, metrics);
    if (!scep) {
        return 1;
    }
    std::unique_ptr<AdminApi> api;
    std::unique_ptr<http::Server> admin;
    if (config.admin.enabled) {
        api = std::make_unique<AdminApi>(service, *store, log, metrics);
        admin = listenAdmin(config, *api, log);
        if (!admin) {
            return 1;
        }
    }
    raiseFileLimit(config, log);
    ConfigReloader reloader(service, log, [&metrics](const std::string& outcome) {
        metrics.countConfigReload(outcome);
    });
    std::vector<std::function<void()>> stop_listeners{[&scep] { scep->stop(); }};
    if (admin) {
        stop_listeners.emplace_back([&admin] { admin->stop(); });
    }
    SignalAndMaintenanceThreads threads(
        service, log, signals, [&reloader] { reloader.reload("SIGHUP"); },
        std::move(stop_listeners));
    // Requests a previous run left at the upstream CA are taken up at once.
    const auto poller = upstream ? startPoller(*upstream, service, *store, log) : nullptr;
    scep->start();
    if (admin) {
        admin->start();
    }
    log.info("listening",
             {{"listen", endpoint(config.ra.listen_host, config.ra.listen_port)},
              {"admin_listen",
               admin ? endpoint(config.admin.listen_host, config.admin.listen_port) : "off"},
              {"state_dir", config.ra.state_dir}});
    scep->wait();
    if (admin) {
        admin->wait();
    }
    if (poller) {
        poller->stop();
    }
    try {
        service.auditTrail().flush(true);  // what the last minutes suppressed
    } catch (const std::exception& e) {
        log.error("cannot write audit summaries", {{"error", e.what()}});
    }
    log.info("stopped");
    return 0;
}

}  // namespace scep::cli
