#include "ra/scep/message.h"

#include <algorithm>
#include <utility>

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pkcs7.h>

#include "common/text.h"
#include "ra/crypto.h"
#include "ra/scep/pki_parts.h"

namespace scep {

using namespace pki;

namespace {

constexpr std::size_t kMinNonceSize = 8;
constexpr std::size_t kMaxNonceSize = 64;
constexpr std::size_t kMaxTransactionIdSize = 128;
// A PKCS#10 or IssuerAndSerialNumber is a few KiB at most; the envelope adds
// the recipient infos and padding on top of the content.
constexpr std::size_t kMaxContentSize = 64 * 1024;
constexpr std::size_t kMaxEnvelopeSize = kMaxContentSize + 16 * 1024;

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

int signerDigest(CMS_SignerInfo& signer_info) {
    X509_ALGOR* digest = nullptr;
    CMS_SignerInfo_get0_algs(&signer_info, nullptr, nullptr, &digest, nullptr);
    const ASN1_OBJECT* algorithm = nullptr;
    X509_ALGOR_get0(&algorithm, nullptr, nullptr, digest);
    return OBJ_obj2nid(algorithm);
}

// Printable ASCII only: the ID ends up in logs and the database. Both clients
// send base64 or hex.
std::string readTransactionId(const CMS_SignerInfo& signer_info) {
    std::string id = printableAttribute(signer_info, Attribute::transactionID);
    if (id.empty() || id.size() > kMaxTransactionIdSize || !isPrintableAscii(id)) {
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

}  // namespace scep
