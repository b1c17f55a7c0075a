// URLs and ADDRESS:PORT listen values, parsed once for every place the
// configuration names a server: a profile's SCEP server, the [ra] and
// [admin] listeners and the notify-url webhook. Hosts are IP addresses
// (IPv6 in brackets) or DNS names; ports 1-65535; no user information.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace scep {

bool isIpAddress(const std::string& text);
// Dot-separated labels of 1-63 letters, digits or '-' (not at either end),
// at most 253 characters, no trailing dot.
bool isValidDnsName(std::string_view name);

struct Url {
    std::string scheme;  // lower case; empty for a bare ADDRESS:PORT
    std::string host;    // an IPv6 address without its brackets
    std::optional<std::uint16_t> port;
    std::string path;  // from the first '/', '?' or '#' after the host; may be ""

    // "scheme://host[:port]", IPv6 in brackets: what an HTTP client connects to.
    std::string origin() const;
    // The path to request: `path`, "/" when empty, a leading "/" added.
    std::string target() const;
};

// A parse and, when it failed, why. `missing_scheme` tells printable text
// without "://" (perhaps a bare address) from a malformed URL.
struct UrlParse {
    std::optional<Url> url;
    std::string problem;
    bool missing_scheme = false;
};

// Why the lower-case `scheme` is refused, or "" to accept it; checked before
// the rest of the URL.
using SchemeRule = std::string (*)(const std::string& scheme);

// The scheme rule of an HTTP client that speaks TLS too: http and https.
std::string httpOrHttps(const std::string& scheme);

// "scheme://host[:port][path]". Problems, in this order: empty; not
// printable ASCII or has spaces; no "://" (missing_scheme); what
// `scheme_rule` says; userinfo ('@'); an unclosed or invalid IPv6 literal;
// no host; a host that is neither an IP address nor a DNS name; a port not
// from 1 to 65535.
UrlParse parseUrl(std::string_view text, SchemeRule scheme_rule);

// "ADDRESS:PORT" or "[IPv6]:PORT", the port required: a Url without scheme
// or path.
UrlParse parseHostPort(std::string_view text);

}  // namespace scep
