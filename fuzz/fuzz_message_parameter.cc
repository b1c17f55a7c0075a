// GET PKIOperation's message= value. Arbitrary text either is refused or
// decodes to at most 3 bytes per 4 characters; and every byte string, written
// the ways clients send base64 (either alphabet, '+' arriving as a space,
// line breaks, padding dropped), decodes back to itself.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz/fuzz_support.h"
#include "ra/crypto.h"
#include "ra/scep/routes.h"

using namespace scep;

namespace {

// One of the spellings decodeMessageParameter promises to accept.
std::string respell(std::string text, std::uint8_t how) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if ((how & 1) && c == '+')
            c = '-';  // URL-safe alphabet
        if ((how & 1) && c == '/')
            c = '_';
        if ((how & 2) && c == '+')
            c = ' ';  // '+' URL-decoded to a space
        if ((how & 4) && c == '=')
            continue;  // padding dropped
        out += c;
        if ((how & 8) && i % 64 == 63)
            out += (how & 16) ? "\r\n" : "\n";  // line breaks
    }
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    if (const auto decoded = decodeMessageParameter(text)) {
        fuzz::require(!decoded->empty(), "a decoded message is not empty");
        fuzz::require(decoded->size() <= text.size() / 4 * 3 + 3,
                      "at most 3 bytes per 4 characters");
    }

    FuzzedDataProvider input(data, size);
    const auto how = input.ConsumeIntegral<std::uint8_t>();
    const std::string payload = input.ConsumeRemainingBytesAsString();
    const Bytes bytes(payload.begin(), payload.end());
    const auto back = decodeMessageParameter(respell(base64Encode(bytes), how));
    if (bytes.empty()) {
        fuzz::require(!back, "nothing decodes to nothing");
    } else {
        fuzz::require(back && *back == bytes, "every spelling of base64 decodes back");
    }
    return 0;
}
