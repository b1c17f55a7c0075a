#include "common/option43.h"

#include <algorithm>
#include <cstddef>
#include <stdexcept>

namespace scep {

namespace {

void appendSubOption(Bytes& out, std::uint8_t code, const std::uint8_t* data, std::size_t size) {
    if (size > 255) {
        throw std::length_error("sub-option " + std::to_string(code) + " value is " +
                                std::to_string(size) + " bytes; at most 255 fit");
    }
    // One resize, then plain copies: GCC 14 misreads vector::insert of a
    // pointer range after push_back as an overflow (-Wstringop-overflow).
    const std::size_t at = out.size();
    out.resize(at + 2 + size);
    out[at] = code;
    out[at + 1] = static_cast<std::uint8_t>(size);
    std::copy_n(data, size, out.begin() + static_cast<std::ptrdiff_t>(at) + 2);
}

void appendFlag(Bytes& out, std::uint8_t code, std::uint8_t value) {
    appendSubOption(out, code, &value, 1);
}

void appendText(Bytes& out, std::uint8_t code, const std::string& text) {
    appendSubOption(out, code, reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
}

}  // namespace

Bytes encodeOption43(const ScepParameters& params) {
    Bytes out;
    out.reserve(kMaxOption43Length);
    if (params.fips) {
        appendFlag(out, kFipsMode, *params.fips ? 1 : 0);
    }
    appendText(out, kServer, params.server);
    appendSubOption(out, kRootCaFingerprint, params.fingerprint.data(), params.fingerprint.size());
    if (params.challenge) {
        appendText(out, kChallengePassword, *params.challenge);
    }
    if (params.dot1x) {
        appendFlag(out, kEnable8021X, *params.dot1x ? 1 : 0);
    }
    if (params.cert_select) {
        appendFlag(out, kCertificateSelect, static_cast<std::uint8_t>(*params.cert_select));
    }
    if (out.size() > kMaxOption43Length) {
        throw std::length_error("option 43 would be " + std::to_string(out.size()) +
                                " bytes; at most 255 fit in one option");
    }
    return out;
}

std::vector<SubOptionValue> decodeOption43(const Bytes& encoded) {
    std::vector<SubOptionValue> out;
    std::size_t pos = 0;
    while (pos < encoded.size()) {
        if (pos + 2 > encoded.size()) {
            throw std::invalid_argument("truncated sub-option header at offset " +
                                        std::to_string(pos));
        }
        const std::uint8_t code = encoded[pos];
        const std::size_t length = encoded[pos + 1];
        pos += 2;
        if (pos + length > encoded.size()) {
            throw std::invalid_argument("sub-option " + std::to_string(code) + " claims " +
                                        std::to_string(length) + " bytes but only " +
                                        std::to_string(encoded.size() - pos) + " remain");
        }
        out.push_back({code, Bytes(encoded.begin() + pos, encoded.begin() + pos + length)});
        pos += length;
    }
    return out;
}

std::string maskedOption43Hex(const Bytes& encoded) {
    std::string out;
    for (const auto& sub : decodeOption43(encoded)) {
        out += toHex({sub.code, static_cast<std::uint8_t>(sub.value.size())});
        if (sub.code == kChallengePassword) {
            out.append(sub.value.size() * 2, '*');
        } else {
            out += toHex(sub.value);
        }
    }
    return out;
}

}  // namespace scep
