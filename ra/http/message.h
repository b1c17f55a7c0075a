// The HTTP request and response as handlers see them, independent of the
// server library: plain values, so handlers and their parsing are testable
// (and fuzzable) without sockets.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/openssl_ptr.h"

namespace scep::http {

// Header names compare case-insensitively (RFC 9110 5.1).
struct CaseInsensitiveLess {
    bool operator()(const std::string& a, const std::string& b) const;
};
using Headers = std::multimap<std::string, std::string, CaseInsensitiveLess>;
using Params = std::multimap<std::string, std::string>;

// The client certificate of a TLS connection and the chain it sent, shared
// by every request of that connection.
struct TlsPeer {
    X509Ptr certificate;  // null when the client sent none
    X509StackPtr chain;   // as sent, may be null
};

struct Request {
    std::string method;  // as sent, e.g. "GET"
    std::string target;  // as sent: path and query, still percent-encoded
    std::string path;    // percent-decoded, without the query
    Params params;       // decoded query parameters
    Headers headers;
    std::string body;
    std::string remote_addr;
    int version = 11;                    // 10 for HTTP/1.0, 11 for HTTP/1.1
    std::vector<std::string> matches;    // [0] the path, then a route pattern's captures
    std::shared_ptr<const TlsPeer> tls;  // null on plain HTTP

    bool has_header(const std::string& name) const { return headers.count(name) != 0; }
    std::string get_header_value(const std::string& name) const;
    bool has_param(const std::string& name) const { return params.count(name) != 0; }
    std::string get_param_value(const std::string& name) const;
};

struct Response {
    int status = 200;
    Headers headers;
    std::string body;

    void set_content(std::string content, const std::string& content_type);
    void set_content(const char* data, std::size_t size, const std::string& content_type);
    void set_header(const std::string& name, const std::string& value);
    bool has_header(const std::string& name) const { return headers.count(name) != 0; }
    std::string get_header_value(const std::string& name) const;
};

// %XX sequences decoded (malformed ones kept as they are); '+' becomes a
// space only in query text.
std::string percentDecode(std::string_view text, bool plus_is_space);

// "a=1&b=x%20y&c": every pair split at its first '=' and decoded. A
// parameter without '=' has an empty value.
Params parseQuery(std::string_view query);

// Splits a request target into its decoded path and parameters.
void splitTarget(std::string_view target, std::string& path, Params& params);

// "OK", "Request Header Fields Too Large", ...; "" for unknown codes.
const char* statusText(int status);

// The status line, headers (with Content-Length) and body, as sent.
std::string serialize(const Response& response, int version, bool keep_alive, bool head);

}  // namespace scep::http
