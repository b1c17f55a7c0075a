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

bool wildcardsOverlap(std::string_view a, std::string_view b) {
    // reach[i][j]: some string takes a[0..i) and b[0..j) to the same point.
    // A '*' may either stop (advance its pattern) or swallow one literal of
    // the other pattern; two literals must agree.
    const std::size_t rows = a.size() + 1, cols = b.size() + 1;
    std::vector<char> reach(rows * cols, 0);
    auto at = [&](std::size_t i, std::size_t j) -> char& { return reach[i * cols + j]; };
    at(0, 0) = 1;
    for (std::size_t i = 0; i < rows; ++i) {
        for (std::size_t j = 0; j < cols; ++j) {
            if (!at(i, j)) {
                continue;
            }
            const bool a_star = i < a.size() && a[i] == '*';
            const bool b_star = j < b.size() && b[j] == '*';
            if (a_star) {
                at(i + 1, j) = 1;
            }
            if (b_star) {
                at(i, j + 1) = 1;
            }
            if (i < a.size() && j < b.size()) {
                if (a_star && !b_star) {
                    at(i, j + 1) = 1;
                } else if (b_star && !a_star) {
                    at(i + 1, j) = 1;
                } else if (!a_star && !b_star && a[i] == b[j]) {
                    at(i + 1, j + 1) = 1;
                }
            }
        }
    }
    return at(a.size(), b.size());
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
    for (const auto& [pattern, profile] : wildcards_) {
        if (wildcardMatch(pattern, vendor_class)) {
            return profile;
        }
    }
    return npos;
}

}  // namespace scep
