#include <doctest/doctest.h>

#include <algorithm>
#include <random>
#include <set>

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pkcs7.h>

#include "ra/crypto.h"
#include "ra/scep/client_codec.h"
#include "ra/scep/message.h"

using namespace scep;

namespace {

// ---- keys and certificates, generated once (RSA key generation is slow) ----

struct Party {
    EvpPkeyPtr key;
    X509Ptr cert;
};

X509Ptr selfSigned(EVP_PKEY& key, const std::string& common_name, long serial) {
    X509Ptr cert(X509_new());
    REQUIRE(cert);
    X509_NAME* name = X509_get_subject_name(cert.get());
    REQUIRE(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                       reinterpret_cast<const unsigned char*>(common_name.c_str()),
                                       -1, -1, 0) == 1);
    REQUIRE(X509_set_version(cert.get(), X509_VERSION_3) == 1);
    REQUIRE(ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial) == 1);
    REQUIRE(X509_set_issuer_name(cert.get(), name) == 1);
    REQUIRE(X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60));
    REQUIRE(X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600));
    REQUIRE(X509_set_pubkey(cert.get(), &key) == 1);
    REQUIRE(X509_sign(cert.get(), &key, EVP_sha256()) > 0);
    return cert;
}

Party makeParty(const std::string& key_spec, const std::string& common_name, long serial) {
    Party party{generateKey(key_spec), nullptr};
    party.cert = selfSigned(*party.key, common_name, serial);
    return party;
}

const Party& ra() {
    static const Party party = makeParty("rsa:2048", "Unit Test RA", 1001);
    return party;
}
const Party& otherRa() {
    static const Party party = makeParty("rsa:2048", "Some Other RA", 1002);
    return party;
}
const Party& client() {
    static const Party party = makeParty("rsa:2048", "SCEP SIGNER", 2001);
    return party;
}
const Party& ecClient() {
    static const Party party = makeParty("ec:p256", "EC SIGNER", 2002);
    return party;
}

Bytes csrFor(const Party& party) {
    X509ReqPtr csr(X509_REQ_new());
    REQUIRE(csr);
    X509_REQ_set_version(csr.get(), 0);  // v1; OpenSSL 3.5 verifies nothing else
    REQUIRE(X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(csr.get()), "CN", MBSTRING_ASC,
                                       reinterpret_cast<const unsigned char*>("phone"), -1, -1,
                                       0) == 1);
    REQUIRE(X509_REQ_set_pubkey(csr.get(), party.key.get()) == 1);
    REQUIRE(X509_REQ_sign(csr.get(), party.key.get(), EVP_sha256()) > 0);
    return requestDer(*csr);
}

// Frees the stack only: the certificates stay with their owners.
struct BorrowedStackDeleter {
    void operator()(STACK_OF(X509) * stack) const { sk_X509_free(stack); }
};
using BorrowedStackPtr = std::unique_ptr<STACK_OF(X509), BorrowedStackDeleter>;

// ---- building requests ----

const Bytes kNonce = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

RequestParams requestParams(MessageType type, int digest_nid = 0, int cipher_nid = 0) {
    RequestParams params;
    params.type = type;
    params.transaction_id = "3GAbUtMXXC8zXyP11dxRE4LIpNI=";
    params.sender_nonce = kNonce;
    params.digest_nid = digest_nid;
    params.cipher_nid = cipher_nid;
    return params;
}

Bytes clientRequest(const RequestParams& params, const Bytes& content,
                    const Party& signer = client(), const Party& recipient = ra()) {
    return buildPkiMessage(params, content, *signer.cert, *signer.key, *recipient.cert);
}

// A signed attribute as a hostile client might send it: any OID, any type,
// any number of values.
struct RawAttribute {
    std::string oid;
    int type;
    std::vector<std::string> values;
};

const std::string kMessageTypeOid = "2.16.840.1.113733.1.9.2";
const std::string kPkiStatusOid = "2.16.840.1.113733.1.9.3";
const std::string kFailInfoOid = "2.16.840.1.113733.1.9.4";
const std::string kSenderNonceOid = "2.16.840.1.113733.1.9.5";
const std::string kRecipientNonceOid = "2.16.840.1.113733.1.9.6";
const std::string kTransactionIdOid = "2.16.840.1.113733.1.9.7";

std::vector<RawAttribute> validAttributes() {
    return {
        {kMessageTypeOid, V_ASN1_PRINTABLESTRING, {"19"}},
        {kTransactionIdOid, V_ASN1_PRINTABLESTRING, {"TX-1"}},
        {kSenderNonceOid, V_ASN1_OCTET_STRING, {std::string(16, 'n')}},
    };
}

std::vector<RawAttribute> withAttribute(const std::string& oid, RawAttribute replacement) {
    std::vector<RawAttribute> attributes = validAttributes();
    for (RawAttribute& attribute : attributes) {
        if (attribute.oid == oid) {
            attribute = std::move(replacement);
        }
    }
    return attributes;
}

std::vector<RawAttribute> withoutAttribute(const std::string& oid) {
    std::vector<RawAttribute> attributes = validAttributes();
    attributes.erase(std::remove_if(attributes.begin(), attributes.end(),
                                    [&](const RawAttribute& a) { return a.oid == oid; }),
                     attributes.end());
    return attributes;
}

