#include "ra/scep/message.h"

#include <algorithm>
#include <array>
#include <climits>
#include <utility>

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pkcs7.h>
#include <openssl/rand.h>

#include "common/text.h"
#include "ra/crypto.h"

namespace scep {

namespace {

using Pkcs7Ptr = OpenSslPtr<PKCS7, PKCS7_free>;
using IssuerAndSerialPtr = OpenSslPtr<PKCS7_ISSUER_AND_SERIAL, PKCS7_ISSUER_AND_SERIAL_free>;

// A stack that borrows its certificates: OpenSSL up-refs whatever it keeps.
struct BorrowedX509StackDeleter {
    void operator()(STACK_OF(X509) * stack) const { sk_X509_free(stack); }
};
using BorrowedX509StackPtr = std::unique_ptr<STACK_OF(X509), BorrowedX509StackDeleter>;

constexpr std::size_t kNonceSize = 16;  // what both known clients send
constexpr std::size_t kMinNonceSize = 8;
constexpr std::size_t kMaxNonceSize = 64;
constexpr std::size_t kMaxTransactionIdSize = 128;
// A PKCS#10 or IssuerAndSerialNumber is a few KiB at most; the envelope adds
// the recipient infos and padding on top of the content.
constexpr std::size_t kMaxContentSize = 64 * 1024;
constexpr std::size_t kMaxEnvelopeSize = kMaxContentSize + 16 * 1024;

// Without CMS_BINARY the content is MIME-canonicalised (LF -> CRLF), which
// corrupts DER; CMS_PARTIAL lets the SCEP attributes go in before CMS_final
// computes the signature over them.
constexpr unsigned kSignFlags = CMS_BINARY | CMS_PARTIAL;

// The SCEP signed attributes; the value is the last arc of the OID under
// 2.16.840.1.113733.1.9.
enum class Attribute : int {
    messageType = 2,
    pkiStatus = 3,
    failInfo = 4,
    senderNonce = 5,
    recipientNonce = 6,
    transactionID = 7,
};
constexpr int kFirstAttribute = static_cast<int>(Attribute::messageType);
constexpr int kAttributeCount = 6;

const char* attributeName(Attribute attribute) {
    static constexpr std::array<const char*, kAttributeCount> names = {
        "messageType", "pkiStatus", "failInfo", "senderNonce", "recipientNonce", "transactionID"};
    return names[static_cast<std::size_t>(static_cast<int>(attribute) - kFirstAttribute)];
}

// Created once: the benchmark builds thousands of messages.
const ASN1_OBJECT& attributeOid(Attribute attribute) {
    static const std::array<Asn1ObjectPtr, kAttributeCount> oids = [] {
        std::array<Asn1ObjectPtr, kAttributeCount> created;
        for (int i = 0; i < kAttributeCount; ++i) {
            const std::string text = "2.16.840.1.113733.1.9." + std::to_string(kFirstAttribute + i);
            created[static_cast<std::size_t>(i)].reset(OBJ_txt2obj(text.c_str(), 1));
            if (!created[static_cast<std::size_t>(i)]) {
                throw CryptoError("cannot create OID " + text);
            }
        }
        return created;
    }();
    return *oids[static_cast<std::size_t>(static_cast<int>(attribute) - kFirstAttribute)];
}

// Every rejection carries OpenSSL's reasons, if any, and leaves its error
// queue empty (CryptoError drains it).
[[noreturn]] void reject(const std::string& what, FailInfo fail = FailInfo::badRequest,
                         bool answerable = false) {
    throw ScepError(CryptoError(what).what(), fail, answerable);
}

// ---- encodings ----

CmsPtr decodeCms(const Bytes& der) {
    return decodeExactly<CMS_ContentInfo, d2i_CMS_ContentInfo, CMS_ContentInfo_free>(der);
}

int cmsType(CMS_ContentInfo& cms) {
    return OBJ_obj2nid(CMS_get0_type(&cms));
}

Bytes cmsDer(const CMS_ContentInfo& cms) {
    return derEncode<CMS_ContentInfo, i2d_CMS_ContentInfo>(cms, "CMS message");
}

// Deleter for a stack that owns its elements.
template <typename T, void (*Free)(T*)>
struct OwningStackDeleter {
    void operator()(OPENSSL_STACK* stack) const {
        while (OPENSSL_sk_num(stack) > 0) {
            Free(static_cast<T*>(OPENSSL_sk_pop(stack)));
        }
        OPENSSL_sk_free(stack);
    }
};

// Moves the elements of a CMS_get1_* stack into owning pointers, in order,
// and frees the stack; nothing leaks if the vector cannot grow.
template <typename T, void (*Free)(T*), typename Stack>
std::vector<OpenSslPtr<T, Free>> takeAll(Stack* typed) {
    std::unique_ptr<OPENSSL_STACK, OwningStackDeleter<T, Free>> stack(
        reinterpret_cast<OPENSSL_STACK*>(typed));
    std::vector<OpenSslPtr<T, Free>> out;
    if (!stack) {
        return out;
    }
    out.reserve(static_cast<std::size_t>(OPENSSL_sk_num(stack.get())));
    while (OPENSSL_sk_num(stack.get()) > 0) {
        out.emplace_back(static_cast<T*>(OPENSSL_sk_shift(stack.get())));
    }
    return out;
}

std::vector<X509Ptr> certificatesOf(CMS_ContentInfo& cms) {
    return takeAll<X509, X509_free>(CMS_get1_certs(&cms));
}

std::vector<X509CrlPtr> crlsOf(CMS_ContentInfo& cms) {
    return takeAll<X509_CRL, X509_CRL_free>(CMS_get1_crls(&cms));
}

X509Ptr upRef(X509& cert) {
    X509_up_ref(&cert);
    return X509Ptr(&cert);
}

BorrowedX509StackPtr borrowedStack(const std::vector<X509*>& certs) {
    BorrowedX509StackPtr stack(sk_X509_new_null());
    if (!stack) {
        throw CryptoError("sk_X509_new_null");
    }
    for (X509* cert : certs) {
        if (sk_X509_push(stack.get(), cert) <= 0) {
            throw CryptoError("sk_X509_push");
        }
    }
    return stack;
}

// eContent of a SignedData; empty when absent (detached) or empty.
Bytes embeddedContent(CMS_ContentInfo& cms) {
    ASN1_OCTET_STRING** content = CMS_get0_content(&cms);
    if (!content || !*content) {
        return {};
    }
    const unsigned char* data = ASN1_STRING_get0_data(*content);
    return Bytes(data, data + ASN1_STRING_length(*content));
}

// ---- algorithms ----

std::string algorithmName(int nid) {
    ERR_set_mark();  // an unknown NID is not worth an entry on the error queue
    const char* name = OBJ_nid2sn(nid);
    ERR_pop_to_mark();
    return name ? name : "NID " + std::to_string(nid);
}

const EVP_MD& digestFor(int nid) {
    const EVP_MD* md = EVP_get_digestbynid(nid == 0 ? NID_sha256 : nid);
    if (!md) {
        throw std::invalid_argument("unknown digest " + algorithmName(nid));
    }
    return *md;
}

const EVP_CIPHER& cipherFor(int nid) {
    if (nid == NID_des_cbc) {
        enableSingleDes();
    }
    const EVP_CIPHER* cipher = EVP_get_cipherbynid(nid == 0 ? NID_aes_128_cbc : nid);
    if (!cipher) {
        throw std::invalid_argument("unknown cipher " + algorithmName(nid));
    }
    return *cipher;
}

void checkContentCipher(int nid, bool allow_des) {
    switch (nid) {
    case NID_aes_128_cbc:
    case NID_aes_192_cbc:
    case NID_aes_256_cbc:
    case NID_des_ede3_cbc:
        return;
    case NID_des_cbc:
        if (allow_des) {
            enableSingleDes();
            return;
        }
        reject("single DES content encryption is not allowed", FailInfo::badAlg, true);
    default:
        reject("content cipher " + algorithmName(nid) + " is not accepted", FailInfo::badAlg, true);
    }
}

// OpenSSL 3.0 has no CMS getter for the content-encryption algorithm; the
// same bytes parse as a PKCS#7 EnvelopedData, whose structs are public.
int envelopeCipher(const Bytes& envelope) {
    const Pkcs7Ptr p7 = decodeExactly<PKCS7, d2i_PKCS7, PKCS7_free>(envelope);
    if (!p7 || !PKCS7_type_is_enveloped(p7.get()) || !p7->d.enveloped ||
        !p7->d.enveloped->enc_data || !p7->d.enveloped->enc_data->algorithm) {
        reject("pkcsPKIEnvelope is not an EnvelopedData", FailInfo::badMessageCheck, true);
    }
    return OBJ_obj2nid(p7->d.enveloped->enc_data->algorithm->algorithm);
}

Bytes envelopeTo(X509& recipient, const Bytes& content, int cipher_nid) {
    const BorrowedX509StackPtr recipients = borrowedStack({&recipient});
    const BioPtr in = readOnlyBio(content);
    // issuerAndSerialNumber recipient (no CMS_USE_KEYID) and no streaming:
    // strongSwan parses only that, and CMS_STREAM would emit indefinite BER.
    const CmsPtr cms(CMS_encrypt(recipients.get(), in.get(), &cipherFor(cipher_nid), CMS_BINARY));
    if (!cms) {
        throw CryptoError("cannot build the pkcsPKIEnvelope");
    }
    return cmsDer(*cms);
}

Bytes randomNonce() {
    Bytes nonce(kNonceSize);
    if (RAND_bytes(nonce.data(), static_cast<int>(nonce.size())) != 1) {
        throw CryptoError("RAND_bytes");
    }
    return nonce;
}

// ---- signing ----

// A pkiMessage SignedData under construction: attributes added between
// CMS_add1_signer and CMS_final are covered by the signature. With an RSA key
// OpenSSL 3.0 writes rsaEncryption as the signature algorithm, the only one
// strongSwan accepts, and CMS_NOSMIMECAP keeps the signed attributes to
// contentType, signingTime, messageDigest and ours.
class PkiMessageSigner {
public:
    PkiMessageSigner(X509& cert, EVP_PKEY& key, int digest_nid)
        : cms_(CMS_sign(nullptr, nullptr, nullptr, nullptr, kSignFlags)) {
        if (!cms_) {
            throw CryptoError("cannot start a SignedData");
        }
        signer_ = CMS_add1_signer(cms_.get(), &cert, &key, &digestFor(digest_nid),
                                  CMS_BINARY | CMS_NOSMIMECAP);
        if (!signer_) {
            throw CryptoError("cannot add the signer");
        }
    }

