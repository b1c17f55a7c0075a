// The TOML reading the hook's and the RA's configurations share: a Reader
// that collects every problem with file and line, and the file-level helpers.
// Not for the hook's hot path; only loaders include it (it pulls in toml++).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include "common/config.h"

namespace scep {

// A shared secret that travels in DHCP broadcasts; the RA throttles wrong
// guesses, but a short one still falls fast. 8 is the floor, not a goal:
// the phone guide's example is 16 hex digits, and the option-43 space
// (server + challenge < 208 bytes) leaves room for far more.
constexpr std::size_t kMinChallenge = 8;
constexpr const char* kShortChallenge =
    "must be at least 8 characters (or \"\" for none); use a random one, e.g. "
    "`openssl rand -hex 8`";

// Collects problems instead of stopping at the first: an operator fixing a
// file wants every mistake in one go.
class Reader {
public:
    explicit Reader(std::string source) : source_(std::move(source)) {}

    void problem(const toml::source_region& where, const std::string& context,
                 const std::string& text) {
        std::ostringstream out;
        out << source_;
        if (where.begin.line > 0) {
            out << ':' << where.begin.line;
        }
        out << ": " << context << ": " << text;
        problems_.push_back(out.str());
    }

    void keyProblem(const toml::node& node, const std::string& context, std::string_view key,
                    const std::string& text) {
        problem(node.source(), context, "key '" + std::string(key) + "' " + text);
    }

    std::optional<std::string> string(const toml::table& table, std::string_view key,
                                      const std::string& context) {
        const toml::node* node = table.get(key);
        if (!node) {
            return std::nullopt;
        }
        if (!node->is_string()) {
            keyProblem(*node, context, key, "must be a string");
            return std::nullopt;
        }
        return node->value<std::string>();
    }

    std::optional<bool> boolean(const toml::table& table, std::string_view key,
                                const std::string& context) {
        const toml::node* node = table.get(key);
        if (!node) {
            return std::nullopt;
        }
        if (!node->is_boolean()) {
            keyProblem(*node, context, key, "must be a boolean (true or false, unquoted)");
            return std::nullopt;
        }
        return node->value<bool>();
    }

    std::optional<std::int64_t> integer(const toml::table& table, std::string_view key,
                                        const std::string& context, std::int64_t min,
                                        std::int64_t max) {
        const toml::node* node = table.get(key);
        if (!node) {
            return std::nullopt;
        }
        const auto value = node->value<std::int64_t>();
        if (!node->is_integer() || !value || *value < min || *value > max) {
            keyProblem(*node, context, key,
                       "must be a whole number from " + std::to_string(min) + " to " +
                           std::to_string(max));
            return std::nullopt;
        }
        return value;
    }

    std::optional<std::vector<std::string>> strings(const toml::table& table, std::string_view key,
                                                    const std::string& context) {
        const toml::node* node = table.get(key);
        if (!node) {
            return std::nullopt;
        }
        const toml::array* list = node->as_array();
        std::vector<std::string> out;
        bool ok = list != nullptr;
        for (std::size_t i = 0; ok && i < list->size(); ++i) {
            const auto value = (*list)[i].value<std::string>();
            ok = (*list)[i].is_string() && value;
            if (ok) {
                out.push_back(*value);
            }
        }
        if (!ok) {
            keyProblem(*node, context, key, "must be an array of strings");
            return std::nullopt;
        }
        return out;
    }

    void rejectUnknownKeys(const toml::table& table, const std::set<std::string_view>& allowed,
                           const std::string& context) {
        for (auto&& [key, node] : table) {
            if (allowed.count(key.str()) == 0) {
                std::string list;
                for (auto name : allowed) {
                    list += (list.empty() ? "" : ", ") + std::string(name);
                }
                problem(key.source(), context,
                        "unknown key '" + std::string(key.str()) + "' (known keys: " + list + ")");
            }
        }
    }

    const std::string& source() const { return source_; }
    bool ok() const { return problems_.empty(); }
    void throwIfFailed() const {
        if (!problems_.empty()) {
            throw ConfigError(problems_);
        }
    }

private:
    std::string source_;
    std::vector<std::string> problems_;
};

toml::table parseToml(Reader& reader, std::string_view toml_text, const std::string& source);
// The [[profile]] tables into `config`; the hook needs at least one and reads
// their ca-cert files, the RA neither (`for_hook` false).
void readProfiles(Reader& reader, const toml::table& root, bool for_hook, DhcpConfig& config);
// Throws ConfigError naming the path when it cannot be read.
std::string readFile(const std::string& path);
std::string directoryOf(const std::string& path);
// Relative paths in the file are relative to the file's directory.
std::string resolvePath(const std::string& base_dir, const std::string& path);
// The table `name` of `root`, nullptr when absent or (reported) not a table.
const toml::table* subTable(Reader& reader, const toml::table& root, std::string_view name);

}  // namespace scep
