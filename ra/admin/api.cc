#include "ra/admin/api.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <map>

#include <nlohmann/json.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "common/fingerprint.h"
#include "ra/auth/authenticator.h"
#include "ra/admin/console_assets.h"
#include "ra/crypto.h"
#include "ra/store/state_dir.h"
#include "ra/admin/tokens.h"

namespace scep {

namespace {

using nlohmann::json;

// TLS 1.2 offers only AEAD suites with forward secrecy (ECDHE with GCM or
// ChaCha20-Poly1305), for ECDSA and RSA keys; TLS 1.3 suites are all AEAD.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

std::string dump(const json& value) {
    return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

void sendJson(http::Response& res, const json& body, int status = 200) {
    res.status = status;
    res.set_content(dump(body), "application/json");
}

}  // namespace

json requestToJson(const RequestRecord& r) {
    json details = json::parse(r.details, nullptr, false);
    if (!details.is_object()) {
        details = json::object();
    }
    return {{"id", r.id},
            {"transaction_id", r.transaction_id},
            {"status", requestStatusName(r.status)},
            {"method", r.method},
            {"message_type", r.message_type},
            {"common_name", r.common_name},
            {"identity", r.identity},
            {"model", details.value("model", "")},
            {"mac", details.value("mac", "")},
            {"pid", details.value("pid", "")},
            {"sn", details.value("sn", "")},
            {"manufacturer_issuer", details.value("manufacturer_issuer", "")},
            {"sans", details.value("sans", json::array())},
            {"renews", details.value("renews", "")},
            {"identity_clash", details.value("identity_clash", "")},
            {"peer", r.peer},
            {"reason", r.reason},
            {"serial", r.cert_serial},
            {"created_at", r.created_at},
            {"updated_at", r.updated_at}};
}

namespace {

const char* stateName(const CertificateRecord& c, std::int64_t now) {
    return c.revoked ? "revoked" : c.not_after < now ? "expired" : "valid";
}

json certificateJson(const CertificateView& view, std::int64_t now) {
    const CertificateRecord& c = view.certificate;
    return {{"serial", c.serial},
            {"subject", c.subject},
            {"common_name", c.common_name},
            {"issuer", c.issuer},
            {"not_before", c.not_before},
            {"not_after", c.not_after},
            {"status", stateName(c, now)},
            {"revoked_at", c.revoked_at},
            {"revocation_reason", c.revocation_reason},
            {"revocation_reason_name", c.revoked ? revocationReasonName(c.revocation_reason) : ""},
            {"request_id", c.request_id},
            {"superseded_by", c.superseded_by},
            {"model", view.model},
            {"mac", view.mac}};
}

json auditJson(const AuditEvent& e) {
    return {{"id", e.id},
            {"at", e.at},
            {"actor", e.actor},
            {"action", e.action},
            {"outcome", e.outcome},
            {"method", e.method},
            {"identity", e.identity},
            {"reason", e.reason},
            {"request_id", e.request_id ? json(*e.request_id) : json(nullptr)},
            {"serial", e.serial},
            {"peer", e.peer},
            {"transaction_id", e.transaction_id}};
}

std::string keyDescription(const EVP_PKEY& key) {
    if (isRsa(key)) {
        return "RSA " + std::to_string(EVP_PKEY_get_bits(&key));
    }
    char group[64] = {};
    std::size_t length = 0;
    EVP_PKEY_get_group_name(&key, group, sizeof(group), &length);
    return "EC " + std::string(group, length);
}

json certificateInfo(X509& cert) {
    json fingerprints = json::object();
    for (Digest digest : {Digest::sha1, Digest::sha256, Digest::sha384, Digest::sha512}) {
        fingerprints[digestName(digest)] = toHex(certificateFingerprint(cert, digest));
    }
    const EVP_PKEY* key = X509_get0_pubkey(&cert);
    return {{"subject", nameText(X509_get_subject_name(&cert))},
            {"issuer", nameText(X509_get_issuer_name(&cert))},
            {"serial", serialHex(X509_get0_serialNumber(&cert))},
            {"not_before", asn1TimeToUnix(X509_get0_notBefore(&cert))},
            {"not_after", asn1TimeToUnix(X509_get0_notAfter(&cert))},
            {"key", key ? keyDescription(*key) : ""},
            {"fingerprints", fingerprints},
            {"pem", certificatePem(cert)}};
}

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
    res.set_header("Content-Security-Policy",
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
      settings_(service.runtime()->config.admin) {
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
    X509& ca = service_.state().ca->certificate();
    X509StoreCtxPtr ctx(X509_STORE_CTX_new());
    const bool chains = ctx && X509_STORE_CTX_init(ctx.get(), client_cas_.get(), &ca, nullptr) == 1 &&
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
    const RaIdentity& identity = service_.state().admin;
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
        const auto parts = header.rfind(bearer, 0) == 0 ? splitToken(header.substr(bearer.size()))
                                                        : std::nullopt;
        if (!parts) {
            why = "malformed Authorization header (expected a scep-ra bearer token)";
            return std::nullopt;
        }
        const auto record = store_.findToken(parts->id);
        if (!record || !tokenMatches(*record, parts->secret)) {
            why = "unknown, deleted or wrong token (id " + parts->id + ")";
            return std::nullopt;
        }
        return Principal{record->name, record->role, "token"};
    }
    X509* peer = req.tls ? req.tls->certificate.get() : nullptr;
    if (peer && client_cas_) {
        X509& ca = service_.state().ca->certificate();
        if (X509_check_issued(&ca, peer) == X509_V_OK) {
            why = "client certificates issued by this RA's own CA cannot sign in";
            return std::nullopt;
        }
        X509StoreCtxPtr ctx(X509_STORE_CTX_new());
        STACK_OF(X509)* chain = req.tls->chain.get();
        const bool trusted = ctx && X509_STORE_CTX_init(ctx.get(), client_cas_.get(), peer, chain) == 1 &&
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
        const auto role = roles.find(cn);
        if (role == roles.end()) {
            why = "client certificate '" + cn + "' has no role in [admin.client-cert-roles]";
            return std::nullopt;
        }
        return Principal{"cert:" + cn, role->second, "client-certificate"};
    }
    why = "authentication required";
    return std::nullopt;
}

void AdminApi::refuse(http::Response& res, int status, const std::string& why,
                      const std::string& actor, const http::Request& req, bool audit) {
    if (audit) {
        AuditEvent event;
        event.actor = actor;
        event.action = "api";
        event.outcome = "failure";
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
    sendJson(res, {{"error", status == 401 ? std::string("authentication required or invalid") : why}},
             status);
    if (status == 401) {
        res.set_header("WWW-Authenticate", "Bearer realm=\"scep-ra\"");
    }
}

http::Handler AdminApi::guard(const char* role, Handler handler) {
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
            refuse(res, 415, "POST bodies must be Content-Type: application/json", principal->name, req);
            return;
        }
        if (!roleAllows(principal->role, role)) {
            refuse(res, 403, "role " + principal->role + " may not do this (needs " + role + ")",
                   principal->name, req);
            return;
        }
        try {
            handler(*principal, req, res);
        } catch (const AdminError& e) {
            const int status = e.kind() == AdminError::Kind::not_found ? 404
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

void AdminApi::routes(http::Router& server) {
    auto asset = [](std::string_view body, const char* type) {
        return [body, type](const http::Request&, http::Response& res) {
            res.set_content(body.data(), body.size(), type);
            res.set_header("Cache-Control", "no-cache");
        };
    };
    server.Get("/", asset(kConsoleIndexHtml, "text/html; charset=utf-8"));
    server.Get("/favicon.ico", [](const http::Request&, http::Response& res) { res.status = 204; });
    server.Get("/assets/console.js", asset(kConsoleJs, "text/javascript; charset=utf-8"));
    server.Get("/assets/console.css", asset(kConsoleCss, "text/css; charset=utf-8"));

    server.Get("/healthz", [this](const http::Request&, http::Response& res) {
        json checks = json::object();
        bool ok = true;
        const auto runtime = service_.runtime();
        const Config& config = runtime->config;
        try {
            store_.ping();
            store_.checkWritable();
            checks["database"] = "ok";
        } catch (const std::exception& e) {
            checks["database"] = e.what();
            ok = false;
        }
        // A full disk fails every enrollment while reads still work.
        const std::uint64_t free = availableBytes(config.ra.state_dir);
        if (free < config.ra.min_free_space) {
            checks["disk"] = "only " + std::to_string(free / (1024 * 1024)) + " MiB free in " +
                             config.ra.state_dir + " (min-free-space is " +
                             std::to_string(config.ra.min_free_space / (1024 * 1024)) + " MiB)";
            ok = false;
        } else {
            checks["disk"] = "ok";
        }
        const std::string key_file =
            config.ca.key_file.empty() ? stateFile(config, "ca.key") : config.ca.key_file;
        if (::access(key_file.c_str(), R_OK) != 0) {
            checks["ca_key"] = "cannot read " + key_file;
            ok = false;
        } else {
            checks["ca_key"] = "ok";
        }
        sendJson(res, {{"status", ok ? "ok" : "fail"}, {"checks", checks}}, ok ? 200 : 503);
    });

    server.Get("/metrics", guard("viewer", [this](const Principal&, const http::Request&,
                                                  http::Response& res) {
                   const std::string text =
                       metrics_.render(store_, std::time(nullptr), service_.crlInfo().next_update);
                   res.set_content(text, "text/plain; version=0.0.4");
               }));

    server.Get("/api/whoami", guard("viewer", [](const Principal& who, const http::Request&,
                                                 http::Response& res) {
                   sendJson(res, {{"name", who.name}, {"role", who.role}, {"via", who.via}});
               }));

    server.Get("/api/requests", guard("viewer", [this](const Principal&, const http::Request& req,
                                                       http::Response& res) {
                   const RequestFilter filter = parseRequestFilter(req.params);
                   const auto page = store_.findRequests(filter);
                   json items = json::array();
                   for (const auto& request : page.items) {
                       items.push_back(requestToJson(request));
                   }
                   sendJson(res, {{"total", page.total}, {"items", items}});
               }));

    server.Get(R"(/api/requests/(\d+))",
               guard("viewer", [this](const Principal&, const http::Request& req, http::Response& res) {
                   const auto request = store_.findRequest(parseRequestId(req.matches[1]));
                   if (!request) {
                       throw AdminError(AdminError::Kind::not_found,
                                        "no request " + req.matches[1]);
                   }
                   sendJson(res, requestToJson(*request));
               }));

    server.Post(R"(/api/requests/(\d+)/approve)",
                guard("approver", [this](const Principal& who, const http::Request& req,
                                         http::Response& res) {
                    const std::int64_t id = parseRequestId(req.matches[1]);
                    sendJson(res, {{"serial", service_.administration().approve(id, who.name, req.remote_addr).serial}});
                }));

    server.Post(R"(/api/requests/(\d+)/reject)",
                guard("approver", [this](const Principal& who, const http::Request& req,
                                         http::Response& res) {
                    const std::string reason = parseRejectReason(parseJsonBody(req.body));
                    const std::int64_t id = parseRequestId(req.matches[1]);
                    service_.administration().reject(id, reason, who.name, req.remote_addr);
                    sendJson(res, {{"status", "rejected"}});
                }));

    server.Get("/api/certificates", guard("viewer", [this](const Principal&, const http::Request& req,
                                                           http::Response& res) {
                   const CertificateFilter filter =
                       parseCertificateFilter(req.params, std::time(nullptr));
                   const auto page = store_.findCertificates(filter);
                   json items = json::array();
                   for (const auto& view : page.items) {
                       items.push_back(certificateJson(view, filter.now));
                   }
                   sendJson(res, {{"total", page.total}, {"items", items}});
               }));

    auto findCertificate = [this](const http::Request& req) {
        const std::string serial = req.matches[1];
        auto record = store_.findCertificate(serial);
        if (!record) {
            throw AdminError(AdminError::Kind::not_found, "no certificate " + serial);
        }
        return std::move(*record);
    };

    server.Get(R"(/api/certificates/([0-9A-F]{1,64}))",
               guard("viewer", [this, findCertificate](const Principal&, const http::Request& req,
                                                       http::Response& res) {
                   const CertificateRecord record = findCertificate(req);
                   CertificateView view{record, "", ""};
                   if (record.request_id != 0) {
                       if (const auto request = store_.findRequest(record.request_id)) {
                           const json details = requestToJson(*request);
                           view.model = details["model"];
                           view.mac = details["mac"];
                       }
                   }
                   json body = certificateJson(view, std::time(nullptr));
                   body["pem"] = certificatePem(*certificateFromDer(record.der));
                   sendJson(res, body);
               }));

    server.Get(R"(/api/certificates/([0-9A-F]{1,64})/pem)",
               guard("viewer", [findCertificate](const Principal&, const http::Request& req,
                                                 http::Response& res) {
                   const CertificateRecord record = findCertificate(req);
                   res.set_content(certificatePem(*certificateFromDer(record.der)), "application/x-pem-file");
                   res.set_header("Content-Disposition", "attachment; filename=\"" + record.serial + ".pem\"");
               }));

    server.Post(R"(/api/certificates/([0-9A-F]{1,64})/revoke)",
                guard("approver", [this](const Principal& who, const http::Request& req,
                                         http::Response& res) {
                    const int reason = parseRevocationReason(parseJsonBody(req.body));
                    service_.administration().revoke(req.matches[1], reason, who.name, req.remote_addr);
                    sendJson(res, {{"status", "revoked"}});
                }));

    server.Get("/api/audit", guard("viewer", [this](const Principal&, const http::Request& req,
                                                    http::Response& res) {
                   const AuditPage page = parseAuditPage(req.params);
                   const std::size_t limit = page.limit;
                   const auto events = store_.listAudit(limit, page.before);
                   json items = json::array();
                   for (const auto& event : events) {
                       items.push_back(auditJson(event));
                   }
                   const json next = events.size() == limit ? json(events.back().id) : json(nullptr);
                   sendJson(res, {{"items", items}, {"next_before", next}});
               }));

    server.Get("/api/ca", guard("viewer", [this](const Principal&, const http::Request&,
                                                 http::Response& res) {
                   State& state = service_.state();
                   const CrlInfo crl = service_.crlInfo();
                   const auto runtime = service_.runtime();
                   const Config& config = runtime->config;
                   json paths = json::array({"/scep", "/cgi-bin/pkiclient.exe"});
                   for (const auto& path : config.ra.paths) {
                       paths.push_back(path);
                   }
                   sendJson(res, {{"ca", certificateInfo(state.ca->certificate())},
                                  {"ra", certificateInfo(*state.ra.cert)},
                                  {"crl", {{"this_update", crl.this_update},
                                           {"next_update", crl.next_update},
                                           {"revoked", crl.revoked}}},
                                  {"scep_paths", paths},
                                  {"scep_listen", config.ra.listen_host + ":" +
                                                      std::to_string(config.ra.listen_port)}});
               }));

    server.Get("/api/tokens", guard("approver", [this](const Principal&, const http::Request&,
                                                       http::Response& res) {
                   json items = json::array();
                   for (const auto& token : store_.listTokens()) {
                       items.push_back({{"name", token.name},
                                        {"role", token.role},
                                        {"created_at", token.created_at},
                                        {"created_by", token.created_by}});
                   }
                   sendJson(res, {{"items", items}});
               }));

    server.Post("/api/tokens", guard("approver", [this](const Principal& who, const http::Request& req,
                                                        http::Response& res) {
                    const auto [name, role] = parseNewToken(parseJsonBody(req.body));
                    const NewToken token =
                        service_.administration().createToken(name, role, who.name, req.remote_addr);
                    sendJson(res, {{"name", name}, {"role", role}, {"token", token.text}}, 201);
                }));

    // Anything else under /api/ still needs a credential (and is audited)
    // before it learns that it does not exist.
    const auto unknown = guard("viewer", [](const Principal&, const http::Request& req,
                                            http::Response&) {
        throw AdminError(AdminError::Kind::not_found, "no such endpoint: " + req.method + " " + req.path);
    });
    server.Delete(R"(/api/tokens/([A-Za-z0-9._@-]{1,64}))",
                  guard("approver", [this](const Principal& who, const http::Request& req,
                                           http::Response& res) {
                      service_.administration().deleteToken(req.matches[1], who.name,
                                                            req.remote_addr);
                      sendJson(res, {{"status", "deleted"}});
                  }));
    server.Get(R"(/api/.*)", unknown);
    server.Post(R"(/api/.*)", unknown);
    server.Put(R"(/api/.*)", unknown);
    server.Patch(R"(/api/.*)", unknown);
    server.Delete(R"(/api/.*)", unknown);
}

}  // namespace scep