void addRawAttribute(CMS_SignerInfo& signer_info, const RawAttribute& raw) {
    Asn1ObjectPtr oid(OBJ_txt2obj(raw.oid.c_str(), 1));
    REQUIRE(oid);
    OpenSslPtr<X509_ATTRIBUTE, X509_ATTRIBUTE_free> attribute(
        X509_ATTRIBUTE_create_by_OBJ(nullptr, oid.get(), 0, nullptr, -1));
    REQUIRE(attribute);
    for (const std::string& value : raw.values) {
        REQUIRE(X509_ATTRIBUTE_set1_data(attribute.get(), raw.type, value.data(),
                                         static_cast<int>(value.size())) == 1);
    }
    REQUIRE(CMS_signed_add1_attr(&signer_info, attribute.get()) == 1);
}

struct RawOptions {
    std::vector<const Party*> signers = {&client()};
    std::vector<RawAttribute> attributes = validAttributes();
    Bytes content = Bytes(40, 0x42);
    bool detached = false;
    bool embed_signer = true;
    std::vector<X509*> certs_before_signer;
    const EVP_MD* digest = EVP_sha256();
};

// A pkiMessage built with the CMS API directly, so that tests can produce
// what buildPkiMessage never would.
Bytes rawMessage(const RawOptions& options) {
    const unsigned flags = CMS_BINARY | CMS_PARTIAL | (options.detached ? CMS_DETACHED : 0u);
    CmsPtr cms(CMS_sign(nullptr, nullptr, nullptr, nullptr, flags));
    REQUIRE(cms);
    for (X509* cert : options.certs_before_signer) {
        REQUIRE(CMS_add1_cert(cms.get(), cert) == 1);
    }
    for (const Party* signer : options.signers) {
        const unsigned signer_flags = CMS_NOSMIMECAP | (options.embed_signer ? 0u : CMS_NOCERTS);
        CMS_SignerInfo* signer_info = CMS_add1_signer(
            cms.get(), signer->cert.get(), signer->key.get(), options.digest, signer_flags);
        REQUIRE(signer_info);
        for (const RawAttribute& attribute : options.attributes) {
            addRawAttribute(*signer_info, attribute);
        }
    }
    BioPtr in(BIO_new_mem_buf(options.content.data(), static_cast<int>(options.content.size())));
    REQUIRE(CMS_final(cms.get(), in.get(), nullptr, CMS_BINARY) == 1);
    unsigned char* der = nullptr;
    const int length = i2d_CMS_ContentInfo(cms.get(), &der);
    REQUIRE(length > 0);
    Bytes out(der, der + length);
    OPENSSL_free(der);
    return out;
}

// ---- inspecting messages ----

CmsPtr decodeCms(const Bytes& der) {
    const unsigned char* p = der.data();
    CmsPtr cms(d2i_CMS_ContentInfo(nullptr, &p, static_cast<long>(der.size())));
    REQUIRE(cms);
    return cms;
}

CMS_SignerInfo& onlySignerInfo(CMS_ContentInfo& cms) {
    STACK_OF(CMS_SignerInfo)* signers = CMS_get0_SignerInfos(&cms);
    REQUIRE(sk_CMS_SignerInfo_num(signers) == 1);
    return *sk_CMS_SignerInfo_value(signers, 0);
}

std::string oidText(const ASN1_OBJECT* object) {
    char text[128];
    REQUIRE(OBJ_obj2txt(text, sizeof(text), object, 1) > 0);
    return text;
}

std::multiset<std::string> signedAttributeOids(CMS_SignerInfo& signer_info) {
    std::multiset<std::string> oids;
    for (int i = 0; i < CMS_signed_get_attr_count(&signer_info); ++i) {
        oids.insert(oidText(X509_ATTRIBUTE_get0_object(CMS_signed_get_attr(&signer_info, i))));
    }
    return oids;
}

int nidOf(const X509_ALGOR* algorithm) {
    const ASN1_OBJECT* object = nullptr;
    X509_ALGOR_get0(&object, nullptr, nullptr, algorithm);
    return OBJ_obj2nid(object);
}

struct SignerAlgorithms {
    int digest;
    int signature;
};

SignerAlgorithms signerAlgorithms(const Bytes& der) {
    CmsPtr cms = decodeCms(der);
    X509_ALGOR* digest = nullptr;
    X509_ALGOR* signature = nullptr;
    CMS_SignerInfo_get0_algs(&onlySignerInfo(*cms), nullptr, nullptr, &digest, &signature);
    return {nidOf(digest), nidOf(signature)};
}

// Read independently of the code under test, through the PKCS#7 structs.
int envelopeCipherNid(const Bytes& envelope) {
    const unsigned char* p = envelope.data();
    OpenSslPtr<PKCS7, PKCS7_free> p7(d2i_PKCS7(nullptr, &p, static_cast<long>(envelope.size())));
    REQUIRE(p7);
    REQUIRE(PKCS7_type_is_enveloped(p7.get()));
    return OBJ_obj2nid(p7->d.enveloped->enc_data->algorithm->algorithm);
}

bool sameCert(const X509& a, const X509& b) {
    return X509_cmp(&a, &b) == 0;
}

Bytes flipped(Bytes der, std::size_t offset) {
    REQUIRE(offset < der.size());
    der[offset] ^= 0x01;
    return der;
}

std::size_t offsetOf(const Bytes& haystack, const Bytes& needle) {
    const auto found = std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end());
    REQUIRE(found != haystack.end());
    return static_cast<std::size_t>(found - haystack.begin());
}

