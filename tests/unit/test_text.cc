// The text helpers every layer shares: safe logging, printable ASCII, MACs.
#include <doctest/doctest.h>

#include "common/text.h"

using namespace scep;

TEST_CASE("printable ASCII is space to tilde") {
    CHECK(isPrintableAscii(""));
    CHECK(isPrintableAscii(" ~azAZ09!\\"));
    CHECK_FALSE(isPrintableAscii("\x1f"));
    CHECK_FALSE(isPrintableAscii("\x7f"));
    CHECK_FALSE(isPrintableAscii("tab\there"));
    CHECK_FALSE(isPrintableAscii(std::string("nul\0", 4)));
    CHECK_FALSE(isPrintableAscii("caf\xc3\xa9"));
}

TEST_CASE("a MAC's twelve hex digits in colon-separated pairs") {
    CHECK(macText("001A2B3C4D5E") == "00:1A:2B:3C:4D:5E");
    CHECK(macText("abcdefABCDEF") == "ab:cd:ef:AB:CD:EF");
}

TEST_CASE("printable() escapes what is not printable and cuts long input") {
    CHECK(printable("CP-8875") == "CP-8875");
    CHECK(printable("a\\b\x01") == "a\\x5cb\\x01");
    CHECK(printable(std::string(10, 'x'), 4) == "xxxx...");
}
