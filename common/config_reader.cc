#include "common/config_reader.h"

#include <fstream>

namespace scep {

namespace {

std::string joinLines(const std::vector<std::string>& lines) {
    std::string out;
    for (const auto& line : lines) {
        if (!out.empty()) {
            out += '\n';
        }
        out += line;
    }
    return out;
}

}  // namespace

ConfigError::ConfigError(std::vector<std::string> problems)
    : std::runtime_error(joinLines(problems)), problems_(std::move(problems)) {}

std::string directoryOf(const std::string& path) {
    const auto slash = path.rfind('/');
    return slash == std::string::npos ? std::string(".") : path.substr(0, slash);
}

toml::table parseToml(Reader& reader, std::string_view toml_text, const std::string& source) {
    try {
        return toml::parse(toml_text, source);
    } catch (const toml::parse_error& e) {
        reader.problem(e.source(), "TOML syntax", std::string(e.description()));
        reader.throwIfFailed();
    }
    return {};
}

std::string readFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw ConfigError({path + ": cannot read the file"});
    }
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

// Relative paths in the file are relative to the file's directory.
std::string resolvePath(const std::string& base_dir, const std::string& path) {
    return path.empty() || path.front() == '/' ? path : base_dir + "/" + path;
}

const toml::table* subTable(Reader& reader, const toml::table& root, std::string_view name) {
    const toml::node* node = root.get(name);
    if (!node) {
        return nullptr;
    }
    if (!node->is_table()) {
        reader.problem(
            node->source(), "[" + std::string(name) + "]",
            "'" + std::string(name) + "' must be a table: write [" + std::string(name) + "]");
        return nullptr;
    }
    return node->as_table();
}

}  // namespace scep
