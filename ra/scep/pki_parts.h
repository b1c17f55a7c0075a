// The CMS building blocks of an RFC 8894 pkiMessage: SCEP attributes,
// signing, envelopes, reading a signer's attributes. The server codec
// (message.cc) and the client codec (client_codec.cc) share them, and
// the upstream client (ra/ca/upstream/) takes its nonces from here.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include <openssl/cms.h>
#include <openssl/pkcs7.h>

#include "common/fingerprint.h"
#include "common/openssl_ptr.h"
#include "ra/crypto.h"
#include "ra/scep/message.h"

namespace scep::pki {

using Pkcs7Ptr = OpenSslPtr<PKCS7, PKCS7_free>;
using IssuerAndSerialPtr = OpenSslPtr<PKCS7_ISSUER_AND_SERIAL, PKCS7_ISSUER_AND_SERIAL_free>;

// A stack that borrows its certificates: OpenSSL up-refs whatever it keeps.
struct BorrowedX509StackDeleter {
    void operator()(STACK_OF(X509) * stack) const { sk_X509_free(stack); }
};
using BorrowedX509StackPtr = std::unique_ptr<STACK_OF(X509), BorrowedX509StackDeleter>;

constexpr std::size_t kNonceSize = 16;  // what both known clients send

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

struct SignedMessage {
    CmsPtr cms;
    CMS_SignerInfo* signer_info = nullptr;  // owned by cms
};

const char* attributeName(Attribute attribute);

// Created once: the benchmark builds thousands of messages.
const ASN1_OBJECT& attributeOid(Attribute attribute);

// Every rejection carries OpenSSL's reasons, if any, and leaves its error
// queue empty (CryptoError drains it).
[[noreturn]] void reject(const std::string& what, FailInfo fail = FailInfo::badRequest,
                         bool answerable = false);

CmsPtr decodeCms(const Bytes& der);

int cmsType(CMS_ContentInfo& cms);

Bytes cmsDer(const CMS_ContentInfo& cms);

std::vector<X509Ptr> certificatesOf(CMS_ContentInfo& cms);

std::vector<X509CrlPtr> crlsOf(CMS_ContentInfo& cms);

X509Ptr upRef(X509& cert);

BorrowedX509StackPtr borrowedStack(const std::vector<X509*>& certs);

// eContent of a SignedData; empty when absent (detached) or empty.
Bytes embeddedContent(CMS_ContentInfo& cms);

std::string algorithmName(int nid);

const EVP_MD& digestFor(int nid);

const EVP_CIPHER& cipherFor(int nid);

// OpenSSL 3.0 has no CMS getter for the content-encryption algorithm; the
// same bytes parse as a PKCS#7 EnvelopedData, whose structs are public.
int envelopeCipher(const Bytes& envelope);

Bytes envelopeTo(X509& recipient, const Bytes& content, int cipher_nid);

Bytes randomNonce();

SignedMessage decodeSignedMessage(const Bytes& der);

// Checks the signature only: whether the signer is trusted is the caller's
// question. `detached_content` is null when the content must be embedded.
void verifySignature(const SignedMessage& message, X509& signer, BIO* detached_content);

// The attribute's single value, refused if absent, repeated, multi-valued or
// of another ASN.1 type.
const ASN1_STRING& attributeValue(const CMS_SignerInfo& signer_info, Attribute attribute, int type);

std::string printableAttribute(const CMS_SignerInfo& signer_info, Attribute attribute);

Bytes octetsAttribute(const CMS_SignerInfo& signer_info, Attribute attribute);

bool isDecimal(const std::string& text, std::size_t max_digits);

// Small decimal attribute values: messageType, pkiStatus, failInfo.
int numberAttribute(const CMS_SignerInfo& signer_info, Attribute attribute);

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

}  // namespace scep::pki
