// The SCEP listener: plain HTTP as the protocol expects, HTTP/1.0 and 1.1,
// GET and POST, on /scep, /cgi-bin/pkiclient.exe and configured paths.
// Handlers only translate between HTTP and EnrollmentService; ra/http
// enforces the connection, size and time limits.
#pragma once

#include <optional>
#include <string>

#include "ra/config.h"
#include "ra/scep/responder.h"
#include "ra/http/router.h"
#include "ra/http/server.h"
#include "ra/ops/metrics.h"

namespace scep {

// The `message` parameter of a GET PKIOperation: base64 in either alphabet
// (micromdm sends the URL-safe one), with '+' possibly turned into ' ' by
// URL decoding, line breaks, and padding possibly missing. nullopt when it
// is not base64.
std::optional<Bytes> decodeMessageParameter(const std::string& text);

// The routes of the SCEP listener and its hooks: HTTP-level refusals are
// audited like SCEP-level ones. PKIOperation outcomes reach `metrics`
// through the service's hooks; the other operations are counted here.
void installScepRoutes(http::Router& router, http::ServerHooks& hooks, EnrollmentService& service,
                       EventLog& log, const RaSettings& settings, Metrics& metrics);

}  // namespace scep
