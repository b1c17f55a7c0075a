#include "ra/admin/api.h"

#include <algorithm>
#include <cctype>

#include <nlohmann/json.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "ra/admin/console_assets.h"
#include "ra/admin/console_resource.h"
#include "ra/admin/tokens.h"
#include "ra/crypto.h"
#include "ra/ops/audit_vocabulary.h"

namespace scep {

namespace {

using nlohmann::json;

// TLS 1.2 offers only AEAD suites with forward secrecy (ECDHE with GCM or
// ChaCha20-Poly1305), for ECDSA and RSA keys; TLS 1.3 suites are all AEAD.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

// "application/json", in any case, with or without parameters.
bool isJson(std::string content_type) {
    content_type = content_type.substr(0, content_type.find(';'));
    content_type.erase(std::remove_if(content_type.begin(), content_type.end(),
                                      [](unsigned char c) { return std::isspace(c); }),
                       content_type.end());
    std::transform(content_type.begin(), content_type.end(), content_type.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    return content_type == "application/json";
}

// The CN of a client certificate's subject, or "".
std::string commonNameOf(X509& cert) {
    return nameEntry(X509_get_subject_name(&cert), NID_commonName);
}

// Responses of the admin listener never end up in caches, frames or other
// origins' scripts.
void securityHeaders(http::Response& res) {
    res.set_header(
        "Content-Security-Policy",
        "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'");
    res.set_header("X-Content-Type-Options", "nosniff");
    res.set_header("Referrer-Policy", "no-referrer");
    res.set_header("X-Frame-Options", "DENY");
    res.set_header("Strict-Transport-Security", "max-age=31536000");
    if (!res.has_header("Cache-Control")) {
        res.set_header("Cache-Control", "no-store");
    }
}

}  // namespace

AdminApi::AdminApi(RaServices& service, Store& store, EventLog& log, Metrics& metrics)
    : service_(service),
      store_(store),
      log_(log),
      metrics_(metrics),
      settings_(service.runtime()->config.admin),
      requests_(service, store),
      certificates_(service, store),
      tokens_(store, service.administration()),
      audit_(store),
      status_(service, store, metrics) {
    if (!settings_.client_ca.empty()) {
        client_cas_.reset(X509_STORE_new());
        for (X509Ptr& cert : loadCertificateBundle(settings_.client_ca)) {
            if (X509_STORE_add_cert(client_cas_.get(), cert.get()) != 1) {
                throw CryptoError("cannot use client-ca '" + settings_.client_ca + "'");
            }
        }
        refuseOwnCaAsAdminCa();
    }
}

// Anyone with the challenge (broadcast in DHCP option 43) can get a
// certificate from this RA for a CN of their choice. If those certificates
// could sign in to the admin API, the challenge would make them admins.
void AdminApi::refuseOwnCaAsAdminCa() const {
    X509& ca = service_.authority().certificate();
    X509StoreCtxPtr ctx(X509_STORE_CTX_new());
    const bool chains = ctx &&
                        X509_STORE_CTX_init(ctx.get(), client_cas_.get(), &ca, nullptr) == 1 &&
                        X509_verify_cert(ctx.get()) == 1;
    ERR_clear_error();
    if (chains) {
        throw std::runtime_error(
            "[admin] client-ca '" + settings_.client_ca +
            "' trusts this RA's own CA: every certificate the RA issues, including to anyone who "
            "knows the challenge, could then sign in as an admin. Use a separate CA for admins.");
    }
}

bool AdminApi::configureTls(SSL_CTX& ctx) const {
    const RaIdentity& identity = service_.material().admin;
    if (!identity.cert || SSL_CTX_use_certificate(&ctx, identity.cert.get()) != 1 ||
        SSL_CTX_use_PrivateKey(&ctx, identity.key.get()) != 1 ||
        SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_cipher_list(&ctx, kTls12Ciphers) != 1) {
        return false;
    }
    SSL_CTX_set_options(&ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    if (!settings_.client_ca.empty()) {
        // Offered, not required: token users have no certificate. The chain
        // is verified per request so that failures reach the audit trail.
        STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(settings_.client_ca.c_str());
        if (names) {
            SSL_CTX_set_client_CA_list(&ctx, names);
        }
        SSL_CTX_set_verify(&ctx, SSL_VERIFY_PEER, [](int, X509_STORE_CTX*) { return 1; });
    }
    ERR_clear_error();
    return true;
}

std::optional<Principal> AdminApi::authenticate(const http::Request& req, std::string& why) const {
    if (req.has_header("Authorization")) {
        const std::string header = req.get_header_value("Authorization");
        const std::string bearer = "Bearer ";
        const auto parts =
            header.rfind(bearer, 0) == 0 ? splitToken(header.substr(bearer.size())) : std::nullopt;
        if (!parts) {
            why = "malformed Authorization header (expected a scep-ra bearer token)";
            return std::nullopt;
        }
        const auto record = store_.findToken(parts->id);
        // The store refuses other role names; one would sign in as nobody.
        const auto role = record ? roleFromName(record->role) : std::nullopt;
        if (!role || !tokenMatches(*record, parts->secret)) {
            why = "unknown, deleted or wrong token (id " + parts->id + ")";
            return std::nullopt;
        }
        return Principal{record->name, *role, PrincipalKind::token};
    }
    X509* peer = req.tls ? req.tls->certificate.get() : nullptr;
    if (peer && client_cas_) {
        X509& ca = service_.authority().certificate();
        if (X509_check_issued(&ca, peer) == X509_V_OK) {
            why = "client certificates issued by this RA's own CA cannot sign in";
            return std::nullopt;
        }
        X509StoreCtxPtr ctx(X509_STORE_CTX_new());
        STACK_OF(X509)* chain = req.tls->chain.get();
        const bool trusted = ctx &&
                             X509_STORE_CTX_init(ctx.get(), client_cas_.get(), peer, chain) == 1 &&
                             X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_CLIENT) == 1 &&
                             X509_verify_cert(ctx.get()) == 1;
        const std::string cn = commonNameOf(*peer);
        if (!trusted) {
            why = "client certificate '" + cn + "' is not trusted: " +
                  X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()));
            ERR_clear_error();
            return std::nullopt;
        }
        const auto runtime = service_.runtime();
        const auto& roles = runtime->config.admin.client_cert_roles;
        const auto entry = roles.find(cn);
        // The configuration refuses other role names.
        const auto role = entry == roles.end() ? std::nullopt : roleFromName(entry->second);
        if (!role) {
            why = "client certificate '" + cn + "' has no role in [admin.client-cert-roles]";
            return std::nullopt;
        }
        return Principal{"cert:" + cn, *role, PrincipalKind::client_certificate};
    }
    why = "authentication required";
    return std::nullopt;
}

