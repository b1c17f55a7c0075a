#include "ra/auth/authenticator.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <stdexcept>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "common/text.h"
#include "ra/ca/certificate.h"
#include "ra/crypto.h"

namespace scep {

namespace {

AuthResult refuse(FailInfo fail, std::string reason) {
    AuthResult result;
    result.fail = fail;
    result.reason = std::move(reason);
    return result;
}

bool isHex(const std::string& text) {
    return std::all_of(text.begin(), text.end(),
                       [](unsigned char c) { return std::isxdigit(c) && !std::islower(c); });
}

void freeExtensions(STACK_OF(X509_EXTENSION) * extensions) {
    sk_X509_EXTENSION_pop_free(extensions, X509_EXTENSION_free);
}
using ExtensionsPtr = OpenSslPtr<STACK_OF(X509_EXTENSION), freeExtensions>;

std::string asciiString(const ASN1_STRING* value) {
    return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(value)),
                       static_cast<std::size_t>(ASN1_STRING_length(value)));
}

std::vector<SubjectAltName> readAltNames(const GENERAL_NAMES* names) {
    std::vector<SubjectAltName> out;
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names); ++i) {
        const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
        int type = 0;
        const auto* value = static_cast<const ASN1_STRING*>(GENERAL_NAME_get0_value(name, &type));
        if (type != GEN_DNS && type != GEN_EMAIL) {
            throw std::invalid_argument("only DNS and email subjectAltNames may be requested");
        }
        const std::string text = asciiString(value);
        if (text.empty() || text.size() > 255 || !isPrintableAscii(text)) {
            throw std::invalid_argument("a subjectAltName is empty, too long or not printable");
        }
        out.push_back(
            {type == GEN_DNS ? SubjectAltName::Type::dns : SubjectAltName::Type::email, text});
    }
    return out;
}

std::vector<SubjectAltName> altNamesOf(X509& cert) {
    GeneralNamesPtr names(static_cast<GENERAL_NAMES*>(
        X509_get_ext_d2i(&cert, NID_subject_alt_name, nullptr, nullptr)));
    return readAltNames(names.get());
}

std::string describe(const SubjectAltName& san) {
    return (san.type == SubjectAltName::Type::dns ? "DNS:" : "email:") + san.value;
}

// True when `number` appears in `text` with no letter or digit on either side.
bool containsToken(const std::string& text, const std::string& number) {
    for (std::size_t at = text.find(number); at != std::string::npos;
         at = text.find(number, at + 1)) {
        const bool left = at == 0 || !std::isalnum(static_cast<unsigned char>(text[at - 1]));
        const std::size_t end = at + number.size();
        const bool right =
            end == text.size() || !std::isalnum(static_cast<unsigned char>(text[end]));
        if (left && right) {
            return true;
        }
    }
    return false;
}

}  // namespace

const char* authMethodName(AuthMethod method) {
    switch (method) {
    case AuthMethod::mic:
        return "mic";
    case AuthMethod::challenge:
        return "challenge";
    case AuthMethod::renewal:
        return "renewal";
    case AuthMethod::ra:
        return "ra";
    }
    return "?";
}

MicIdentity parseMicIdentity(X509& cert) {
    MicIdentity mic;
    const X509_NAME* subject = X509_get_subject_name(&cert);
    mic.subject = nameText(subject);
    mic.issuer = nameText(X509_get_issuer_name(&cert));
    mic.common_name = nameEntry(subject, NID_commonName);
    // Cisco phones: "<model>-SEP<12 hex digits of the MAC>".
    const auto sep = mic.common_name.rfind("-SEP");
    if (sep != std::string::npos && sep > 0) {
        const std::string hex = mic.common_name.substr(sep + 4);
        if (hex.size() == 12 && isHex(hex)) {
            mic.model = mic.common_name.substr(0, sep);
            mic.mac = macText(hex);
        }
    }
    // serialNumber "PID:CP-8875 SN:FCH2133E8B9".
    const std::string serial = nameEntry(subject, NID_serialNumber);
    const auto pid = serial.find("PID:");
    const auto sn = serial.find(" SN:");
    if (pid != std::string::npos && sn != std::string::npos && sn > pid) {
        mic.pid = serial.substr(pid + 4, sn - pid - 4);
        mic.serial_number = serial.substr(sn + 4);
    }
    return mic;
}