    void add(Attribute attribute, const std::string& printable) {
        add(attribute, V_ASN1_PRINTABLESTRING, printable.data(), printable.size());
    }
    void add(Attribute attribute, const Bytes& octets) {
        add(attribute, V_ASN1_OCTET_STRING, octets.data(), octets.size());
    }

    // `content` is signed and embedded (empty is embedded as an empty eContent).
    Bytes finish(const Bytes& content) {
        const BioPtr in = readOnlyBio(content);
        if (CMS_final(cms_.get(), in.get(), nullptr, CMS_BINARY) != 1) {
            throw CryptoError("cannot sign the pkiMessage");
        }
        return cmsDer(*cms_);
    }

private:
    void add(Attribute attribute, int type, const void* data, std::size_t length) {
        if (CMS_signed_add1_attr_by_OBJ(signer_, &attributeOid(attribute), type, data,
                                        static_cast<int>(length)) != 1) {
            throw CryptoError(std::string("cannot add ") + attributeName(attribute));
        }
    }

    CmsPtr cms_;
    CMS_SignerInfo* signer_ = nullptr;  // owned by cms_
};

// ---- reading signed messages ----

struct SignedMessage {
    CmsPtr cms;
    CMS_SignerInfo* signer_info = nullptr;  // owned by cms
};

SignedMessage decodeSignedMessage(const Bytes& der) {
    SignedMessage message{decodeCms(der)};
    if (!message.cms) {
        reject("not a DER CMS message");
    }
    if (cmsType(*message.cms) != NID_pkcs7_signed) {
        reject("not a CMS SignedData");
    }
    STACK_OF(CMS_SignerInfo)* signers = CMS_get0_SignerInfos(message.cms.get());
    if (sk_CMS_SignerInfo_num(signers) != 1) {
        reject("the SignedData does not have exactly one signer");
    }
    message.signer_info = sk_CMS_SignerInfo_value(signers, 0);
    return message;
}

// Checks the signature only: whether the signer is trusted is the caller's
// question. `detached_content` is null when the content must be embedded.
void verifySignature(const SignedMessage& message, X509& signer, BIO* detached_content) {
    // Set explicitly, so the key that verifies is that of the certificate we
    // hand out as the signer, not one CMS_verify looks up on its own.
    CMS_SignerInfo_set1_signer_cert(message.signer_info, &signer);
    if (CMS_verify(message.cms.get(), nullptr, nullptr, detached_content, nullptr,
                   CMS_NO_SIGNER_CERT_VERIFY | CMS_BINARY) != 1) {
        reject("the signature does not verify", FailInfo::badMessageCheck);
    }
}

int signerDigest(CMS_SignerInfo& signer_info) {
    X509_ALGOR* digest = nullptr;
    CMS_SignerInfo_get0_algs(&signer_info, nullptr, nullptr, &digest, nullptr);
    const ASN1_OBJECT* algorithm = nullptr;
    X509_ALGOR_get0(&algorithm, nullptr, nullptr, digest);
    return OBJ_obj2nid(algorithm);
}

// The attribute's single value, refused if absent, repeated, multi-valued or
// of another ASN.1 type.
const ASN1_STRING& attributeValue(const CMS_SignerInfo& signer_info, Attribute attribute,
                                  int type) {
    const auto* value = static_cast<const ASN1_STRING*>(
        CMS_signed_get0_data_by_OBJ(&signer_info, &attributeOid(attribute), -3, type));
    if (!value) {
        reject(std::string(attributeName(attribute)) +
               " is missing, repeated or not of the expected type");
    }
    return *value;
}

std::string printableAttribute(const CMS_SignerInfo& signer_info, Attribute attribute) {
    const ASN1_STRING& value = attributeValue(signer_info, attribute, V_ASN1_PRINTABLESTRING);
    return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(&value)),
                       static_cast<std::size_t>(ASN1_STRING_length(&value)));
}

