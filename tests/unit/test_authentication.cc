// Every authentication outcome, through the in-process RA: classification by
// signer, the MIC CN/SAN rules, challenge, renewal, and what never issues.
#include <doctest/doctest.h>

#include <openssl/core_names.h>

#include "ra/auth/authenticator.h"
#include "ra/crypto.h"
#include "ra/scep/routes.h"
#include "ra_support.h"

using namespace scep;
using namespace testsupport;

namespace {

const std::string kProfiles = R"(
[[profile]]
name = "cisco"
vendor-class = ["CP-8875", "DP-9841"]
server = "http://192.0.2.1:8080"
fingerprint = "12040870625C5B755D73F5925285F8F5FF5D55AF"
domain = "example.nl"
[auth]
challenge = "s3cret-challenge"
)";

// The refusal left an audit row naming the reason, and issued nothing.
void checkRefused(TestRa& ra, const TestRa::Reply& reply, FailInfo fail,
                  const std::string& reason) {
    CHECK(reply.rep.status == PkiStatus::failure);
    REQUIRE(reply.rep.fail);
    CHECK(*reply.rep.fail == fail);
    CHECK_FALSE(reply.cert);
    CHECK(ra.certificateCount() == 0);
    const auto audit = ra.audit();
    REQUIRE_FALSE(audit.empty());
    CHECK(audit.front().outcome == "failure");
    CAPTURE(audit.front().reason);
    CHECK(audit.front().reason.find(reason) != std::string::npos);
}

}  // namespace

TEST_CASE("a MIC-signed request for the MIC's own CN is issued with CN only, KU and EKU") {
    TestRa ra(kProfiles + "[ca]\nvalidity-days = 30\n");
    Phone phone;
    const auto reply = ra.enroll(*phone.mic, *phone.mic_key, *phone.new_key, {kMicCn, {}, {}});
    REQUIRE(reply.rep.status == PkiStatus::success);
    REQUIRE(reply.cert);
    CHECK(nameText(X509_get_subject_name(reply.cert.get())) == "CN=" + kMicCn);
    CHECK(X509_check_issued(&ra.state.ca->certificate(), reply.cert.get()) == X509_V_OK);
    CHECK((X509_get_key_usage(reply.cert.get()) & (KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT)) ==
          (KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT));
    CHECK((X509_get_extended_key_usage(reply.cert.get()) & XKU_SSL_CLIENT) != 0);
    CHECK(asn1TimeToUnix(X509_get0_notAfter(reply.cert.get())) == ra.now + 30 * 86400);
    // Random serials of at least 64 bits.
    BignumPtr serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(reply.cert.get()), nullptr));
    CHECK(BN_num_bits(serial.get()) >= 64);
    // The issued key is the CSR's, not the MIC's.
    CHECK(EVP_PKEY_eq(X509_get0_pubkey(reply.cert.get()), phone.new_key.get()) == 1);
    const auto audit = ra.audit();
    CHECK(audit.front().method == "mic");
    CHECK(audit.front().outcome == "success");
    const auto request = ra.store->listRequests(std::nullopt).front();
    CHECK(request.details.find("\"mac\":\"00:1A:2B:3C:4D:5E\"") != std::string::npos);
    CHECK(request.details.find("\"pid\":\"CP-8875\"") != std::string::npos);
    CHECK(request.details.find("Test Manufacturing CA SHA2") != std::string::npos);
}

TEST_CASE("the option-15 domain rule: CN.domain and the User ID SAN are allowed") {
    TestRa ra(kProfiles + "[ca]\norganization = \"Example\"\ncountry = \"NL\"\n");
    Phone phone;
    const auto reply = ra.enroll(*phone.mic, *phone.mic_key, *phone.new_key,
                                 {kMicCn + ".example.nl",
                                  {{SubjectAltName::Type::email, kMicCn + "@example.nl"},
                                   {SubjectAltName::Type::dns, kMicCn + ".example.nl"}},
                                  {}});
    REQUIRE(reply.cert);
    CHECK(nameText(X509_get_subject_name(reply.cert.get())) ==
          "CN=" + kMicCn + ".example.nl,O=Example,C=NL");
    GeneralNamesPtr names(static_cast<GENERAL_NAMES*>(
        X509_get_ext_d2i(reply.cert.get(), NID_subject_alt_name, nullptr, nullptr)));
    REQUIRE(names);
    CHECK(sk_GENERAL_NAME_num(names.get()) == 2);
}

