#include "ra/scep/pki_parts.h"

#include <algorithm>
#include <array>
#include <climits>

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/rand.h>

namespace scep::pki {

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
[[noreturn]] void reject(const std::string& what, FailInfo fail, bool answerable) {
    throw ScepError(CryptoError(what).what(), fail, answerable);
}

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

SignedMessage decodeSignedMessage(const Bytes& der) {
    SignedMessage message{cmsFromDer(der)};
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

}  // namespace scep::pki
