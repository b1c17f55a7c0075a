// RFC 5280 CRLReason: the one table of names and codes. The API, the CLI and
// (through GET /api/revocation-reasons) the console all read it.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace scep {

struct RevocationReason {
    const char* name;  // "keyCompromise"
    int code;          // 1
};

// In code order; 7 is unassigned in RFC 5280.
const std::vector<RevocationReason>& revocationReasons();

// The code of an exact (case-sensitive) name, or nullopt.
std::optional<int> revocationReasonCode(const std::string& name);

// "keyCompromise" for 1, ..., or the number as text.
std::string revocationReasonName(int code);

}  // namespace scep