// The request must be refused as not answerable, for the expected reason,
// leaving OpenSSL's error queue empty.
void expectRejected(const Bytes& der, const std::string& reason) {
    CAPTURE(reason);
    try {
        parsePkiMessage(der);
        FAIL("accepted");
    } catch (const ScepError& error) {
        CHECK_FALSE(error.answerable());
        CHECK_MESSAGE(std::string(error.what()).find(reason) != std::string::npos, error.what());
    }
    CHECK(ERR_peek_error() == 0);
}

void expectDecryptRejected(const Bytes& envelope, FailInfo fail, bool allow_des = true) {
    try {
        decryptEnvelope(envelope, *ra().key, *ra().cert, allow_des);
        FAIL("decrypted");
    } catch (const ScepError& error) {
        CHECK(error.answerable());
        CHECK(error.fail() == fail);
    }
    CHECK(ERR_peek_error() == 0);
}

Bytes degenerateWith(const X509& cert) {
    return degenerateSignedData({&cert});
}

// What the RA does for a request that decrypts: SUCCESS with `content`.
Bytes successReply(const PkiRequest& request, const Decrypted& decrypted, const Bytes& content) {
    CertRepParams params;
    params.status = PkiStatus::success;
    params.transaction_id = request.transaction_id;
    params.recipient_nonce = request.sender_nonce;
    params.digest_nid = request.digest_nid;
    params.cipher_nid = decrypted.cipher_nid;
    params.recipient = request.signer.get();
    return buildCertRep(params, &content, *ra().key, *ra().cert);
}

Bytes statusReply(const PkiRequest& request, PkiStatus status, std::optional<FailInfo> fail = {}) {
    CertRepParams params;
    params.status = status;
    params.fail = fail;
    params.transaction_id = request.transaction_id;
    params.recipient_nonce = request.sender_nonce;
    params.digest_nid = request.digest_nid;
    return buildCertRep(params, nullptr, *ra().key, *ra().cert);
}

// PENDING/FAILURE embed an empty eContent rather than none at all.
bool hasEmptyEContent(CMS_ContentInfo& cms) {
    ASN1_OCTET_STRING** content = CMS_get0_content(&cms);
    return CMS_is_detached(&cms) == 0 && content && *content && ASN1_STRING_length(*content) == 0;
}

// What certmonger does with a reply: the legacy PKCS7_verify, which fails
// with "no content" on a detached SignedData.
bool verifiesAsPkcs7(const Bytes& reply) {
    const unsigned char* p = reply.data();
    OpenSslPtr<PKCS7, PKCS7_free> p7(d2i_PKCS7(nullptr, &p, static_cast<long>(reply.size())));
    X509StorePtr store(X509_STORE_new());
    const BioPtr out(BIO_new(BIO_s_mem()));
    const bool ok = p7 && store && out &&
                    PKCS7_verify(p7.get(), nullptr, store.get(), nullptr, out.get(),
                                 PKCS7_NOVERIFY | PKCS7_BINARY) == 1;
    ERR_clear_error();
    return ok;
}

X509CrlPtr makeCrl(const Party& issuer) {
    X509CrlPtr crl(X509_CRL_new());
    REQUIRE(crl);
    REQUIRE(X509_CRL_set_version(crl.get(), 1) == 1);
    REQUIRE(X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(issuer.cert.get())) == 1);
    Asn1TimePtr now(X509_gmtime_adj(nullptr, 0));
    REQUIRE(now);
    REQUIRE(X509_CRL_set1_lastUpdate(crl.get(), now.get()) == 1);
    REQUIRE(X509_CRL_sign(crl.get(), issuer.key.get(), EVP_sha256()) > 0);
    return crl;
}

const std::set<int> kAllCiphers = {NID_aes_128_cbc, NID_aes_192_cbc, NID_aes_256_cbc,
                                   NID_des_ede3_cbc, NID_des_cbc};
const std::set<int> kMirroredDigests = {NID_sha1, NID_sha256, NID_sha512};

}  // namespace

TEST_CASE("PKCSReq round trip for every accepted cipher and digest") {
    const Bytes csr = csrFor(client());
    for (const int cipher : kAllCiphers) {
        for (const int digest : kMirroredDigests) {
            CAPTURE(OBJ_nid2sn(cipher));
            CAPTURE(OBJ_nid2sn(digest));
            const PkiRequest request = parsePkiMessage(
                clientRequest(requestParams(MessageType::PKCSReq, digest, cipher), csr));
            CHECK(request.message_type == static_cast<int>(MessageType::PKCSReq));
            CHECK(request.transaction_id == "3GAbUtMXXC8zXyP11dxRE4LIpNI=");
            CHECK(request.sender_nonce == kNonce);
            CHECK(request.digest_nid == digest);
            REQUIRE(request.signer);
            CHECK(sameCert(*request.signer, *client().cert));
            REQUIRE(request.certificates.size() == 1);
            CHECK(sameCert(*request.certificates[0], *client().cert));
            CHECK(envelopeCipherNid(request.envelope) == cipher);

            const Decrypted decrypted =
                decryptEnvelope(request.envelope, *ra().key, *ra().cert, true);
            CHECK(decrypted.content == csr);
            CHECK(decrypted.cipher_nid == cipher);
        }
    }
}

TEST_CASE("a request defaults to SHA-256, AES-128-CBC and a fresh 16-byte nonce") {
    RequestParams params = requestParams(MessageType::RenewalReq);
    params.sender_nonce.clear();
    const PkiRequest first = parsePkiMessage(clientRequest(params, Bytes{1}));
    const PkiRequest second = parsePkiMessage(clientRequest(params, Bytes{1}));
    CHECK(first.message_type == static_cast<int>(MessageType::RenewalReq));
    CHECK(first.digest_nid == NID_sha256);
    CHECK(envelopeCipherNid(first.envelope) == NID_aes_128_cbc);
    CHECK(first.sender_nonce.size() == 16);
    CHECK(first.sender_nonce != second.sender_nonce);
}