TEST_CASE("DP models carry CP- in their MIC CN; the profile is found by model number") {
    TestRa ra(kProfiles);
    const auto mic = fixtureCert("mic-dp9841");
    const auto key = fixtureKey("mic-dp9841");
    const auto new_key = fixtureKey("newkey-2");
    const std::string cn = commonName(*mic) + ".example.nl";
    CHECK(cn.rfind("CP-9841-SEP", 0) == 0);
    const auto reply = ra.enroll(*mic, *key, *new_key, {cn, {}, {}});
    CHECK(reply.rep.status == PkiStatus::success);
}

TEST_CASE("MIC requests for anything else are refused and audited") {
    Phone phone;
    SUBCASE("the CN of another device") {
        TestRa ra(kProfiles);
        const auto other = fixtureCert("mic-cp8875-b");
        checkRefused(
            ra, ra.enroll(*phone.mic, *phone.mic_key, *phone.new_key, {commonName(*other), {}, {}}),
            FailInfo::badRequest, "is neither the MIC CN '" + kMicCn + "'");
    }
    SUBCASE("a domain that is not the profile's") {
        TestRa ra(kProfiles);
        checkRefused(ra,
                     ra.enroll(*phone.mic, *phone.mic_key, *phone.new_key,
                               {kMicCn + ".evil.example", {}, {}}),
                     FailInfo::badRequest, "nor '" + kMicCn + ".example.nl'");
    }
    SUBCASE("a SAN that is not the User ID or the CN") {
        TestRa ra(kProfiles);
        checkRefused(ra,
                     ra.enroll(*phone.mic, *phone.mic_key, *phone.new_key,
                               {kMicCn, {{SubjectAltName::Type::dns, "www.bank.example"}}, {}}),
                     FailInfo::badRequest, "subjectAltName DNS:www.bank.example is not allowed");
    }
    SUBCASE("without a profile domain only the bare MIC CN is allowed") {
        TestRa ra("[auth]\n");
        checkRefused(
            ra,
            ra.enroll(*phone.mic, *phone.mic_key, *phone.new_key, {kMicCn + ".example.nl", {}, {}}),
            FailInfo::badRequest, "is neither the MIC CN");
    }
}

TEST_CASE("expired MICs need allow-expired-mic") {
    const auto mic = fixtureCert("mic-expired");
    const auto key = fixtureKey("mic-expired");
    const auto new_key = fixtureKey("newkey-1");
    const CsrSpec spec{commonName(*mic), {}, {}};
    {
        TestRa ra(kProfiles);
        checkRefused(ra, ra.enroll(*mic, *key, *new_key, spec), FailInfo::badRequest,
                     "certificate has expired");
    }
    TestRa lenient(kProfiles + "allow-expired-mic = true\n");
    CHECK(lenient.enroll(*mic, *key, *new_key, spec).rep.status == PkiStatus::success);
}

TEST_CASE("signers that do not chain to the manufacturer roots are refused") {
    const auto new_key = fixtureKey("newkey-1");
    for (const char* name : {"untrusted-mic", "mic-spoofed-issuer"}) {
        CAPTURE(name);
        TestRa ra(kProfiles);
        const auto cert = fixtureCert(name);
        const auto key = fixtureKey("untrusted-mic");
        checkRefused(ra, ra.enroll(*cert, *key, *new_key, {kMicCn, {}, {}}), FailInfo::badRequest,
                     "is neither issued by this CA nor trusted by manufacturer-roots");
    }
}

TEST_CASE("a self-signed MIC look-alike is a challenge request, and fails without the secret") {
    const auto fake = fixtureCert("fake-mic-selfsigned");
    const auto key = fixtureKey("fake-mic-selfsigned");
    const auto new_key = fixtureKey("newkey-1");
    {
        TestRa ra("[auth]\n");  // challenge disabled
        checkRefused(ra, ra.enroll(*fake, *key, *new_key, {kMicCn, {}, {}}), FailInfo::badRequest,
                     "challenge authentication is disabled");
    }
    TestRa ra(kProfiles);
    checkRefused(ra, ra.enroll(*fake, *key, *new_key, {kMicCn, {}, {}}), FailInfo::badRequest,
                 "without a challengePassword");
    CHECK(ra.audit().front().method == "challenge");
}

