#include <doctest/doctest.h>

#include <algorithm>
#include <stdexcept>

#include "common/option43.h"

using namespace scep;

namespace {

std::string lower(std::string text) {
    std::transform(text.begin(), text.end(), text.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    return text;
}

// The phone guide's worked example (seed 001, FACTS.md §1).
ScepParameters seedExample() {
    ScepParameters params;
    params.fips = true;
    params.server = "http://10.79.57.91";
    params.fingerprint = parseHex("12040870625C5B755D73F5925285F8F5FF5D55AF");
    params.challenge = "D233CCF9B9952A15";
    params.dot1x = true;
    params.cert_select = CertSelect::custom;
    return params;
}

const char* kSeedHex =
    "0a01010b12687474703a2f2f31302e37392e35372e39310c1412040870625c5b755d73f5925285f8f5ff5d55af"
    "0d10443233334343463942393935324131350e01010f0101";

}  // namespace

TEST_CASE("the guide's worked example encodes to exactly its 69 bytes") {
    const Bytes encoded = encodeOption43(seedExample());
    CHECK(encoded.size() == 69);
    CHECK(lower(toHex(encoded)) == kSeedHex);
}

TEST_CASE("optional sub-options are omitted when absent, mandatory ones stay in order") {
    ScepParameters params;
    params.server = "http://ra";
    params.fingerprint = Bytes(32, 0xab);
    const Bytes encoded = encodeOption43(params);
    const auto subs = decodeOption43(encoded);
    REQUIRE(subs.size() == 2);
    CHECK(subs[0].code == kServer);
    CHECK(subs[1].code == kRootCaFingerprint);
    CHECK(subs[1].value.size() == 32);
}

TEST_CASE("false booleans and manufacturing cert-select are sent as 0, not omitted") {
    ScepParameters params = seedExample();
    params.fips = false;
    params.dot1x = false;
    params.cert_select = CertSelect::manufacturing;
    const auto subs = decodeOption43(encodeOption43(params));
    REQUIRE(subs.size() == 6);
    CHECK(subs[0].value == Bytes{0});
    CHECK(subs[4].value == Bytes{0});
    CHECK(subs[5].value == Bytes{0});
}

TEST_CASE("decode round-trips every sub-option value") {
    const ScepParameters params = seedExample();
    const auto subs = decodeOption43(encodeOption43(params));
    REQUIRE(subs.size() == 6);
    CHECK(std::string(subs[1].value.begin(), subs[1].value.end()) == params.server);
    CHECK(subs[2].value == params.fingerprint);
    CHECK(std::string(subs[3].value.begin(), subs[3].value.end()) == *params.challenge);
}

TEST_CASE("an option that would exceed 255 bytes is refused, never split") {
    ScepParameters params = seedExample();
    params.fingerprint = Bytes(64, 1);
    params.server = "http://" + std::string(150, 'a');
    params.challenge = std::string(50, 'c');
    CHECK_THROWS_AS(encodeOption43(params), std::length_error);
}

TEST_CASE("truncated option 43 is rejected by the decoder") {
    CHECK_THROWS_AS(decodeOption43(Bytes{0x0b, 0x05, 'h', 't'}), std::invalid_argument);
    CHECK_THROWS_AS(decodeOption43(Bytes{0x0b}), std::invalid_argument);
    CHECK(decodeOption43(Bytes{}).empty());
}

TEST_CASE("masked hex hides the challenge but keeps layout") {
    const std::string masked = maskedOption43Hex(encodeOption43(seedExample()));
    CHECK(masked.find("0D10********************************0E0101") != std::string::npos);
    CHECK(masked.find("4432333343434639") == std::string::npos);  // "D233CCF9"
    CHECK(masked.rfind("0A01010B12", 0) == 0);
}