TEST_CASE("binary content with LF and CRLF bytes survives unchanged") {
    const Bytes content = {'a', '\n', 'b', '\r', '\n', '\n', 0, 0xff, '\r'};
    const PkiRequest request =
        parsePkiMessage(clientRequest(requestParams(MessageType::PKCSReq), content));
    CHECK(decryptEnvelope(request.envelope, *ra().key, *ra().cert, false).content == content);
}

TEST_CASE("single DES is refused with badAlg unless allowed") {
    const PkiRequest request = parsePkiMessage(
        clientRequest(requestParams(MessageType::PKCSReq, NID_sha1, NID_des_cbc), Bytes{7}));
    expectDecryptRejected(request.envelope, FailInfo::badAlg, false);
    CHECK(decryptEnvelope(request.envelope, *ra().key, *ra().cert, true).cipher_nid == NID_des_cbc);
}

TEST_CASE("a content cipher outside the accepted list is refused with badAlg") {
    for (const int cipher : {NID_camellia_128_cbc, NID_aes_128_ofb128}) {
        CAPTURE(OBJ_nid2sn(cipher));
        const PkiRequest request = parsePkiMessage(
            clientRequest(requestParams(MessageType::PKCSReq, 0, cipher), Bytes{7}));
        expectDecryptRejected(request.envelope, FailInfo::badAlg);
    }
}

TEST_CASE("an envelope for several recipients decrypts with the RA's (micromdm sends RA and CA)") {
    const Bytes content = csrFor(client());
    for (const bool ra_first : {true, false}) {
        CAPTURE(ra_first);
        BorrowedStackPtr recipients(sk_X509_new_null());
        REQUIRE(recipients);
        REQUIRE(sk_X509_push(recipients.get(), (ra_first ? ra() : otherRa()).cert.get()) > 0);
        REQUIRE(sk_X509_push(recipients.get(), (ra_first ? otherRa() : ra()).cert.get()) > 0);
        BioPtr in(BIO_new_mem_buf(content.data(), static_cast<int>(content.size())));
        CmsPtr envelope(CMS_encrypt(recipients.get(), in.get(), EVP_aes_256_cbc(), CMS_BINARY));
        REQUIRE(envelope);
        unsigned char* der = nullptr;
        const int length = i2d_CMS_ContentInfo(envelope.get(), &der);
        REQUIRE(length > 0);
        const Bytes envelope_der(der, der + length);
        OPENSSL_free(der);

        const Decrypted decrypted = decryptEnvelope(envelope_der, *ra().key, *ra().cert, false);
        CHECK(decrypted.content == content);
        CHECK(decrypted.cipher_nid == NID_aes_256_cbc);
    }
}

TEST_CASE("an envelope for another RA, or no envelope at all, is answerable badMessageCheck") {
    const Bytes request =
        clientRequest(requestParams(MessageType::PKCSReq), Bytes{7}, client(), otherRa());
    expectDecryptRejected(parsePkiMessage(request).envelope, FailInfo::badMessageCheck);
    expectDecryptRejected(Bytes{}, FailInfo::badMessageCheck);
    expectDecryptRejected(Bytes{0x30, 0x03, 0x02, 0x01, 0x00}, FailInfo::badMessageCheck);
    // A SignedData is not an EnvelopedData.
    expectDecryptRejected(degenerateWith(*ra().cert), FailInfo::badMessageCheck);
    expectDecryptRejected(Bytes(100 * 1024, 0x30), FailInfo::badRequest);
    const Bytes oversized = clientRequest(requestParams(MessageType::PKCSReq), Bytes(70 * 1024, 1));
    expectDecryptRejected(parsePkiMessage(oversized).envelope, FailInfo::badRequest);
}

TEST_CASE("CertRep SUCCESS round trip returns the issued certificate") {
    const Party issued = makeParty("rsa:2048", "phone", 77);
    for (const int digest : kMirroredDigests) {
        CAPTURE(OBJ_nid2sn(digest));
        const PkiRequest request = parsePkiMessage(clientRequest(
            requestParams(MessageType::PKCSReq, digest, NID_des_ede3_cbc), csrFor(client())));
        const Decrypted decrypted = decryptEnvelope(request.envelope, *ra().key, *ra().cert, false);
        const Bytes reply = successReply(request, decrypted, degenerateWith(*issued.cert));

        const CertRepView view = parseCertRep(reply, *ra().cert);
        CHECK(view.status == PkiStatus::success);
        CHECK_FALSE(view.fail);
        CHECK(view.transaction_id == request.transaction_id);
        CHECK(view.recipient_nonce == request.sender_nonce);
        CHECK(view.sender_nonce.size() == 16);
        CHECK(view.sender_nonce != request.sender_nonce);
        REQUIRE(view.signer);
        CHECK(sameCert(*view.signer, *ra().cert));
        CHECK(envelopeCipherNid(view.envelope) == NID_des_ede3_cbc);

        const SignerAlgorithms algorithms = signerAlgorithms(reply);
        CHECK(algorithms.digest == digest);
        CHECK(algorithms.signature == NID_rsaEncryption);

        const DegenerateContent content = openCertRep(view.envelope, *client().key, *client().cert);
        REQUIRE(content.certificates.size() == 1);
        CHECK(sameCert(*content.certificates[0], *issued.cert));
        CHECK(content.crls.empty());
    }
}

