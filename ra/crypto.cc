#include "ra/crypto.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/provider.h>

namespace scep {

namespace {

std::string drainErrors() {
    std::string out;
    unsigned long code;
    while ((code = ERR_get_error()) != 0) {
        char buf[256];
        ERR_error_string_n(code, buf, sizeof(buf));
        out += (out.empty() ? "" : "; ") + std::string(buf);
    }
    return out;
}

}  // namespace

BioPtr memoryBio() {
    BioPtr bio(BIO_new(BIO_s_mem()));
    if (!bio) {
        throw CryptoError("BIO_new");
    }
    return bio;
}

BioPtr readOnlyBio(const Bytes& bytes) {
    static const unsigned char kNothing = 0;  // BIO_new_mem_buf refuses NULL
    if (bytes.size() > static_cast<std::size_t>(INT_MAX)) {
        throw std::invalid_argument("content too large for a memory BIO");
    }
    BioPtr bio(
        BIO_new_mem_buf(bytes.empty() ? &kNothing : bytes.data(), static_cast<int>(bytes.size())));
    if (!bio) {
        throw CryptoError("BIO_new_mem_buf");
    }
    return bio;
}

Bytes bioBytes(BIO& bio) {
    char* data = nullptr;
    const long length = BIO_get_mem_data(&bio, &data);
    return Bytes(data, data + length);
}

std::string bioText(BIO& bio) {
    char* data = nullptr;
    const long length = BIO_get_mem_data(&bio, &data);
    return std::string(data, static_cast<std::size_t>(length));
}

CryptoError::CryptoError(const std::string& what)
    : std::runtime_error([&] {
          const std::string reasons = drainErrors();
          return reasons.empty() ? what : what + ": " + reasons;
      }()) {}

void enableSingleDes() {
    // The handles are unloaded at exit, before OpenSSL's own clean-up: a
    // provider still loaded then is left behind with everything it
    // fetched (OpenSSL 3.5's LeakSanitizer report, ~85 KiB).
    struct Providers {
        OSSL_PROVIDER* default_provider = OSSL_PROVIDER_load(nullptr, "default");
        OSSL_PROVIDER* legacy = OSSL_PROVIDER_load(nullptr, "legacy");
        ~Providers() {
            if (legacy != nullptr) {
                OSSL_PROVIDER_unload(legacy);
            }
            if (default_provider != nullptr) {
                OSSL_PROVIDER_unload(default_provider);
            }
        }
    };
    static const Providers providers;
    if (providers.default_provider == nullptr || providers.legacy == nullptr) {
        throw CryptoError("cannot load OpenSSL's default and legacy providers");
    }
}

Bytes certificateDer(const X509& cert) {
    return derEncode<X509, i2d_X509>(cert, "certificate");
}

std::string base64Encode(const Bytes& bytes) {
    std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
    const int length = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes.data(),
                                       static_cast<int>(bytes.size()));
    out.resize(static_cast<std::size_t>(length));
    return out;
}

X509Ptr certificateFromDer(const Bytes& der) {
    X509Ptr cert = decodeExactly<X509, d2i_X509, X509_free>(der);
    if (!cert) {
        throw CryptoError("not a DER certificate");
    }
    return cert;
}

std::string certificatePem(const X509& cert) {
    BioPtr bio = memoryBio();
    if (PEM_write_bio_X509(bio.get(), &cert) != 1) {
        throw CryptoError("cannot PEM-encode certificate");
    }
    return bioText(*bio);
}

std::vector<X509Ptr> loadCertificateBundle(const std::string& path) {
    BioPtr bio(BIO_new_file(path.c_str(), "r"));
    if (!bio) {
        ERR_clear_error();
        throw std::runtime_error("cannot open certificate file '" + path + "'");
    }
    std::vector<X509Ptr> certs;
    while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
        certs.emplace_back(cert);
    }
    // The loop ends on "no start line" at end of file; anything else is a
    // damaged PEM block.
    const unsigned long last = ERR_peek_last_error();
    if (last != 0 && ERR_GET_REASON(last) != PEM_R_NO_START_LINE) {
        throw CryptoError("'" + path + "' holds a damaged PEM certificate");
    }
    ERR_clear_error();
    if (certs.empty()) {
        throw std::runtime_error("'" + path + "' holds no PEM certificate");
    }
    return certs;
}

Bytes requestDer(const X509_REQ& csr) {
    return derEncode<X509_REQ, i2d_X509_REQ>(csr, "certificate request");
}

