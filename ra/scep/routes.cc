#include "ra/scep/routes.h"

#include <openssl/evp.h>

#include "ra/ca/upstream/scep_upstream.h"
#include "ra/ops/audit_vocabulary.h"

namespace scep {

namespace {

constexpr const char* kPkiMessage = "application/x-pki-message";

std::string text(const Bytes& bytes) {
    return std::string(bytes.begin(), bytes.end());
}

// HTTP-level refusals are audited like SCEP-level ones, within the same
// per-source budget.
void refuse(http::Response& res, int status, const std::string& reason, const std::string& peer,
            AuditTrail& trail, bool audit = true) {
    if (audit) {
        AuditEvent event;
        event.actor = "scep";
        event.action = auditActionName(AuditAction::http);
        event.outcome = outcomeName(Outcome::failure);
        event.reason = reason;
        event.peer = peer;
        try {
            trail.failure(event);
        } catch (const StoreError&) {
            // Disk full: the event log has it (AuditTrail logs first), and
            // the client still gets its answer.
        }
    }
    res.status = status;
    res.set_content(reason + "\n", "text/plain");
}

// The raw `message` value from the request target, '+' kept as it is (the
// decoder reads it, or a space, as base64's '+'). Base64 padding arrives
// unescaped from some clients, so only the first '=' of the pair separates
// name and value.
std::optional<std::string> rawMessageParameter(const std::string& target) {
    const auto query = target.find('?');
    if (query == std::string::npos) {
        return std::nullopt;
    }
    std::size_t start = query + 1;
    while (start <= target.size()) {
        const std::size_t end = std::min(target.find('&', start), target.size());
        const std::string pair = target.substr(start, end - start);
        const auto equals = pair.find('=');
        if (equals != std::string::npos && pair.compare(0, equals, "message") == 0) {
            return http::percentDecode(pair.substr(equals + 1), false);
        }
        start = end + 1;
    }
    return std::nullopt;
}

}  // namespace

std::optional<Bytes> decodeMessageParameter(const std::string& text) {
    std::string normalized;
    normalized.reserve(text.size() + 3);
    for (char c : text) {
        switch (c) {
        case '\r':
        case '\n':
            break;
        case ' ':
        case '-':
            normalized += '+';
            break;
        case '_':
            normalized += '/';
            break;
        default:
            normalized += c;
        }
    }
    while (normalized.size() % 4 != 0) {
        normalized += '=';
    }
    if (normalized.empty()) {
        return std::nullopt;
    }
    Bytes out(normalized.size() / 4 * 3 + 3);
    EVP_ENCODE_CTX* ctx = EVP_ENCODE_CTX_new();
    int length = 0, tail = 0;
    EVP_DecodeInit(ctx);
    const bool ok = EVP_DecodeUpdate(ctx, out.data(), &length,
                                     reinterpret_cast<const unsigned char*>(normalized.data()),
                                     static_cast<int>(normalized.size())) >= 0 &&
                    EVP_DecodeFinal(ctx, out.data() + length, &tail) == 1;
    EVP_ENCODE_CTX_free(ctx);
    if (!ok || length + tail == 0) {
        return std::nullopt;
    }
    out.resize(static_cast<std::size_t>(length + tail));
    return out;
}

ScepRoutes::ScepRoutes(ScepResponder& responder, CrlPublisher& crl, AuditTrail& trail,
                       EventLog& log, const RaSettings& settings, Metrics& metrics)
    : responder_(responder),
      crl_(crl),
      trail_(trail),
      log_(log),
      paths_{"/scep", "/cgi-bin/pkiclient.exe"},
      metrics_(metrics) {
    paths_.insert(paths_.end(), settings.paths.begin(), settings.paths.end());
}

void ScepRoutes::install(http::Router& router, http::ServerHooks& hooks) const {
    const ScepRoutes routes = *this;
    for (const std::string& path : paths_) {
        router.Get(path, [routes](const http::Request& req, http::Response& res) {
            routes.handle(req, res);
        });
        router.Post(path, [routes](const http::Request& req, http::Response& res) {
            routes.handle(req, res);
        });
    }
    router.Get("/crl", [routes](const http::Request&, http::Response& res) { routes.crl(res); });

    // Refusals the server makes itself (limits, malformed requests) are
    // audited within the server's budget; not every 404 a scanner provokes.
    hooks.refused = [routes](const http::Request& req, http::Response& res,
                             const std::string& reason,
                             bool audit) { routes.refused(req, res, reason, audit); };
    hooks.not_found = [](const http::Request&, http::Response& res) {
        res.status = 404;
        res.set_content("not found\n", "text/plain");
    };
    hooks.failed = [routes](const http::Request& req, http::Response& res,
                            std::exception_ptr error) { routes.failed(req, res, error); };
}

void ScepRoutes::handle(const http::Request& req, http::Response& res) const {
    const std::string operation = req.get_param_value("operation");
    if (operation == "GetCACaps") {
        metrics_.countScep(operation, "", Outcome::success, "");
        res.set_content(ScepResponder::capabilities(), "text/plain");
    } else if (operation == "GetCACert") {
        metrics_.countScep(operation, "", Outcome::success, "");
        res.set_content(text(responder_.caCertificates()), "application/x-x509-ca-ra-cert");
    } else if (operation == "PKIOperation") {
        pkiOperation(req, res);
    } else {
        metrics_.countScep("unknown", "", Outcome::failure, "");
        refuse(res, 400, "unknown SCEP operation", req.remote_addr, trail_);
    }
}

void ScepRoutes::pkiOperation(const http::Request& req, http::Response& res) const {
    std::optional<Bytes> message;
    if (req.method == "POST") {
        message = Bytes(req.body.begin(), req.body.end());
    } else if (const auto raw = rawMessageParameter(req.target)) {
        message = decodeMessageParameter(*raw);
    }
    if (!message || message->empty()) {
        metrics_.countScep("PKIOperation", "", Outcome::failure, "");
        refuse(res, 400, "PKIOperation without a (base64) message", req.remote_addr, trail_);
        return;
    }
    try {
        res.set_content(text(responder_.pkiOperation(*message, req.remote_addr)), kPkiMessage);
    } catch (const UnanswerableMessage& e) {
        // Audited and logged with the detail by the responder; the client
        // gets a short reason, never OpenSSL's internals.
        res.status = 400;
        res.set_content(std::string(e.what()) + "\n", "text/plain");
    } catch (const Unavailable& e) {
        res.status = 503;
        res.set_header("Retry-After", "60");
        res.set_content(std::string(e.what()) + "\n", "text/plain");
    }
}

void ScepRoutes::crl(http::Response& res) const {
    try {
        const Bytes der = crl_.crl();
        metrics_.countScep("CRL", "", Outcome::success, "");
        res.set_content(text(der), "application/pkix-crl");
    } catch (const UpstreamUnavailable& e) {
        // An upstream CA's CRL that cannot be had now (or at all: GetCRL is
        // optional in SCEP).
        metrics_.countScep("CRL", "", Outcome::failure, "");
        res.status = 503;
        res.set_header("Retry-After", "300");
        res.set_content(std::string(e.what()) + "\n", "text/plain");
    }
}

void ScepRoutes::refused(const http::Request& req, http::Response& res, const std::string& reason,
                         bool audit) const {
    const std::string what = req.method.empty() ? "a request" : req.method + " " + req.path;
    const std::string why = "HTTP " + std::to_string(res.status) + " for " + what + ": " + reason;
    refuse(res, res.status, why, req.remote_addr, trail_, audit);
}

void ScepRoutes::failed(const http::Request& req, http::Response& res,
                        std::exception_ptr error) const {
    log_.error("request failed",
               {{"path", req.path}, {"peer", req.remote_addr}, {"error", describe(error)}});
    res.status = 500;
    res.set_content("internal error\n", "text/plain");
}

}  // namespace scep
