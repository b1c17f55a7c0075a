#include <doctest/doctest.h>

#include <algorithm>

#include "common/fingerprint.h"
#include "support.h"

using namespace scep;
using testsupport::run;

namespace {

// `openssl x509 -fingerprint` prints "sha256 Fingerprint=AB:CD:...".
std::string opensslFingerprint(const std::string& cert, const char* digest) {
    std::string out =
        run(std::string("openssl x509 -noout -fingerprint -") + digest + " -in '" + cert + "'");
    out = out.substr(out.find('=') + 1);
    out.erase(std::remove_if(out.begin(), out.end(), [](char c) { return c == ':' || c == '\n'; }),
              out.end());
    return out;
}

}  // namespace

TEST_CASE("fingerprints of a generated CA match openssl x509 -fingerprint for all digests") {
    testsupport::requireTool("openssl", "openssl");
    testsupport::TempDir dir;
    const std::string pem = dir.file("ca.pem");
    run("openssl req -x509 -newkey rsa:2048 -nodes -keyout '" + dir.file("ca.key") + "' -out '" +
        pem + "' -days 30 -subj '/CN=Unit Test Root CA'");
    const std::string der = dir.file("ca.der");
    run("openssl x509 -in '" + pem + "' -outform DER -out '" + der + "'");

    for (const char* name : {"sha1", "sha256", "sha384", "sha512"}) {
        CAPTURE(name);
        const Digest digest = *digestFromName(name);
        const std::string expected = opensslFingerprint(pem, name);
        CHECK(toHex(certificateFingerprint(*loadCertificateFile(pem), digest)) == expected);
        CHECK(toHex(certificateFingerprint(*loadCertificateFile(der), digest)) == expected);
        CHECK(expected.size() == digestLength(digest) * 2);
    }
}

TEST_CASE("loading a missing or non-certificate file says why") {
    testsupport::TempDir dir;
    CHECK_THROWS_WITH(loadCertificateFile(dir.file("absent.pem")),
                      doctest::Contains("cannot open"));
    CHECK_THROWS_WITH(loadCertificateFile(dir.write("junk.pem", "not a cert")),
                      doctest::Contains("no PEM or DER"));
}

TEST_CASE("hex parsing accepts separators and rejects bad input with a reason") {
    CHECK(parseHex("12:04:08") == Bytes{0x12, 0x04, 0x08});
    CHECK(parseHex("12 04\t08") == Bytes{0x12, 0x04, 0x08});
    CHECK(parseHex("aBcD") == Bytes{0xab, 0xcd});
    CHECK_THROWS_WITH(parseHex("123"), doctest::Contains("odd number"));
    CHECK_THROWS_WITH(parseHex("12G4"), doctest::Contains("'G' is not a hex digit"));
    CHECK_THROWS_WITH(parseHex("::"), doctest::Contains("no hex digits"));
    CHECK(toHex(Bytes{0xab, 0x01}) == "AB01");
    CHECK(toHex(Bytes{0xab, 0x01}, ':') == "AB:01");
    CHECK(toHex(Bytes{}).empty());
}

TEST_CASE("digest names and lengths") {
    CHECK(digestForLength(20) == Digest::sha1);
    CHECK(digestForLength(64) == Digest::sha512);
    CHECK_FALSE(digestForLength(19));
    CHECK_FALSE(digestFromName("md5"));
    CHECK(std::string(digestName(Digest::sha384)) == "sha384");
}
