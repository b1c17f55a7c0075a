#include "ra/admin/tokens.h"

#include <algorithm>
#include <cctype>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "ra/crypto.h"

namespace scep {

namespace {

constexpr std::string_view kPrefix = "scepra_";
constexpr std::size_t kIdLength = 8;
constexpr std::size_t kSecretBytes = 32;
constexpr std::size_t kSecretLength = 43;  // base64url of 32 bytes, unpadded

Bytes randomBytes(std::size_t count) {
    Bytes out(count);
    if (RAND_bytes(out.data(), static_cast<int>(count)) != 1) {
        throw CryptoError("RAND_bytes");
    }
    return out;
}

std::string base64url(const Bytes& data) {
    std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
    const int length = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data.data(),
                                       static_cast<int>(data.size()));
    out.resize(static_cast<std::size_t>(length));
    for (char& c : out) {
        c = c == '+' ? '-' : c == '/' ? '_' : c;
    }
    out.erase(std::remove(out.begin(), out.end(), '='), out.end());
    return out;
}

Bytes sha256(const std::string& text) {
    Bytes digest(32);
    unsigned int length = 0;
    if (EVP_Digest(text.data(), text.size(), digest.data(), &length, EVP_sha256(), nullptr) != 1) {
        throw CryptoError("SHA-256");
    }
    return digest;
}

}  // namespace

const char* roleName(Role role) {
    return role == Role::approver ? "approver" : "viewer";
}

std::optional<Role> roleFromName(const std::string& name) {
    for (Role role : {Role::viewer, Role::approver}) {
        if (name == roleName(role)) {
            return role;
        }
    }
    return std::nullopt;
}

NewToken makeToken(const std::string& name, Role role, const std::string& created_by) {
    NewToken token;
    token.record.id = toHex(randomBytes(kIdLength / 2));
    std::transform(token.record.id.begin(), token.record.id.end(), token.record.id.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    const std::string secret = base64url(randomBytes(kSecretBytes));
    token.record.name = name;
    token.record.role = roleName(role);
    token.record.secret_hash = sha256(secret);
    token.record.created_by = created_by;
    token.text = std::string(kPrefix) + token.record.id + "_" + secret;
    return token;
}

std::optional<TokenParts> splitToken(std::string_view text) {
    if (text.size() != kPrefix.size() + kIdLength + 1 + kSecretLength ||
        text.substr(0, kPrefix.size()) != kPrefix || text[kPrefix.size() + kIdLength] != '_') {
        return std::nullopt;
    }
    const std::string_view id = text.substr(kPrefix.size(), kIdLength);
    const std::string_view secret = text.substr(kPrefix.size() + kIdLength + 1);
    const bool id_ok = std::all_of(id.begin(), id.end(), [](unsigned char c) {
        return std::isdigit(c) || (c >= 'a' && c <= 'f');
    });
    const bool secret_ok = std::all_of(secret.begin(), secret.end(), [](unsigned char c) {
        return std::isalnum(c) || c == '-' || c == '_';
    });
    if (!id_ok || !secret_ok) {
        return std::nullopt;
    }
    return TokenParts{std::string(id), std::string(secret)};
}

bool tokenMatches(const TokenRecord& record, const std::string& secret) {
    const Bytes presented = sha256(secret);
    return record.secret_hash.size() == presented.size() &&
           CRYPTO_memcmp(record.secret_hash.data(), presented.data(), presented.size()) == 0;
}

bool isValidTokenName(const std::string& name) {
    return !name.empty() && name.size() <= 64 &&
           std::all_of(name.begin(), name.end(), [](unsigned char c) {
               return std::isalnum(c) || c == '.' || c == '_' || c == '@' || c == '-';
           });
}

bool isRole(const std::string& name) {
    return roleFromName(name).has_value();
}

bool roleAllows(Role role, Role needed) {
    return role == Role::approver || needed == Role::viewer;
}

}  // namespace scep
