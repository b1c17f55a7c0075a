#include "common/url.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>

#include "common/text.h"

namespace scep {

namespace {

bool isIpv6Address(const std::string& text) {
    unsigned char buf[16];
    return inet_pton(AF_INET6, text.c_str(), buf) == 1;
}

// ":1" to ":65535" into `url.port`; "" leaves it unset.
std::string readPort(const std::string& port, Url& url) {
    if (port.empty()) {
        return {};
    }
    const std::string digits = port.substr(1);
    if (port[0] != ':' || digits.empty() || digits.size() > 5 ||
        !std::all_of(digits.begin(), digits.end(),
                     [](unsigned char c) { return std::isdigit(c); }) ||
        std::stoul(digits) == 0 || std::stoul(digits) > 65535) {
        return "port '" + port + "' is not a number between 1 and 65535";
    }
    url.port = static_cast<std::uint16_t>(std::stoul(digits));
    return {};
}

// "host[:port]" or "[IPv6][:port]" into `url`; the problem, or "".
std::string readAuthority(const std::string& authority, Url& url) {
    if (authority.find('@') != std::string::npos) {
        return "must not carry user information ('@') in the URL";
    }
    std::string host = authority;
    std::string port;
    if (!host.empty() && host.front() == '[') {
        const auto close = host.find(']');
        if (close == std::string::npos) {
            return "IPv6 address in URL lacks ']'";
        }
        port = host.substr(close + 1);
        host = host.substr(1, close - 1);
        if (!isIpv6Address(host)) {
            return "'" + host + "' is not an IPv6 address";
        }
    } else {
        const auto colon = host.find(':');
        if (colon != std::string::npos) {
            port = host.substr(colon);
            host.resize(colon);
        }
        if (host.empty()) {
            return "URL has no host";
        }
        if (!isIpAddress(host) && !isValidDnsName(host)) {
            return "'" + host + "' is neither an IP address nor a valid host name";
        }
    }
    url.host = host;
    return readPort(port, url);
}

UrlParse failed(std::string problem) {
    UrlParse parse;
    parse.problem = std::move(problem);
    return parse;
}

}  // namespace

bool isIpAddress(const std::string& text) {
    unsigned char buf[16];
    return inet_pton(AF_INET, text.c_str(), buf) == 1 || isIpv6Address(text);
}

bool isValidDnsName(std::string_view name) {
    if (name.empty() || name.size() > 253) {
        return false;
    }
    std::size_t start = 0;
    while (start <= name.size()) {
        const std::size_t dot = std::min(name.find('.', start), name.size());
        const std::string_view label = name.substr(start, dot - start);
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
            return false;
        }
        for (unsigned char c : label) {
            if (!std::isalnum(c) && c != '-') {
                return false;
            }
        }
        start = dot + 1;
    }
    return true;
}

std::string httpOrHttps(const std::string& scheme) {
    return scheme == "http" || scheme == "https" ? ""
                                                 : "scheme '" + scheme + "' is not http or https";
}

std::string Url::origin() const {
    const bool ipv6 = host.find(':') != std::string::npos;
    std::string out = scheme + "://" + (ipv6 ? "[" + host + "]" : host);
    if (port) {
        out += ":" + std::to_string(*port);
    }
    return out;
}

std::string Url::target() const {
    if (path.empty()) {
        return "/";
    }
    return path.front() == '/' ? path : "/" + path;
}

UrlParse parseUrl(std::string_view text, SchemeRule scheme_rule) {
    if (text.empty()) {
        return failed("must not be empty");
    }
    if (!isPrintableAscii(text) || text.find(' ') != std::string_view::npos) {
        return failed("must be printable ASCII without spaces");
    }
    const auto scheme_end = text.find("://");
    if (scheme_end == std::string_view::npos) {
        UrlParse parse = failed("has no scheme://");
        parse.missing_scheme = true;
        return parse;
    }
    Url url;
    url.scheme = std::string(text.substr(0, scheme_end));
    std::transform(url.scheme.begin(), url.scheme.end(), url.scheme.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    if (std::string why = scheme_rule(url.scheme); !why.empty()) {
        return failed(std::move(why));
    }
    const std::string_view rest = text.substr(scheme_end + 3);
    const std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
    url.path = std::string(rest.substr(authority.size()));
    if (std::string why = readAuthority(std::string(authority), url); !why.empty()) {
        return failed(std::move(why));
    }
    return {std::move(url), {}, false};
}

UrlParse parseHostPort(std::string_view text) {
    Url url;
    if (std::string why = readAuthority(std::string(text), url); !why.empty()) {
        return failed(std::move(why));
    }
    if (!url.port) {
        return failed("'" + std::string(text) + "' has no port");
    }
    return {std::move(url), {}, false};
}

}  // namespace scep
