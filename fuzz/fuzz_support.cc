#include "fuzz/fuzz_support.h"

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string_view>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "ra/auth/authenticator.h"
#include "ra/crypto.h"
#include "ra/scep/message.h"

namespace scep {
extern const std::string_view kFuzzRaCertPem;
extern const std::string_view kFuzzRaKeyPem;
}  // namespace scep

namespace scep::fuzz {

namespace {

BioPtr pemBio(std::string_view pem) {
    BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    if (!bio) {
        fail("BIO_new_mem_buf");
    }
    return bio;
}

}  // namespace

X509& raCertificate() {
    static const X509Ptr cert(
        PEM_read_bio_X509(pemBio(kFuzzRaCertPem).get(), nullptr, nullptr, nullptr));
    require(cert != nullptr, "fuzz/ra-cert.pem loads");
    return *cert;
}

EVP_PKEY& raKey() {
    static const EvpPkeyPtr key(
        PEM_read_bio_PrivateKey(pemBio(kFuzzRaKeyPem).get(), nullptr, nullptr, nullptr));
    require(key != nullptr, "fuzz/ra-key.pem loads");
    return *key;
}

Bytes toBytes(const std::uint8_t* data, std::size_t size) {
    return Bytes(data, data + size);
}

void parseInnerContent(const Bytes& content) {
    // GetCert and GetCRL: responder.cc catches std::exception.
    try {
        const IssuerAndSerial wanted = parseIssuerAndSerial(content);
        serialHex(wanted.serial.get());
        nameText(wanted.issuer.get());
    } catch (const std::exception&) {
    }
    // PKCSReq and RenewalReq: requestFromDer under std::exception, then the
    // authenticator's inspectCsr under std::invalid_argument.
    CertificationRequest csr;
    try {
        csr = requestFromDer(content);
    } catch (const std::exception&) {
        return;
    }
    try {
        inspectCsr(csr);
    } catch (const std::invalid_argument&) {
    }
}

void clearErrors() {
    ERR_clear_error();
}

void fail(const char* property) {
    std::fprintf(stderr, "fuzz property broken: %s\n", property);
    std::fflush(stderr);
    std::abort();
}

}  // namespace scep::fuzz
