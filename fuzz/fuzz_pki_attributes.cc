// The SCEP attribute rules of parsePkiMessage (messageType, transactionID,
// senderNonce: missing, repeated, multi-valued, of another ASN.1 type, or
// hostile values), which a raw message reaches only after its signature
// verified. Mutated messages almost never keep a valid signature, and
// signing each input would cost OpenSSL a key decode and an RSA signature
// (~350 inputs/s here), so this target feeds readRequestAttributes, the
// code parsePkiMessage runs after verifying, a SignerInfo whose signed
// attributes are the input: DER Attributes back to back, as they arrive
// inside a SignedData.
#include <cstddef>
#include <cstdint>

#include <openssl/cms.h>
#include <openssl/x509.h>

#include "fuzz/fuzz_support.h"
#include "ra/scep/message.h"

using namespace scep;

namespace {

constexpr int kMaxAttributes = 16;

// One SignerInfo for the whole run; only its signed attributes change.
CMS_SignerInfo& signerInfo() {
    static const CmsPtr cms(CMS_sign(nullptr, nullptr, nullptr, nullptr, CMS_BINARY | CMS_PARTIAL));
    static CMS_SignerInfo* const signer =
        cms ? CMS_add1_signer(cms.get(), &fuzz::raCertificate(), &fuzz::raKey(), EVP_sha256(),
                              CMS_BINARY | CMS_PARTIAL | CMS_NOSMIMECAP)
            : nullptr;
    fuzz::require(signer != nullptr, "a SignerInfo can be built");
    return *signer;
}

void clearAttributes(CMS_SignerInfo& signer) {
    while (CMS_signed_get_attr_count(&signer) > 0) {
        X509_ATTRIBUTE_free(CMS_signed_delete_attr(&signer, 0));
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    CMS_SignerInfo& signer = signerInfo();
    clearAttributes(signer);
    const unsigned char* p = data;
    for (int i = 0; i < kMaxAttributes && p < data + size; ++i) {
        X509_ATTRIBUTE* attribute =
            d2i_X509_ATTRIBUTE(nullptr, &p, static_cast<long>(data + size - p));
        if (!attribute) {
            break;
        }
        const int added = CMS_signed_add1_attr(&signer, attribute);  // adds a copy
        X509_ATTRIBUTE_free(attribute);
        if (added != 1) {
            break;
        }
    }
    try {
        const RequestAttributes attributes = readRequestAttributes(signer);
        fuzz::require(!attributes.transaction_id.empty() && attributes.transaction_id.size() <= 128,
                      "transactionID is 1-128 characters");
        for (char c : attributes.transaction_id) {
            fuzz::require(c >= 0x20 && c <= 0x7e, "transactionID is printable");
        }
        fuzz::require(attributes.sender_nonce.size() >= 8 && attributes.sender_nonce.size() <= 64,
                      "senderNonce is 8-64 bytes");
        fuzz::require(attributes.message_type >= 0 && attributes.message_type <= 999,
                      "messageType has at most 3 digits");
    } catch (const ScepError& e) {  // parsePkiMessage's documented failure
        fuzz::require(!e.answerable(), "attribute errors are not answerable");
    }
    fuzz::clearErrors();
    return 0;
}
