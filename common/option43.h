// DHCP option 43 (RFC 2132 §8.4) as Cisco 98xx/8875 phones read it after a
// factory reset: sub-options 10-15 carry the SCEP enrollment parameters.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/fingerprint.h"

namespace scep {

enum SubOption : std::uint8_t {
    kFipsMode = 10,
    kServer = 11,
    kRootCaFingerprint = 12,
    kChallengePassword = 13,
    kEnable8021X = 14,
    kCertificateSelect = 15,
};

enum class CertSelect : std::uint8_t { manufacturing = 0, custom = 1 };

// Phones do not reassemble RFC 3396 split options, so one instance must hold
// everything.
constexpr std::size_t kMaxOption43Length = 255;
// The phone guide: len(Server) + len(Challenge Password) shall be < 208.
constexpr std::size_t kServerChallengeLimit = 208;

struct ScepParameters {
    std::optional<bool> fips;
    std::string server;
    Bytes fingerprint;
    std::optional<std::string> challenge;
    std::optional<bool> dot1x;
    std::optional<CertSelect> cert_select;
};

// Encodes in sub-option order 10..15 (the guide's worked example). Throws
// std::length_error if a value or the whole option does not fit; config
// validation reports those cases with context first.
Bytes encodeOption43(const ScepParameters& params);

struct SubOptionValue {
    std::uint8_t code;
    Bytes value;
};

// Strict TLV decoding; throws std::invalid_argument on truncation.
std::vector<SubOptionValue> decodeOption43(const Bytes& encoded);

// Hex of the encoded option with the challenge's value bytes shown as "**"
// each: safe for listings and logs, still shows layout and lengths.
std::string maskedOption43Hex(const Bytes& encoded);

}  // namespace scep
