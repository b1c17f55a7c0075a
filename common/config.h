// The shared TOML configuration: the [[profile]] tables, which the Kea hook
// reads and the RA reads too (its own tables are in ra/config.h). Every problem is reported with
// file, line, the table and key involved, and the rule broken; a file with
// any problem is refused as a whole.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "common/option43.h"
#include "common/url.h"  // isValidDnsName, for the RA's CSR checks
#include "common/vendor_class.h"

namespace scep {

class ConfigError : public std::runtime_error {
public:
    explicit ConfigError(std::vector<std::string> problems);
    const std::vector<std::string>& problems() const { return problems_; }

private:
    std::vector<std::string> problems_;
};

// What to do with a reply that also carries remote-provisioning options
// (66, 150, 159, 160); phones may then ignore option 43.
enum class ConflictPolicy { warn, strip, skip };
const char* conflictPolicyName(ConflictPolicy policy);

struct Profile {
    std::string name;
    std::vector<std::string> vendor_classes;
    ScepParameters scep;
    std::optional<std::string> domain;  // option 15
    ConflictPolicy conflicts = ConflictPolicy::warn;
    std::string ca_cert;  // set when the fingerprint came from a file
    Bytes option43;       // encoded once, at load
    std::size_t line = 0;
};

struct ProfileMatch {
    const Profile* profile = nullptr;  // set when exactly one profile matches
    // Wildcards of two profiles match. Loading refuses overlapping patterns,
    // so this is only a safety net for an index built some other way.
    bool ambiguous = false;
};

struct DhcpConfig {
    std::string path;
    std::vector<Profile> profiles;
    VendorClassIndex index;

    ProfileMatch match(std::string_view vendor_class) const;
};

// `source` names the file in messages; relative ca-cert paths are resolved
// against its directory.
DhcpConfig parseDhcpConfig(std::string_view toml_text, const std::string& source);
DhcpConfig loadDhcpConfig(const std::string& path);

}  // namespace scep
