// parsePkiMessage past the signature check. Mutated raw messages almost never
// keep a valid signature, so the SCEP attribute rules behind it (messageType,
// transactionID, senderNonce: missing, repeated, wrong ASN.1 type, hostile
// values) would stay unexplored. Here the fuzzer chooses the signed
// attributes, the digest, the content and what is embedded, and the target
// signs that with the fixed test key before parsing it, as a client would.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include <openssl/cms.h>
#include <openssl/objects.h>

#include "fuzz/fuzz_support.h"
#include "ra/crypto.h"
#include "ra/scep_message.h"

using namespace scep;

namespace {

const int kDigests[] = {NID_sha256, NID_sha1, NID_sha224, NID_sha384, NID_sha512, NID_md5};
const int kStringTypes[] = {V_ASN1_PRINTABLESTRING, V_ASN1_OCTET_STRING, V_ASN1_UTF8STRING,
                            V_ASN1_IA5STRING, V_ASN1_T61STRING, V_ASN1_BMPSTRING};

// The SCEP attributes are 2.16.840.1.113733.1.9.2 to .7; .8 and .1 are
// unknown to the RA.
const ASN1_OBJECT& scepOid(int arc) {
    static Asn1ObjectPtr oids[9];
    if (!oids[arc]) {
        const std::string text = "2.16.840.1.113733.1.9." + std::to_string(arc);
        oids[arc].reset(OBJ_txt2obj(text.c_str(), 1));
        fuzz::require(oids[arc] != nullptr, "SCEP OIDs parse");
    }
    return *oids[arc];
}

// nullptr when OpenSSL refuses to build it (not what is under test).
CmsPtr buildMessage(FuzzedDataProvider& input) {
    const EVP_MD* digest = EVP_get_digestbynid(input.PickValueInArray(kDigests));
    const bool detached = input.ConsumeProbability<float>() < 0.05f;
    const bool embed_signer = input.ConsumeProbability<float>() > 0.05f;
    const bool embed_twice = input.ConsumeProbability<float>() < 0.05f;
    const unsigned flags = CMS_BINARY | CMS_PARTIAL | (detached ? CMS_DETACHED : 0u);
    CmsPtr cms(CMS_sign(nullptr, nullptr, nullptr, nullptr, flags));
    if (!cms || !digest) {
        return nullptr;
    }
    CMS_SignerInfo* signer =
        CMS_add1_signer(cms.get(), &fuzz::raCertificate(), &fuzz::raKey(), digest,
                        CMS_BINARY | CMS_NOSMIMECAP | (embed_signer ? 0u : CMS_NOCERTS));
    if (!signer || (embed_twice && CMS_add1_cert(cms.get(), &fuzz::raCertificate()) != 1)) {
        return nullptr;
    }
    const int count = input.ConsumeIntegralInRange(0, 10);
    for (int i = 0; i < count; ++i) {
        const int arc = input.ConsumeIntegralInRange(1, 8);
        const int type = input.PickValueInArray(kStringTypes);
        const std::string value = input.ConsumeRandomLengthString(160);
        if (CMS_signed_add1_attr_by_OBJ(signer, &scepOid(arc), type, value.data(),
                                        static_cast<int>(value.size())) != 1) {
            return nullptr;
        }
    }
    const std::string content = input.ConsumeRemainingBytesAsString();
    const BioPtr in(BIO_new_mem_buf(content.data(), static_cast<int>(content.size())));
    if (!in || CMS_final(cms.get(), in.get(), nullptr, CMS_BINARY) != 1) {
        return nullptr;
    }
    return cms;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider input(data, size);
    const CmsPtr cms = buildMessage(input);
    if (!cms) {
        fuzz::clearErrors();
        return 0;
    }
    unsigned char* der = nullptr;
    const int length = i2d_CMS_ContentInfo(cms.get(), &der);
    fuzz::require(length > 0, "a signed message encodes");
    const Bytes message(der, der + length);
    OPENSSL_free(der);
    try {
        const PkiRequest request = parsePkiMessage(message);
        fuzz::require(!request.transaction_id.empty() && request.transaction_id.size() <= 128,
                      "transactionID is 1-128 characters");
        for (char c : request.transaction_id) {
            fuzz::require(c >= 0x20 && c <= 0x7e, "transactionID is printable");
        }
        fuzz::require(request.sender_nonce.size() >= 8 && request.sender_nonce.size() <= 64,
                      "senderNonce is 8-64 bytes");
        fuzz::require(request.message_type >= 0 && request.message_type <= 999,
                      "messageType has at most 3 digits");
        // A known but refused digest (MD5) comes back for a FAILURE badAlg.
        fuzz::require(EVP_get_digestbynid(request.digest_nid) != nullptr,
                      "the digest is one OpenSSL knows");
        try {
            const Decrypted inner =
                decryptEnvelope(request.envelope, fuzz::raKey(), fuzz::raCertificate(), false);
            fuzz::parseInnerContent(inner.content);
        } catch (const ScepError& e) {
            fuzz::require(e.answerable(), "decryption errors are answerable");
        }
    } catch (const ScepError& e) {
        fuzz::require(!e.answerable(), "parse errors are not answerable");
    }
    fuzz::clearErrors();
    return 0;
}