CsrSummary inspectCsr(const CertificationRequest& parsed) {
    X509_REQ& csr = *parsed.request;
    // Before decoding the key: OpenSSL 3 names a well-known explicit curve
    // and would otherwise accept it as P-256.
    if (hasExplicitEcParameters(*X509_REQ_get_X509_PUBKEY(&csr))) {
        throw std::invalid_argument(
            "the CSR's EC key spells out its curve parameters; RFC 5480 allows only a named "
            "curve (P-256 or P-384)");
    }
    if (!requestSignatureVerifies(parsed)) {
        throw std::invalid_argument("the CSR's signature does not verify");
    }
    EVP_PKEY* key = parsed.key.get();
    const int base = EVP_PKEY_get_base_id(key);
    if (base == EVP_PKEY_RSA) {
        if (EVP_PKEY_get_bits(key) < 2048) {
            throw std::invalid_argument("the CSR's RSA key has " +
                                        std::to_string(EVP_PKEY_get_bits(key)) +
                                        " bits; at least 2048 are required");
        }
    } else if (base == EVP_PKEY_EC) {
        char group[64] = {};
        std::size_t length = 0;
        EVP_PKEY_get_group_name(key, group, sizeof(group), &length);
        const std::string curve(group, length);
        if (curve != "prime256v1" && curve != "secp384r1") {
            throw std::invalid_argument("the CSR's EC key must be on P-256 or P-384");
        }
    } else {
        throw std::invalid_argument("the CSR's key must be RSA or EC");
    }

    CsrSummary summary;
    const X509_NAME* subject = X509_REQ_get_subject_name(&csr);
    const int first = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    if (first < 0 || X509_NAME_get_index_by_NID(subject, NID_commonName, first) >= 0) {
        throw std::invalid_argument("the CSR's subject must hold exactly one CN");
    }
    summary.common_name = nameEntry(subject, NID_commonName);
    if (summary.common_name.empty() || summary.common_name.size() > 64 ||
        !isPrintableAscii(summary.common_name)) {
        throw std::invalid_argument("the CSR's CN must be 1-64 printable ASCII characters");
    }
    // " victim.example.nl" would be another string for the same name.
    if (summary.common_name.front() == ' ' || summary.common_name.back() == ' ') {
        throw std::invalid_argument("the CSR's CN has leading or trailing spaces");
    }
    if (canonicalName(summary.common_name).empty()) {
        throw std::invalid_argument("the CSR's CN is only dots");
    }

    const ExtensionsPtr extensions(X509_REQ_get_extensions(&csr));
    if (extensions) {
        int critical = 0;
        GeneralNamesPtr names(static_cast<GENERAL_NAMES*>(
            X509V3_get_d2i(extensions.get(), NID_subject_alt_name, &critical, nullptr)));
        if (!names && critical == -2) {
            throw std::invalid_argument("the CSR carries more than one subjectAltName extension");
        }
        summary.sans = readAltNames(names.get());
    }

    const int index = X509_REQ_get_attr_by_NID(&csr, NID_pkcs9_challengePassword, -1);
    if (index >= 0) {
        const ASN1_TYPE* value = X509_ATTRIBUTE_get0_type(X509_REQ_get_attr(&csr, index), 0);
        if (!value || (value->type != V_ASN1_PRINTABLESTRING && value->type != V_ASN1_UTF8STRING &&
                       value->type != V_ASN1_IA5STRING && value->type != V_ASN1_T61STRING)) {
            throw std::invalid_argument("the CSR's challengePassword is not a string");
        }
        summary.challenge = asciiString(value->value.asn1_string);
    }
    summary.public_key_id = publicKeyId(*X509_REQ_get_X509_PUBKEY(&csr));
    ERR_clear_error();
    return summary;
}

bool secretsEqual(const std::string& given, const std::string& expected) {
    // Hashing first makes the comparison length-independent.
    unsigned char a[32], b[32];
    unsigned int length = 0;
    if (EVP_Digest(given.data(), given.size(), a, &length, EVP_sha256(), nullptr) != 1 ||
        EVP_Digest(expected.data(), expected.size(), b, &length, EVP_sha256(), nullptr) != 1) {
        throw CryptoError("SHA-256");
    }
    return CRYPTO_memcmp(a, b, sizeof(a)) == 0 && !expected.empty();
}

