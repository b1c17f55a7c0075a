// The admin API and web console (ra/ADMIN_API.md) on the HTTPS listener.
// Handlers are thin: authenticate (token or client certificate), check the
// role, translate JSON to EnrollmentService/Store calls and back. Every
// refusal is a JSON error and an audit event.
#pragma once

#include <optional>
#include <string>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "common/openssl_ptr.h"
#include "ra/enrollment.h"
#include "ra/event_log.h"
#include "ra/metrics.h"
#include "ra/store.h"

namespace scep {

struct Principal {
    std::string name;  // token name, or "cert:<CN>"
    std::string role;  // "viewer" | "approver"
    std::string via;   // "token" | "client-certificate"
};

// "00:1A:2B:3C:4D:5E" from any usual notation, or nullopt.
std::optional<std::string> normalizeMac(const std::string& text);

// A request as the API (and the webhook) show it.
nlohmann::json requestToJson(const RequestRecord& request);

class AdminApi {
public:
    AdminApi(EnrollmentService& service, Store& store, EventLog& log, Metrics& metrics);

    void install(httplib::Server& server);

    // TLS for the listener: the admin identity, TLS 1.2+, and, when a client
    // CA is configured, a request for client certificates. Chains are checked
    // per request (so failures are audited), not in the handshake.
    bool configureTls(SSL_CTX& ctx) const;

    // Who is asking; nullopt with `why` set when nobody acceptable is.
    std::optional<Principal> authenticate(const httplib::Request& req, std::string& why) const;

private:
    using Handler =
        std::function<void(const Principal&, const httplib::Request&, httplib::Response&)>;
    httplib::Server::Handler guard(const char* role, Handler handler);
    void refuse(httplib::Response& res, int status, const std::string& why, const std::string& actor,
                const httplib::Request& req);
    void routes(httplib::Server& server);
    void refuseOwnCaAsAdminCa() const;

    EnrollmentService& service_;
    Store& store_;
    EventLog& log_;
    Metrics& metrics_;
    const AdminSettings& settings_;
    X509StorePtr client_cas_;  // null without [admin] client-ca
};

}  // namespace scep