Bytes octetsAttribute(const CMS_SignerInfo& signer_info, Attribute attribute) {
    const ASN1_STRING& value = attributeValue(signer_info, attribute, V_ASN1_OCTET_STRING);
    const unsigned char* data = ASN1_STRING_get0_data(&value);
    return Bytes(data, data + ASN1_STRING_length(&value));
}

bool isDecimal(const std::string& text, std::size_t max_digits) {
    return !text.empty() && text.size() <= max_digits &&
           std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Small decimal attribute values: messageType, pkiStatus, failInfo.
int numberAttribute(const CMS_SignerInfo& signer_info, Attribute attribute) {
    const std::string text = printableAttribute(signer_info, attribute);
    if (!isDecimal(text, 3)) {
        reject(std::string(attributeName(attribute)) + " is not a decimal number");
    }
    return std::stoi(text);
}

// Printable ASCII only: the ID ends up in logs and the database. Both clients
// send base64 or hex.
std::string readTransactionId(const CMS_SignerInfo& signer_info) {
    std::string id = printableAttribute(signer_info, Attribute::transactionID);
    if (id.empty() || id.size() > kMaxTransactionIdSize ||
        !isPrintableAscii(id)) {
        reject("transactionID is empty, longer than " + std::to_string(kMaxTransactionIdSize) +
               " characters or not printable");
    }
    return id;
}

Bytes readSenderNonce(const CMS_SignerInfo& signer_info) {
    Bytes nonce = octetsAttribute(signer_info, Attribute::senderNonce);
    if (nonce.size() < kMinNonceSize || nonce.size() > kMaxNonceSize) {
        reject("senderNonce is not " + std::to_string(kMinNonceSize) + " to " +
               std::to_string(kMaxNonceSize) + " bytes");
    }
    return nonce;
}

bool isHandledRequest(int type) {
    switch (static_cast<MessageType>(type)) {
    case MessageType::RenewalReq:
    case MessageType::PKCSReq:
    case MessageType::CertPoll:
    case MessageType::GetCert:
    case MessageType::GetCRL:
        return true;
    default:
        return false;
    }
}

// Exactly one embedded certificate may match the signer identifier: with
// two (same issuer and serial, different keys) the one that "signed" would
// depend on the order of a DER SET.
X509Ptr embeddedSigner(CMS_SignerInfo& signer_info, const std::vector<X509Ptr>& certificates) {
    X509* signer = nullptr;
    for (const X509Ptr& cert : certificates) {
        if (CMS_SignerInfo_cert_cmp(&signer_info, cert.get()) != 0) {
            continue;
        }
        if (signer) {
            reject("more than one embedded certificate matches the signer");
        }
        signer = cert.get();
    }
    if (!signer) {
        reject("the signer certificate is not embedded");
    }
    return upRef(*signer);
}

PkiStatus statusFrom(int value) {
    switch (static_cast<PkiStatus>(value)) {
    case PkiStatus::success:
    case PkiStatus::failure:
    case PkiStatus::pending:
        return static_cast<PkiStatus>(value);
    }
    reject("unknown pkiStatus " + std::to_string(value));
}

FailInfo failInfoFrom(int value) {
    if (value < static_cast<int>(FailInfo::badAlg) ||
        value > static_cast<int>(FailInfo::badCertId)) {
        reject("unknown failInfo " + std::to_string(value));
    }
    return static_cast<FailInfo>(value);
}

void checkCertRepParams(const CertRepParams& params, const Bytes* content) {
    if (params.status == PkiStatus::failure && !params.fail) {
        throw std::invalid_argument("a CertRep FAILURE needs a failInfo");
    }
    if (params.status != PkiStatus::success) {
        return;
    }
    if (!content || !params.recipient) {
        throw std::invalid_argument("a CertRep SUCCESS needs content and a recipient");
    }
    if (!canEncryptTo(*params.recipient)) {
        throw std::invalid_argument(
            "cannot envelope a CertRep SUCCESS to a non-RSA certificate (answer badAlg)");
    }
}

}  // namespace

