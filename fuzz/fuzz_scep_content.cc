// The parsers behind decryption, fed directly: IssuerAndSerialNumber
// (GetCert, GetCRL), the PKCS#10 CSR (PKCSReq, RenewalReq) and the signer
// certificate's MIC identity. A CSR's self-signature fails under almost any
// mutation, so one mode re-signs the parsed CSR with a fixed P-256 key first:
// the CN, subjectAltName and challengePassword checks behind it get fuzzed.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <stdexcept>

#include "fuzz/fuzz_support.h"
#include "ra/auth/authenticator.h"
#include "ra/crypto.h"
#include "ra/scep/message.h"

using namespace scep;

namespace {

EVP_PKEY& resigningKey() {
    static const EvpPkeyPtr key = generateKey("ec:p256");
    return *key;
}

void inspect(const CertificationRequest& csr) {
    try {
        const CsrSummary summary = inspectCsr(csr);  // authenticator.cc: std::invalid_argument
        fuzz::require(!summary.common_name.empty() && summary.common_name.size() <= 64,
                      "an accepted CN is 1-64 characters");
        fuzz::require(summary.public_key_id.size() == 32, "key id is a SHA-256");
    } catch (const std::invalid_argument&) {
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) {
        return 0;
    }
    const int mode = data[0] % 4;
    const Bytes der = fuzz::toBytes(data + 1, size - 1);
    switch (mode) {
    case 0:
        fuzz::parseInnerContent(der);
        break;
    case 1:
        try {
            const IssuerAndSerial wanted = parseIssuerAndSerial(der);
            fuzz::require(wanted.issuer && wanted.serial, "both parts are returned");
            serialHex(wanted.serial.get());
        } catch (const ScepError& e) {  // its documented failure
            fuzz::require(e.answerable(), "content errors are answerable");
        }
        break;
    case 2: {
        CertificationRequest csr;
        try {
            csr = requestFromDer(der);
        } catch (const std::exception&) {
            break;
        }
        // Re-signed with a known key, then parsed again as the responder
        // would receive it, so inspection gets past the signature.
        X509_REQ& request = *csr.request;
        if (X509_REQ_set_pubkey(&request, &resigningKey()) == 1 &&
            X509_REQ_sign(&request, &resigningKey(), EVP_sha256()) > 0) {
            try {
                inspect(requestFromDer(requestDer(request)));
            } catch (const std::exception&) {
            }
        }
        break;
    }
    default:
        try {
            const X509Ptr cert = certificateFromDer(der);
            const MicIdentity mic = parseMicIdentity(*cert);
            fuzz::require(mic.model.empty() == mic.mac.empty(), "model and MAC come together");
            fuzz::require(mic.mac.empty() || mic.mac.size() == 17, "a MAC is 17 characters");
        } catch (const CryptoError&) {  // certificateFromDer: not a certificate
        }
        break;
    }
    fuzz::clearErrors();
    return 0;
}
