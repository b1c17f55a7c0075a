// cmsFromDer: the certificates of a SignedData get their keys without
// OpenSSL 3.0's key decoders, and come out exactly as they arrived; what the
// direct way cannot vouch for goes through d2i_CMS_ContentInfo.
#include <doctest/doctest.h>

#include <algorithm>

#include <openssl/cms.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "ra/crypto.h"
#include "ra_support.h"

using namespace scep;
using namespace testsupport;

namespace {

Bytes der(const X509& cert) {
    return derEncode<X509, i2d_X509>(cert, "certificate");
}

// A SignedData over "content", signed by `signer`, carrying `signer` and `extra`.
Bytes signedData(X509& signer, EVP_PKEY& key, const std::vector<X509*>& extra) {
    X509StackPtr chain(sk_X509_new_null());
    for (X509* cert : extra) {
        REQUIRE(X509_up_ref(cert) == 1);
        REQUIRE(sk_X509_push(chain.get(), cert) > 0);
    }
    const Bytes content = {'c', 'o', 'n', 't', 'e', 'n', 't'};
    const BioPtr in = readOnlyBio(content);
    const CmsPtr cms(CMS_sign(&signer, &key, chain.get(), in.get(), CMS_BINARY));
    REQUIRE(cms);
    return derEncode<CMS_ContentInfo, i2d_CMS_ContentInfo>(*cms, "SignedData");
}

// The message's certificate equal to `reference` (same bytes), which must be there.
X509Ptr embedded(CMS_ContentInfo& cms, const X509& reference) {
    const X509StackPtr certs(CMS_get1_certs(&cms));
    for (int i = 0; i < sk_X509_num(certs.get()); ++i) {
        X509* cert = sk_X509_value(certs.get(), i);
        if (der(*cert) == der(reference)) {
            X509_up_ref(cert);
            return X509Ptr(cert);
        }
    }
    FAIL("the certificate is not in the message");
    return nullptr;
}

// The message verifies as the RA checks it: signature by its signer, the
// signer's chain through the message's intermediate to `root`.
void checkVerifies(CMS_ContentInfo& cms, X509& signer, X509& intermediate, X509& root) {
    CMS_SignerInfo* signer_info = sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(&cms), 0);
    CMS_SignerInfo_set1_signer_cert(signer_info, &signer);
    CHECK(CMS_verify(&cms, nullptr, nullptr, nullptr, nullptr,
                     CMS_NO_SIGNER_CERT_VERIFY | CMS_BINARY) == 1);
    OpenSslPtr<X509_STORE, X509_STORE_free> store(X509_STORE_new());
    REQUIRE(X509_STORE_add_cert(store.get(), &root) == 1);
    X509StackPtr untrusted(sk_X509_new_null());
    REQUIRE(X509_up_ref(&intermediate) == 1);
    REQUIRE(sk_X509_push(untrusted.get(), &intermediate) > 0);
    OpenSslPtr<X509_STORE_CTX, X509_STORE_CTX_free> context(X509_STORE_CTX_new());
    REQUIRE(X509_STORE_CTX_init(context.get(), store.get(), &signer, untrusted.get()) == 1);
    CHECK(X509_verify_cert(context.get()) == 1);
}