const std::vector<AcceptedDigest>& acceptedDigests() {
    // SHA-1 is what micromdm sends. MD5 (the RFC 8894 fallback for CAs that
    // advertise nothing better) is open to collision forgeries.
    static const std::vector<AcceptedDigest> digests = {{NID_sha1, "SHA-1"},
                                                        {NID_sha224, "SHA-224"},
                                                        {NID_sha256, "SHA-256"},
                                                        {NID_sha384, "SHA-384"},
                                                        {NID_sha512, "SHA-512"}};
    return digests;
}

bool isAcceptedDigest(int nid) {
    const auto& digests = acceptedDigests();
    return std::any_of(digests.begin(), digests.end(),
                       [nid](const AcceptedDigest& digest) { return digest.nid == nid; });
}

const char* messageTypeName(int type) {
    switch (static_cast<MessageType>(type)) {
    case MessageType::CertRep:
        return "CertRep";
    case MessageType::RenewalReq:
        return "RenewalReq";
    case MessageType::PKCSReq:
        return "PKCSReq";
    case MessageType::CertPoll:
        return "CertPoll";
    case MessageType::GetCert:
        return "GetCert";
    case MessageType::GetCRL:
        return "GetCRL";
    }
    return "unknown";
}

const char* failInfoName(FailInfo info) {
    switch (info) {
    case FailInfo::badAlg:
        return "badAlg";
    case FailInfo::badMessageCheck:
        return "badMessageCheck";
    case FailInfo::badRequest:
        return "badRequest";
    case FailInfo::badTime:
        return "badTime";
    case FailInfo::badCertId:
        return "badCertId";
    }
    return "unknown";
}

