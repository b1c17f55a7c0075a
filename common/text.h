// Making untrusted bytes (option 60, CSR fields, HTTP input) safe to log.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace scep {

// Printable ASCII is kept, everything else becomes \xNN; long input is cut
// with "..." so a hostile packet cannot flood a log line.
std::string printable(std::string_view raw, std::size_t max_length = 96);

// Every byte from space to '~' (0x20-0x7e); true for "".
bool isPrintableAscii(std::string_view text);

// "001A2B3C4D5E" as "00:1A:2B:3C:4D:5E": twelve hex digits, as given, in
// colon-separated pairs.
std::string macText(std::string_view twelve_hex_digits);

}  // namespace scep