namespace {

std::string modelNumber(const std::string& model) {
    const auto dash = model.find('-');
    return dash == std::string::npos ? model : model.substr(dash + 1);
}

// The profiles whose vendor classes name the model number, at most two.
std::vector<const Profile*> profilesCovering(const DhcpConfig& dhcp, const std::string& model) {
    const std::string number = modelNumber(model);
    std::vector<const Profile*> found;
    for (const Profile& profile : dhcp.profiles) {
        const bool covers =
            std::any_of(profile.vendor_classes.begin(), profile.vendor_classes.end(),
                        [&](const std::string& entry) { return containsToken(entry, number); });
        if (covers) {
            found.push_back(&profile);
            if (found.size() == 2) {
                break;
            }
        }
    }
    return found;
}

std::string lowerAscii(std::string text) {
    std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) {
        return static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    });
    return text;
}

}  // namespace

const Profile* profileForModel(const DhcpConfig& dhcp, const MicIdentity& mic) {
    if (mic.model.empty()) {
        return nullptr;
    }
    const ProfileMatch exact = dhcp.match(mic.model);
    if (exact.profile) {
        return exact.profile;
    }
    const auto covering = profilesCovering(dhcp, mic.model);
    return covering.size() == 1 ? covering.front() : nullptr;  // two: do not guess a domain
}

bool modelServed(const Config& config, const MicIdentity& mic) {
    if (mic.model.empty()) {
        return false;
    }
    if (config.dhcp.match(mic.model).profile || !profilesCovering(config.dhcp, mic.model).empty()) {
        return true;
    }
    const std::string model = lowerAscii(mic.model), pid = lowerAscii(mic.pid);
    return std::any_of(config.auth.mic_models.begin(), config.auth.mic_models.end(),
                       [&](const std::string& entry) {
                           const std::string listed = lowerAscii(entry);
                           return listed == model || (!pid.empty() && listed == pid) ||
                                  modelNumber(listed) == modelNumber(model);
                       });
}

std::string canonicalName(const std::string& common_name) {
    const auto end = common_name.find_last_not_of('.');
    return lowerAscii(end == std::string::npos ? std::string() : common_name.substr(0, end + 1));
}

bool isMicShapedName(const std::string& common_name) {
    const std::string name = canonicalName(common_name);
    const std::string device = name.substr(0, name.find('.'));
    const auto sep = device.rfind("-sep");
    if (sep == std::string::npos || sep == 0 || device.size() != sep + 4 + 12) {
        return false;
    }
    const bool model = std::all_of(device.begin(), device.begin() + static_cast<long>(sep),
                                   [](unsigned char c) { return std::isalnum(c) || c == '-'; });
    return model && std::all_of(device.begin() + static_cast<long>(sep) + 4, device.end(),
                                [](unsigned char c) { return std::isxdigit(c); });
}

Authenticator::Authenticator(const Config& config, X509& ca_cert)
    : config_(config), ca_cert_(ca_cert), roots_(config.auth.manufacturer_roots) {
    if (!config.auth.ra_signers.empty()) {
        ra_signers_.emplace(config.auth.ra_signers, "ra-signers");
    }
}

bool Authenticator::issuedByUs(X509& cert) const {
    return isIssuedBy(cert, ca_cert_);
}

AuthResult Authenticator::authenticate(const PkiRequest& request,
                                       const CertificationRequest& csr_der, Store& store,
                                       std::time_t now) const {
    CsrSummary csr;
    try {
        csr = inspectCsr(csr_der);
    } catch (const std::invalid_argument& e) {
        return refuse(FailInfo::badRequest, e.what());
    }
    X509& signer = *request.signer;
    if (issuedByUs(signer)) {
        return viaRenewal(request, csr, store, now);
    }
    if (ra_signers_ && ra_signers_->verify(signer, request.certificates, false, now).empty()) {
        return viaRaSigner(signer, csr);
    }
    std::vector<X509Ptr> chain;
    const std::string untrusted =
        roots_.verify(signer, request.certificates, config_.auth.allow_expired_mic, now, &chain);
    if (untrusted.empty()) {
        return viaMic(request, csr, chain);
    }
    if (isSelfSigned(signer)) {
        return viaChallenge(csr, store, now);
    }
    return refuse(FailInfo::badRequest, "signer '" + nameText(X509_get_subject_name(&signer)) +
                                            "' is neither issued by this CA nor trusted by "
                                            "manufacturer-roots: " +
                                            untrusted);
}

