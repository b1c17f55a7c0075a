// The listener keys [ra] and [admin] share, and the value forms they use
// (sizes, durations, ADDRESS:PORT). Internal to ra/config*.cc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "common/config_reader.h"
#include "ra/config.h"

namespace scep {

// "64KiB", "2MiB", "65536" or an integer: a byte count.
std::optional<std::size_t> parseSize(const toml::node& node);
// "ADDRESS:PORT" or "[IPv6]:PORT" into host and port; false when malformed.
bool parseListen(const std::string& text, std::string& host, std::uint16_t& port);
// `keys` plus the ListenerLimits keys (and the TLS one when `tls`).
std::set<std::string_view> withListenerKeys(std::set<std::string_view> keys, bool tls);
// A duration from `min` to `max` (1s to 24h unless given) into `target`;
// reported, with the range, when malformed or outside it.
struct DurationRange {
    std::chrono::milliseconds min{std::chrono::seconds(1)};
    std::chrono::milliseconds max{std::chrono::hours(24)};
    const char* text = "from 1s to 24h";
};
void readDuration(Reader& reader, const toml::table& table, std::string_view key,
                  const std::string& context, std::chrono::milliseconds& target,
                  const DurationRange& range = {});
void readListenerLimits(Reader& reader, const toml::table& table, const std::string& context,
                        bool tls, ListenerLimits& limits);

}  // namespace scep
