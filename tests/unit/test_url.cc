// The one URL / ADDRESS:PORT parser behind a profile's server, the [ra] and
// [admin] listeners, notify-url and the webhook's connection.
#include <doctest/doctest.h>

#include "common/url.h"

using namespace scep;

namespace {

std::string anyScheme(const std::string&) {
    return {};
}

std::string httpOnly(const std::string& scheme) {
    return scheme == "http" ? "" : "scheme '" + scheme + "' refused";
}

}  // namespace

TEST_CASE("a URL splits into scheme, host, port and path") {
    const UrlParse parsed = parseUrl("HTTP://ra.example.nl:8080/scep?x=1", anyScheme);
    REQUIRE(parsed.url);
    CHECK(parsed.problem.empty());
    CHECK(parsed.url->scheme == "http");
    CHECK(parsed.url->host == "ra.example.nl");
    CHECK(parsed.url->port == 8080);
    CHECK(parsed.url->path == "/scep?x=1");
    CHECK(parsed.url->origin() == "http://ra.example.nl:8080");
    CHECK(parsed.url->target() == "/scep?x=1");

    const UrlParse bare = parseUrl("http://10.0.0.1", anyScheme);
    REQUIRE(bare.url);
    CHECK_FALSE(bare.url->port);
    CHECK(bare.url->origin() == "http://10.0.0.1");
    CHECK(bare.url->target() == "/");
    // A query straight after the host is still sent below "/".
    CHECK(parseUrl("http://h?q=1", anyScheme).url->target() == "/?q=1");
}

TEST_CASE("IPv6 literals go in brackets, and come back in them") {
    const UrlParse parsed = parseUrl("https://[2001:db8::1]:8443/hook", anyScheme);
    REQUIRE(parsed.url);
    CHECK(parsed.url->host == "2001:db8::1");
    CHECK(parsed.url->port == 8443);
    CHECK(parsed.url->origin() == "https://[2001:db8::1]:8443");
    const UrlParse no_port = parseUrl("http://[::1]/x", anyScheme);
    REQUIRE(no_port.url);
    CHECK(no_port.url->origin() == "http://[::1]");

    CHECK(parseUrl("http://[::1/x", anyScheme).problem == "IPv6 address in URL lacks ']'");
    CHECK(parseUrl("http://[example.nl]/", anyScheme).problem ==
          "'example.nl' is not an IPv6 address");
    // Without brackets the first colon starts the port: there is no host.
    CHECK(parseUrl("http://::1/x", anyScheme).problem == "URL has no host");
}

TEST_CASE("ports are 1 to 65535") {
    CHECK(parseUrl("http://h:1", anyScheme).url->port == 1);
    CHECK(parseUrl("http://h:65535", anyScheme).url->port == 65535);
    for (const char* port : {":0", ":65536", ":99999", ":", ":8o", ":123456", ":-1"}) {
        CAPTURE(port);
        const UrlParse parsed = parseUrl(std::string("http://h") + port + "/", anyScheme);
        CHECK_FALSE(parsed.url);
        CHECK(parsed.problem ==
              std::string("port '") + port + "' is not a number between 1 and 65535");
    }
    CHECK(parseUrl("http://[::1]x/", anyScheme).problem ==
          "port 'x' is not a number between 1 and 65535");
}

TEST_CASE("URL problems are named in a fixed order") {
    CHECK(parseUrl("", anyScheme).problem == "must not be empty");
    CHECK(parseUrl("http://a b", anyScheme).problem == "must be printable ASCII without spaces");
    CHECK(parseUrl("http://\x01", anyScheme).problem == "must be printable ASCII without spaces");
    const UrlParse no_scheme = parseUrl("10.0.0.1", anyScheme);
    CHECK_FALSE(no_scheme.url);
    CHECK(no_scheme.missing_scheme);
    CHECK_FALSE(parseUrl("", anyScheme).missing_scheme);
    // The scheme rule runs before the host is looked at.
    CHECK(parseUrl("ftp://user@h", httpOnly).problem == "scheme 'ftp' refused");
    CHECK(parseUrl("http://user@h", httpOnly).problem ==
          "must not carry user information ('@') in the URL");
    CHECK(parseUrl("http://user:pw@h:80/", httpOnly).problem ==
          "must not carry user information ('@') in the URL");
    CHECK(parseUrl("http://", anyScheme).problem == "URL has no host");
    CHECK(parseUrl("http://:8080/", anyScheme).problem == "URL has no host");
    CHECK(parseUrl("http:///scep", anyScheme).problem == "URL has no host");
    CHECK(parseUrl("http://ex_ample.nl/", anyScheme).problem ==
          "'ex_ample.nl' is neither an IP address nor a valid host name");
}

TEST_CASE("ADDRESS:PORT needs a host and a port, IPv6 in brackets") {
    const UrlParse v4 = parseHostPort("0.0.0.0:8080");
    REQUIRE(v4.url);
    CHECK(v4.url->host == "0.0.0.0");
    CHECK(v4.url->port == 8080);
    CHECK(v4.url->scheme.empty());
    const UrlParse v6 = parseHostPort("[::]:8443");
    REQUIRE(v6.url);
    CHECK(v6.url->host == "::");
    CHECK(v6.url->port == 8443);
    CHECK(parseHostPort("localhost:1").url->host == "localhost");

    for (const char* bad :
         {"", "0.0.0.0", "0.0.0.0:", ":8080", "0.0.0.0:0", "0.0.0.0:65536", "[::]", "[::]8080",
          "::1:8080", "[localhost]:80", "a b:80", "h:80/x", "user@h:80", "[::1:80"}) {
        CAPTURE(bad);
        CHECK_FALSE(parseHostPort(bad).url);
        CHECK_FALSE(parseHostPort(bad).problem.empty());
    }
}

TEST_CASE("IP addresses and DNS names") {
    CHECK(isIpAddress("192.0.2.1"));
    CHECK(isIpAddress("::1"));
    CHECK(isIpAddress("2001:db8::1"));
    CHECK_FALSE(isIpAddress("[::1]"));
    CHECK_FALSE(isIpAddress("256.0.0.1"));
    CHECK_FALSE(isIpAddress("example.nl"));
    CHECK(isValidDnsName(std::string(63, 'a') + ".nl"));
    CHECK_FALSE(isValidDnsName(std::string(64, 'a') + ".nl"));
    CHECK_FALSE(isValidDnsName("-a.nl"));
}