AuthResult Authenticator::viaRenewal(const PkiRequest& request, const CsrSummary& csr, Store& store,
                                     std::time_t now) const {
    X509& signer = *request.signer;
    const std::string serial = serialHex(X509_get0_serialNumber(&signer));
    AuthResult result;
    result.method = AuthMethod::renewal;
    result.identity = nameText(X509_get_subject_name(&signer));
    result.renewed_serial = serial;
    const auto record = store.findCertificate(serial);
    if (!record) {
        result.reason = "renewal certificate " + serial + " is not in this RA's records";
    } else if (record->revoked) {
        result.reason = "renewal certificate " + serial + " is revoked";
    } else if (!record->superseded_by.empty()) {
        // Its successor renews; a copied old key must not mint more.
        result.reason = "renewal certificate " + serial + " was superseded by " +
                        record->superseded_by + "; renew with that one";
    } else if (certificateState(*record, now) == CertificateState::expired ||
               record->not_before > now) {
        result.reason = "renewal certificate " + serial +
                        " is not valid now (expired certificates enroll again with their MIC)";
    } else if (canonicalName(csr.common_name) != canonicalName(record->common_name)) {
        result.reason = "CSR CN '" + csr.common_name +
                        "' differs from the renewed certificate's CN '" + record->common_name + "'";
    } else if (csr.public_key_id == publicKeyId(*X509_get_X509_PUBKEY(&signer))) {
        result.reason = "renewal must use a new key; the CSR reuses the old certificate's key";
    } else {
        const auto allowed = altNamesOf(signer);
        for (const auto& san : csr.sans) {
            if (std::find(allowed.begin(), allowed.end(), san) == allowed.end()) {
                result.reason =
                    "subjectAltName " + describe(san) + " is not in the renewed certificate";
                return result;
            }
        }
        result.ok = true;
        result.common_name = csr.common_name;
        result.sans = csr.sans;
    }
    return result;
}

std::string Authenticator::notAPhoneMic(const std::vector<X509Ptr>& chain,
                                        const MicIdentity& mic) const {
    X509& leaf = *chain.front();
    if (chain.size() < 2) {
        return "signer '" + mic.subject + "' is a trust anchor itself, not a device's MIC/SUDI";
    }
    const X509_NAME* issuer = X509_get_subject_name(chain[1].get());
    const std::string issuer_cn = nameEntry(issuer, NID_commonName);
    const auto& allowed = config_.auth.mic_issuers;
    if (std::find(allowed.begin(), allowed.end(), issuer_cn) == allowed.end()) {
        std::string list;
        for (const auto& name : allowed) {
            list += (list.empty() ? "'" : ", '") + name + "'";
        }
        return "MIC/SUDI issuer '" + nameText(issuer) + "' is not one of mic-issuers (" + list +
               "): not a phone manufacturing CA";
    }
    // Both return UINT32_MAX when the extension is absent (no restriction).
    const std::uint32_t key_usage = X509_get_key_usage(&leaf);
    if (key_usage != UINT32_MAX && (key_usage & KU_DIGITAL_SIGNATURE) == 0) {
        return "MIC/SUDI '" + mic.subject +
               "' key usage lacks digitalSignature, which signing this request needs";
    }
    const std::uint32_t extended = X509_get_extended_key_usage(&leaf);
    if (extended != UINT32_MAX && (extended & (XKU_SSL_CLIENT | XKU_ANYEKU)) == 0) {
        return "MIC/SUDI '" + mic.subject + "' extendedKeyUsage excludes clientAuth";
    }
    for (const X509Ptr& cert : chain) {
        if (hasExplicitEcParameters(*X509_get_X509_PUBKEY(cert.get()))) {
            return "'" + nameText(X509_get_subject_name(cert.get())) +
                   "' has an EC key with explicit curve parameters (RFC 5480: named curves only)";
        }
    }
    if (mic.model.empty()) {
        return "MIC/SUDI CN '" + mic.common_name +
               "' is not a phone MIC (<model>-SEP<12 hex digits of the MAC>)";
    }
    if (!modelServed(config_, mic)) {
        return "model " + mic.model + (mic.pid.empty() ? "" : " (PID " + mic.pid + ")") +
               " is covered by no [[profile]] vendor-class and not listed in [auth] mic-models";
    }
    return {};
}

