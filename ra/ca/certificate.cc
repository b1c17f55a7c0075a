#include "ra/ca/certificate.h"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "ra/crypto.h"

namespace scep {

namespace {

// At least 64 random bits (CA/B forum and RFC 5280 practice); 127 here,
// positive, never zero.
Asn1IntegerPtr randomSerial() {
    unsigned char bytes[16];
    if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
        throw CryptoError("RAND_bytes");
    }
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    BignumPtr number(BN_bin2bn(bytes, sizeof(bytes), nullptr));
    Asn1IntegerPtr serial(number ? BN_to_ASN1_INTEGER(number.get(), nullptr) : nullptr);
    if (!serial) {
        throw CryptoError("cannot build serial number");
    }
    return serial;
}

void addEntry(X509_NAME& name, const char* field, const std::string& value) {
    if (value.empty()) {
        return;
    }
    if (X509_NAME_add_entry_by_txt(&name, field, MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(value.data()),
                                   static_cast<int>(value.size()), -1, 0) != 1) {
        throw CryptoError(std::string("cannot set ") + field + " in a name");
    }
}

void addExtension(X509& cert, X509V3_CTX& ctx, int nid, const std::string& value) {
    if (value.empty()) {
        return;
    }
    X509ExtensionPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
    if (!ext || X509_add_ext(&cert, ext.get(), -1) != 1) {
        throw CryptoError(std::string("cannot add extension ") + OBJ_nid2sn(nid));
    }
}

// Built from typed values rather than a configuration string, so a CN with
// commas cannot smuggle in extra names.
void addSubjectAltNames(X509& cert, const std::vector<SubjectAltName>& sans) {
    if (sans.empty()) {
        return;
    }
    GeneralNamesPtr names(sk_GENERAL_NAME_new_null());
    for (const auto& san : sans) {
        GENERAL_NAME* name = nullptr;
        if (san.type == SubjectAltName::Type::ip) {
            name = a2i_GENERAL_NAME(nullptr, nullptr, nullptr, GEN_IPADD, san.value.c_str(), 0);
        } else {
            ASN1_IA5STRING* text = ASN1_IA5STRING_new();
            name = GENERAL_NAME_new();
            if (!text || !name ||
                ASN1_STRING_set(text, san.value.data(), static_cast<int>(san.value.size())) != 1) {
                ASN1_IA5STRING_free(text);
                GENERAL_NAME_free(name);
                name = nullptr;
            } else {
                GENERAL_NAME_set0_value(
                    name, san.type == SubjectAltName::Type::dns ? GEN_DNS : GEN_EMAIL, text);
            }
        }
        if (!name || !sk_GENERAL_NAME_push(names.get(), name)) {
            GENERAL_NAME_free(name);
            throw CryptoError("cannot build subjectAltName " + san.value);
        }
    }
    if (X509_add1_ext_i2d(&cert, NID_subject_alt_name, names.get(), 0, 0) != 1) {
        throw CryptoError("cannot add subjectAltName");
    }
}

// The SubjectPublicKeyInfo's parts, duplicated into the certificate.
bool copyPublicKey(X509& cert, const X509_PUBKEY& from) {
    PublicKeyParts parts;
    if (!readPublicKeyParts(from, parts)) {
        return false;
    }
    const int type = parts.parameter_type;
    void* value_copy = nullptr;
    if (type == V_ASN1_OBJECT) {
        value_copy = OBJ_dup(static_cast<const ASN1_OBJECT*>(parts.parameter));
    } else if (type == V_ASN1_SEQUENCE) {
        value_copy = ASN1_STRING_dup(static_cast<const ASN1_STRING*>(parts.parameter));
    } else if (type != V_ASN1_NULL && type != V_ASN1_UNDEF) {
        return false;
    }
    auto* key_copy = static_cast<unsigned char*>(
        OPENSSL_memdup(parts.key, static_cast<size_t>(parts.key_length)));
    ASN1_OBJECT* algorithm_copy = OBJ_dup(parts.algorithm);
    if (!key_copy || !algorithm_copy || (parts.parameter == nullptr) != (value_copy == nullptr) ||
        X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(&cert), algorithm_copy, type, value_copy,
                               key_copy, parts.key_length) != 1) {
        OPENSSL_free(key_copy);
        ASN1_OBJECT_free(algorithm_copy);
        if (type == V_ASN1_OBJECT) {
            ASN1_OBJECT_free(static_cast<ASN1_OBJECT*>(value_copy));
        } else {
            ASN1_STRING_free(static_cast<ASN1_STRING*>(value_copy));  // null-safe
        }
        return false;
    }
    return true;
}

void setTime(ASN1_TIME* field, std::time_t when, const char* what) {
    if (!ASN1_TIME_set(field, when)) {
        throw CryptoError(std::string("cannot set ") + what);
    }
}

}  // namespace

X509NamePtr makeName(const std::string& cn, const CaSettings& settings) {
    X509NamePtr name(X509_NAME_new());
    if (!name) {
        throw CryptoError("X509_NAME_new");
    }
    addEntry(*name, "C", settings.country);
    addEntry(*name, "O", settings.organization);
    addEntry(*name, "OU", settings.organizational_unit);
    addEntry(*name, "CN", cn);
    return name;
}

std::time_t notAfterOf(const X509& cert) {
    return asn1TimeToUnix(X509_get0_notAfter(&cert));
}

bool isIssuedBy(X509& cert, X509& issuer) {
    const bool ok = X509_check_issued(&issuer, &cert) == X509_V_OK &&
                    X509_verify(&cert, X509_get0_pubkey(&issuer)) == 1;
    ERR_clear_error();
    return ok;
}

X509Ptr signCertificate(const CertificateSpec& spec, X509* issuer_cert, EVP_PKEY& issuer_key) {
    X509Ptr cert(X509_new());
    if (!cert || X509_set_version(cert.get(), 2) != 1) {
        throw CryptoError("X509_new");
    }
    const Asn1IntegerPtr serial = randomSerial();
    if (X509_set_serialNumber(cert.get(), serial.get()) != 1 ||
        X509_set_subject_name(cert.get(), spec.subject) != 1 ||
        X509_set_issuer_name(
            cert.get(), issuer_cert ? X509_get_subject_name(issuer_cert) : spec.subject) != 1 ||
        !(spec.subject_key_info ? copyPublicKey(*cert, *spec.subject_key_info)
                                : X509_set_pubkey(cert.get(), spec.subject_key) == 1)) {
        throw CryptoError("cannot fill certificate");
    }
    setTime(X509_getm_notBefore(cert.get()), spec.not_before, "notBefore");
    setTime(X509_getm_notAfter(cert.get()), spec.not_after, "notAfter");

    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer_cert ? issuer_cert : cert.get(), cert.get(), nullptr, nullptr, 0);
    addExtension(*cert, ctx, NID_basic_constraints,
                 spec.ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    addExtension(*cert, ctx, NID_key_usage, spec.key_usage);
    addExtension(*cert, ctx, NID_ext_key_usage, spec.extended_key_usage);
    addExtension(*cert, ctx, NID_subject_key_identifier, "hash");
    if (issuer_cert) {
        addExtension(*cert, ctx, NID_authority_key_identifier, "keyid:always");
    }
    addSubjectAltNames(*cert, spec.sans);
    if (X509_sign(cert.get(), &issuer_key, EVP_sha256()) <= 0) {
        throw CryptoError("cannot sign certificate");
    }
    return cert;
}

}  // namespace scep
