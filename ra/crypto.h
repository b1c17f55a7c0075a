// OpenSSL helpers the RA builds on: encodings, key files created 0600,
// names and times. Errors throw CryptoError carrying OpenSSL's own reason.
#pragma once

#include <climits>
#include <cstdint>
#include <ctime>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <openssl/crypto.h>

#include "common/fingerprint.h"
#include "common/openssl_ptr.h"

namespace scep {

struct OpenSslFree {
    void operator()(unsigned char* buf) const { OPENSSL_free(buf); }
};

class CryptoError : public std::runtime_error {
public:
    // `what` is followed by the reasons left on OpenSSL's error queue, which
    // is emptied.
    explicit CryptoError(const std::string& what);
};

// Loads OpenSSL's "default" and "legacy" providers once per process, for
// single DES (still sent by some SCEP clients). Both are needed: loading any
// provider switches off the implicit default one. Only done when DES is
// allowed or used: the legacy provider slows down every key operation.
void enableSingleDes();

// Memory BIOs: an empty writable one; a read-only view of `bytes` (no copy,
// so `bytes` must outlive it); and what a written one holds.
BioPtr memoryBio();
BioPtr readOnlyBio(const Bytes& bytes);
Bytes bioBytes(BIO& bio);
std::string bioText(BIO& bio);

// DER of `object`; throws CryptoError "cannot DER-encode <what>".
template <typename T, int (*I2d)(const T*, unsigned char**)>
Bytes derEncode(const T& object, const char* what) {
    unsigned char* buf = nullptr;
    const int length = I2d(&object, &buf);
    const std::unique_ptr<unsigned char, OpenSslFree> owner(buf);
    if (length <= 0) {
        throw CryptoError(std::string("cannot DER-encode ") + what);
    }
    return Bytes(buf, buf + length);
}

// The object only if `der` is exactly one DER/BER encoding of it (trailing
// bytes are refused); null otherwise.
template <typename T, T* (*D2i)(T**, const unsigned char**, long), void (*Free)(T*)>
OpenSslPtr<T, Free> decodeExactly(const Bytes& der) {
    if (der.empty() || der.size() > static_cast<std::size_t>(LONG_MAX)) {
        return nullptr;
    }
    const unsigned char* p = der.data();
    OpenSslPtr<T, Free> object(D2i(nullptr, &p, static_cast<long>(der.size())));
    if (object && p != der.data() + der.size()) {
        object.reset();
    }
    return object;
}

// Standard base64 with padding and no line breaks (EVP_EncodeBlock).
std::string base64Encode(const Bytes& bytes);

Bytes certificateDer(const X509& cert);
X509Ptr certificateFromDer(const Bytes& der);
std::string certificatePem(const X509& cert);
// Every certificate of a PEM bundle; throws if there is none.
std::vector<X509Ptr> loadCertificateBundle(const std::string& path);

Bytes requestDer(const X509_REQ& csr);

// The parts of a SubjectPublicKeyInfo, borrowed from it: the algorithm, its
// parameters (`parameter` as X509_ALGOR_get0 gives it for `parameter_type`)
// and the bit string's bytes. False when OpenSSL cannot read them.
struct PublicKeyParts {
    const ASN1_OBJECT* algorithm = nullptr;
    int parameter_type = 0;  // V_ASN1_UNDEF
    const void* parameter = nullptr;
    const unsigned char* key = nullptr;
    int key_length = 0;
};
bool readPublicKeyParts(const X509_PUBKEY& spki, PublicKeyParts& parts);

// A PKCS#10 request and its public key (null when the key cannot be
// decoded). The request is parsed without OpenSSL's key decoders, so
// X509_REQ_get0_pubkey() on it is null: use `key`.
struct CertificationRequest {
    X509ReqPtr request;
    EvpPkeyPtr key;
};
// Throws CryptoError unless `der` is exactly one PKCS#10 request.
CertificationRequest requestFromDer(const Bytes& der);
// The request's self-signature verifies with its own key.
bool requestSignatureVerifies(const CertificationRequest& csr);

// `der` as a CMS ContentInfo, null unless it is exactly one. OpenSSL 3.0 and
// 3.1 run their DECODER chain for every embedded certificate's key (about
// 150 us each, see requestFromDer); here those keys are read as a request's
// is, and each key and certificate is checked to encode to the very bytes it
// arrived as. A message that does not pass that (a self-issued certificate,
// a key that cannot be decoded, a SubjectPublicKeyInfo that would encode
// differently) is parsed by d2i_CMS_ContentInfo. `keys_read_directly` tells
// which way it went.
CmsPtr cmsFromDer(const Bytes& der, bool* keys_read_directly = nullptr);

Bytes crlDer(const X509_CRL& crl);

// "rsa:2048", "rsa:3072", "rsa:4096" or "ec:p256"/"ec:p384".
EvpPkeyPtr generateKey(const std::string& spec);
bool isValidKeySpec(const std::string& spec);
bool isRsa(const EVP_PKEY& key);

EvpPkeyPtr loadPrivateKeyFile(const std::string& path);
// A new file with exactly `mode` from before any byte is written, synced;
// refuses to overwrite (O_EXCL).
void writeNewFile(const std::string& path, const std::string& content, unsigned mode);
// PEM, written with writeNewFile(..., 0600).
void writePrivateKeyFile(const std::string& path, const EVP_PKEY& key);
// Makes a rename or link in `dir` durable: the directory itself is synced.
void syncDirectory(const std::string& dir);
bool fileExists(const std::string& path);
// Written to a temporary file and renamed, so readers never see half a file.
void writeFileAtomically(const std::string& path, const std::string& content, unsigned mode);

// SHA-256 of the DER SubjectPublicKeyInfo: identifies a key across CSRs and
// certificates. The X509_PUBKEY form reuses the encoding the key arrived in,
// which OpenSSL 3.0 makes far cheaper than encoding an EVP_PKEY again.
Bytes publicKeyId(const EVP_PKEY& key);
Bytes publicKeyId(const X509_PUBKEY& key);

// "CN=CP-8875-SEP001A2B3C4D5E,OU=CTG,O=Cisco Systems Inc." (RFC 2253 order).
std::string nameText(const X509_NAME* name);
// UTF-8 value of the first entry with this NID, or "" if absent.
std::string nameEntry(const X509_NAME* name, int nid);
// Upper-case hex of the serial number.
std::string serialHex(const ASN1_INTEGER* serial);

std::time_t asn1TimeToUnix(const ASN1_TIME* time);
// Issued by itself and its signature verifies with its own key.
bool isSelfSigned(X509& cert);
// An EC key whose SubjectPublicKeyInfo spells out the curve instead of
// naming it. RFC 5480 allows only namedCurve; read from the encoding, since
// OpenSSL 3 recognises well-known explicit curves and then names them.
bool hasExplicitEcParameters(const X509_PUBKEY& key);

}  // namespace scep
