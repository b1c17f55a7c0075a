// Matching DHCP option 60 (vendor class identifier) against profile patterns.
// Patterns are literal strings where '*' matches any run of bytes; matching
// is byte-exact and case-sensitive, like Kea's own string expressions.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace scep {

bool isWildcard(std::string_view pattern);
bool wildcardMatch(std::string_view pattern, std::string_view text);

// The shortest string both patterns match, or nullopt when none exists.
// Exact: '*' is the only metacharacter, so the patterns are regular languages
// and their intersection is searched as a product automaton. "" comes back
// only when both patterns consist of stars alone (and so match everything).
std::optional<std::string> commonVendorClass(std::string_view a, std::string_view b);

// Some clients NUL-terminate option 60; phones' model strings never contain
// NUL, so trailing ones are not part of the identity.
std::string_view trimVendorClass(std::string_view raw);

// Lookup from vendor class to the index of the profile that owns it. Built
// once per configuration; lookups are read-only and thread-safe.
class VendorClassIndex {
public:
    void add(const std::string& pattern, std::size_t profile);
    // Index of the owning profile; npos when none matches, ambiguous when
    // wildcards of two different profiles match.
    std::size_t find(std::string_view vendor_class) const;
    static constexpr std::size_t npos = static_cast<std::size_t>(-1);
    static constexpr std::size_t ambiguous = static_cast<std::size_t>(-2);

private:
    std::unordered_map<std::string, std::size_t> exact_;
    std::vector<std::pair<std::string, std::size_t>> wildcards_;
};

}  // namespace scep
