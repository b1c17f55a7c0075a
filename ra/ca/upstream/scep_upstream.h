// The RA as a SCEP client of the enterprise's CA (RFC 8894): what the
// upstream offers (GetCACaps, GetCACert checked against the pin), and the
// PKIOperations scep-ra sends it on a phone's behalf (PKCSReq with the
// phone's CSR unchanged, CertPoll, GetCRL), each signed with the RA's
// identity and enveloped to the upstream's recipient certificate.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/fingerprint.h"
#include "common/openssl_ptr.h"
#include "ra/scep/message.h"

namespace scep {

// The upstream could not be asked or did not answer usably: unreachable,
// timeout, HTTP error, oversized or unparseable reply, bad signature,
// nonce or transactionID mismatch. Nothing was decided; try again later.
class UpstreamUnavailable : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// The upstream's certificates do not match ca-fingerprint: never use it.
class UpstreamPinMismatch : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// One HTTP exchange per operation, no keep-alive, redirects not followed
// (a 3xx is an error). https verifies the server against the system's CAs.
struct UpstreamEndpoint {
    std::string url;                    // http(s)://host[:port]/path, from [ca] url
    std::chrono::milliseconds timeout;  // per HTTP exchange (connect, read, write each);
                                        // the whole body within three timeouts
    std::size_t max_reply = 1 << 20;    // larger replies are garbage (UpstreamUnavailable)
};

// What the upstream offers, checked against the pin.
struct UpstreamCaInfo {
    std::string capabilities;    // GetCACaps as received (trimmed lines)
    std::vector<X509Ptr> chain;  // GetCACert as received: CA (and RA) certificates
    X509* ca = nullptr;          // the issuing CA in `chain` (basicConstraints CA)
    X509* root = nullptr;        // the self-signed root `ca` chains to in `chain` (may be ca);
                                 // the last issuer `chain` holds if it has no root
    X509* recipient = nullptr;   // who requests are enveloped to: the RA encryption cert
                                 // (keyEncipherment) if the upstream has one, else `ca`
    int cipher_nid = 0;          // AES-128-CBC (what "AES" promises, RFC 8894 3.5.2) > DES3
    int digest_nid = 0;          // SHA-512 > SHA-256 > SHA-1 (as GetCACaps lists)
    bool post = false;           // POSTPKIOperation listed (SCEPStandard implies it, AES
                                 // and SHA-256); single DES and MD5 are never used
};

// One PKIOperation's answer. `issued` carries every certificate of the
// reply's degenerate SignedData; `certificate` is the one whose public key
// is the CSR's (PKCSReq/CertPoll) and is set for `issued`.
struct UpstreamReply {
    PkiStatus status = PkiStatus::failure;
    FailInfo fail = FailInfo::badRequest;  // for failure
    X509Ptr certificate;
    std::vector<X509Ptr> issued;
    X509CrlPtr crl;  // GetCRL success
};

// Reads a chain (GetCACert's, or the copy kept in state-dir) the way
// discover() does: finds ca, root and recipient, and checks the pin. The
// capabilities, cipher and digest are left empty: only GetCACaps says them.
// Throws UpstreamPinMismatch, and UpstreamUnavailable when no CA is in it.
UpstreamCaInfo pinnedChain(std::vector<X509Ptr> chain, Digest pin_digest, const Bytes& pin);

class ScepUpstream {
public:
    // Throws std::invalid_argument for a URL that is not http(s).
    explicit ScepUpstream(UpstreamEndpoint endpoint);

    // GetCACaps then GetCACert. The pin must equal the fingerprint (its own
    // digest) of a certificate in the chain that is a CA and that `ca`
    // chains to (the root, normally; an intermediate pin is allowed). The
    // recipient must be `ca` or issued by it. Throws UpstreamPinMismatch,
    // UpstreamUnavailable.
    UpstreamCaInfo discover(Digest pin_digest, const Bytes& pin) const;

    // PKCSReq carrying `csr` (DER, sent byte for byte as received), signed
    // by `identity` and enveloped to info.recipient. Verifies the CertRep:
    // signed by info.ca, a CA above it in info.chain, or a certificate
    // info.ca issued (from info.chain or carried in the CertRep); our
    // transactionID echoed, our nonce as recipientNonce; decrypts SUCCESS
    // with `identity_key` (single DES too: micromdm's scepserver envelopes
    // every SUCCESS that way; see ra/scep/INTEROP.md).
    // Throws UpstreamUnavailable, also for a SUCCESS without a certificate
    // for the CSR's key; std::invalid_argument if `csr` is no DER PKCS#10.
    UpstreamReply enroll(const UpstreamCaInfo& info, X509& identity, EVP_PKEY& identity_key,
                         const Bytes& csr, const std::string& transaction_id) const;
    // CertPoll (GetCertInitial): IssuerAndSubject of info.ca and the CSR's
    // subject, with the PKCSReq's transactionID. `csr` gives the subject and
    // the public key to pick the issued certificate by.
    UpstreamReply poll(const UpstreamCaInfo& info, X509& identity, EVP_PKEY& identity_key,
                       const Bytes& csr, const std::string& transaction_id) const;
    // GetCRL for the issuer and serial of `certificate` (one issued by
    // info.ca, or info.ca itself), under a fresh random transactionID. A
    // SUCCESS must carry a CRL signed by a CA of the pinned path.
    UpstreamReply crl(const UpstreamCaInfo& info, X509& identity, EVP_PKEY& identity_key,
                      X509& certificate) const;

private:
    UpstreamEndpoint endpoint_;
};

// The transactionID a phone's request is forwarded under: derived, never
// random, so a resend after a crash reuses it (hex of a SHA-256 over both).
std::string upstreamTransactionId(const std::string& phone_transaction_id,
                                  const Bytes& public_key_id);

}  // namespace scep
