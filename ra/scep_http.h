// The SCEP listener: plain HTTP as the protocol expects, HTTP/1.0 and 1.1,
// GET and POST, on /scep, /cgi-bin/pkiclient.exe and configured paths.
// Handlers only translate between HTTP and EnrollmentService.
#pragma once

#include <optional>
#include <string>

#include <httplib.h>

#include "common/config.h"
#include "ra/enrollment.h"
#include "ra/metrics.h"

namespace scep {

// Debian's cpp-httplib 0.11 enforces payload_max_length only on bodies with
// a Content-Length (CVE-2025-46728): chunked bodies are read whole, before
// any handler runs. Both listeners therefore refuse Transfer-Encoding in a
// pre-routing handler (which runs before the body is read); SCEP clients and
// the console always send Content-Length.
bool hasTransferEncoding(const httplib::Request& req);

// The `message` parameter of a GET PKIOperation: base64 in either alphabet
// (micromdm sends the URL-safe one), with '+' possibly turned into ' ' by
// URL decoding, line breaks, and padding possibly missing. nullopt when it
// is not base64.
std::optional<Bytes> decodeMessageParameter(const std::string& text);

// PKIOperation outcomes reach `metrics` through the service's hooks; the
// other operations are counted here.
void installScepRoutes(httplib::Server& server, EnrollmentService& service, Store& store,
                       EventLog& log, const RaSettings& settings, Metrics& metrics);

}  // namespace scep