TEST_CASE("CertRep SUCCESS carries exactly the expected signed attributes and the RA cert") {
    const PkiRequest request =
        parsePkiMessage(clientRequest(requestParams(MessageType::PKCSReq), csrFor(client())));
    const Decrypted decrypted = decryptEnvelope(request.envelope, *ra().key, *ra().cert, false);
    CmsPtr cms = decodeCms(successReply(request, decrypted, degenerateWith(*client().cert)));

    const std::multiset<std::string> expected = {
        "1.2.840.113549.1.9.3",  // contentType
        "1.2.840.113549.1.9.5",  // signingTime
        "1.2.840.113549.1.9.4",  // messageDigest
        kMessageTypeOid,         // "3"
        kPkiStatusOid,           // "0"
        kSenderNonceOid,         // fresh
        kRecipientNonceOid,      // the request's senderNonce
        kTransactionIdOid,       // the request's
    };
    CHECK(signedAttributeOids(onlySignerInfo(*cms)) == expected);
    CHECK(CMS_signed_get_attr_by_NID(&onlySignerInfo(*cms), NID_SMIMECapabilities, -1) < 0);
    CHECK(CMS_is_detached(cms.get()) == 0);

    X509StackPtr certs(CMS_get1_certs(cms.get()));
    REQUIRE(certs);
    REQUIRE(sk_X509_num(certs.get()) == 1);
    CHECK(sameCert(*sk_X509_value(certs.get(), 0), *ra().cert));
}

TEST_CASE("CertRep PENDING and FAILURE have no envelope but an empty eContent") {
    const PkiRequest request =
        parsePkiMessage(clientRequest(requestParams(MessageType::PKCSReq, NID_sha512), Bytes{1}));

    SUBCASE("PENDING") {
        const Bytes reply = statusReply(request, PkiStatus::pending);
        const CertRepView view = parseCertRep(reply, *ra().cert);
        CHECK(view.status == PkiStatus::pending);
        CHECK_FALSE(view.fail);
        CHECK(view.envelope.empty());
        CHECK(view.transaction_id == request.transaction_id);
        CHECK(view.recipient_nonce == request.sender_nonce);
        CHECK(signerAlgorithms(reply).digest == NID_sha512);
        CmsPtr cms = decodeCms(reply);
        CHECK(hasEmptyEContent(*cms));
        CHECK(verifiesAsPkcs7(reply));
        CHECK(signedAttributeOids(onlySignerInfo(*cms)).count(kFailInfoOid) == 0);
    }
    SUBCASE("FAILURE with every failInfo") {
        for (const FailInfo fail : {FailInfo::badAlg, FailInfo::badMessageCheck,
                                    FailInfo::badRequest, FailInfo::badTime, FailInfo::badCertId}) {
            CAPTURE(failInfoName(fail));
            const Bytes reply = statusReply(request, PkiStatus::failure, fail);
            const CertRepView view = parseCertRep(reply, *ra().cert);
            CHECK(view.status == PkiStatus::failure);
            REQUIRE(view.fail);
            CHECK(*view.fail == fail);
            CHECK(view.envelope.empty());
            CHECK(view.recipient_nonce == request.sender_nonce);
            CmsPtr cms = decodeCms(reply);
            CHECK(hasEmptyEContent(*cms));
            CHECK(verifiesAsPkcs7(reply));
            CHECK(signedAttributeOids(onlySignerInfo(*cms)).size() == 9);
        }
    }
}

TEST_CASE("every CertRep has a fresh senderNonce") {
    const PkiRequest request =
        parsePkiMessage(clientRequest(requestParams(MessageType::CertPoll), Bytes{1}));
    const CertRepView first = parseCertRep(statusReply(request, PkiStatus::pending), *ra().cert);
    const CertRepView second = parseCertRep(statusReply(request, PkiStatus::pending), *ra().cert);
    CHECK(first.sender_nonce.size() == 16);
    CHECK(second.sender_nonce.size() == 16);
    CHECK(first.sender_nonce != second.sender_nonce);
    CHECK(first.recipient_nonce == second.recipient_nonce);
}

TEST_CASE("buildCertRep refuses inconsistent parameters") {
    CertRepParams params;
    params.transaction_id = "T";
    params.recipient_nonce = kNonce;
    params.status = PkiStatus::failure;
    CHECK_THROWS_AS(buildCertRep(params, nullptr, *ra().key, *ra().cert), std::invalid_argument);
    params.status = PkiStatus::success;
    const Bytes content = degenerateWith(*client().cert);
    CHECK_THROWS_AS(buildCertRep(params, &content, *ra().key, *ra().cert), std::invalid_argument);
    params.recipient = client().cert.get();
    CHECK_THROWS_AS(buildCertRep(params, nullptr, *ra().key, *ra().cert), std::invalid_argument);
    CHECK_NOTHROW(buildCertRep(params, &content, *ra().key, *ra().cert));
}

