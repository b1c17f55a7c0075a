// Admin API tokens: "scepra_<id>_<secret>". The id (8 hex) finds the record;
// only the SHA-256 of the secret (32 random bytes, base64url) is stored and
// it is compared in constant time.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "ra/store/store.h"

namespace scep {

struct NewToken {
    std::string text;  // shown once, never stored
    TokenRecord record;
};

// Admin roles; the store and the configuration hold their names.
enum class Role { viewer, approver };
const char* roleName(Role role);
std::optional<Role> roleFromName(const std::string& name);

NewToken makeToken(const std::string& name, Role role, const std::string& created_by);

struct TokenParts {
    std::string id;
    std::string secret;
};
std::optional<TokenParts> splitToken(std::string_view text);

bool tokenMatches(const TokenRecord& record, const std::string& secret);

bool isValidTokenName(const std::string& name);  // 1-64 of [A-Za-z0-9._@-]
bool isRole(const std::string& name);            // "viewer" | "approver"
// approver may do everything a viewer may.
bool roleAllows(Role role, Role needed);

}  // namespace scep
