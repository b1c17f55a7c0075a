// scep-ra: the SCEP registration authority and its admin commands.
#include <pwd.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <ctime>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "common/config.h"
#include "common/fingerprint.h"
#include "ra/admin/api.h"
#include "ra/auth/authenticator.h"
#include "ra/crypto.h"
#include "ra/scep/responder.h"
#include "ra/ops/event_log.h"
#include "ra/http/server.h"
#include "ra/ca/local_ca.h"
#include "ra/ops/metrics.h"
#include "ra/ops/notifier.h"
#include "ra/reload.h"
#include "ra/scep/routes.h"
#include "ra/store/state_dir.h"
#include "ra/store/store.h"
#include "ra/admin/tokens.h"

namespace {

using namespace scep;

constexpr const char* kDefaultConfig = "/etc/kea-scep-ra/scep.toml";

const char* kUsage =
    "usage: scep-ra COMMAND [--config FILE] [options]\n"
    "\n"
    "  serve                          run the SCEP RA (creates CA and RA certificate on first start,\n"
    "                                 in an empty state-dir only)\n"
    "  init                           create deliberately what state-dir lacks: a new CA where none\n"
    "                                 is, or an empty database for an existing CA\n"
    "  backup DIR                     consistent online copy of database, keys and certificates\n"
    "  restore DIR                    put a backup back into state-dir (serve stopped); never\n"
    "                                 overwrites a key or a database\n"
    "  fingerprint [--digest D]       CA fingerprint for option 43 (sha1|sha256|sha384|sha512)\n"
    "  check-config                   validate the TOML file and exit\n"
    "  requests [--status S]          list requests (pending|issued|rejected)\n"
    "  approve ID                     issue the certificate of a pending request\n"
    "  reject ID --reason TEXT        reject a pending request\n"
    "  certs                          list issued certificates\n"
    "  revoke SERIAL [--reason R]     revoke (R: RFC 5280 reason name or number)\n"
    "  token create --name N --role R create an admin API token (viewer|approver); shown once\n"
    "  token list                     list admin API tokens (never their secrets)\n"
    "  token delete NAME              delete an admin API token\n"
    "\n"
    "  --config defaults to " "/etc/kea-scep-ra/scep.toml" "\n";

struct Arguments {
    std::string command;
    std::vector<std::string> positional;
    std::map<std::string, std::string> options;

    std::string option(const std::string& name, const std::string& fallback = "") const {
        const auto it = options.find(name);
        return it == options.end() ? fallback : it->second;
    }
};

Arguments parseArguments(int argc, char** argv) {
    Arguments args;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg.rfind("--", 0) == 0) {
            const auto equals = arg.find('=');
            if (equals != std::string::npos) {
                args.options[arg.substr(2, equals - 2)] = arg.substr(equals + 1);
            } else if (i + 1 < argc) {
                args.options[arg.substr(2)] = argv[++i];
            } else {
                throw std::invalid_argument("option " + arg + " needs a value");
            }
        } else if (args.command.empty()) {
            args.command = arg;
        } else {
            args.positional.push_back(arg);
        }
    }
    return args;
}

std::string utc(std::int64_t when) {
    const std::time_t t = static_cast<std::time_t>(when);
    struct tm parts {};
    gmtime_r(&t, &parts);
    char text[32];
    std::strftime(text, sizeof(text), "%Y-%m-%d %H:%M:%SZ", &parts);
    return text;
}

int reasonCode(const std::string& text) {
    static const std::map<std::string, int> names = {
        {"unspecified", 0}, {"keyCompromise", 1}, {"cACompromise", 2}, {"affiliationChanged", 3},
        {"superseded", 4}, {"cessationOfOperation", 5}, {"certificateHold", 6},
        {"removeFromCRL", 8}, {"privilegeWithdrawn", 9}, {"aACompromise", 10}};
    const auto it = names.find(text);
    if (it != names.end()) {
        return it->second;
    }
    if (!text.empty() && text.size() <= 2 && text.find_first_not_of("0123456789") == std::string::npos) {
        return std::stoi(text);
    }
    throw std::invalid_argument("unknown revocation reason '" + text + "'");
}