TEST_CASE("challenge authentication") {
    TestRa ra(kProfiles);
    const auto key = fixtureKey("newkey-3");
    const auto signer = makeSelfSigned(*key, "SCEP SIGNER");
    const auto new_key = fixtureKey("newkey-1");
    SUBCASE("the wrong secret is refused without echoing either secret") {
        checkRefused(ra, ra.enroll(*signer, *key, *new_key, {"device-1", {}, std::string("guess")}),
                     FailInfo::badRequest, "challengePassword does not match");
        for (const auto& event : ra.audit()) {
            CHECK(event.reason.find("guess") == std::string::npos);
            CHECK(event.reason.find("s3cret") == std::string::npos);
        }
    }
    SUBCASE("the right secret issues; the CN is then bound to the first key") {
        const auto first =
            ra.enroll(*signer, *key, *new_key, {"device-1", {}, std::string("s3cret-challenge")});
        REQUIRE(first.rep.status == PkiStatus::success);
        const auto other_key = fixtureKey("newkey-2");
        const auto second =
            ra.enroll(*signer, *key, *other_key, {"device-1", {}, std::string("s3cret-challenge")});
        CHECK(second.rep.status == PkiStatus::failure);
        CHECK(ra.certificateCount() == 1);
        CHECK(ra.audit().front().reason.find("already holds active certificate") !=
              std::string::npos);
    }
    SUBCASE("only a DNS SAN equal to the CN") {
        checkRefused(ra,
                     ra.enroll(*signer, *key, *new_key,
                               {"device-1",
                                {{SubjectAltName::Type::email, "a@b.c"}},
                                std::string("s3cret-challenge")}),
                     FailInfo::badRequest, "not allowed with challenge authentication");
    }
}

TEST_CASE("renewal is decided by the signer: a certificate this RA issued") {
    TestRa ra(kProfiles);
    Phone phone;
    const auto first = ra.enroll(*phone.mic, *phone.mic_key, *phone.new_key, {kMicCn, {}, {}});
    REQUIRE(first.cert);
    const auto next_key = fixtureKey("newkey-2");
    SUBCASE("with a new key and the same CN, as RenewalReq or as PKCSReq; each once") {
        const auto second_key = generateKey("rsa:2048");
        const auto second = ra.enroll(*first.cert, *phone.new_key, *second_key, {kMicCn, {}, {}},
                                      "", MessageType::RenewalReq);
        REQUIRE(second.cert);
        CHECK(ra.audit()[1].method == "renewal");
        // The renewed certificate is superseded (not revoked: the setting is
        // off), so it cannot renew a second time...
        const auto old =
            ra.store->findCertificate(serialHex(X509_get0_serialNumber(first.cert.get())));
        CHECK(old->superseded_by == serialHex(X509_get0_serialNumber(second.cert.get())));
        CHECK_FALSE(old->revoked);
        const auto again = ra.enroll(*first.cert, *phone.new_key, *generateKey("rsa:2048"),
                                     {kMicCn, {}, {}}, "", MessageType::RenewalReq);
        CHECK(again.rep.status == PkiStatus::failure);
        CHECK(ra.audit().front().reason.find("was superseded by") != std::string::npos);
        // ...while its successor renews, also as a PKCSReq, in any case.
        const auto third =
            ra.enroll(*second.cert, *second_key, *generateKey("rsa:2048"),
                      {"cp-8875-sep001a2b3c4d5e.", {}, {}}, "", MessageType::PKCSReq);
        REQUIRE(third.cert);
        CHECK(ra.audit()[1].method == "renewal");
        CHECK(ra.certificateCount() == 3);
        CHECK(ra.store->revokedCertificates().empty());
    }
    SUBCASE("the old key is refused") {
        const auto reply = ra.enroll(*first.cert, *phone.new_key, *phone.new_key, {kMicCn, {}, {}});
        CHECK(reply.rep.status == PkiStatus::failure);
        CHECK(ra.audit().front().reason.find("renewal must use a new key") != std::string::npos);
    }
    SUBCASE("a different CN is refused") {
        const auto reply =
            ra.enroll(*first.cert, *phone.new_key, *next_key, {"someone-else", {}, {}});
        CHECK(reply.rep.status == PkiStatus::failure);
        CHECK(ra.audit().front().reason.find("differs from the renewed certificate") !=
              std::string::npos);
    }
    SUBCASE("a revoked certificate is refused") {
        ra.service->administration().revoke(serialHex(X509_get0_serialNumber(first.cert.get())), 1,
                                            "test");
        const auto reply = ra.enroll(*first.cert, *phone.new_key, *next_key, {kMicCn, {}, {}});
        CHECK(reply.rep.status == PkiStatus::failure);
        CHECK(ra.audit().front().reason.find("is revoked") != std::string::npos);
        CHECK(ra.certificateCount() == 1);
    }
}

