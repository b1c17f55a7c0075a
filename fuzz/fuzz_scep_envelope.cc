// decryptEnvelope on raw bytes with the fixed RA key, then the inner-content
// parsers: what an authentic (signed) but hostile request puts in its
// pkcsPKIEnvelope. Single DES is allowed so that its path is covered too.
#include <cstddef>
#include <cstdint>

#include "fuzz/fuzz_support.h"
#include "ra/scep/message.h"

using namespace scep;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        const Decrypted inner =
            decryptEnvelope(fuzz::toBytes(data, size), fuzz::raKey(), fuzz::raCertificate(), true);
        fuzz::require(inner.content.size() <= 64 * 1024, "decrypted content is at most 64 KiB");
        fuzz::parseInnerContent(inner.content);
    } catch (const ScepError& e) {  // the only exception responder.cc catches here
        fuzz::require(e.answerable(), "decryption errors are answerable");
    }
    fuzz::clearErrors();
    return 0;
}
