// The admin API and web console (ra/admin/API.md) on the HTTPS listener.
// Handlers are thin: authenticate (token or client certificate), check the
// role, translate JSON to EnrollmentService/Store calls and back. Every
// refusal is a JSON error and an audit event.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/openssl_ptr.h"
#include "ra/admin/input.h"
#include "ra/services.h"
#include "ra/ops/event_log.h"
#include "ra/http/router.h"
#include "ra/http/server.h"
#include "ra/ops/metrics.h"
#include "ra/store/store.h"

namespace scep {

struct Principal {
    std::string name;  // token name, or "cert:<CN>"
    std::string role;  // "viewer" | "approver"
    std::string via;   // "token" | "client-certificate"
};

// A request as the API (and the webhook) show it.
nlohmann::json requestToJson(const RequestRecord& request);

class AdminApi {
public:
    AdminApi(RaServices& service, Store& store, EventLog& log, Metrics& metrics);

    // The routes, and the hooks that give the server's own refusals a JSON
    // body, an audit event and the security headers.
    void install(http::Router& router, http::ServerHooks& hooks);

    // TLS for the listener: the admin identity, TLS 1.2+ (1.2 with AEAD
    // suites and forward secrecy only), and, when a client CA is configured,
    // a request for client certificates. Chains are checked per request (so
    // failures are audited), not in the handshake.
    bool configureTls(SSL_CTX& ctx) const;

    // Who is asking; nullopt with `why` set when nobody acceptable is.
    std::optional<Principal> authenticate(const http::Request& req, std::string& why) const;

private:
    using Handler = std::function<void(const Principal&, const http::Request&, http::Response&)>;
    http::Handler guard(const char* role, Handler handler);
    void refuse(http::Response& res, int status, const std::string& why, const std::string& actor,
                const http::Request& req, bool audit = true);
    void routes(http::Router& router);
    void refuseOwnCaAsAdminCa() const;

    RaServices& service_;
    Store& store_;
    EventLog& log_;
    Metrics& metrics_;
    // As at start-up: the listener's TLS and client CA need a restart to
    // change. [admin.client-cert-roles] is read per request from the
    // service's current configuration (it reloads).
    const AdminSettings settings_;
    X509StorePtr client_cas_;  // null without [admin] client-ca
};

}  // namespace scep
