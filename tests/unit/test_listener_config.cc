// [ra] and [admin] HTTP listener limits, and the duration syntax.
#include <doctest/doctest.h>

#include "config_support.h"
#include "ra/config.h"

using namespace scep;
using namespace testsupport;
using std::chrono::milliseconds;
using std::chrono::seconds;

TEST_CASE("durations: a whole number and a unit") {
    CHECK(parseDuration("500ms") == milliseconds(500));
    CHECK(parseDuration("10s") == seconds(10));
    CHECK(parseDuration("2m") == seconds(120));
    CHECK(parseDuration("1h") == seconds(3600));
    CHECK(parseDuration("7d") == seconds(7 * 86400));
    CHECK(parseDuration("0s") == milliseconds(0));
    for (const char* bad :
         {"", "s", "10", "10 s", "1.5s", "-1s", "10S", "10sec", "1y", "9999999999s", "400d"}) {
        CAPTURE(bad);
        CHECK_FALSE(parseDuration(bad));
    }
}

TEST_CASE("listener limits default sensibly; the SCEP header limit follows max-body") {
    const Config config = parseConfig("", "x.toml");
    for (const ListenerLimits* limits : {&config.ra.http, &config.admin.http}) {
        CHECK(limits->max_connections >= 1024);
        CHECK(limits->max_connections_per_address == 32);
        CHECK(limits->max_header_fields == 100);
        CHECK(limits->idle_timeout == seconds(5));
        CHECK(limits->header_timeout == seconds(10));
        CHECK(limits->body_timeout == seconds(30));
        CHECK(limits->write_timeout == seconds(30));
    }
    // A GET PKIOperation as large as a POST may be fits, base64 and URL-encoded.
    CHECK(config.ra.http.max_header_size == 8 * 1024 + 2 * 64 * 1024);
    CHECK(parseConfig("[ra]\nmax-body = \"1MiB\"\n", "x.toml").ra.http.max_header_size ==
          8 * 1024 + 2 * 1024 * 1024);
    CHECK(config.admin.http.max_header_size == 16 * 1024);
    CHECK(config.admin.http.tls_handshake_timeout == seconds(10));
    CHECK(config.ra.http.workers == 4);
    CHECK(config.admin.http.workers == 2);
}

TEST_CASE("listener limits are read from [ra] and [admin]") {
    const Config config = parseConfig(R"(
[ra]
max-body = "1MiB"
max-connections = 4096
max-connections-per-address = 8
max-header-size = "32KiB"
max-header-fields = 50
idle-timeout = "2s"
header-timeout = "20s"
body-timeout = "1m"
write-timeout = "45s"
workers = 8
max-queue = 128
[admin]
max-connections = 64
tls-handshake-timeout = "3s"
)",
                                      "x.toml");
    const ListenerLimits& ra = config.ra.http;
    CHECK(ra.max_connections == 4096);
    CHECK(ra.max_connections_per_address == 8);
    CHECK(ra.max_header_size == 32 * 1024);  // set explicitly: max-body no longer decides
    CHECK(ra.max_header_fields == 50);
    CHECK(ra.idle_timeout == seconds(2));
    CHECK(ra.header_timeout == seconds(20));
    CHECK(ra.body_timeout == seconds(60));
    CHECK(ra.write_timeout == seconds(45));
    CHECK(ra.workers == 8);
    CHECK(ra.max_queue == 128);
    CHECK(config.admin.http.max_connections == 64);
    CHECK(config.admin.http.tls_handshake_timeout == seconds(3));
}

TEST_CASE("every listener key is validated with file, table, key and rule") {
    checkRaRefused("[ra]\nmax-connections = 0\n", "[ra]", "max-connections", "from 1 to");
    checkRaRefused("[admin]\nmax-connections = \"many\"\n", "[admin]", "max-connections",
                   "whole number");
    checkRaRefused("[ra]\nmax-connections = 16\n", "[ra]", "max-connections",
                   "exceed max-connections");
    checkRaRefused("[ra]\nmax-connections-per-address = 2000\n", "[ra]",
                   "max-connections-per-address", "exceed max-connections");
    checkRaRefused("[ra]\nmax-header-size = \"512\"\n", "[ra]", "max-header-size",
                   "from 1KiB to 16MiB");
    checkRaRefused("[admin]\nmax-header-fields = 0\n", "[admin]", "max-header-fields", "from 1 to");
    checkRaRefused("[ra]\nheader-timeout = 10\n", "[ra]", "header-timeout", "duration");
    checkRaRefused("[ra]\nheader-timeout = \"10\"\n", "[ra]", "header-timeout", "duration");
    checkRaRefused("[ra]\nbody-timeout = \"500ms\"\n", "[ra]", "body-timeout", "from 1s to 24h");
    checkRaRefused("[admin]\nwrite-timeout = \"2d\"\n", "[admin]", "write-timeout",
                   "from 1s to 24h");
    checkRaRefused("[ra]\nidle-timeout = \"30s\"\n", "[ra]", "idle-timeout",
                   "exceed header-timeout");
    checkRaRefused("[admin]\nheader-timeout = \"2s\"\n", "[admin]", "header-timeout",
                   "exceed header-timeout");
    checkRaRefused("[ra]\nworkers = 0\n", "[ra]", "workers", "from 1 to 256");
    checkRaRefused("[ra]\nmax-queue = 0\n", "[ra]", "max-queue", "from 1 to");
    // The TLS deadline belongs to the HTTPS listener only.
    checkRaRefused("[ra]\ntls-handshake-timeout = \"5s\"\n", "[ra]", "tls-handshake-timeout",
                   "unknown key");
    checkRaRefused("[admin]\ntls-handshake-timeout = \"forever\"\n", "[admin]",
                   "tls-handshake-timeout", "duration");
}