bool readPublicKeyParts(const X509_PUBKEY& spki, PublicKeyParts& parts) {
    ASN1_OBJECT* algorithm = nullptr;
    X509_ALGOR* parameters = nullptr;
    if (X509_PUBKEY_get0_param(&algorithm, &parts.key, &parts.key_length, &parameters, &spki) !=
        1) {
        return false;
    }
    parts.algorithm = algorithm;
    const ASN1_OBJECT* same_algorithm = nullptr;
    X509_ALGOR_get0(&same_algorithm, &parts.parameter_type, &parts.parameter, parameters);
    return true;
}

namespace {

// Parsing a SubjectPublicKeyInfo makes OpenSSL 3.0 and 3.1 build a DECODER
// chain over all of its providers' decoders: about 150 us for one RSA key,
// more than the signature check it prepares (3.2 caches the chain). A
// library context holding only the null provider has no decoder, so a
// request parses there without that step, and its key is read from the
// SubjectPublicKeyInfo's own fields (decodePublicKey). Nothing else is done
// in that context: every check on the request names the default one.
OSSL_LIB_CTX* structureOnlyContext() {
    static OSSL_LIB_CTX* const context = [] {
        OSSL_LIB_CTX* created = OSSL_LIB_CTX_new();
        if (!created || !OSSL_PROVIDER_load(created, "null")) {
            throw CryptoError("cannot create a library context with the null provider");
        }
        return created;
    }();
    return context;
}

EvpPkeyPtr namedCurveKey(const void* curve, const unsigned char* point, int point_length) {
    unsigned char* der = nullptr;
    const int der_length = i2d_ASN1_OBJECT(static_cast<const ASN1_OBJECT*>(curve), &der);
    const std::unique_ptr<unsigned char, OpenSslFree> owner(der);
    const unsigned char* p = der;
    EVP_PKEY* key = der_length > 0 ? d2i_KeyParams(EVP_PKEY_EC, nullptr, &p, der_length) : nullptr;
    if (!key) {
        return nullptr;
    }
    // d2i_PublicKey puts the point in the parameters' key; failing, it leaves that key to us.
    if (!d2i_PublicKey(EVP_PKEY_EC, &key, &point, point_length)) {
        EVP_PKEY_free(key);
        return nullptr;
    }
    return EvpPkeyPtr(key);
}

// RSA and named-curve EC keys from the bit string as it came; any other
// key through OpenSSL's general decoder.
EvpPkeyPtr decodePublicKey(const X509_PUBKEY& spki) {
    PublicKeyParts parts;
    if (!readPublicKeyParts(spki, parts)) {
        return nullptr;
    }
    const int nid = OBJ_obj2nid(parts.algorithm);
    if (nid == NID_rsaEncryption) {
        const unsigned char* key = parts.key;
        EvpPkeyPtr rsa(d2i_PublicKey(EVP_PKEY_RSA, nullptr, &key, parts.key_length));
        return rsa && key == parts.key + parts.key_length ? std::move(rsa) : nullptr;
    }
    if (nid == NID_X9_62_id_ecPublicKey && parts.parameter_type == V_ASN1_OBJECT) {
        return namedCurveKey(parts.parameter, parts.key, parts.key_length);
    }
    const Bytes der = derEncode<X509_PUBKEY, i2d_X509_PUBKEY>(spki, "SubjectPublicKeyInfo");
    const unsigned char* p = der.data();
    return EvpPkeyPtr(d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size())));
}

}  // namespace

CertificationRequest requestFromDer(const Bytes& der) {
    CertificationRequest parsed;
    if (!der.empty() && der.size() <= static_cast<std::size_t>(LONG_MAX)) {
        const unsigned char* p = der.data();
        parsed.request.reset(reinterpret_cast<X509_REQ*>(
            ASN1_item_d2i_ex(nullptr, &p, static_cast<long>(der.size()), ASN1_ITEM_rptr(X509_REQ),
                             structureOnlyContext(), nullptr)));
        if (parsed.request && p != der.data() + der.size()) {
            parsed.request.reset();
        }
    }
    if (!parsed.request) {
        throw CryptoError("not a DER PKCS#10 certificate request");
    }
    parsed.key = decodePublicKey(*X509_REQ_get_X509_PUBKEY(parsed.request.get()));
    // An undecodable key leaves a reason; the caller refuses the request.
    ERR_clear_error();
    return parsed;
}

bool requestSignatureVerifies(const CertificationRequest& csr) {
    // The request lives in the structure-only context: verify in the default one.
    const bool ok =
        csr.key && X509_REQ_verify_ex(csr.request.get(), csr.key.get(), nullptr, nullptr) == 1;
    ERR_clear_error();
    return ok;
}