TEST_CASE("an EC SUDI cannot receive an encrypted reply: badAlg") {
    TestRa ra(kProfiles);
    const auto sudi = fixtureCert("sudi-ec");
    const auto key = fixtureKey("sudi-ec");
    const auto new_key = fixtureKey("newkey-1");
    checkRefused(ra, ra.enroll(*sudi, *key, *new_key, {commonName(*sudi), {}, {}}),
                 FailInfo::badAlg, "not RSA");
}

TEST_CASE("MIC identity and profile lookup") {
    const auto mic = fixtureCert("mic-cp8875");
    const MicIdentity identity = parseMicIdentity(*mic);
    CHECK(identity.common_name == kMicCn);
    CHECK(identity.model == "CP-8875");
    CHECK(identity.mac == "00:1A:2B:3C:4D:5E");
    CHECK(identity.pid == "CP-8875");
    CHECK(identity.serial_number == "FCH2133E8B9");
    CHECK(identity.issuer.find("CN=Test Manufacturing CA SHA2") != std::string::npos);

    const DhcpConfig dhcp = parseDhcpConfig(
        "[[profile]]\nname=\"a\"\nvendor-class=[\"*CP-8875*\"]\nserver=\"10.0.0.1\"\n"
        "fingerprint=\"" +
            std::string(40, 'a') +
            "\"\ndomain=\"a.example\"\n"
            "[[profile]]\nname=\"b\"\nvendor-class=[\"Cisco IP Phone "
            "DP-9841\"]\nserver=\"10.0.0.1\"\n"
            "fingerprint=\"" +
            std::string(40, 'a') + "\"\ndomain=\"b.example\"\n",
        "x.toml");
    CHECK(profileForModel(dhcp, identity) == &dhcp.profiles[0]);
    const MicIdentity dp = parseMicIdentity(*fixtureCert("mic-dp9841"));
    CHECK(profileForModel(dhcp, dp) == &dhcp.profiles[1]);
    MicIdentity unknown;
    unknown.model = "CP-7821";
    CHECK(profileForModel(dhcp, unknown) == nullptr);
}

TEST_CASE("Cisco's real manufacturing bundle loads and does not trust a test MIC") {
    const ManufacturerRoots cisco(TEST_SOURCE_DIR "/conf/manufacturer-roots.pem");
    CHECK(cisco.anchorCount() == 5);
    CHECK(cisco.intermediateCount() == 4);
    const auto mic = fixtureCert("mic-cp8875");
    CHECK(cisco.verify(*mic, {}, false, std::time(nullptr)) ==
          "unable to get local issuer certificate");
    const ManufacturerRoots test(fixturePki() + "/manufacturer-roots.pem");
    CHECK(test.verify(*mic, {}, false, std::time(nullptr)).empty());
}

namespace {

// What the responder does: the CSR as it arrives on the wire, parsed.
CsrSummary inspect(const X509_REQ& csr) {
    return inspectCsr(requestFromDer(requestDer(csr)));
}

}  // namespace