TEST_CASE("an EC signer parses but can only be answered with FAILURE") {
    const PkiRequest request = parsePkiMessage(
        clientRequest(requestParams(MessageType::PKCSReq), csrFor(ecClient()), ecClient()));
    REQUIRE(request.signer);
    CHECK(sameCert(*request.signer, *ecClient().cert));
    CHECK(signerAlgorithms(clientRequest(requestParams(MessageType::PKCSReq), Bytes{1}, ecClient()))
              .signature != NID_rsaEncryption);
    CHECK_FALSE(canEncryptTo(*request.signer));
    CHECK(canEncryptTo(*client().cert));

    const Decrypted decrypted = decryptEnvelope(request.envelope, *ra().key, *ra().cert, false);
    CHECK_THROWS_AS(successReply(request, decrypted, degenerateWith(*ecClient().cert)),
                    std::invalid_argument);
    const CertRepView view =
        parseCertRep(statusReply(request, PkiStatus::failure, FailInfo::badAlg), *ra().cert);
    CHECK(view.fail == FailInfo::badAlg);
}

TEST_CASE("GetCert and GetCRL carry an IssuerAndSerialNumber") {
    // A 20-byte serial, as CAs issue them, with the high bit set.
    const Bytes serial_bytes = {0x85, 1,  2,  3,  4,  5,  6,  7,  8,  9,
                                10,   11, 12, 13, 14, 15, 16, 17, 18, 19};
    BignumPtr serial_number(
        BN_bin2bn(serial_bytes.data(), static_cast<int>(serial_bytes.size()), nullptr));
    Asn1IntegerPtr serial(BN_to_ASN1_INTEGER(serial_number.get(), nullptr));
    REQUIRE(serial);
    const X509_NAME& issuer = *X509_get_subject_name(ra().cert.get());

    for (const MessageType type : {MessageType::GetCert, MessageType::GetCRL}) {
        CAPTURE(messageTypeName(static_cast<int>(type)));
        const PkiRequest request = parsePkiMessage(
            clientRequest(requestParams(type), issuerAndSerialDer(issuer, *serial)));
        CHECK(request.message_type == static_cast<int>(type));
        const IssuerAndSerial parsed = parseIssuerAndSerial(
            decryptEnvelope(request.envelope, *ra().key, *ra().cert, false).content);
        REQUIRE(parsed.issuer);
        REQUIRE(parsed.serial);
        CHECK(X509_NAME_cmp(parsed.issuer.get(), &issuer) == 0);
        CHECK(ASN1_INTEGER_cmp(parsed.serial.get(), serial.get()) == 0);
    }
}

TEST_CASE("a malformed IssuerAndSerialNumber is answerable badRequest") {
    Bytes good = issuerAndSerialDer(*X509_get_subject_name(ra().cert.get()),
                                    *X509_get0_serialNumber(ra().cert.get()));
    Bytes trailing = good;
    trailing.push_back(0);
    for (const Bytes& der :
         {Bytes{}, Bytes{0x30, 0x00}, trailing, Bytes(good.begin(), good.end() - 1)}) {
        try {
            parseIssuerAndSerial(der);
            FAIL("accepted");
        } catch (const ScepError& error) {
            CHECK(error.answerable());
            CHECK(error.fail() == FailInfo::badRequest);
        }
    }
}

TEST_CASE("degenerate SignedData holds certificates in order and a CRL") {
    const X509CrlPtr crl = makeCrl(ra());
    const Bytes der = degenerateSignedData({client().cert.get(), ra().cert.get()}, crl.get());
    CmsPtr cms = decodeCms(der);
    CHECK(CMS_is_detached(cms.get()) == 1);
    CHECK(sk_CMS_SignerInfo_num(CMS_get0_SignerInfos(cms.get())) == 0);

    const DegenerateContent content = readDegenerateSignedData(der);
    REQUIRE(content.certificates.size() == 2);
    CHECK(sameCert(*content.certificates[0], *client().cert));
    CHECK(sameCert(*content.certificates[1], *ra().cert));
    REQUIRE(content.crls.size() == 1);
    CHECK(crlDer(*content.crls[0]) == crlDer(*crl));

    SUBCASE("a CRL alone, as a GetCRL reply") {
        const Bytes crl_only = degenerateSignedData({}, crl.get());
        const PkiRequest request =
            parsePkiMessage(clientRequest(requestParams(MessageType::GetCRL), Bytes{1}));
        const Decrypted decrypted = decryptEnvelope(request.envelope, *ra().key, *ra().cert, false);
        const CertRepView view =
            parseCertRep(successReply(request, decrypted, crl_only), *ra().cert);
        const DegenerateContent opened = openCertRep(view.envelope, *client().key, *client().cert);
        CHECK(opened.certificates.empty());
        REQUIRE(opened.crls.size() == 1);
        CHECK(crlDer(*opened.crls[0]) == crlDer(*crl));
    }
    CHECK_THROWS_AS(readDegenerateSignedData(Bytes{1, 2, 3}), CryptoError);
}

TEST_CASE("garbage is not a pkiMessage") {
    expectRejected(Bytes{}, "not a DER CMS");
    expectRejected(Bytes{0x30}, "not a DER CMS");
    expectRejected(Bytes{0x30, 0x80, 0x00, 0x00}, "not a DER CMS");
    expectRejected(certificateDer(*client().cert), "not a DER CMS");

    std::mt19937 random(8894);
    for (int i = 0; i < 300; ++i) {
        Bytes noise(random() % 600);
        std::generate(noise.begin(), noise.end(),
                      [&] { return static_cast<std::uint8_t>(random()); });
        if (i % 2 == 0 && noise.size() > 4) {
            // Looks like a long SEQUENCE, so the parser gets further.
            noise[0] = 0x30;
            noise[1] = 0x82;
        }
        CHECK_THROWS_AS(parsePkiMessage(noise), ScepError);
    }
    CHECK(ERR_peek_error() == 0);
}

