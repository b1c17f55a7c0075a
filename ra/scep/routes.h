// The SCEP listener: plain HTTP as the protocol expects, HTTP/1.0 and 1.1,
// GET and POST, on /scep, /cgi-bin/pkiclient.exe and configured paths.
// Handlers only translate between HTTP and ScepResponder; ra/http
// enforces the connection, size and time limits.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "ra/ca/crl_publisher.h"
#include "ra/config.h"
#include "ra/http/router.h"
#include "ra/http/server.h"
#include "ra/ops/audit_trail.h"
#include "ra/ops/metrics.h"
#include "ra/scep/responder.h"

namespace scep {

// The `message` parameter of a GET PKIOperation: base64 in either alphabet
// (micromdm sends the URL-safe one), with '+' possibly turned into ' ' by
// URL decoding, line breaks, and padding possibly missing. nullopt when it
// is not base64.
std::optional<Bytes> decodeMessageParameter(const std::string& text);

// The routes of the SCEP listener and its hooks: HTTP-level refusals are
// audited like SCEP-level ones. PKIOperation outcomes reach `metrics`
// through the responder's observers; the other operations are counted here.
// Copied into its handlers: it holds only references and settings.
class ScepRoutes {
public:
    ScepRoutes(ScepResponder& responder, CrlPublisher& crl, AuditTrail& trail, EventLog& log,
               const RaSettings& settings, Metrics& metrics);

    void install(http::Router& router, http::ServerHooks& hooks) const;

private:
    void handle(const http::Request& req, http::Response& res) const;
    void pkiOperation(const http::Request& req, http::Response& res) const;
    void crl(http::Response& res) const;
    void refused(const http::Request& req, http::Response& res, const std::string& reason,
                 bool audit) const;
    void failed(const http::Request& req, http::Response& res, std::exception_ptr error) const;

    ScepResponder& responder_;
    CrlPublisher& crl_;
    AuditTrail& trail_;
    EventLog& log_;
    std::vector<std::string> paths_;
    Metrics& metrics_;
};

}  // namespace scep