TEST_CASE("CSR inspection refuses what must never be issued") {
    const auto key = fixtureKey("newkey-1");
    SUBCASE("two CNs") {
        auto csr = makeCsr(*key, {"a", {}, {}});
        X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(csr.get()), "CN", MBSTRING_ASC,
                                   reinterpret_cast<const unsigned char*>("b"), -1, -1, 0);
        X509_REQ_sign(csr.get(), key.get(), EVP_sha256());
        CHECK_THROWS_WITH(inspect(*csr), doctest::Contains("exactly one CN"));
    }
    SUBCASE("a broken self-signature") {
        auto csr = makeCsr(*key, {"a", {}, {}});
        X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(csr.get()), "O", MBSTRING_ASC,
                                   reinterpret_cast<const unsigned char*>("changed"), -1, -1, 0);
        CHECK_THROWS_WITH(inspect(*csr), doctest::Contains("signature does not verify"));
    }
    SUBCASE("a weak key") {
        const auto weak = EvpPkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{1024}));
        CHECK_THROWS_WITH(inspect(*makeCsr(*weak, {"a", {}, {}})),
                          doctest::Contains("at least 2048"));
    }
    SUBCASE("a CN longer than 64 characters") {
        CHECK_THROWS_WITH(inspect(*makeCsr(*key, {std::string(65, 'x'), {}, {}})),
                          doctest::Contains("1-64 printable"));
    }
    SUBCASE("the challenge is read") {
        const auto summary = inspect(*makeCsr(*key, {"a", {}, std::string("pw")}));
        CHECK(summary.challenge == std::string("pw"));
    }
}

TEST_CASE("secrets compare in constant time and an empty secret never matches") {
    CHECK(secretsEqual("abc", "abc"));
    CHECK_FALSE(secretsEqual("abd", "abc"));
    CHECK_FALSE(secretsEqual("abcd", "abc"));
    CHECK_FALSE(secretsEqual("", ""));
}

TEST_CASE("GET message parameters in every alphabet clients use") {
    const Bytes data = {0xfb, 0xff, 0xbf, 0x00, 0x01};  // base64 "+/+/AAE=" / "-_-_AAE"
    CHECK(decodeMessageParameter("+/+/AAE=") == data);
    CHECK(decodeMessageParameter("-_-_AAE") == data);
    CHECK(decodeMessageParameter(" / /AAE=") == data);  // '+' turned into ' ' by URL decoding
    CHECK(decodeMessageParameter("+/+/\r\nAAE=") == data);
    CHECK_FALSE(decodeMessageParameter(""));
    CHECK_FALSE(decodeMessageParameter("!!!!"));
    CHECK_FALSE(decodeMessageParameter("+/+/A"));  // truncated
}

namespace {

// A P-256 key whose encodings spell the curve out (ECParameters) instead of
// naming it: what `openssl ecparam -param_enc explicit` writes.
EvpPkeyPtr explicitCurveKey() {
    EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
    REQUIRE(key);
    REQUIRE(EVP_PKEY_set_utf8_string_param(key.get(), OSSL_PKEY_PARAM_EC_ENCODING,
                                           OSSL_PKEY_EC_ENCODING_EXPLICIT) == 1);
    return key;
}

CertificationRequest roundTrip(const X509ReqPtr& csr) {
    return requestFromDer(requestDer(*csr));
}

std::string micCn(const char* fixture) {
    return commonName(*fixtureCert(fixture));
}

}  // namespace