void AdminApi::refuse(http::Response& res, int status, const std::string& why,
                      const std::string& actor, const http::Request& req, bool audit) {
    if (audit) {
        AuditEvent event;
        event.actor = actor;
        event.action = auditActionName(AuditAction::api);
        event.outcome = outcomeName(Outcome::failure);
        event.reason = std::to_string(status) + " " + req.method + " " + req.path + ": " + why;
        event.peer = req.remote_addr;
        // Anyone can provoke a 401: those share the per-source budget of
        // unauthenticated failures. What a signed-in admin does is recorded.
        AuditTrail& trail = service_.auditTrail();
        try {
            if (actor == "anonymous") {
                trail.failure(event);
            } else {
                trail.writeAlways(event);
            }
        } catch (const StoreError&) {
            // Disk full: the event log has it (AuditTrail logs first).
        }
    }
    // The client sees the reason, except which part of a token was wrong.
    sendJson(res,
             {{"error", status == 401 ? std::string("authentication required or invalid") : why}},
             status);
    if (status == 401) {
        res.set_header("WWW-Authenticate", "Bearer realm=\"scep-ra\"");
    }
}

http::Handler AdminApi::guard(Role role, AdminHandler handler) {
    return [this, role, handler](const http::Request& req, http::Response& res) {
        std::string why;
        const auto principal = authenticate(req, why);
        if (!principal) {
            metrics_.countAuthFailure();
            refuse(res, 401, why, "anonymous", req);
            return;
        }
        // Browsers send client certificates on their own, so a form on
        // another site could POST here in an admin's name. Such a form cannot
        // send application/json without a CORS preflight, which never passes.
        if (req.method == "POST" && !isJson(req.get_header_value("Content-Type"))) {
            refuse(res, 415, "POST bodies must be Content-Type: application/json", principal->name,
                   req);
            return;
        }
        if (!roleAllows(principal->role, role)) {
            refuse(res, 403,
                   std::string("role ") + roleName(principal->role) + " may not do this (needs " +
                       roleName(role) + ")",
                   principal->name, req);
            return;
        }
        try {
            handler(*principal, req, res);
        } catch (const AdminError& e) {
            const int status = e.kind() == AdminError::Kind::not_found  ? 404
                               : e.kind() == AdminError::Kind::conflict ? 409
                                                                        : 400;
            refuse(res, status, e.what(), principal->name, req);
        } catch (const BadInput& e) {
            refuse(res, 400, e.what(), principal->name, req);
        } catch (const json::exception& e) {
            refuse(res, 400, std::string("malformed request: ") + e.what(), principal->name, req);
        } catch (const StoreError& e) {
            // Disk full or database locked: nothing was written; try later.
            log_.error("admin request not recorded", {{"path", req.path}, {"error", e.what()}});
            sendJson(res, {{"error", "the RA cannot record this right now; try again later"}}, 503);
            res.set_header("Retry-After", "60");
        }
    };
}