// `cert` re-signed by `issuer_key` over a TBS whose serial number has a
// long-form length (BER, not DER): 02 01 nn becomes 02 81 01 nn.
Bytes berSerialCertificate(X509& cert, EVP_PKEY& issuer_key) {
    unsigned char* raw = nullptr;
    const int length = i2d_re_X509_tbs(&cert, &raw);
    REQUIRE(length > 0);
    Bytes tbs(raw, raw + length);
    OPENSSL_free(raw);
    // 30 82 LL LL, a0 03 02 01 02 (v3), then the one-byte serial.
    REQUIRE(tbs.size() > 300);
    REQUIRE(tbs[0] == 0x30);
    REQUIRE(tbs[1] == 0x82);
    REQUIRE(tbs[4] == 0xa0);
    REQUIRE(tbs[9] == 0x02);
    REQUIRE(tbs[10] == 0x01);
    tbs.insert(tbs.begin() + 10, 0x81);
    const std::size_t body = tbs.size() - 4;
    tbs[2] = static_cast<unsigned char>(body >> 8);
    tbs[3] = static_cast<unsigned char>(body & 0xff);

    OpenSslPtr<EVP_MD_CTX, EVP_MD_CTX_free> md(EVP_MD_CTX_new());
    REQUIRE(EVP_DigestSignInit(md.get(), nullptr, EVP_sha256(), nullptr, &issuer_key) == 1);
    std::size_t signature_length = 0;
    REQUIRE(EVP_DigestSign(md.get(), nullptr, &signature_length, tbs.data(), tbs.size()) == 1);
    Bytes signature(signature_length);
    REQUIRE(EVP_DigestSign(md.get(), signature.data(), &signature_length, tbs.data(), tbs.size()) ==
            1);
    signature.resize(signature_length);
    const Bytes algorithm =
        derEncode<X509_ALGOR, i2d_X509_ALGOR>(*X509_get0_tbs_sigalg(&cert), "algorithm");
    // BIT STRING, no unused bits: i2d_ASN1_BIT_STRING would count the
    // signature's trailing zero bits as unused.
    REQUIRE(signature.size() > 255);
    const std::size_t bits_length = signature.size() + 1;
    Bytes bit_string = {0x03, 0x82, static_cast<unsigned char>(bits_length >> 8),
                        static_cast<unsigned char>(bits_length & 0xff), 0x00};
    bit_string.insert(bit_string.end(), signature.begin(), signature.end());

    Bytes content = tbs;
    content.insert(content.end(), algorithm.begin(), algorithm.end());
    content.insert(content.end(), bit_string.begin(), bit_string.end());
    Bytes out(4 + content.size());
    out[0] = 0x30;
    out[1] = 0x82;
    out[2] = static_cast<unsigned char>(content.size() >> 8);
    out[3] = static_cast<unsigned char>(content.size() & 0xff);
    std::copy(content.begin(), content.end(), out.begin() + 4);
    return out;
}

// An RSA leaf under `issuer`; with `omit_null`, its SubjectPublicKeyInfo
// leaves out rsaEncryption's NULL parameters (as some encoders do).
X509Ptr issuedLeaf(EVP_PKEY& key, X509& issuer, EVP_PKEY& issuer_key, bool omit_null = false) {
    X509Ptr cert(X509_new());
    REQUIRE(X509_set_version(cert.get(), 2) == 1);
    REQUIRE(ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 5) == 1);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(cert.get()), "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("ber-serial"), -1, -1, 0);
    REQUIRE(X509_set_issuer_name(cert.get(), X509_get_subject_name(&issuer)) == 1);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
    REQUIRE(X509_set_pubkey(cert.get(), &key) == 1);
    if (omit_null) {
        X509_PUBKEY* spki = X509_get_X509_PUBKEY(cert.get());
        const unsigned char* bits = nullptr;
        int length = 0;
        REQUIRE(X509_PUBKEY_get0_param(nullptr, &bits, &length, nullptr, spki) == 1);
        auto* copy = static_cast<unsigned char*>(OPENSSL_memdup(bits, static_cast<size_t>(length)));
        REQUIRE(X509_PUBKEY_set0_param(spki, OBJ_nid2obj(NID_rsaEncryption), V_ASN1_UNDEF, nullptr,
                                       copy, length) == 1);
    }
    REQUIRE(X509_sign(cert.get(), &issuer_key, EVP_sha256()) > 0);
    return cert;
}

}  // namespace

TEST_CASE("a SignedData's RSA and EC certificates get their keys directly, bytes unchanged") {
    const X509Ptr root = fixtureCert("mfr-root");
    const X509Ptr intermediate = fixtureCert("mfr-ca");
    // sudi-ec is an EC P-256 leaf under the same RSA manufacturing CA.
    for (const char* name : {"mic-cp8875", "sudi-ec"}) {
        CAPTURE(name);
        const X509Ptr leaf = fixtureCert(name);
        bool direct = false;
        const CmsPtr cms =
            cmsFromDer(signedData(*leaf, *fixtureKey(name), {intermediate.get()}), &direct);
        REQUIRE(cms);
        CHECK(direct);
        const X509Ptr signer = embedded(*cms, *leaf);
        const X509Ptr ca = embedded(*cms, *intermediate);
        REQUIRE(X509_get0_pubkey(signer.get()));
        REQUIRE(X509_get0_pubkey(ca.get()));
        CHECK(EVP_PKEY_eq(X509_get0_pubkey(signer.get()), X509_get0_pubkey(leaf.get())) == 1);
        CHECK(EVP_PKEY_eq(X509_get0_pubkey(ca.get()), X509_get0_pubkey(intermediate.get())) == 1);
        CHECK(der(*signer) == der(*leaf));
        CHECK(der(*ca) == der(*intermediate));
        checkVerifies(*cms, *signer, *ca, *root);
    }
}

