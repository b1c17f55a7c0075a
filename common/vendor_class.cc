#include "common/vendor_class.h"

namespace scep {

bool isWildcard(std::string_view pattern) {
    return pattern.find('*') != std::string_view::npos;
}

bool wildcardMatch(std::string_view pattern, std::string_view text) {
    // Greedy matching with backtracking to the last '*': linear in practice,
    // no recursion, safe on hostile option 60 values.
    std::size_t p = 0, t = 0;
    std::size_t star = std::string_view::npos, resume = 0;
    while (t < text.size()) {
        if (p < pattern.size() && pattern[p] == '*') {
            star = p++;
            resume = t;
        } else if (p < pattern.size() && pattern[p] == text[t]) {
            ++p;
            ++t;
        } else if (star != std::string_view::npos) {
            p = star + 1;
            t = ++resume;
        } else {
            return false;
        }
    }
    while (p < pattern.size() && pattern[p] == '*') {
        ++p;
    }
    return p == pattern.size();
}

namespace {

std::string withoutStars(std::string_view pattern) {
    std::string out;
    for (char c : pattern) {
        if (c != '*') {
            out += c;
        }
    }
    return out;
}

}  // namespace

std::string sharedVendorClass(std::string_view a, std::string_view b) {
    const std::string literal_a = withoutStars(a);
    if (wildcardMatch(b, literal_a)) {
        return literal_a;
    }
    const std::string literal_b = withoutStars(b);
    if (wildcardMatch(a, literal_b)) {
        return literal_b;
    }
    return {};
}

std::string_view trimVendorClass(std::string_view raw) {
    while (!raw.empty() && raw.back() == '\0') {
        raw.remove_suffix(1);
    }
    return raw;
}

void VendorClassIndex::add(const std::string& pattern, std::size_t profile) {
    if (isWildcard(pattern)) {
        wildcards_.emplace_back(pattern, profile);
    } else {
        exact_.emplace(pattern, profile);
    }
}

std::size_t VendorClassIndex::find(std::string_view vendor_class) const {
    if (!exact_.empty()) {
        const auto it = exact_.find(std::string(vendor_class));
        if (it != exact_.end()) {
            return it->second;
        }
    }
    std::size_t found = npos;
    for (const auto& [pattern, profile] : wildcards_) {
        if (profile != found && wildcardMatch(pattern, vendor_class)) {
            if (found != npos) {
                return ambiguous;
            }
            found = profile;
        }
    }
    return found;
}

}  // namespace scep