namespace {

// Gives a certificate parsed in the structure-only context its key, read the
// way requestFromDer reads a request's. X509_set_pubkey swaps the parsed
// SubjectPublicKeyInfo for one encoded from that key, while the certificate
// keeps the TBS bytes it arrived with for its signature and every i2d. So the
// swap must be invisible: the new SubjectPublicKeyInfo encodes exactly as the
// old one did, and the certificate as it did. A self-issued certificate is
// left out: OpenSSL settled whether it is self-signed while it had no key,
// and cached that answer.
bool attachKey(X509& cert) {
    if (X509_NAME_cmp(X509_get_subject_name(&cert), X509_get_issuer_name(&cert)) == 0) {
        return false;
    }
    const X509_PUBKEY* spki = X509_get_X509_PUBKEY(&cert);
    const EvpPkeyPtr key = spki ? decodePublicKey(*spki) : nullptr;
    if (!key) {
        return false;
    }
    const Bytes arrived_key = derEncode<X509_PUBKEY, i2d_X509_PUBKEY>(*spki, "key");
    const Bytes arrived = certificateDer(cert);
    return X509_set_pubkey(&cert, key.get()) == 1 &&
           derEncode<X509_PUBKEY, i2d_X509_PUBKEY>(*X509_get_X509_PUBKEY(&cert), "key") ==
               arrived_key &&
           certificateDer(cert) == arrived;
}

CmsPtr cmsWithoutKeyDecoders(const Bytes& der) {
    const unsigned char* p = der.data();
    CmsPtr cms(reinterpret_cast<CMS_ContentInfo*>(
        ASN1_item_d2i_ex(nullptr, &p, static_cast<long>(der.size()),
                         ASN1_ITEM_rptr(CMS_ContentInfo), structureOnlyContext(), nullptr)));
    if (!cms || p != der.data() + der.size()) {
        return nullptr;
    }
    // The same certificate objects, each referenced once more by the stack.
    const X509StackPtr certificates(CMS_get1_certs(cms.get()));
    for (int i = 0; certificates && i < sk_X509_num(certificates.get()); ++i) {
        if (!attachKey(*sk_X509_value(certificates.get(), i))) {
            return nullptr;
        }
    }
    return cms;
}

}  // namespace

CmsPtr cmsFromDer(const Bytes& der, bool* keys_read_directly) {
    if (keys_read_directly) {
        *keys_read_directly = false;
    }
    if (der.empty() || der.size() > static_cast<std::size_t>(LONG_MAX)) {
        return nullptr;
    }
    CmsPtr cms;
    ERR_set_mark();
    try {
        cms = cmsWithoutKeyDecoders(der);
    } catch (const std::exception&) {
        cms.reset();  // a part could not be encoded: OpenSSL's own parse decides
    }
    ERR_pop_to_mark();
    if (cms) {
        if (keys_read_directly) {
            *keys_read_directly = true;
        }
        return cms;
    }
    // Whatever the fast path cannot vouch for gets OpenSSL's own parse.
    return decodeExactly<CMS_ContentInfo, d2i_CMS_ContentInfo, CMS_ContentInfo_free>(der);
}

Bytes crlDer(const X509_CRL& crl) {
    return derEncode<X509_CRL, i2d_X509_CRL>(crl, "CRL");
}

bool isValidKeySpec(const std::string& spec) {
    return spec == "rsa:2048" || spec == "rsa:3072" || spec == "rsa:4096" || spec == "ec:p256" ||
           spec == "ec:p384";
}

EvpPkeyPtr generateKey(const std::string& spec) {
    EVP_PKEY* key = nullptr;
    if (spec.rfind("rsa:", 0) == 0 && isValidKeySpec(spec)) {
        key = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA",
                                static_cast<size_t>(std::stoul(spec.substr(4))));
    } else if (spec == "ec:p256") {
        key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    } else if (spec == "ec:p384") {
        key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384");
    } else {
        throw std::invalid_argument("unknown key type '" + spec + "'");
    }
    if (!key) {
        throw CryptoError("cannot generate " + spec + " key");
    }
    return EvpPkeyPtr(key);
}

bool isRsa(const EVP_PKEY& key) {
    return EVP_PKEY_get_base_id(&key) == EVP_PKEY_RSA;
}

EvpPkeyPtr loadPrivateKeyFile(const std::string& path) {
    BioPtr bio(BIO_new_file(path.c_str(), "r"));
    if (!bio) {
        ERR_clear_error();
        throw std::runtime_error("cannot open private key file '" + path + "'");
    }
    EvpPkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
    if (!key) {
        throw CryptoError("'" + path + "' holds no usable unencrypted PEM private key");
    }
    return key;
}

void writeNewFile(const std::string& path, const std::string& content, unsigned mode) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        throw std::runtime_error("cannot create '" + path + "': " + std::strerror(errno));
    }
    // The umask cannot widen the mode, but it can narrow it; make it exact.
    const bool ok =
        ::fchmod(fd, mode) == 0 &&
        ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size()) &&
        ::fsync(fd) == 0;
    const int saved = errno;
    ::close(fd);
    if (!ok) {
        ::unlink(path.c_str());
        throw std::runtime_error("cannot write '" + path + "': " + std::strerror(saved));
    }
}