TEST_CASE("EC keys must name their curve (RFC 5480): explicit parameters are refused") {
    const auto named = EvpPkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
    const auto named_csr = roundTrip(makeCsr(*named, {"ec-device", {}, {}}));
    CHECK_NOTHROW(inspectCsr(named_csr));
    CHECK_FALSE(hasExplicitEcParameters(*X509_REQ_get_X509_PUBKEY(named_csr.request.get())));

    const auto explicit_key = explicitCurveKey();
    const auto csr = roundTrip(makeCsr(*explicit_key, {"ec-device", {}, {}}));
    // Really spelled out: the SubjectPublicKeyInfo carries the whole curve.
    unsigned char* der = nullptr;
    const int length = i2d_X509_PUBKEY(X509_REQ_get_X509_PUBKEY(csr.request.get()), &der);
    OPENSSL_free(der);
    CHECK(length > 200);
    CHECK_THROWS_WITH(inspectCsr(csr), doctest::Contains("RFC 5480 allows only a named curve"));

    TestRa ra(kProfiles);
    const auto signer_key = fixtureKey("newkey-3");
    const auto signer = makeSelfSigned(*signer_key, "SCEP SIGNER");
    checkRefused(ra,
                 ra.enroll(*signer, *signer_key, *explicit_key,
                           {"ec-device", {}, std::string("s3cret-challenge")}),
                 FailInfo::badRequest, "named curve");
    const auto ok =
        ra.enroll(*signer, *signer_key, *named, {"ec-device", {}, std::string("s3cret-challenge")});
    REQUIRE(ok.cert);
    CHECK_FALSE(hasExplicitEcParameters(*X509_get_X509_PUBKEY(ok.cert.get())));
}

TEST_CASE("a CSR's key read from its SubjectPublicKeyInfo is the key OpenSSL decodes") {
    for (const char* type : {"RSA", "P-256", "P-384"}) {
        CAPTURE(type);
        const EvpPkeyPtr key(std::string(type) == "RSA"
                                 ? EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048})
                                 : EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", type));
        REQUIRE(key);
        const auto csr = roundTrip(makeCsr(*key, {"device", {}, {}}));
        REQUIRE(csr.key);
        CHECK(EVP_PKEY_eq(csr.key.get(), key.get()) == 1);
        CHECK(requestSignatureVerifies(csr));
    }
    // Any other key type goes through OpenSSL's own decoder, and is refused.
    const EvpPkeyPtr ed25519(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
    X509ReqPtr csr(X509_REQ_new());
    X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(csr.get()), "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("device"), -1, -1, 0);
    REQUIRE(X509_REQ_set_pubkey(csr.get(), ed25519.get()) == 1);
    REQUIRE(X509_REQ_sign(csr.get(), ed25519.get(), nullptr) > 0);
    const auto parsed = roundTrip(csr);
    REQUIRE(parsed.key);
    CHECK(EVP_PKEY_eq(parsed.key.get(), ed25519.get()) == 1);
    CHECK(requestSignatureVerifies(parsed));
    CHECK_THROWS_WITH(inspectCsr(parsed), doctest::Contains("must be RSA or EC"));
}

TEST_CASE("a CSR whose RSA key has bytes after it, or a wrong signature, is refused") {
    const auto key = fixtureKey("newkey-1");
    auto csr = makeCsr(*key, {"device", {}, {}});
    // RSAPublicKey followed by junk inside the bit string, re-signed so that
    // only the key is wrong.
    ASN1_OBJECT* algorithm = nullptr;
    const unsigned char* bits = nullptr;
    int length = 0;
    X509_ALGOR* parameters = nullptr;
    REQUIRE(X509_PUBKEY_get0_param(&algorithm, &bits, &length, &parameters,
                                   X509_REQ_get_X509_PUBKEY(csr.get())) == 1);
    Bytes padded(bits, bits + length);
    padded.push_back(0);
    auto* copy = static_cast<unsigned char*>(OPENSSL_memdup(padded.data(), padded.size()));
    REQUIRE(X509_PUBKEY_set0_param(X509_REQ_get_X509_PUBKEY(csr.get()),
                                   OBJ_nid2obj(NID_rsaEncryption), V_ASN1_NULL, nullptr, copy,
                                   static_cast<int>(padded.size())) == 1);
    REQUIRE(X509_REQ_sign(csr.get(), key.get(), EVP_sha256()) > 0);
    const auto parsed = requestFromDer(requestDer(*csr));
    CHECK_FALSE(parsed.key);
    CHECK_FALSE(requestSignatureVerifies(parsed));
    CHECK_THROWS_WITH(inspectCsr(parsed), doctest::Contains("signature does not verify"));

    // A sound request signed by another key.
    auto forged = makeCsr(*key, {"device", {}, {}});
    REQUIRE(X509_REQ_sign(forged.get(), fixtureKey("newkey-2").get(), EVP_sha256()) > 0);
    CHECK_FALSE(requestSignatureVerifies(roundTrip(forged)));
    CHECK_THROWS_AS(requestFromDer(Bytes{0x30, 0x03, 0x02, 0x01, 0x00}), CryptoError);
}