RequestAttributes readRequestAttributes(const CMS_SignerInfo& signer_info) {
    RequestAttributes attributes;
    attributes.message_type = numberAttribute(signer_info, Attribute::messageType);
    attributes.transaction_id = readTransactionId(signer_info);
    attributes.sender_nonce = readSenderNonce(signer_info);
    return attributes;
}

PkiRequest parsePkiMessage(const Bytes& der) {
    const SignedMessage message = decodeSignedMessage(der);
    CMS_SignerInfo& signer_info = *message.signer_info;
    PkiRequest request;
    request.digest_nid = signerDigest(signer_info);
    // A digest we refuse but can verify (MD5) is the caller's to answer with
    // a signed FAILURE badAlg, so that the client can say why.
    if (EVP_get_digestbynid(request.digest_nid) == nullptr) {
        reject("digest " + algorithmName(request.digest_nid) + " is unknown", FailInfo::badAlg);
    }
    if (CMS_is_detached(message.cms.get()) != 0) {
        reject("the request has no content");
    }
    request.certificates = certificatesOf(*message.cms);
    request.signer = embeddedSigner(signer_info, request.certificates);
    verifySignature(message, *request.signer, nullptr);

    RequestAttributes attributes = readRequestAttributes(signer_info);
    request.message_type = attributes.message_type;
    request.transaction_id = std::move(attributes.transaction_id);
    request.sender_nonce = std::move(attributes.sender_nonce);
    request.envelope = embeddedContent(*message.cms);
    if (request.envelope.empty() && isHandledRequest(request.message_type)) {
        reject(std::string(messageTypeName(request.message_type)) + " without pkcsPKIEnvelope");
    }
    return request;
}

