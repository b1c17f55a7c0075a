// Who is asking? Requests are classified by the certificate that signed
// them, never by their message type: a certificate this RA issued means
// renewal, one chaining to [auth] ra-signers means another RA acting for a
// device, one chaining to a manufacturer root means MIC/SUDI, a
// self-signed one means challenge. Anything else is refused. The result
// also fixes what the certificate may say: its CN and subjectAltNames.
#pragma once

#include <ctime>
#include <optional>
#include <string>
#include <vector>

#include "common/openssl_ptr.h"
#include "ra/ca/authority.h"
#include "ra/config.h"
#include "ra/crypto.h"
#include "ra/scep/message.h"
#include "ra/store/store.h"

namespace scep {

enum class AuthMethod { mic, challenge, renewal, ra };
const char* authMethodName(AuthMethod method);

// What a Cisco MIC/SUDI subject says about the device.
struct MicIdentity {
    std::string subject;      // whole subject, RFC 2253
    std::string common_name;  // CP-8875-SEP001A2B3C4D5E
    std::string model;        // CP-8875 (empty if the CN has another shape)
    std::string mac;          // 00:1A:2B:3C:4D:5E
    std::string pid;          // from serialNumber "PID:CP-8875 SN:FCH2133E8B9"
    std::string serial_number;
    std::string issuer;  // the manufacturing CA's subject
};
MicIdentity parseMicIdentity(X509& cert);

// Manufacturer trust anchors (self-signed certificates of the bundle) and
// the intermediates shipped with them (never anchors themselves). The
// [auth] ra-signers bundle is read the same way.
class ManufacturerRoots {
public:
    // `key` names the bundle in errors: its [auth] key.
    explicit ManufacturerRoots(const std::string& bundle_path,
                               const char* key = "manufacturer-roots");
    // Chain building with the request's embedded certificates as extra
    // intermediates. Expired leaves pass only with `allow_expired_leaf`.
    // Returns "" when trusted, else the reason. When trusted and `chain` is
    // given, it receives the verified chain, leaf first, anchor last.
    std::string verify(X509& leaf, const std::vector<X509Ptr>& extra, bool allow_expired_leaf,
                       std::time_t now, std::vector<X509Ptr>* chain = nullptr) const;
    std::size_t anchorCount() const { return anchors_; }
    std::size_t intermediateCount() const { return intermediates_.size(); }

private:
    X509StorePtr store_;
    std::vector<X509Ptr> intermediates_;
    std::size_t anchors_ = 0;
};

struct CsrSummary {
    std::string common_name;
    std::vector<SubjectAltName> sans;
    std::optional<std::string> challenge;  // challengePassword, never logged
    Bytes public_key_id;
};
// Checks the CSR's self-signature and key (RSA >= 2048, or EC P-256/P-384
// on a named curve), reads CN, SANs and challenge. Throws
// std::invalid_argument with the reason when unusable, e.g. for a CN with
// leading or trailing spaces.
CsrSummary inspectCsr(const CertificationRequest& csr);

struct AuthResult {
    bool ok = false;
    FailInfo fail = FailInfo::badRequest;  // when refused
    std::string reason;                    // when refused (safe to log and store)
    std::optional<AuthMethod> method;      // once classified
    std::string identity;                  // what was proven
    std::string common_name;               // for the certificate
    std::vector<SubjectAltName> sans;      // for the certificate
    std::optional<MicIdentity> mic;
    std::string renewed_serial;  // renewal: the certificate being replaced
    std::string clash;           // refused as an identity clash: its metric label
    bool wrong_secret = false;   // a challengePassword that does not match
};

class Authenticator {
public:
    Authenticator(const Config& config, X509& ca_cert);

    // `csr` belongs to `request` (PKCSReq or RenewalReq).
    AuthResult authenticate(const PkiRequest& request, const CertificationRequest& csr,
                            Store& store, std::time_t now) const;

    const ManufacturerRoots& manufacturerRoots() const { return roots_; }
    // Signed by this RA's CA (the signer of a renewal).
    bool issuedByUs(X509& cert) const;

private:
    AuthResult viaRenewal(const PkiRequest& request, const CsrSummary& csr, Store& store,
                          std::time_t now) const;
    AuthResult viaMic(const PkiRequest& request, const CsrSummary& csr,
                      const std::vector<X509Ptr>& chain) const;
    AuthResult viaChallenge(const CsrSummary& csr, Store& store, std::time_t now) const;
    AuthResult viaRaSigner(X509& signer, const CsrSummary& csr) const;
    // Why this trusted chain is not a phone's MIC ("" when it is one).
    std::string notAPhoneMic(const std::vector<X509Ptr>& chain, const MicIdentity& mic) const;

    const Config& config_;
    X509& ca_cert_;
    ManufacturerRoots roots_;
    // [auth] ra-signers: the same kind of trust bundle, for other RAs.
    std::optional<ManufacturerRoots> ra_signers_;
};

// The profile whose vendor classes cover this MIC's model, for the domain
// rule. DP models carry "CP-" in their MIC CN, so the model number is what
// is matched when the full model name is not.
const Profile* profileForModel(const DhcpConfig& dhcp, const MicIdentity& mic);
// The MIC's model is one the RA enrolls: some profile's vendor classes cover
// it (as profileForModel matches, ambiguity included), or [auth] mic-models
// lists its model, PID or model number.
bool modelServed(const Config& config, const MicIdentity& mic);

// The identity a CN names: ASCII letters lower-cased, trailing dots removed
// (the store's lower(rtrim(cn, '.'))).
std::string canonicalName(const std::string& common_name);
// "<model>-SEP<12 hex digits>", optionally followed by ".<domain>", in any
// case: a name only a phone's MIC may prove.
bool isMicShapedName(const std::string& common_name);

// Constant-time equality that does not leak the secret's length either.
bool secretsEqual(const std::string& given, const std::string& expected);

}  // namespace scep
