// Certificate fingerprints as phones compare them (option 43 sub-option 12)
// and as admins paste them (hex, optionally with ':' or spaces).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/openssl_ptr.h"

namespace scep {

using Bytes = std::vector<std::uint8_t>;

enum class Digest { sha1, sha256, sha384, sha512 };

std::optional<Digest> digestFromName(std::string_view name);
const char* digestName(Digest digest);
std::size_t digestLength(Digest digest);
// The digest whose output has this many bytes (20, 32, 48 or 64).
std::optional<Digest> digestForLength(std::size_t length);

// Loads the first certificate of a PEM or DER file. Throws std::runtime_error
// with a reason a human can act on.
X509Ptr loadCertificateFile(const std::string& path);

// Hash of the certificate's DER encoding, as `openssl x509 -fingerprint`.
Bytes certificateFingerprint(const X509& cert, Digest digest);

// Parses hex with optional ':' / whitespace separators. Throws
// std::invalid_argument naming the problem (odd digit count, bad character).
Bytes parseHex(std::string_view text);

// Upper-case hex; `separator` '\0' means none, as phones want it.
std::string toHex(const Bytes& bytes, char separator = '\0');

}  // namespace scep
