#include "ra/ca/local_ca.h"

#include <algorithm>

#include <openssl/bn.h>
#include <openssl/x509v3.h>

#include "ra/ca/certificate.h"
#include "ra/crypto.h"

namespace scep {

LocalCa::LocalCa(X509Ptr cert, EvpPkeyPtr key) : cert_(std::move(cert)), key_(std::move(key)) {}

CaAnswer CaAnswer::issuedNow(X509Ptr certificate) {
    CaAnswer answer;
    answer.status = Status::issued;
    answer.certificate = std::move(certificate);
    return answer;
}

CaAnswer CaAnswer::pendingAtCa(std::string reference) {
    CaAnswer answer;
    answer.status = Status::pending;
    answer.reference = std::move(reference);
    return answer;
}

CaAnswer CaAnswer::failedWith(std::string reason, std::optional<int> fail_info) {
    CaAnswer answer;
    answer.status = Status::failed;
    answer.reason = std::move(reason);
    answer.fail_info = fail_info;
    return answer;
}

CaAnswer CaAnswer::unreachable(std::string reason) {
    CaAnswer answer;
    answer.status = Status::unreachable;
    answer.reason = std::move(reason);
    return answer;
}

CaAnswer LocalCa::issue(const IssueRequest& request, std::time_t now, const CaSettings& settings) {
    const X509NamePtr subject = makeName(request.common_name, settings);
    CertificateSpec spec;
    spec.subject = subject.get();
    spec.subject_key = request.public_key;
    spec.subject_key_info = request.public_key_info;
    spec.not_before = now - kClockSkew;
    // Never outlive the CA: relying parties would reject the chain anyway.
    spec.not_after =
        std::min(now + static_cast<std::time_t>(settings.validity_days) * kDay, notAfterOf(*cert_));
    spec.key_usage = isRsa(*request.public_key) ? "critical,digitalSignature,keyEncipherment"
                                                : "critical,digitalSignature,keyAgreement";
    spec.extended_key_usage = "clientAuth";
    spec.sans = request.sans;
    return CaAnswer::issuedNow(signCertificate(spec, cert_.get(), *key_));
}

X509CrlPtr LocalCa::crl(const std::vector<CertificateRecord>& revoked, std::time_t now,
                        const CaSettings& settings) {
    X509CrlPtr crl(X509_CRL_new());
    if (!crl || X509_CRL_set_version(crl.get(), 1) != 1 ||
        X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(cert_.get())) != 1) {
        throw CryptoError("X509_CRL_new");
    }
    const Asn1TimePtr this_update(ASN1_TIME_set(nullptr, now));
    const Asn1TimePtr next_update(
        ASN1_TIME_set(nullptr, now + static_cast<std::time_t>(settings.crl_days) * kDay));
    if (!this_update || !next_update ||
        X509_CRL_set1_lastUpdate(crl.get(), this_update.get()) != 1 ||
        X509_CRL_set1_nextUpdate(crl.get(), next_update.get()) != 1) {
        throw CryptoError("cannot set CRL times");
    }
    for (const auto& record : revoked) {
        X509_REVOKED* entry = X509_REVOKED_new();
        BIGNUM* number = nullptr;
        Asn1IntegerPtr serial(BN_hex2bn(&number, record.serial.c_str()) > 0
                                  ? BN_to_ASN1_INTEGER(number, nullptr)
                                  : nullptr);
        BN_free(number);
        const Asn1TimePtr when(ASN1_TIME_set(nullptr, record.revoked_at));
        bool ok = entry && serial && when &&
                  X509_REVOKED_set_serialNumber(entry, serial.get()) == 1 &&
                  X509_REVOKED_set_revocationDate(entry, when.get()) == 1;
        if (ok && record.revocation_reason != 0) {  // 0 = unspecified: RFC 5280 says leave it out
            ASN1_ENUMERATED* reason = ASN1_ENUMERATED_new();
            ok = reason && ASN1_ENUMERATED_set(reason, record.revocation_reason) == 1 &&
                 X509_REVOKED_add1_ext_i2d(entry, NID_crl_reason, reason, 0, 0) == 1;
            ASN1_ENUMERATED_free(reason);
        }
        if (!ok || X509_CRL_add0_revoked(crl.get(), entry) != 1) {
            X509_REVOKED_free(entry);
            throw CryptoError("cannot add revoked certificate " + record.serial + " to the CRL");
        }
    }
    X509_CRL_sort(crl.get());
    // The CRL number must grow; the issuing time in seconds does.
    const Asn1IntegerPtr number(ASN1_INTEGER_new());
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, cert_.get(), nullptr, nullptr, crl.get(), 0);
    X509ExtensionPtr aki(
        X509V3_EXT_conf_nid(nullptr, &ctx, NID_authority_key_identifier, "keyid:always"));
    if (!number || ASN1_INTEGER_set_int64(number.get(), now) != 1 ||
        X509_CRL_add1_ext_i2d(crl.get(), NID_crl_number, number.get(), 0, 0) != 1 || !aki ||
        X509_CRL_add_ext(crl.get(), aki.get(), -1) != 1 ||
        X509_CRL_sign(crl.get(), key_.get(), EVP_sha256()) <= 0) {
        throw CryptoError("cannot sign CRL");
    }
    return crl;
}

}  // namespace scep
