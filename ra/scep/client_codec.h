// The client side of the RFC 8894 pkiMessage codec: build a request as a
// SCEP client does and read the CertRep. The RA speaks it to an upstream CA
// (ra/ca/upstream/); tests, tools (scep_probe) and the benchmark use it too.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/fingerprint.h"
#include "common/openssl_ptr.h"
#include "ra/scep/message.h"

namespace scep {

struct RequestParams {
    MessageType type = MessageType::PKCSReq;
    std::string transaction_id;
    Bytes sender_nonce;  // empty: 16 random bytes
    int digest_nid = 0;  // 0: SHA-256
    int cipher_nid = 0;  // 0: AES-128-CBC
};

// Envelopes `content` to `recipient` (the RA certificate) and signs it with
// the signer certificate and key, embedding the signer certificate.
Bytes buildPkiMessage(const RequestParams& params, const Bytes& content, X509& signer,
                      EVP_PKEY& signer_key, X509& recipient);

Bytes issuerAndSerialDer(const X509_NAME& issuer, const ASN1_INTEGER& serial);
// IssuerAndSubject ::= SEQUENCE { issuer Name, subject Name }: CertPoll's
// content (RFC 8894 3.3.3).
Bytes issuerAndSubjectDer(const X509_NAME& issuer, const X509_NAME& subject);

struct CertRepView {
    PkiStatus status = PkiStatus::failure;
    std::optional<FailInfo> fail;
    std::string transaction_id;
    Bytes sender_nonce;
    Bytes recipient_nonce;
    Bytes envelope;  // empty unless SUCCESS
    X509Ptr signer;
};
// Verifies the CertRep's signature against `ra_cert` (which must be its
// signer) and reads its attributes. Throws ScepError (never answerable).
CertRepView parseCertRep(const Bytes& der, X509& ra_cert);
// The same with the signer any of `signers` (the first its SignerInfo
// names); ScepError when none is.
CertRepView parseCertRep(const Bytes& der, const std::vector<X509*>& signers);

// Decrypts a SUCCESS envelope with the requester's key and returns the
// certificates and CRLs of the degenerate SignedData inside. Both throw
// CryptoError.
struct DegenerateContent {
    std::vector<X509Ptr> certificates;
    std::vector<X509CrlPtr> crls;
};
DegenerateContent openCertRep(const Bytes& envelope, EVP_PKEY& key, X509& cert);
DegenerateContent readDegenerateSignedData(const Bytes& der);

}  // namespace scep
