// parsePkiMessage on raw bytes: the first code a hostile POST body or GET
// message= reaches. A message that parses goes on the RA's way: the signer's
// MIC identity is read, the envelope is decrypted with the fixed RA key (the
// seeds are encrypted to it) and the inner content is parsed.
#include <cstddef>
#include <cstdint>

#include "fuzz/fuzz_support.h"
#include "ra/auth/authenticator.h"
#include "ra/crypto.h"
#include "ra/scep/message.h"

using namespace scep;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    PkiRequest request;
    try {
        request = parsePkiMessage(fuzz::toBytes(data, size));
    } catch (const ScepError& e) {  // its documented failure; the HTTP layer answers 400
        fuzz::require(!e.answerable(), "parse errors are not answerable");
        fuzz::clearErrors();
        return 0;
    }
    fuzz::require(request.signer != nullptr, "a parsed request has a signer");
    fuzz::require(!request.transaction_id.empty() && request.transaction_id.size() <= 128,
                  "transactionID is 1-128 characters");
    fuzz::require(request.sender_nonce.size() >= 8 && request.sender_nonce.size() <= 64,
                  "senderNonce is 8-64 bytes");
    parseMicIdentity(*request.signer);
    nameText(X509_get_subject_name(request.signer.get()));
    try {
        const Decrypted inner =
            decryptEnvelope(request.envelope, fuzz::raKey(), fuzz::raCertificate(), false);
        fuzz::parseInnerContent(inner.content);
    } catch (const ScepError& e) {  // responder.cc answers these with a FAILURE
        fuzz::require(e.answerable(), "decryption errors are answerable");
    }
    fuzz::clearErrors();
    return 0;
}
