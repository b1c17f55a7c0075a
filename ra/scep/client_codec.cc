#include "ra/scep/client_codec.h"

#include <algorithm>
#include <memory>

#include <openssl/asn1t.h>
#include <openssl/cms.h>
#include <openssl/pkcs7.h>

#include "ra/crypto.h"
#include "ra/scep/pki_parts.h"

namespace scep {

using namespace pki;

namespace {

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

// RFC 8894's IssuerAndSubject, declared through OpenSSL's ASN.1 templates:
// OpenSSL has no type for it.
struct ScepIssuerAndSubject {
    X509_NAME* issuer;
    X509_NAME* subject;
};
// clang-format off
ASN1_SEQUENCE(ScepIssuerAndSubject) = {
    ASN1_SIMPLE(ScepIssuerAndSubject, issuer, X509_NAME),
    ASN1_SIMPLE(ScepIssuerAndSubject, subject, X509_NAME),
} static_ASN1_SEQUENCE_END(ScepIssuerAndSubject)
// clang-format on

}  // namespace

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

Bytes issuerAndSubjectDer(const X509_NAME& issuer, const X509_NAME& subject) {
    // Encoding only reads the names, so they are borrowed rather than copied.
    ScepIssuerAndSubject borrowed{const_cast<X509_NAME*>(&issuer),
                                  const_cast<X509_NAME*>(&subject)};
    unsigned char* buf = nullptr;
    const int length = ASN1_item_i2d(reinterpret_cast<ASN1_VALUE*>(&borrowed), &buf,
                                     ASN1_ITEM_rptr(ScepIssuerAndSubject));
    const std::unique_ptr<unsigned char, OpenSslFree> owner(buf);
    if (length <= 0) {
        throw CryptoError("cannot DER-encode IssuerAndSubject");
    }
    return Bytes(buf, buf + length);
}

CertRepView parseCertRep(const Bytes& der, X509& ra_cert) {
    return parseCertRep(der, std::vector<X509*>{&ra_cert});
}

CertRepView parseCertRep(const Bytes& der, const std::vector<X509*>& signers) {
    const SignedMessage message = decodeSignedMessage(der);
    const CMS_SignerInfo& signer_info = *message.signer_info;
    const auto named = std::find_if(signers.begin(), signers.end(), [&](X509* cert) {
        return CMS_SignerInfo_cert_cmp(message.signer_info, cert) == 0;
    });
    if (named == signers.end()) {
        reject(signers.size() == 1 ? "the CertRep is not signed by the RA certificate"
                                   : "the CertRep is not signed by any of the " +
                                         std::to_string(signers.size()) + " expected signers");
    }
    X509& signer = **named;
    // PENDING and FAILURE may leave the (empty) content out.
    const bool detached = CMS_is_detached(message.cms.get()) != 0;
    const BioPtr no_content = detached ? readOnlyBio(Bytes{}) : nullptr;
    verifySignature(message, signer, no_content.get());

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
    view.signer = upRef(signer);
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
