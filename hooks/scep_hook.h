// The hook's implementation, free of Kea's hook plumbing so it can be unit
// tested on real packets: configure() validates and swaps in an immutable
// snapshot; process() decorates one reply using whatever snapshot it holds.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <cc/data.h>
#include <dhcp/pkt4.h>

#include "common/config.h"

namespace scep::hook {

// Remote-provisioning options that make phones ignore option 43.
constexpr std::array<std::uint16_t, 4> kConflictingOptions = {66, 150, 159, 160};

struct ProfileStatNames {
    std::string decorated;
    std::string conflicts;
    std::string skipped;
};

inline const char* kAmbiguousStat = "scep.ambiguous-vendor-class";

// Options built once per profile and added to every matching reply as they
// are: Kea only reads options when packing (Option::pack is const), and
// callouts after ours get copies because Kea enables option copying around
// pkt4_send.
struct PreparedOptions {
    isc::dhcp::OptionPtr option43;
    isc::dhcp::OptionPtr option15;  // null when the profile has no domain
};

struct Snapshot {
    DhcpConfig config;
    std::vector<ProfileStatNames> stat_names;  // parallel to config.profiles
    std::vector<PreparedOptions> options;      // parallel to config.profiles
};
using SnapshotPtr = std::shared_ptr<const Snapshot>;

enum class Action { untouched, decorated, skipped, ambiguous };

struct Decision {
    Action action = Action::untouched;
    std::size_t profile = 0;               // valid unless untouched
    std::vector<std::uint16_t> conflicts;  // conflicting options the reply carried
};

class ScepHook {
public:
    // Reads and validates the TOML file; on success the new snapshot serves
    // every later packet, on failure (ConfigError) nothing changes.
    void configure(const std::string& path);
    void configure(DhcpConfig config);
    // Re-reads the file configure() was last given.
    void reload();

    SnapshotPtr snapshot() const;
    const std::string& path() const { return path_; }

    // Decorates `response` (DHCPOFFER/DHCPACK) for the query's option 60.
    // Options are looked up through the public `options_` because
    // Pkt::getOption() copies the option while Kea's callouts run.
    static Decision process(const Snapshot& snapshot, const isc::dhcp::Pkt4& query,
                            isc::dhcp::Pkt4& response);

    // Every profile for scep-profiles-get; the challenge is masked.
    static isc::data::ElementPtr describe(const Snapshot& snapshot);

private:
    std::string path_;
    SnapshotPtr snapshot_;  // read and replaced with std::atomic_load/store
};

std::string statName(const std::string& profile, const char* counter);

}  // namespace scep::hook
