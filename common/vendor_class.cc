#include "common/vendor_class.h"

#include <deque>

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

// One step of the product automaton: from state `from`, reading `byte`
// (or nothing, for a '*' that matches the empty run).
struct Step {
    std::size_t from = 0;
    int byte = -1;  // -1: an empty move
};

}  // namespace

std::optional<std::string> commonVendorClass(std::string_view a, std::string_view b) {
    // State (i, j): i bytes of pattern a and j of b are behind us. A '*' may
    // be skipped (empty run) or consume one byte and stay; a literal must
    // equal the byte read. Both '*' consuming the same byte loops in place,
    // so a shortest witness only ever reads the patterns' own literal bytes.
    // 0-1 BFS (empty moves cost 0, bytes 1) finds the shortest witness in
    // O(|a| * |b|).
    const std::size_t width = b.size() + 1;
    const std::size_t states = (a.size() + 1) * width;
    std::vector<std::size_t> length(states, static_cast<std::size_t>(-1));
    std::vector<Step> came(states);
    std::deque<std::size_t> queue;
    length[0] = 0;
    queue.push_back(0);
    const auto relax = [&](std::size_t from, std::size_t i, std::size_t j, int byte) {
        const std::size_t to = i * width + j;
        const std::size_t cost = length[from] + (byte < 0 ? 0 : 1);
        if (cost < length[to]) {
            length[to] = cost;
            came[to] = {from, byte};
            if (byte < 0) {
                queue.push_front(to);
            } else {
                queue.push_back(to);
            }
        }
    };
    const std::size_t accept = states - 1;
    while (!queue.empty()) {
        const std::size_t state = queue.front();
        queue.pop_front();
        if (state == accept) {
            break;
        }
        const std::size_t i = state / width, j = state % width;
        const bool star_a = i < a.size() && a[i] == '*';
        const bool star_b = j < b.size() && b[j] == '*';
        if (star_a) {
            relax(state, i + 1, j, -1);
        }
        if (star_b) {
            relax(state, i, j + 1, -1);
        }
        if (i == a.size() || j == b.size()) {
            continue;
        }
        if (!star_a && (star_b || a[i] == b[j])) {
            relax(state, i + 1, star_b ? j : j + 1, static_cast<unsigned char>(a[i]));
        } else if (star_a && !star_b) {
            relax(state, i, j + 1, static_cast<unsigned char>(b[j]));
        }
    }
    if (length[accept] == static_cast<std::size_t>(-1)) {
        return std::nullopt;
    }
    std::string witness;
    for (std::size_t state = accept; state != 0; state = came[state].from) {
        if (came[state].byte >= 0) {
            witness += static_cast<char>(came[state].byte);
        }
    }
    return std::string(witness.rbegin(), witness.rend());
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