void AdminApi::install(http::Router& router, http::ServerHooks& hooks) {
    // Refusals by the server itself (limits, Transfer-Encoding, malformed
    // requests): audited within the server's budget, with a JSON body.
    hooks.refused = [this](const http::Request& req, http::Response& res, const std::string& why,
                           bool audit) { refuse(res, res.status, why, "anonymous", req, audit); };
    hooks.fallback = [](http::Response& res, const std::string& why) {
        sendJson(res, {{"error", why}}, res.status);
    };
    hooks.finish = securityHeaders;
    hooks.not_found = [](const http::Request&, http::Response& res) {
        sendJson(res, {{"error", "not found"}}, 404);
    };
    hooks.failed = [this](const http::Request& req, http::Response& res, std::exception_ptr error) {
        log_.error("admin request failed", {{"path", req.path}, {"error", describe(error)}});
        sendJson(res, {{"error", "internal error"}}, 500);
    };
    routes(router);
}

// The route table. Registration order matters where patterns overlap: the
// catch-all for /api/ comes last.
void AdminApi::routes(http::Router& server) {
    server.Get("/", consoleAsset(kConsoleIndexHtml, "text/html; charset=utf-8"));
    server.Get("/favicon.ico", noFavicon);
    server.Get("/assets/console.js", consoleAsset(kConsoleJs, "text/javascript; charset=utf-8"));
    server.Get("/assets/console.css", consoleAsset(kConsoleCss, "text/css; charset=utf-8"));

    server.Get("/healthz",
               [this](const http::Request& req, http::Response& res) { status_.health(req, res); });
    server.Get("/metrics", guard(Role::viewer, handler(status_, &StatusResource::metrics)));
    server.Get("/api/whoami", guard(Role::viewer, handler(status_, &StatusResource::whoami)));

    server.Get("/api/requests", guard(Role::viewer, handler(requests_, &RequestResource::list)));
    server.Get(R"(/api/requests/(\d+))",
               guard(Role::viewer, handler(requests_, &RequestResource::show)));
    server.Post(R"(/api/requests/(\d+)/approve)",
                guard(Role::approver, handler(requests_, &RequestResource::approve)));
    server.Post(R"(/api/requests/(\d+)/reject)",
                guard(Role::approver, handler(requests_, &RequestResource::reject)));

    const std::string certificate = R"(/api/certificates/([0-9A-F]{1,64}))";
    server.Get("/api/certificates",
               guard(Role::viewer, handler(certificates_, &CertificateResource::list)));
    server.Get(certificate,
               guard(Role::viewer, handler(certificates_, &CertificateResource::show)));
    server.Get(certificate + "/pem",
               guard(Role::viewer, handler(certificates_, &CertificateResource::pem)));
    server.Post(certificate + "/revoke",
                guard(Role::approver, handler(certificates_, &CertificateResource::revoke)));
    server.Get("/api/revocation-reasons",
               guard(Role::viewer, handler(certificates_, &CertificateResource::reasons)));

    server.Get("/api/audit", guard(Role::viewer, handler(audit_, &AuditResource::list)));
    server.Get("/api/ca", guard(Role::viewer, handler(status_, &StatusResource::ca)));

    server.Get("/api/tokens", guard(Role::approver, handler(tokens_, &TokenResource::list)));
    server.Post("/api/tokens", guard(Role::approver, handler(tokens_, &TokenResource::create)));
    server.Delete(R"(/api/tokens/([A-Za-z0-9._@-]{1,64}))",
                  guard(Role::approver, handler(tokens_, &TokenResource::remove)));

    // Anything else under /api/ still needs a credential (and is audited)
    // before it learns that it does not exist.
    const auto unknown =
        guard(Role::viewer, [](const Principal&, const http::Request& req, http::Response&) {
            throw AdminError(AdminError::Kind::not_found,
                             "no such endpoint: " + req.method + " " + req.path);
        });
    server.Get(R"(/api/.*)", unknown);
    server.Post(R"(/api/.*)", unknown);
    server.Put(R"(/api/.*)", unknown);
    server.Patch(R"(/api/.*)", unknown);
    server.Delete(R"(/api/.*)", unknown);
}

}  // namespace scep
