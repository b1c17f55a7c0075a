#include "ra/admin/revocation.h"

namespace scep {

const std::vector<RevocationReason>& revocationReasons() {
    static const std::vector<RevocationReason> reasons = {
        {"unspecified", 0},        {"keyCompromise", 1}, {"cACompromise", 2},
        {"affiliationChanged", 3}, {"superseded", 4},    {"cessationOfOperation", 5},
        {"certificateHold", 6},    {"removeFromCRL", 8}, {"privilegeWithdrawn", 9},
        {"aACompromise", 10}};
    return reasons;
}

std::optional<int> revocationReasonCode(const std::string& name) {
    for (const RevocationReason& reason : revocationReasons()) {
        if (name == reason.name) {
            return reason.code;
        }
    }
    return std::nullopt;
}

std::string revocationReasonName(int code) {
    for (const RevocationReason& reason : revocationReasons()) {
        if (reason.code == code) {
            return reason.name;
        }
    }
    return std::to_string(code);
}

}  // namespace scep
