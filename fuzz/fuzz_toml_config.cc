// The TOML loader, as the hook (parseDhcpConfig) and the RA (parseConfig)
// run it. Either the file is refused with a ConfigError whose every problem
// names the file, or it loads and its profiles keep their promises: option
// 43 fits one option, and every vendor-class entry resolves to its own
// profile (loading refuses overlapping patterns).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/fuzz_support.h"
#include "ra/config.h"

using namespace scep;

namespace {

// Relative ca-cert paths resolve below a directory that does not exist.
const std::string kSource = "/nonexistent-kea-scep-fuzz/scep.toml";

// Inputs this target leaves alone:
// - absolute paths into device and process files, which could block or never
//   end (/dev/zero); reading files is not what is under test;
// - raw non-ASCII bytes: toml++ 3.3/3.4 (Debian 12/13) reaches
//   __builtin_unreachable() when some non-ASCII code points stand where it
//   expects whitespace (marzer/tomlplusplus#190, fixed upstream by #305).
//   Until Debian ships the fix the fuzzer would stop on it every few seconds;
//   non-ASCII values still reach our checks through "\u00e9" escapes.
bool outOfScope(std::string_view text) {
    for (const char* prefix : {"/dev", "/proc", "/sys", "/run"}) {
        if (text.find(prefix) != std::string_view::npos) {
            return true;
        }
    }
    for (unsigned char c : text) {
        if (c >= 0x80) {
            return true;
        }
    }
    return false;
}

void checkRefusal(const ConfigError& e) {
    fuzz::require(!e.problems().empty(), "a refusal lists its problems");
    for (const std::string& problem : e.problems()) {
        fuzz::require(problem.rfind(kSource, 0) == 0, "every problem names the file");
    }
}

void checkProfiles(const DhcpConfig& config) {
    for (const Profile& profile : config.profiles) {
        fuzz::require(!profile.option43.empty() && profile.option43.size() <= kMaxOption43Length,
                      "a loaded profile's option 43 fits one option");
        for (const std::string& pattern : profile.vendor_classes) {
            std::string literal;
            for (char c : pattern) {
                if (c != '*') {
                    literal += c;
                }
            }
            if (!literal.empty() && literal.back() == '\0') {
                // Option 60 loses trailing NULs; entries cannot end in one,
                // so this pattern ends in '*', which takes one more byte.
                literal += 'x';
            }
            const ProfileMatch match = config.match(literal);
            fuzz::require(match.profile == &profile && !match.ambiguous,
                          "every vendor-class entry resolves to its own profile");
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    if (outOfScope(text)) {
        return 0;
    }
    try {
        checkProfiles(parseDhcpConfig(text, kSource));
    } catch (const ConfigError& e) {  // the hook's load() and kea-scep-check report these
        checkRefusal(e);
    }
    try {
        const Config config = parseConfig(text, kSource);
        checkProfiles(config.dhcp);
    } catch (const ConfigError& e) {
        checkRefusal(e);
    }
    fuzz::clearErrors();
    return 0;
}