AuthResult Authenticator::viaMic(const PkiRequest& request, const CsrSummary& csr,
                                 const std::vector<X509Ptr>& chain) const {
    AuthResult result;
    result.method = AuthMethod::mic;
    MicIdentity mic = parseMicIdentity(*request.signer);
    result.identity = mic.subject;
    if (X509_check_ca(request.signer.get()) != 0) {
        result.reason = "signer '" + mic.subject + "' is a CA certificate, not a device's MIC/SUDI";
        return result;
    }
    if (mic.common_name.empty()) {
        result.reason = "MIC/SUDI '" + mic.subject + "' has no CN";
        return result;
    }
    result.reason = notAPhoneMic(chain, mic);
    if (!result.reason.empty()) {
        return result;
    }
    const Profile* profile = profileForModel(config_.dhcp, mic);
    const std::string domain = profile && profile->domain ? *profile->domain : std::string();
    const std::string with_domain = domain.empty() ? "" : mic.common_name + "." + domain;
    // Exactly as the phone builds it: another spelling is the same identity,
    // but no phone sends one.
    if (csr.common_name != mic.common_name && csr.common_name != with_domain) {
        result.reason = "CSR CN '" + csr.common_name + "' is neither the MIC CN '" +
                        mic.common_name + "'" +
                        (with_domain.empty() ? "" : " nor '" + with_domain + "'");
        return result;
    }
    for (const auto& san : csr.sans) {
        const bool user_id = san.type == SubjectAltName::Type::email && !domain.empty() &&
                             san.value == mic.common_name + "@" + domain;
        const bool own_name = san.type == SubjectAltName::Type::dns && san.value == csr.common_name;
        if (!user_id && !own_name) {
            result.reason = "subjectAltName " + describe(san) + " is not allowed for " +
                            mic.common_name + " (allowed: DNS:" + csr.common_name +
                            (domain.empty() ? "" : ", email:" + mic.common_name + "@" + domain) +
                            ")";
            return result;
        }
    }
    result.ok = true;
    result.common_name = csr.common_name;
    result.sans = csr.sans;
    result.mic = std::move(mic);
    return result;
}

namespace {

// Where nothing proves more than the CN, a subjectAltName may only repeat it
// as a DNS name: the refusal, or "".
std::string sansOtherThanCn(const CsrSummary& csr, const std::string& where) {
    for (const auto& san : csr.sans) {
        if (san.type != SubjectAltName::Type::dns ||
            canonicalName(san.value) != canonicalName(csr.common_name)) {
            return "subjectAltName " + describe(san) + " is not allowed " + where +
                   " (only DNS:" + csr.common_name + ")";
        }
    }
    return "";
}

}  // namespace

AuthResult Authenticator::viaChallenge(const CsrSummary& csr, Store& store, std::time_t now) const {
    AuthResult result;
    result.method = AuthMethod::challenge;
    result.identity = "challenge for CN " + csr.common_name;
    if (config_.auth.challenge.empty()) {
        result.reason = "self-signed signer, and challenge authentication is disabled";
        return result;
    }
    if (!csr.challenge) {
        result.reason = "self-signed signer without a challengePassword in the CSR";
        return result;
    }
    if (!secretsEqual(*csr.challenge, config_.auth.challenge)) {
        result.reason = "challengePassword does not match";
        result.wrong_secret = true;
        return result;
    }
    // The challenge travels in DHCP broadcasts: it must not buy a phone's name.
    if (isMicShapedName(csr.common_name)) {
        result.reason = "CN '" + csr.common_name +
                        "' has the shape of a phone's MIC name (<model>-SEP<MAC>); it is issued "
                        "only to the phone whose MIC proves it";
        result.clash = "challenge-for-mic-name";
        return result;
    }
    result.reason = sansOtherThanCn(csr, "with challenge authentication");
    if (!result.reason.empty()) {
        return result;
    }
    // A shared secret proves nothing about identity (CERT VU#971035): the
    // first holder of a CN keeps it until it is revoked or expires.
    const auto active =
        store.activeCertificatesFor(csr.common_name, now, Store::Superseded::include);
    if (!active.empty()) {
        result.reason = "CN '" + csr.common_name + "' already holds active certificate " +
                        active.front().serial + "; renew with it, or revoke it first";
        return result;
    }
    result.ok = true;
    result.common_name = csr.common_name;
    result.sans = csr.sans;
    return result;
}

// A downstream RA that [auth] ra-signers trusts has authenticated the
// device itself (its MIC, say): the device's CN, MIC-shaped or not, is
// taken from the CSR, and this RA's subject and key rules still apply. Both
// the RA and the device are named in the identity the audit records.
AuthResult Authenticator::viaRaSigner(X509& signer, const CsrSummary& csr) const {
    AuthResult result;
    result.method = AuthMethod::ra;
    result.identity =
        "RA '" + nameText(X509_get_subject_name(&signer)) + "' for CN " + csr.common_name;
    result.reason = sansOtherThanCn(csr, "for requests of another RA");
    if (!result.reason.empty()) {
        return result;
    }
    result.ok = true;
    result.common_name = csr.common_name;
    result.sans = csr.sans;
    return result;
}

}  // namespace scep