TEST_CASE("CNs with leading or trailing spaces, or only dots, are refused outright") {
    const auto key = fixtureKey("newkey-1");
    for (const char* cn : {" victim.example.nl", "victim.example.nl ", " ", "...", "."}) {
        CAPTURE(cn);
        CHECK_THROWS_AS(inspect(*makeCsr(*key, {cn, {}, {}})), std::invalid_argument);
    }
    CHECK_THROWS_WITH(inspect(*makeCsr(*key, {" victim.example.nl", {}, {}})),
                      doctest::Contains("leading or trailing spaces"));
    CHECK_NOTHROW(inspect(*makeCsr(*key, {"victim.example.nl.", {}, {}})));
    CHECK_NOTHROW(inspect(*makeCsr(*key, {"two words", {}, {}})));
}

TEST_CASE("identities compare canonically: spellings of an active CN are refused") {
    TestRa ra(kProfiles);
    const auto key = fixtureKey("newkey-3");
    const auto signer = makeSelfSigned(*key, "SCEP SIGNER");
    const auto first = ra.enroll(*signer, *key, *fixtureKey("newkey-1"),
                                 {"victim.example.nl", {}, std::string("s3cret-challenge")});
    REQUIRE(first.cert);
    for (const char* variant :
         {"VICTIM.example.nl", "Victim.Example.NL", "victim.example.nl.", "victim.example.nl.."}) {
        CAPTURE(variant);
        const auto reply = ra.enroll(*signer, *key, *fixtureKey("newkey-2"),
                                     {variant, {}, std::string("s3cret-challenge")});
        CHECK(reply.rep.status == PkiStatus::failure);
        CHECK(ra.audit().front().reason.find("already holds active certificate") !=
              std::string::npos);
    }
    const auto spaced = ra.enroll(*signer, *key, *fixtureKey("newkey-2"),
                                  {" victim.example.nl", {}, std::string("s3cret-challenge")});
    CHECK(spaced.rep.status == PkiStatus::failure);
    CHECK(ra.audit().front().reason.find("leading or trailing spaces") != std::string::npos);
    CHECK(ra.certificateCount() == 1);
    // A SAN is the CN in another spelling: still the CN.
    CHECK(ra.enroll(*signer, *key, *fixtureKey("newkey-2"),
                    {"Other.Example.NL",
                     {{SubjectAltName::Type::dns, "other.example.nl."}},
                     std::string("s3cret-challenge")})
              .cert);
}

TEST_CASE("MIC-shaped names: recognised in any case, with or without a domain") {
    for (const char* yes : {"CP-8875-SEP001A2B3C4D60", "CP-8875-SEP001A2B3C4D60.example.nl",
                            "cp-8875-sep001a2b3c4d60.example.nl.", "CP-9841-SEP001a2B3c4D41.X",
                            "ATA191-SEP001A2B3C4D60"}) {
        CAPTURE(yes);
        CHECK(isMicShapedName(yes));
    }
    for (const char* no : {"SEP001A2B3C4D60", "CP-8875-SEP001A2B3C4D6", "CP-8875-SEP001A2B3C4D600",
                           "CP-8875-SEP001A2B3C4D6G.example.nl", "CP 8875-SEP001A2B3C4D60",
                           "victim.example.nl", "x.CP-8875-SEP001A2B3C4D60", "-SEP001A2B3C4D60"}) {
        CAPTURE(no);
        CHECK_FALSE(isMicShapedName(no));
    }
}

