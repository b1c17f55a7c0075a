// The option-43 codec. Decoding arbitrary bytes either refuses them or
// yields sub-options that encode back to exactly those bytes; the masked
// listing has the input's length. Encoding parameters chosen by the fuzzer
// either refuses them (std::length_error, which config validation reports)
// or yields at most 255 bytes that decode back to the same parameters.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <stdexcept>

#include "common/option43.h"
#include "fuzz/fuzz_support.h"

using namespace scep;

namespace {

void decodeArbitrary(const Bytes& wire) {
    std::vector<SubOptionValue> subs;
    try {
        subs = decodeOption43(wire);
    } catch (const std::invalid_argument&) {
        return;
    }
    Bytes again;
    for (const auto& sub : subs) {
        fuzz::require(sub.value.size() <= 255, "a sub-option holds at most 255 bytes");
        again.push_back(sub.code);
        again.push_back(static_cast<std::uint8_t>(sub.value.size()));
        again.insert(again.end(), sub.value.begin(), sub.value.end());
    }
    fuzz::require(again == wire, "decoded sub-options encode back to the input");
    fuzz::require(maskedOption43Hex(wire).size() == 2 * wire.size(),
                  "the masked listing is two characters per byte");
}

std::optional<bool> maybeFlag(FuzzedDataProvider& input) {
    if (!input.ConsumeBool()) {
        return std::nullopt;
    }
    return input.ConsumeBool();
}

void roundTrip(FuzzedDataProvider& input) {
    ScepParameters params;
    params.fips = maybeFlag(input);
    params.dot1x = maybeFlag(input);
    if (const auto select = maybeFlag(input)) {
        params.cert_select = *select ? CertSelect::custom : CertSelect::manufacturing;
    }
    params.server = input.ConsumeRandomLengthString(300);
    if (input.ConsumeBool()) {
        params.challenge = input.ConsumeRandomLengthString(300);
    }
    const std::string fingerprint = input.ConsumeRandomLengthString(300);
    params.fingerprint.assign(fingerprint.begin(), fingerprint.end());
    Bytes wire;
    try {
        wire = encodeOption43(params);
    } catch (const std::length_error&) {
        return;
    }
    fuzz::require(wire.size() <= kMaxOption43Length, "option 43 fits one option");
    ScepParameters back;
    int last = -1;
    for (const auto& sub : decodeOption43(wire)) {
        fuzz::require(sub.code > last, "sub-options are in ascending order, once each");
        last = sub.code;
        const std::string text(sub.value.begin(), sub.value.end());
        const bool flag = sub.value.size() == 1 && sub.value[0] == 1;
        fuzz::require(sub.code < kEnable8021X + 2 && sub.code >= kFipsMode, "only codes 10-15");
        switch (sub.code) {
        case kFipsMode:
            back.fips = flag;
            break;
        case kServer:
            back.server = text;
            break;
        case kRootCaFingerprint:
            back.fingerprint = sub.value;
            break;
        case kChallengePassword:
            back.challenge = text;
            break;
        case kEnable8021X:
            back.dot1x = flag;
            break;
        default:
            back.cert_select = flag ? CertSelect::custom : CertSelect::manufacturing;
            break;
        }
    }
    fuzz::require(back.fips == params.fips && back.dot1x == params.dot1x &&
                      back.cert_select == params.cert_select && back.server == params.server &&
                      back.fingerprint == params.fingerprint && back.challenge == params.challenge,
                  "encoded parameters decode back");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    decodeArbitrary(fuzz::toBytes(data, size));
    FuzzedDataProvider input(data, size);
    roundTrip(input);
    return 0;
}
