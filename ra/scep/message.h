// RFC 8894 pkiMessage codec on OpenSSL's CMS API, the server side: parse a
// request, build a CertRep. The client side (build a request, read a
// CertRep), which the upstream CA backend, tests, tools and benchmarks use,
// is in ra/scep/client_codec.h. No hand-written ASN.1.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/fingerprint.h"
#include "common/openssl_ptr.h"

namespace scep {

enum class MessageType : int {
    CertRep = 3,
    RenewalReq = 17,
    PKCSReq = 19,
    CertPoll = 20,  // GetCertInitial in older drafts
    GetCert = 21,
    GetCRL = 22,
};
const char* messageTypeName(int type);  // "PKCSReq", ... or "unknown"

enum class PkiStatus : int { success = 0, failure = 2, pending = 3 };
enum class FailInfo : int {
    badAlg = 0,
    badMessageCheck = 1,
    badRequest = 2,
    badTime = 3,
    badCertId = 4
};
const char* failInfoName(FailInfo info);

// Why a message could not be used. `answerable` tells whether enough of it
// was authentic (signature verified, transactionID and senderNonce read) to
// send a signed CertRep FAILURE with `fail`; otherwise the HTTP layer answers
// 400.
class ScepError : public std::runtime_error {
public:
    ScepError(const std::string& what, FailInfo fail, bool answerable)
        : std::runtime_error(what), fail_(fail), answerable_(answerable) {}
    FailInfo fail() const { return fail_; }
    bool answerable() const { return answerable_; }

private:
    FailInfo fail_;
    bool answerable_;
};

// A request whose outer SignedData signature verified with the signer
// certificate it carries. The signer is NOT yet trusted: authentication
// (chain building) is the caller's job.
struct PkiRequest {
    int message_type = 0;               // as sent; may be a type we do not handle
    std::string transaction_id;         // PrintableString
    Bytes sender_nonce;                 // 16 bytes from every known client
    X509Ptr signer;                     // certificate that signed the message
    std::vector<X509Ptr> certificates;  // all certificates embedded (signer included)
    int digest_nid = 0;                 // digest of the SignerInfo (reply mirrors it)
    Bytes envelope;                     // DER EnvelopedData (encrypted inner content)
};

// The digests a request may be signed with, by their GetCACaps names: the
// capabilities advertise exactly these.
struct AcceptedDigest {
    int nid;
    const char* capability;
};
const std::vector<AcceptedDigest>& acceptedDigests();
bool isAcceptedDigest(int nid);

// Verifies the outer signature and reads the SCEP attributes. Throws
// ScepError, never answerable (the HTTP layer answers 400), when the input is
// not exactly one DER CMS SignedData with one signer; the digest is one
// OpenSSL does not know (a known but refused one such as MD5 is returned in
// digest_nid: answer FAILURE badAlg); the content is absent (detached);
// the signer certificate is not embedded, or two embedded certificates match
// the signer identifier; the signature is wrong; messageType, transactionID
// or senderNonce is missing, repeated or not a PrintableString/OCTET STRING;
// messageType is not a decimal number; transactionID is empty, over 128
// characters or not printable ASCII; senderNonce is not 8 to 64 bytes; the
// envelope is empty for a type we handle. A message type we do not handle
// (e.g. 99, or 3) is returned, envelope possibly empty, so that the caller
// can answer a signed FAILURE badRequest: default deny is the caller's job.
PkiRequest parsePkiMessage(const Bytes& der);

// The SCEP attributes of a request's SignerInfo, which parsePkiMessage reads
// once the signature verified. Throws ScepError (never answerable) when
// messageType, transactionID or senderNonce breaks the rules listed above.
// Separate so that a fuzzer reaches these rules without signing each input.
struct RequestAttributes {
    int message_type = 0;
    std::string transaction_id;
    Bytes sender_nonce;
};
RequestAttributes readRequestAttributes(const CMS_SignerInfo& signer_info);

struct Decrypted {
    Bytes content;       // DER PKCS#10 for PKCSReq/RenewalReq, IssuerAndSubject for CertPoll,
                         // IssuerAndSerialNumber for GetCert/GetCRL
    int cipher_nid = 0;  // content-encryption cipher the client chose (reply uses it)
};

// Decrypts the EnvelopedData with the RA's key. Throws ScepError, always
// answerable: badAlg for a content cipher other than AES-128/192/256-CBC,
// DES-EDE3-CBC and (with `allow_des`) DES-CBC; badMessageCheck when it is no
// EnvelopedData or cannot be decrypted with our key; badRequest when the
// envelope or its content exceeds 64 KiB.
Decrypted decryptEnvelope(const Bytes& envelope, EVP_PKEY& ra_key, X509& ra_cert, bool allow_des);

// Content of a GetCert/GetCRL request. Throws ScepError (answerable,
// badRequest) if `der` is not exactly one IssuerAndSerialNumber.
struct IssuerAndSerial {
    X509NamePtr issuer;
    Asn1IntegerPtr serial;
};
IssuerAndSerial parseIssuerAndSerial(const Bytes& der);

struct CertRepParams {
    PkiStatus status = PkiStatus::failure;
    std::optional<FailInfo> fail;  // required with failure
    std::string transaction_id;    // copied from the request
    Bytes recipient_nonce;         // the request's senderNonce
    int digest_nid = 0;            // 0: SHA-256
    int cipher_nid = 0;            // for success; 0: AES-128-CBC
    X509* recipient = nullptr;     // for success: the request's signer certificate
};

// Degenerate certs-only SignedData holding `certs` (in order) and an
// optional CRL: GetCACert's RA+CA answer and the content of a SUCCESS.
Bytes degenerateSignedData(const std::vector<const X509*>& certs, const X509_CRL* crl = nullptr);

// Signed CertRep. For SUCCESS, `content` (a degenerateSignedData) is
// enveloped to params.recipient with params.cipher_nid; for PENDING and
// FAILURE there is no envelope, only an empty eContent (certmonger cannot verify
// a detached reply). The RA certificate is embedded, the
// SignerInfo algorithm is rsaEncryption (strongSwan accepts nothing else),
// and the signed attributes are contentType, signingTime, messageDigest and
// the SCEP ones only. Throws std::invalid_argument for FAILURE without
// `fail`, SUCCESS without content or recipient, or SUCCESS to a recipient
// canEncryptTo() refuses (answer FAILURE badAlg instead).
Bytes buildCertRep(const CertRepParams& params, const Bytes* content, EVP_PKEY& ra_key,
                   X509& ra_cert);

// The RSA recipient key check every SUCCESS needs: key transport to an EC
// certificate is not something SCEP clients can read.
bool canEncryptTo(const X509& cert);

}  // namespace scep