TEST_CASE("every truncation of a valid request is refused") {
    const Bytes der = clientRequest(requestParams(MessageType::PKCSReq), csrFor(client()));
    for (std::size_t length = 0; length < der.size(); ++length) {
        CHECK_THROWS_AS(
            parsePkiMessage(Bytes(der.begin(), der.begin() + static_cast<long>(length))),
            ScepError);
    }
    Bytes trailing = der;
    trailing.push_back(0);
    expectRejected(trailing, "not a DER CMS");
}

TEST_CASE("a tampered request fails signature verification") {
    const Bytes der = clientRequest(requestParams(MessageType::PKCSReq), csrFor(client()));
    const PkiRequest request = parsePkiMessage(der);
    const std::size_t envelope_at = offsetOf(der, request.envelope);
    expectRejected(flipped(der, envelope_at + request.envelope.size() / 2),
                   "signature does not verify");

    CmsPtr cms = decodeCms(der);
    const ASN1_OCTET_STRING* signature = CMS_SignerInfo_get0_signature(&onlySignerInfo(*cms));
    const Bytes signature_bytes(ASN1_STRING_get0_data(signature),
                                ASN1_STRING_get0_data(signature) + ASN1_STRING_length(signature));
    const std::size_t signature_at = offsetOf(der, signature_bytes);
    expectRejected(flipped(der, signature_at + signature_bytes.size() - 1),
                   "signature does not verify");

    const Bytes transaction_id(request.transaction_id.begin(), request.transaction_id.end());
    expectRejected(flipped(der, offsetOf(der, transaction_id)), "signature does not verify");
}

TEST_CASE("no single flipped bit makes the parser crash or throw something else") {
    const Bytes der = clientRequest(requestParams(MessageType::PKCSReq), Bytes(64, 0x42));
    int accepted = 0;
    for (std::size_t offset = 0; offset < der.size(); ++offset) {
        try {
            parsePkiMessage(flipped(der, offset));
            ++accepted;  // e.g. inside the signer certificate's own signature
        } catch (const ScepError&) {
        }
    }
    // Only bytes outside what the signature covers may change unnoticed.
    CHECK(accepted < static_cast<int>(der.size()) / 2);
    CHECK(ERR_peek_error() == 0);
}

TEST_CASE("the raw message builder makes a valid request") {
    const PkiRequest request = parsePkiMessage(rawMessage({}));
    CHECK(request.message_type == 19);
    CHECK(request.transaction_id == "TX-1");
    CHECK(request.envelope == Bytes(40, 0x42));
}

TEST_CASE("structural problems are refused") {
    SUBCASE("not SignedData") {
        expectRejected(
            parsePkiMessage(clientRequest(requestParams(MessageType::PKCSReq), Bytes{1})).envelope,
            "not a CMS SignedData");
    }
    SUBCASE("no signer") {
        expectRejected(degenerateWith(*client().cert), "exactly one signer");
    }
    SUBCASE("two signers") {
        RawOptions options;
        options.signers = {&client(), &otherRa()};
        expectRejected(rawMessage(options), "exactly one signer");
    }
    SUBCASE("signer certificate not embedded") {
        RawOptions options;
        options.embed_signer = false;
        expectRejected(rawMessage(options), "not embedded");
    }
    SUBCASE("a decoy with the signer's issuer and serial but another key") {
        const X509Ptr decoy = selfSigned(*otherRa().key, "SCEP SIGNER", 2001);
        RawOptions options;
        options.certs_before_signer = {decoy.get()};
        expectRejected(rawMessage(options), "more than one embedded certificate");
    }
    SUBCASE("detached content") {
        RawOptions options;
        options.detached = true;
        expectRejected(rawMessage(options), "no content");
    }
    SUBCASE("empty envelope for a handled type") {
        RawOptions options;
        options.content.clear();
        expectRejected(rawMessage(options), "without pkcsPKIEnvelope");
    }
}

TEST_CASE("an MD5-signed request parses, so that it can be answered badAlg") {
    RawOptions options;
    options.digest = EVP_md5();
    const PkiRequest request = parsePkiMessage(rawMessage(options));
    CHECK(request.digest_nid == NID_md5);
    CHECK_FALSE(isAcceptedDigest(NID_md5));
}

TEST_CASE("missing, repeated or mistyped SCEP attributes are refused") {
    auto expectRefused = [](std::vector<RawAttribute> attributes, const std::string& reason) {
        RawOptions options;
        options.attributes = std::move(attributes);
        expectRejected(rawMessage(options), reason);
    };
    for (const std::string& oid : {kMessageTypeOid, kTransactionIdOid, kSenderNonceOid}) {
        CAPTURE(oid);
        expectRefused(withoutAttribute(oid), "missing, repeated");
    }
    std::vector<RawAttribute> twice = validAttributes();
    twice.push_back({kTransactionIdOid, V_ASN1_PRINTABLESTRING, {"TX-2"}});
    expectRefused(twice, "transactionID is missing, repeated");
    expectRefused(
        withAttribute(kTransactionIdOid, {kTransactionIdOid, V_ASN1_PRINTABLESTRING, {"A", "B"}}),
        "transactionID is missing, repeated");
    expectRefused(withAttribute(kTransactionIdOid, {kTransactionIdOid, V_ASN1_PRINTABLESTRING, {}}),
                  "transactionID is missing, repeated");
    expectRefused(withAttribute(kMessageTypeOid, {kMessageTypeOid, V_ASN1_OCTET_STRING, {"19"}}),
                  "messageType is missing, repeated");
    expectRefused(withAttribute(kTransactionIdOid, {kTransactionIdOid, V_ASN1_UTF8STRING, {"TX"}}),
                  "transactionID is missing, repeated");
    expectRefused(withAttribute(kSenderNonceOid,
                                {kSenderNonceOid, V_ASN1_PRINTABLESTRING, {std::string(16, 'n')}}),
                  "senderNonce is missing, repeated");
}