std::int64_t requestId(const Arguments& args) {
    if (args.positional.size() != 1) {
        throw std::invalid_argument(args.command + " needs exactly one request ID");
    }
    const std::string& text = args.positional[0];
    if (text.empty() || text.size() > 18 ||
        text.find_first_not_of("0123456789") != std::string::npos) {
        throw std::invalid_argument("request ID must be a number");
    }
    return std::stoll(text);
}

void printFingerprints(X509& ca, std::ostream& out) {
    out << "CA certificate: " << nameText(X509_get_subject_name(&ca)) << "\n"
        << "  SHA-1   fingerprint: " << toHex(certificateFingerprint(ca, Digest::sha1)) << "\n"
        << "  SHA-256 fingerprint: " << toHex(certificateFingerprint(ca, Digest::sha256)) << "\n";
}

std::string operatorName() {
    const char* user = std::getenv("SUDO_USER");
    if (!user) {
        const passwd* entry = getpwuid(geteuid());
        user = entry ? entry->pw_name : nullptr;
    }
    return std::string("cli:") + (user ? user : std::to_string(geteuid()).c_str());
}

std::string endpoint(const std::string& host, std::uint16_t port) {
    return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

// Everything `serve` runs besides the listeners' own threads: the CRL kept
// fresh (and published to state-dir), a clean stop on SIGINT/SIGTERM and a
// configuration reload on SIGHUP.
// SIGINT/SIGTERM/SIGHUP, blocked in every thread (call before starting any)
// and taken by Background's own thread with sigwait(): no work runs in a
// signal handler, and a SIGHUP during start-up waits instead of killing.
sigset_t blockServeSignals() {
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    return signals;
}

class Background {
public:
    // `stop_actions` are known before the signal thread starts: a SIGTERM
    // that arrives during start-up still stops the listeners (a stop posted
    // before they start is run when they do).
    Background(EnrollmentService& service, EventLog& log, sigset_t signals,
               std::function<void()> reload, std::vector<std::function<void()>> stop_actions)
        : service_(service),
          log_(log),
          reload_(std::move(reload)),
          stop_actions_(std::move(stop_actions)) {
        signals_ = std::thread([this, signals] { takeSignals(signals); });
        maintenance_ = std::thread([this] { maintain(); });
    }
    ~Background() {
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
                service_.crl();
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

    EnrollmentService& service_;
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

int serve(const Config& config) {
    const sigset_t signals = blockServeSignals();  // before any thread exists
    EventLog log;
    makeStateDir(config.ra.state_dir);
    const StateDirLock lock(config);
    const bool first_start = isNewStateDir(config);
    State state = bootstrapState(config, std::time(nullptr), Creation::first_start);
    if (!first_start) {
        requireDatabase(config);
    }
    for (const auto& file : state.created) {
        log.info("created", {{"file", file}});
    }
    printFingerprints(state.ca->certificate(), std::cout);
    std::cout.flush();
    const auto store = openSqliteStore(stateFile(config, kDatabaseFile));
    EnrollmentService service(config, state, *store, log);
    Metrics metrics;
    std::unique_ptr<Notifier> notifier;
    if (!config.admin.notify_url.empty()) {
        notifier = std::make_unique<Notifier>(config.admin.notify_url, log, metrics);
    }
    service.setHooks({[&metrics](const MessageOutcome& outcome) {
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
                              notifier->notify({{"event", "request.pending"},
                                                {"request", requestToJson(request)}});
                          }
                      }});

    http::Router scep_routes;
    http::ServerHooks scep_hooks;
    installScepRoutes(scep_routes, scep_hooks, service, log, config.ra, metrics);
    http::ServerOptions scep_options;
    scep_options.name = "scep";
    scep_options.host = config.ra.listen_host;
    scep_options.port = config.ra.listen_port;
    scep_options.limits = config.ra.http;
    scep_options.max_body = config.ra.max_body;
    http::Server scep(scep_options, std::move(scep_routes), std::move(scep_hooks), log);
    try {
        scep.listen();
    } catch (const std::exception& e) {
        log.error("cannot listen",
                  {{"listen", endpoint(config.ra.listen_host, config.ra.listen_port)},
                   {"error", e.what()}});
        return 1;
    }
    std::unique_ptr<AdminApi> api;
    std::unique_ptr<http::Server> admin;
    if (config.admin.enabled) {
        api = std::make_unique<AdminApi>(service, *store, log, metrics);
        http::Router admin_routes;
        http::ServerHooks admin_hooks;
        api->install(admin_routes, admin_hooks);
        http::ServerOptions admin_options;
        admin_options.name = "admin";
        admin_options.host = config.admin.listen_host;
        admin_options.port = config.admin.listen_port;
        admin_options.limits = config.admin.http;
        admin_options.max_body = 64 * 1024;  // API bodies are tiny; refuse floods unread
        admin_options.tls = [&api](SSL_CTX& ctx) { return api->configureTls(ctx); };
        try {
            admin = std::make_unique<http::Server>(admin_options, std::move(admin_routes),
                                                   std::move(admin_hooks), log);
            admin->listen();
        } catch (const std::exception& e) {
            const std::string where = endpoint(config.admin.listen_host, config.admin.listen_port);
            log.error("cannot listen", {{"admin_listen", where}, {"error", e.what()}});
            return 1;
        }
    }
    raiseFileLimit(config, log);
    ConfigReloader reloader(service, log, [&metrics](const std::string& outcome) {
        metrics.countConfigReload(outcome);
    });
    std::vector<std::function<void()>> stop_listeners{[&scep] { scep.stop(); }};
    if (admin) {
        stop_listeners.emplace_back([&admin] { admin->stop(); });
    }
    Background background(service, log, signals, [&reloader] { reloader.reload("SIGHUP"); },
                          std::move(stop_listeners));
    scep.start();
    if (admin) {
        admin->start();
    }
    log.info("listening",
             {{"listen", endpoint(config.ra.listen_host, config.ra.listen_port)},
              {"admin_listen", admin ? endpoint(config.admin.listen_host, config.admin.listen_port) : "off"},
              {"state_dir", config.ra.state_dir}});
    scep.wait();
    if (admin) {
        admin->wait();
    }
    try {
        service.auditTrail().flush(true);  // what the last minutes suppressed
    } catch (const std::exception& e) {
        log.error("cannot write audit summaries", {{"error", e.what()}});
    }
    log.info("stopped");
    return 0;
}

int tokens(Store& store, const Arguments& args) {
    const std::string action = args.positional.empty() ? "" : args.positional[0];
    if (action == "list") {
        std::cout << std::left << std::setw(24) << "NAME" << std::setw(10) << "ROLE" << std::setw(22)
                  << "CREATED" << "CREATED BY\n";
        for (const auto& token : store.listTokens()) {
            std::cout << std::left << std::setw(24) << token.name << std::setw(10) << token.role
                      << std::setw(22) << utc(token.created_at) << token.created_by << "\n";
        }
        return 0;
    }
    AuditEvent event;
    event.actor = operatorName();
    event.outcome = "success";
    if (action == "create") {
        const std::string name = args.option("name");
        const std::string role = args.option("role");
        if (!isValidTokenName(name) || !isRole(role)) {
            throw std::invalid_argument(
                "token create needs --name (1-64 of letters, digits, . _ @ -) and --role viewer|approver");
        }
        const NewToken token = makeToken(name, role, event.actor);
        event.action = "token-create";
        event.identity = name;
        event.reason = "role " + role;
        try {
            store.addToken(token.record, event);
        } catch (const DuplicateToken&) {
            throw AdminError(AdminError::Kind::conflict, "a token named '" + name + "' exists");
        }
        std::cout << token.text << "\n";
        std::cerr << "token '" << name << "' (" << role
                  << ") created; it is shown only now, store it safely\n";
        return 0;
    }
    if (action == "delete" && args.positional.size() == 2) {
        event.action = "token-delete";
        event.identity = args.positional[1];
        if (!store.deleteToken(args.positional[1], event)) {
            throw AdminError(AdminError::Kind::not_found, "no token named '" + args.positional[1] + "'");
        }
        std::cout << "deleted\n";
        return 0;
    }
    throw std::invalid_argument("usage: scep-ra token create --name N --role viewer|approver | list | delete NAME");
}

void listRequests(Store& store, const Arguments& args) {
    std::optional<RequestStatus> status;
    if (!args.option("status").empty()) {
        status = requestStatusFromName(args.option("status"));
        if (!status) {
            throw std::invalid_argument("--status must be pending, issued or rejected");
        }
    }
    std::cout << std::left << std::setw(6) << "ID" << std::setw(9) << "STATUS" << std::setw(10)
              << "METHOD" << std::setw(40) << "COMMON NAME" << std::setw(22) << "CREATED"
              << std::setw(16) << "PEER" << "IDENTITY / REASON\n";
    for (const auto& r : store.listRequests(status)) {
        std::cout << std::left << std::setw(6) << r.id << std::setw(9) << requestStatusName(r.status)
                  << std::setw(10) << r.method << std::setw(40) << r.common_name << std::setw(22)
                  << utc(r.created_at) << std::setw(16) << r.peer << r.identity
                  << (r.reason.empty() ? "" : " / " + r.reason) << "\n";
    }
}

void listCertificates(Store& store) {
    const std::int64_t now = std::time(nullptr);
    std::cout << std::left << std::setw(34) << "SERIAL" << std::setw(9) << "STATUS" << std::setw(22)
              << "NOT AFTER" << "SUBJECT\n";
    for (const auto& c : store.listCertificates()) {
        const char* status = certificateStateName(certificateState(c, now));
        std::cout << std::left << std::setw(34) << c.serial << std::setw(9) << status
                  << std::setw(22) << utc(c.not_after) << c.subject << "\n";
    }
}


// Creates what state-dir lacks, on the operator's word: a CA where none is
// (and no earlier CA's records remain), or an empty database for an existing
// CA whose database was lost. Never replaces a key or a database.
int init(const Config& config) {
    makeStateDir(config.ra.state_dir);
    const StateDirLock lock(config);
    const bool new_database = databaseMissing(config);
    const State state = bootstrapState(config, std::time(nullptr), Creation::init);
    const auto store = openSqliteStore(stateFile(config, kDatabaseFile));
    const std::string ca_key = stateFile(config, "ca.key");
    const bool new_ca =
        std::find(state.created.begin(), state.created.end(), ca_key) != state.created.end();
    if (!new_ca && !new_database) {
        std::cout << "state-dir '" << config.ra.state_dir << "' already holds a CA and its database; "
                  << "nothing to do\n";
        return 0;
    }
    AuditEvent event;
    event.actor = operatorName();
    event.action = "init";
    event.outcome = "success";
    event.reason = new_ca ? "new CA and database"
                          : "new empty database for the existing CA: earlier records and "
                            "revocations are not in it";
    store->audit(event);
    EventLog log;
    log.audit(event);
    for (const auto& file : state.created) {
        std::cout << "created " << file << "\n";
    }
    std::cout << "created " << stateFile(config, kDatabaseFile) << "\n";
    if (!new_ca) {
        std::cerr << "scep-ra: warning: the new database holds none of the earlier requests, "
                     "certificates or revocations; revoke again what must stay revoked\n";
    }
    printFingerprints(state.ca->certificate(), std::cout);
    return 0;
}

// Puts a backup back (serve must be stopped), then checks that the result
// starts: CA, RA and database load together.
int restore(const Config& config, const Arguments& args) {
    if (args.positional.size() != 1) {
        throw std::invalid_argument("restore needs exactly one backup directory");
    }
    makeStateDir(config.ra.state_dir);
    const StateDirLock lock(config);
    for (const auto& file : restoreStateDir(config, args.positional[0])) {
        std::cout << "restored " << file << "\n";
    }
    const State state = bootstrapState(config, std::time(nullptr), Creation::none);
    requireDatabase(config);
    openSqliteStore(stateFile(config, kDatabaseFile))->ping();
    printFingerprints(state.ca->certificate(), std::cout);
    return 0;
}

int run(const Arguments& args) {
    const Config config = loadConfig(args.option("config", kDefaultConfig));
    if (config.auth.allow_des) {
        enableSingleDes();  // before any thread starts: provider loading is not for busy processes
    }
    if (args.command == "check-config") {
        const ManufacturerRoots roots(config.auth.manufacturer_roots);
        std::cout << config.path << ": OK, " << config.dhcp.profiles.size() << " profile(s); "
                  << config.auth.manufacturer_roots << ": " << roots.anchorCount() << " root(s), "
                  << roots.intermediateCount() << " intermediate(s)\n";
        return 0;
    }
    if (args.command == "serve") {
        return serve(config);
    }
    if (args.command == "init") {
        return init(config);
    }
    if (args.command == "restore") {
        return restore(config, args);
    }
    State state = bootstrapState(config, std::time(nullptr), Creation::none);
    if (args.command == "fingerprint") {
        const auto digest = digestFromName(args.option("digest", "sha256"));
        if (!digest) {
            throw std::invalid_argument("--digest must be sha1, sha256, sha384 or sha512");
        }
        std::cout << toHex(certificateFingerprint(state.ca->certificate(), *digest)) << "\n";
        return 0;
    }
    requireDatabase(config);
    if (args.command == "backup") {
        if (args.positional.size() != 1) {
            throw std::invalid_argument("backup needs exactly one (new) directory");
        }
        for (const auto& file : backupStateDir(config, args.positional[0])) {
            std::cout << file << "\n";
        }
        return 0;
    }
    const auto store = openSqliteStore(stateFile(config, kDatabaseFile));
    if (args.command == "token") {
        return tokens(*store, args);
    }
    EventLog log;
    EnrollmentService service(config, state, *store, log);
    if (args.command == "requests") {
        listRequests(*store, args);
    } else if (args.command == "certs") {
        listCertificates(*store);
    } else if (args.command == "approve") {
        std::cout << "issued certificate " << service.approve(requestId(args), operatorName()) << "\n";
    } else if (args.command == "reject") {
        service.reject(requestId(args), args.option("reason"), operatorName());
        std::cout << "rejected\n";
    } else if (args.command == "revoke") {
        if (args.positional.size() != 1) {
            throw std::invalid_argument("revoke needs exactly one serial number");
        }
        service.revoke(args.positional[0], reasonCode(args.option("reason", "unspecified")),
                       operatorName());
        std::cout << "revoked " << args.positional[0] << "\n";
    } else {
        throw std::invalid_argument("unknown command '" + args.command + "'");
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const Arguments args = parseArguments(argc, argv);
        if (args.command.empty() || args.command == "help" || args.options.count("help")) {
            std::cerr << kUsage;
            return args.command.empty() ? 2 : 0;
        }
        return run(args);
    } catch (const scep::ConfigError& e) {
        std::cerr << "scep-ra: configuration refused:\n" << e.what() << "\n";
        return 1;
    } catch (const scep::AdminError& e) {
        std::cerr << "scep-ra: " << e.what() << "\n";
        return e.kind() == scep::AdminError::Kind::not_found ? 3 : 4;
    } catch (const std::exception& e) {
        std::cerr << "scep-ra: " << e.what() << "\n";
        return 1;
    }
}
