#include "common/text.h"

#include <algorithm>
#include <cstdio>

namespace scep {

std::string printable(std::string_view raw, std::size_t max_length) {
    std::string out;
    out.reserve(raw.size() < max_length ? raw.size() : max_length);
    for (std::size_t i = 0; i < raw.size(); ++i) {
        if (out.size() >= max_length) {
            out += "...";
            break;
        }
        const auto c = static_cast<unsigned char>(raw[i]);
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            out += static_cast<char>(c);
        } else {
            char escaped[5];
            std::snprintf(escaped, sizeof(escaped), "\\x%02x", c);
            out += escaped;
        }
    }
    return out;
}

bool isPrintableAscii(std::string_view text) {
    return std::all_of(text.begin(), text.end(), [](char c) { return c >= 0x20 && c <= 0x7e; });
}

std::string macText(std::string_view twelve_hex_digits) {
    std::string out;
    for (std::size_t i = 0; i < twelve_hex_digits.size(); i += 2) {
        out += (i ? ":" : "") + std::string(twelve_hex_digits.substr(i, 2));
    }
    return out;
}

}  // namespace scep