TEST_CASE("attribute values are validated") {
    auto parseWith = [](const std::string& oid, int type, const std::string& value) {
        RawOptions options;
        options.attributes = withAttribute(oid, {oid, type, {value}});
        return rawMessage(options);
    };
    for (const std::string type : {"", "abc", "1234", "-1", " 19", "19 ", "0x13"}) {
        CAPTURE(type);
        expectRejected(parseWith(kMessageTypeOid, V_ASN1_PRINTABLESTRING, type), "not a decimal");
    }
    for (const std::string& id : {std::string(), std::string(129, 'A'), std::string("TX\x01"),
                                  std::string("TX\x7f"), std::string("caf\xc3\xa9")}) {
        CAPTURE(id);
        expectRejected(parseWith(kTransactionIdOid, V_ASN1_PRINTABLESTRING, id),
                       "transactionID is empty");
    }
    CHECK(
        parsePkiMessage(parseWith(kTransactionIdOid, V_ASN1_PRINTABLESTRING, std::string(128, 'A')))
            .transaction_id.size() == 128);
    for (const std::size_t size : {0, 7, 65}) {
        CAPTURE(size);
        expectRejected(parseWith(kSenderNonceOid, V_ASN1_OCTET_STRING, std::string(size, 'n')),
                       "senderNonce is not");
    }
    for (const std::size_t size : {8, 64}) {
        CAPTURE(size);
        CHECK(
            parsePkiMessage(parseWith(kSenderNonceOid, V_ASN1_OCTET_STRING, std::string(size, 'n')))
                .sender_nonce.size() == size);
    }
}

TEST_CASE("unknown message types parse so that the caller can deny them") {
    for (const std::string type : {"99", "3", "0"}) {
        CAPTURE(type);
        RawOptions options;
        options.attributes =
            withAttribute(kMessageTypeOid, {kMessageTypeOid, V_ASN1_PRINTABLESTRING, {type}});
        options.content.clear();
        const PkiRequest request = parsePkiMessage(rawMessage(options));
        CHECK(request.message_type == std::stoi(type));
        CHECK(request.envelope.empty());
        CHECK(std::string(messageTypeName(request.message_type)) ==
              (type == "3" ? "CertRep" : "unknown"));
    }
}

TEST_CASE("parseCertRep accepts only the RA's intact signature") {
    const PkiRequest request =
        parsePkiMessage(clientRequest(requestParams(MessageType::PKCSReq), Bytes{1}));
    const Bytes reply = statusReply(request, PkiStatus::pending);
    CHECK_THROWS_WITH_AS(parseCertRep(reply, *otherRa().cert),
                         doctest::Contains("not signed by the RA"), ScepError);
    const Bytes id(request.transaction_id.begin(), request.transaction_id.end());
    CHECK_THROWS_AS(parseCertRep(flipped(reply, offsetOf(reply, id)), *ra().cert), ScepError);
    // A request is not a CertRep, even when signed by the RA.
    CHECK_THROWS_WITH(
        parseCertRep(clientRequest(requestParams(MessageType::PKCSReq), Bytes{1}, ra()),
                     *ra().cert),
        doctest::Contains("not a CertRep"));
    CHECK(ERR_peek_error() == 0);
}

TEST_CASE("parseCertRep refuses SUCCESS without an envelope") {
    RawOptions options;
    options.signers = {&ra()};
    options.detached = true;
    options.content.clear();
    options.attributes = {
        {kMessageTypeOid, V_ASN1_PRINTABLESTRING, {"3"}},
        {kPkiStatusOid, V_ASN1_PRINTABLESTRING, {"0"}},
        {kTransactionIdOid, V_ASN1_PRINTABLESTRING, {"TX-1"}},
        {kSenderNonceOid, V_ASN1_OCTET_STRING, {std::string(16, 'n')}},
        {kRecipientNonceOid, V_ASN1_OCTET_STRING, {std::string(16, 'r')}},
    };
    CHECK_THROWS_WITH_AS(parseCertRep(rawMessage(options), *ra().cert),
                         doctest::Contains("without pkcsPKIEnvelope"), ScepError);
    options.attributes[1].values = {"3"};
    CHECK(parseCertRep(rawMessage(options), *ra().cert).status == PkiStatus::pending);
    options.attributes[1].values = {"1"};
    CHECK_THROWS_WITH_AS(parseCertRep(rawMessage(options), *ra().cert),
                         doctest::Contains("unknown pkiStatus"), ScepError);
}

TEST_CASE("names of message types and failInfo values") {
    CHECK(std::string(messageTypeName(19)) == "PKCSReq");
    CHECK(std::string(messageTypeName(17)) == "RenewalReq");
    CHECK(std::string(messageTypeName(20)) == "CertPoll");
    CHECK(std::string(messageTypeName(21)) == "GetCert");
    CHECK(std::string(messageTypeName(22)) == "GetCRL");
    CHECK(std::string(messageTypeName(18)) == "unknown");
    CHECK(std::string(failInfoName(FailInfo::badAlg)) == "badAlg");
    CHECK(std::string(failInfoName(FailInfo::badCertId)) == "badCertId");
}
