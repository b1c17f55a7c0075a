// The admin API and web console (ra/admin/API.md) on the HTTPS listener:
// construction, TLS, authentication (token or client certificate), the role
// check and the route table. The handlers, one class per resource in
// *_resource.*, translate JSON to RaServices/Administration/Store calls and back.
// Every refusal is a JSON error and an audit event.
#pragma once

#include <optional>
#include <string>

#include "common/openssl_ptr.h"
#include "ra/admin/audit_resource.h"
#include "ra/admin/certificate_resource.h"
#include "ra/admin/handler.h"
#include "ra/admin/input.h"
#include "ra/admin/request_resource.h"
#include "ra/admin/status_resource.h"
#include "ra/admin/token_resource.h"
#include "ra/http/router.h"
#include "ra/http/server.h"
#include "ra/ops/event_log.h"
#include "ra/ops/metrics.h"
#include "ra/services.h"
#include "ra/store/store.h"

namespace scep {

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
    http::Handler guard(Role role, AdminHandler handler);
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

    RequestResource requests_;
    CertificateResource certificates_;
    TokenResource tokens_;
    AuditResource audit_;
    StatusResource status_;
};

}  // namespace scep