Decrypted decryptEnvelope(const Bytes& envelope, EVP_PKEY& ra_key, X509& ra_cert, bool allow_des) {
    if (envelope.size() > kMaxEnvelopeSize) {
        reject("pkcsPKIEnvelope is too large", FailInfo::badRequest, true);
    }
    Decrypted decrypted;
    decrypted.cipher_nid = envelopeCipher(envelope);
    checkContentCipher(decrypted.cipher_nid, allow_des);

    const CmsPtr cms = decodeCms(envelope);
    if (!cms || cmsType(*cms) != NID_pkcs7_enveloped) {
        reject("pkcsPKIEnvelope is not a CMS EnvelopedData", FailInfo::badMessageCheck, true);
    }
    // Passing the certificate selects our recipient info by issuer and
    // serial (micromdm also encrypts to the CA) and avoids trying every one.
    const BioPtr out = memoryBio();
    if (CMS_decrypt(cms.get(), &ra_key, &ra_cert, nullptr, out.get(), CMS_BINARY) != 1) {
        reject("cannot decrypt the pkcsPKIEnvelope", FailInfo::badMessageCheck, true);
    }
    decrypted.content = bioBytes(*out);
    if (decrypted.content.size() > kMaxContentSize) {
        reject("decrypted content is too large", FailInfo::badRequest, true);
    }
    return decrypted;
}

IssuerAndSerial parseIssuerAndSerial(const Bytes& der) {
    const IssuerAndSerialPtr decoded =
        decodeExactly<PKCS7_ISSUER_AND_SERIAL, d2i_PKCS7_ISSUER_AND_SERIAL,
                      PKCS7_ISSUER_AND_SERIAL_free>(der);
    if (!decoded) {
        reject("not an IssuerAndSerialNumber", FailInfo::badRequest, true);
    }
    IssuerAndSerial out;
    out.issuer.reset(std::exchange(decoded->issuer, nullptr));
    out.serial.reset(std::exchange(decoded->serial, nullptr));
    return out;
}

Bytes degenerateSignedData(const std::vector<const X509*>& certs, const X509_CRL* crl) {
    // OpenSSL takes non-const pointers but only up-refs them.
    std::vector<X509*> mutable_certs;
    mutable_certs.reserve(certs.size());
    for (const X509* cert : certs) {
        mutable_certs.push_back(const_cast<X509*>(cert));
    }
    const BorrowedX509StackPtr stack = borrowedStack(mutable_certs);
    // No signer and no content: CMS_PARTIAL skips CMS_final, which would fail.
    const CmsPtr cms(CMS_sign(nullptr, nullptr, stack.get(), nullptr, kSignFlags));
    if (!cms) {
        throw CryptoError("cannot build a degenerate SignedData");
    }
    if (crl && CMS_add1_crl(cms.get(), const_cast<X509_CRL*>(crl)) != 1) {
        throw CryptoError("cannot add the CRL");
    }
    if (CMS_set_detached(cms.get(), 1) != 1) {
        throw CryptoError("CMS_set_detached");
    }
    return cmsDer(*cms);
}

Bytes buildCertRep(const CertRepParams& params, const Bytes* content, EVP_PKEY& ra_key,
                   X509& ra_cert) {
    checkCertRepParams(params, content);
    const bool success = params.status == PkiStatus::success;
    // PENDING and FAILURE have no envelope (RFC 8894), but they still embed
    // an empty eContent: certmonger (through OpenSSL's PKCS7_verify) cannot
    // verify a detached reply and files it as CA_UNREACHABLE. Every other
    // known client reads either form.
    const Bytes envelope =
        success ? envelopeTo(*params.recipient, *content, params.cipher_nid) : Bytes{};

    PkiMessageSigner message(ra_cert, ra_key, params.digest_nid);
    message.add(Attribute::messageType, std::to_string(static_cast<int>(MessageType::CertRep)));
    message.add(Attribute::pkiStatus, std::to_string(static_cast<int>(params.status)));
    if (params.status == PkiStatus::failure) {
        message.add(Attribute::failInfo, std::to_string(static_cast<int>(*params.fail)));
    }
    message.add(Attribute::senderNonce, randomNonce());
    message.add(Attribute::recipientNonce, params.recipient_nonce);
    message.add(Attribute::transactionID, params.transaction_id);
    return message.finish(envelope);
}