void writePrivateKeyFile(const std::string& path, const EVP_PKEY& key) {
    BioPtr bio = memoryBio();
    if (PEM_write_bio_PrivateKey(bio.get(), &key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
        throw CryptoError("cannot PEM-encode private key");
    }
    writeNewFile(path, bioText(*bio), 0600);
}

void syncDirectory(const std::string& dir) {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        ::fsync(fd);
        ::close(fd);
    }
}

bool fileExists(const std::string& path) {
    struct stat info {};
    return ::stat(path.c_str(), &info) == 0;
}

void writeFileAtomically(const std::string& path, const std::string& content, unsigned mode) {
    const std::string temporary = path + ".tmp";
    ::unlink(temporary.c_str());
    writeNewFile(temporary, content, mode);
    if (::rename(temporary.c_str(), path.c_str()) != 0) {
        const int reason = errno;
        ::unlink(temporary.c_str());
        throw std::runtime_error("cannot write '" + path + "': " + std::strerror(reason));
    }
}

namespace {

Bytes sha256Of(unsigned char* der, int length) {
    Bytes digest(EVP_MAX_MD_SIZE);
    unsigned int size = 0;
    const bool ok = EVP_Digest(der, static_cast<size_t>(length), digest.data(), &size, EVP_sha256(),
                               nullptr) == 1;
    OPENSSL_free(der);
    if (!ok) {
        throw CryptoError("cannot hash public key");
    }
    digest.resize(size);
    return digest;
}

}  // namespace

Bytes publicKeyId(const X509_PUBKEY& key) {
    unsigned char* der = nullptr;
    const int length = i2d_X509_PUBKEY(&key, &der);
    if (length <= 0) {
        throw CryptoError("cannot encode public key");
    }
    return sha256Of(der, length);
}

Bytes publicKeyId(const EVP_PKEY& key) {
    unsigned char* der = nullptr;
    const int length = i2d_PUBKEY(&key, &der);
    if (length <= 0) {
        throw CryptoError("cannot encode public key");
    }
    return sha256Of(der, length);
}

std::string nameText(const X509_NAME* name) {
    BioPtr bio = memoryBio();
    if (X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) < 0) {
        throw CryptoError("cannot print name");
    }
    return bioText(*bio);
}

std::string nameEntry(const X509_NAME* name, int nid) {
    const int index = X509_NAME_get_index_by_NID(name, nid, -1);
    if (index < 0) {
        return {};
    }
    const ASN1_STRING* value = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
    unsigned char* utf8 = nullptr;
    const int length = ASN1_STRING_to_UTF8(&utf8, value);
    if (length < 0) {
        ERR_clear_error();
        return {};
    }
    std::string out(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(length));
    OPENSSL_free(utf8);
    return out;
}

std::string serialHex(const ASN1_INTEGER* serial) {
    BignumPtr number(ASN1_INTEGER_to_BN(serial, nullptr));
    if (!number) {
        throw CryptoError("bad serial number");
    }
    char* hex = BN_bn2hex(number.get());
    std::string out(hex);
    OPENSSL_free(hex);
    return out;
}

std::time_t asn1TimeToUnix(const ASN1_TIME* time) {
    struct tm parts {};
    if (ASN1_TIME_to_tm(time, &parts) != 1) {
        throw CryptoError("bad ASN.1 time");
    }
    return timegm(&parts);
}

bool isSelfSigned(X509& cert) {
    // Not X509_check_issued(): it also demands keyCertSign, which SCEP
    // clients' throwaway signer certificates rightly lack.
    if (X509_NAME_cmp(X509_get_subject_name(&cert), X509_get_issuer_name(&cert)) != 0) {
        return false;
    }
    EVP_PKEY* key = X509_get0_pubkey(&cert);
    const bool ok = key && X509_verify(&cert, key) == 1;
    ERR_clear_error();
    return ok;
}

bool hasExplicitEcParameters(const X509_PUBKEY& key) {
    ASN1_OBJECT* algorithm = nullptr;
    X509_ALGOR* parameters = nullptr;
    if (X509_PUBKEY_get0_param(&algorithm, nullptr, nullptr, &parameters, &key) != 1 ||
        OBJ_obj2nid(algorithm) != NID_X9_62_id_ecPublicKey) {
        return false;
    }
    int type = V_ASN1_UNDEF;
    X509_ALGOR_get0(nullptr, &type, nullptr, parameters);
    return type != V_ASN1_OBJECT;  // ECParameters or implicitlyCA (NULL)
}

}  // namespace scep
