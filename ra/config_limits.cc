#include "ra/config_limits.h"

#include <algorithm>
#include <cctype>
#include <vector>

#include "common/url.h"

namespace scep {

namespace {

// The keys of ListenerLimits, in [ra] and in [admin] (which adds the TLS one).
const std::vector<std::string_view> kListenerKeys = {
    "max-connections", "max-connections-per-address",
    "max-header-size", "max-header-fields",
    "idle-timeout",    "header-timeout",
    "body-timeout",    "write-timeout",
    "workers",         "max-queue"};

}  // namespace

std::optional<std::size_t> parseSize(const toml::node& node) {
    if (const auto value = node.value<std::int64_t>(); node.is_integer() && value && *value > 0) {
        return static_cast<std::size_t>(*value);
    }
    const auto text = node.value<std::string>();
    if (!node.is_string() || !text) {
        return std::nullopt;
    }
    std::size_t digits = 0;
    while (digits < text->size() && std::isdigit(static_cast<unsigned char>((*text)[digits]))) {
        ++digits;
    }
    if (digits == 0 || digits > 9) {
        return std::nullopt;
    }
    const std::size_t number = std::stoul(text->substr(0, digits));
    const std::string unit = text->substr(digits);
    const std::pair<const char*, std::size_t> units[] = {
        {"", 1}, {"B", 1}, {"KiB", 1024}, {"MiB", 1024 * 1024}, {"KB", 1000}, {"MB", 1000 * 1000}};
    for (const auto& [name, factor] : units) {
        if (unit == name) {
            return number * factor;
        }
    }
    return std::nullopt;
}

bool parseListen(const std::string& text, std::string& host, std::uint16_t& port) {
    const UrlParse parsed = parseHostPort(text);
    if (!parsed.url) {
        return false;
    }
    host = parsed.url->host;
    port = *parsed.url->port;
    return true;
}

std::set<std::string_view> withListenerKeys(std::set<std::string_view> keys, bool tls) {
    keys.insert(kListenerKeys.begin(), kListenerKeys.end());
    if (tls) {
        keys.insert("tls-handshake-timeout");
    }
    return keys;
}

void readDuration(Reader& reader, const toml::table& table, std::string_view key,
                  const std::string& context, std::chrono::milliseconds& target,
                  const DurationRange& range) {
    const toml::node* node = table.get(key);
    if (!node) {
        return;
    }
    const auto text = node->value<std::string>();
    const auto duration = node->is_string() && text ? parseDuration(*text) : std::nullopt;
    if (!duration || *duration < range.min || *duration > range.max) {
        reader.keyProblem(
            *node, context, key,
            std::string("must be a duration ") + range.text + " such as \"10s\" or \"2m\"");
        return;
    }
    target = *duration;
}

void readListenerLimits(Reader& reader, const toml::table& table, const std::string& context,
                        bool tls, ListenerLimits& limits) {
    const auto count = [&](std::string_view key, std::int64_t max, std::size_t& target) {
        const auto value = reader.integer(table, key, context, 1, max);
        target = value ? static_cast<std::size_t>(*value) : target;
    };
    count("max-connections", 1000000, limits.max_connections);
    count("max-connections-per-address", 1000000, limits.max_connections_per_address);
    count("max-header-fields", 10000, limits.max_header_fields);
    count("workers", 256, limits.workers);
    count("max-queue", 100000, limits.max_queue);
    // Defaults agree, so one of the two keys of a clash is always set.
    const auto clash = [&](std::string_view small, std::string_view large,
                           const std::string& rule) {
        const std::string_view key = table.get(small) ? small : large;
        reader.keyProblem(*table.get(key), context, key, rule);
    };
    if (limits.max_connections_per_address > limits.max_connections) {
        clash("max-connections-per-address", "max-connections",
              "makes max-connections-per-address (" +
                  std::to_string(limits.max_connections_per_address) +
                  ") exceed max-connections (" + std::to_string(limits.max_connections) + ")");
    }
    if (const toml::node* node = table.get("max-header-size")) {
        const auto size = parseSize(*node);
        if (!size || *size < 1024 || *size > 16 * 1024 * 1024) {
            reader.keyProblem(*node, context, "max-header-size",
                              "must be a size from 1KiB to 16MiB, e.g. \"16KiB\"");
        } else {
            limits.max_header_size = *size;
        }
    }
    readDuration(reader, table, "idle-timeout", context, limits.idle_timeout);
    readDuration(reader, table, "header-timeout", context, limits.header_timeout);
    readDuration(reader, table, "body-timeout", context, limits.body_timeout);
    readDuration(reader, table, "write-timeout", context, limits.write_timeout);
    if (tls) {
        readDuration(reader, table, "tls-handshake-timeout", context, limits.tls_handshake_timeout);
    }
    if (limits.idle_timeout > limits.header_timeout) {
        clash("idle-timeout", "header-timeout",
              "makes idle-timeout exceed header-timeout (the whole header must arrive within "
              "header-timeout)");
    }
}

std::optional<std::chrono::milliseconds> parseDuration(std::string_view text) {
    std::size_t digits = 0;
    while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) {
        ++digits;
    }
    if (digits == 0 || digits > 9) {
        return std::nullopt;
    }
    const std::int64_t number = std::stoll(std::string(text.substr(0, digits)));
    const std::string_view unit = text.substr(digits);
    const std::pair<std::string_view, std::int64_t> units[] = {
        {"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 3600 * 1000}, {"d", 86400 * 1000}};
    for (const auto& [name, factor] : units) {
        if (unit == name) {
            const std::chrono::milliseconds value(number * factor);
            return value <= std::chrono::hours(24 * 366) ? std::optional(value) : std::nullopt;
        }
    }
    return std::nullopt;
}

}  // namespace scep