TEST_CASE("a challenge never obtains a phone's MIC-shaped name; the phone's MIC still does") {
    TestRa ra(kProfiles);
    const auto key = fixtureKey("newkey-3");
    const auto signer = makeSelfSigned(*key, "SCEP SIGNER");
    const std::string cn_b = micCn("mic-cp8875-b");
    for (const std::string& cn : std::vector<std::string>{cn_b + ".example.nl", cn_b,
                                                          canonicalName(cn_b) + ".Example.NL."}) {
        CAPTURE(cn);
        checkRefused(ra,
                     ra.enroll(*signer, *key, *fixtureKey("newkey-1"),
                               {cn, {}, std::string("s3cret-challenge")}),
                     FailInfo::badRequest, "only to the phone whose MIC proves it");
    }
    const auto mic = fixtureCert("mic-cp8875-b");
    const auto mic_key = fixtureKey("mic-cp8875-b");
    CHECK(ra.enroll(*mic, *mic_key, *fixtureKey("newkey-1"), {cn_b + ".example.nl", {}, {}}).cert);
}

TEST_CASE("MIC trust: a trusted chain is not enough, it must be a phone's MIC") {
    const auto hostile_key = fixtureKey("hostile-leaf");
    const auto new_key = fixtureKey("newkey-1");
    struct Case {
        const char* fixture;
        const char* reason;
    };
    for (const Case& c : {Case{"mic-codesigning", "extendedKeyUsage excludes clientAuth"},
                          Case{"mic-keyencipherment", "key usage lacks digitalSignature"},
                          Case{"mic-wrong-issuer", "is not one of mic-issuers"},
                          Case{"sudi-router", "is not one of mic-issuers"},
                          Case{"sudi-router-phone-ca", "is not a phone MIC"}}) {
        CAPTURE(c.fixture);
        TestRa ra(kProfiles);
        const auto cert = fixtureCert(c.fixture);
        // The chain itself is trusted.
        CHECK(ra.service->runtime()->config.auth.manufacturer_roots.size() > 0);
        CHECK(ManufacturerRoots(ra.config.auth.manufacturer_roots)
                  .verify(*cert, {}, false, std::time(nullptr))
                  .empty());
        checkRefused(ra, ra.enroll(*cert, *hostile_key, *new_key, {commonName(*cert), {}, {}}),
                     FailInfo::badRequest, c.reason);
        CHECK(ra.audit().front().method == "mic");
    }
    SUBCASE("mic-issuers decides which trusted CAs issue phones") {
        TestRa ra(kProfiles + "mic-issuers = [\"Test ACT2 SUDI CA\"]\n");
        const auto cert = fixtureCert("mic-wrong-issuer");
        CHECK(ra.enroll(*cert, *hostile_key, *new_key, {commonName(*cert), {}, {}}).cert);
        Phone phone;
        const auto refused = ra.enroll(*phone.mic, *phone.mic_key, *new_key, {kMicCn, {}, {}});
        CHECK(refused.rep.status == PkiStatus::failure);
        CHECK(ra.audit().front().reason.find("is not one of mic-issuers ('Test ACT2 SUDI CA')") !=
              std::string::npos);
    }
}

TEST_CASE("MIC trust: the model must be one a profile serves, or one mic-models lists") {
    Phone phone;
    const std::string dp_only = R"(
[[profile]]
name = "dp"
vendor-class = ["Cisco Systems, Inc. IP Phone DP-9841"]
server = "http://192.0.2.1:8080"
fingerprint = "12040870625C5B755D73F5925285F8F5FF5D55AF"
domain = "example.nl"
[auth]
)";
    {
        TestRa ra(dp_only + "mic-models = []\n");
        checkRefused(ra, ra.enroll(*phone.mic, *phone.mic_key, *phone.new_key, {kMicCn, {}, {}}),
                     FailInfo::badRequest,
                     "model CP-8875 (PID CP-8875) is covered by no [[profile]] vendor-class and "
                     "not listed in [auth] mic-models");
        // The DP-9841 (CN CP-9841-SEP...) is served by its profile's model number.
        const auto dp = fixtureCert("mic-dp9841");
        CHECK(ra.enroll(*dp, *fixtureKey("mic-dp9841"), *phone.new_key,
                        {commonName(*dp) + ".example.nl", {}, {}})
                  .cert);
    }
    for (const char* listed : {"CP-8875", "cp-8875", "8875"}) {
        CAPTURE(listed);
        TestRa ra(dp_only + "mic-models = [\"" + listed + "\"]\n");
        CHECK(ra.enroll(*phone.mic, *phone.mic_key, *phone.new_key, {kMicCn, {}, {}}).cert);
    }
}