bool canEncryptTo(const X509& cert) {
    const EVP_PKEY* key = X509_get0_pubkey(&cert);
    ERR_clear_error();  // an undecodable key leaves a reason behind
    return key && isRsa(*key);
}

Bytes buildPkiMessage(const RequestParams& params, const Bytes& content, X509& signer,
                      EVP_PKEY& signer_key, X509& recipient) {
    const Bytes envelope = envelopeTo(recipient, content, params.cipher_nid);
    PkiMessageSigner message(signer, signer_key, params.digest_nid);
    message.add(Attribute::messageType, std::to_string(static_cast<int>(params.type)));
    message.add(Attribute::transactionID, params.transaction_id);
    message.add(Attribute::senderNonce,
                params.sender_nonce.empty() ? randomNonce() : params.sender_nonce);
    return message.finish(envelope);
}

Bytes issuerAndSerialDer(const X509_NAME& issuer, const ASN1_INTEGER& serial) {
    // Encoding only reads the fields, so they are borrowed rather than copied.
    PKCS7_ISSUER_AND_SERIAL borrowed{const_cast<X509_NAME*>(&issuer),
                                     const_cast<ASN1_INTEGER*>(&serial)};
    return derEncode<PKCS7_ISSUER_AND_SERIAL, i2d_PKCS7_ISSUER_AND_SERIAL>(borrowed,
                                                                        "IssuerAndSerialNumber");
}

CertRepView parseCertRep(const Bytes& der, X509& ra_cert) {
    const SignedMessage message = decodeSignedMessage(der);
    const CMS_SignerInfo& signer_info = *message.signer_info;
    if (CMS_SignerInfo_cert_cmp(message.signer_info, &ra_cert) != 0) {
        reject("the CertRep is not signed by the RA certificate");
    }
    // PENDING and FAILURE may leave the (empty) content out.
    const bool detached = CMS_is_detached(message.cms.get()) != 0;
    const BioPtr no_content = detached ? readOnlyBio(Bytes{}) : nullptr;
    verifySignature(message, ra_cert, no_content.get());

    if (numberAttribute(signer_info, Attribute::messageType) !=
        static_cast<int>(MessageType::CertRep)) {
        reject("not a CertRep");
    }
    CertRepView view;
    view.status = statusFrom(numberAttribute(signer_info, Attribute::pkiStatus));
    if (view.status == PkiStatus::failure) {
        view.fail = failInfoFrom(numberAttribute(signer_info, Attribute::failInfo));
    }
    view.transaction_id = printableAttribute(signer_info, Attribute::transactionID);
    view.sender_nonce = octetsAttribute(signer_info, Attribute::senderNonce);
    view.recipient_nonce = octetsAttribute(signer_info, Attribute::recipientNonce);
    view.envelope = embeddedContent(*message.cms);
    if (view.status == PkiStatus::success && view.envelope.empty()) {
        reject("CertRep SUCCESS without pkcsPKIEnvelope");
    }
    view.signer = upRef(ra_cert);
    return view;
}

DegenerateContent openCertRep(const Bytes& envelope, EVP_PKEY& key, X509& cert) {
    const CmsPtr cms = decodeCms(envelope);
    if (!cms || cmsType(*cms) != NID_pkcs7_enveloped) {
        throw CryptoError("the CertRep envelope is not a CMS EnvelopedData");
    }
    if (envelopeCipher(envelope) == NID_des_cbc) {
        enableSingleDes();
    }
    const BioPtr out = memoryBio();
    if (CMS_decrypt(cms.get(), &key, &cert, nullptr, out.get(), CMS_BINARY) != 1) {
        throw CryptoError("cannot decrypt the CertRep envelope");
    }
    return readDegenerateSignedData(bioBytes(*out));
}

DegenerateContent readDegenerateSignedData(const Bytes& der) {
    const CmsPtr cms = decodeCms(der);
    if (!cms || cmsType(*cms) != NID_pkcs7_signed) {
        throw CryptoError("not a CMS SignedData");
    }
    return DegenerateContent{certificatesOf(*cms), crlsOf(*cms)};
}

}  // namespace scep