TEST_CASE("a self-issued certificate in a SignedData sends it through OpenSSL's own parse") {
    // A self-signed signer, and a chain that carries its root.
    const X509Ptr fake = fixtureCert("fake-mic-selfsigned");
    const X509Ptr mic = fixtureCert("mic-cp8875");
    const X509Ptr intermediate = fixtureCert("mfr-ca");
    const X509Ptr root = fixtureCert("mfr-root");
    bool direct = true;
    const CmsPtr alone =
        cmsFromDer(signedData(*fake, *fixtureKey("fake-mic-selfsigned"), {}), &direct);
    REQUIRE(alone);
    CHECK_FALSE(direct);
    CHECK(X509_self_signed(embedded(*alone, *fake).get(), 1) == 1);

    direct = true;
    const CmsPtr with_root = cmsFromDer(
        signedData(*mic, *fixtureKey("mic-cp8875"), {intermediate.get(), root.get()}), &direct);
    REQUIRE(with_root);
    CHECK_FALSE(direct);
    const X509Ptr signer = embedded(*with_root, *mic);
    checkVerifies(*with_root, *signer, *embedded(*with_root, *intermediate), *root);
}

TEST_CASE("a certificate that is not DER keeps the bytes its signature covers") {
    const X509Ptr intermediate = fixtureCert("mfr-ca");
    const EvpPkeyPtr ca_key = fixtureKey("mfr-ca");
    const EvpPkeyPtr key = fixtureKey("newkey-1");
    const Bytes ber = berSerialCertificate(*issuedLeaf(*key, *intermediate, *ca_key), *ca_key);
    const X509Ptr leaf = certificateFromDer(ber);
    REQUIRE(leaf);
    REQUIRE(X509_verify(leaf.get(), X509_get0_pubkey(intermediate.get())) == 1);

    bool direct = false;
    const CmsPtr cms = cmsFromDer(signedData(*leaf, *key, {intermediate.get()}), &direct);
    REQUIRE(cms);
    // The key is set, but the TBS as it arrived is what is signed and encoded.
    CHECK(direct);
    const X509Ptr signer = embedded(*cms, *leaf);
    CHECK(der(*signer) == ber);
    CHECK(X509_verify(signer.get(), X509_get0_pubkey(intermediate.get())) == 1);
    CHECK(EVP_PKEY_eq(X509_get0_pubkey(signer.get()), key.get()) == 1);
}

TEST_CASE("a key whose SubjectPublicKeyInfo would encode differently takes OpenSSL's own parse") {
    const X509Ptr intermediate = fixtureCert("mfr-ca");
    const EvpPkeyPtr key = fixtureKey("newkey-1");
    const X509Ptr leaf = issuedLeaf(*key, *intermediate, *fixtureKey("mfr-ca"), true);
    const Bytes spki = derEncode<X509_PUBKEY, i2d_X509_PUBKEY>(*X509_get_X509_PUBKEY(leaf.get()),
                                                               "SubjectPublicKeyInfo");

    bool direct = true;
    const CmsPtr cms = cmsFromDer(signedData(*leaf, *key, {intermediate.get()}), &direct);
    REQUIRE(cms);
    // Encoded from the key, the parameters would gain their NULL.
    CHECK_FALSE(direct);
    const X509Ptr signer = embedded(*cms, *leaf);
    CHECK(derEncode<X509_PUBKEY, i2d_X509_PUBKEY>(*X509_get_X509_PUBKEY(signer.get()),
                                                  "SubjectPublicKeyInfo") == spki);
    CHECK(X509_verify(signer.get(), X509_get0_pubkey(intermediate.get())) == 1);
}

TEST_CASE("cmsFromDer refuses what is not exactly one ContentInfo") {
    const X509Ptr mic = fixtureCert("mic-cp8875");
    Bytes message = signedData(*mic, *fixtureKey("mic-cp8875"), {});
    REQUIRE(cmsFromDer(message));
    CHECK_FALSE(cmsFromDer({}));
    CHECK_FALSE(cmsFromDer(Bytes(message.begin(), message.end() - 1)));
    message.push_back(0);
    bool direct = true;
    CHECK_FALSE(cmsFromDer(message, &direct));
    CHECK_FALSE(direct);
}
