// The command line of scep-ra: a command, positional words and --options.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace scep::cli {

struct Arguments {
    std::string command;
    std::vector<std::string> positional;
    std::map<std::string, std::string> options;

    std::string option(const std::string& name, const std::string& fallback = "") const {
        const auto it = options.find(name);
        return it == options.end() ? fallback : it->second;
    }
};

// "--name value" and "--name=value"; std::invalid_argument when a value is missing.
Arguments parseArguments(int argc, char** argv);

// The one positional request ID of approve/reject.
std::int64_t requestId(const Arguments& args);

// An RFC 5280 reason name, or a number of one or two digits (the service
// refuses codes RFC 5280 does not assign).
int reasonCode(const std::string& text);

}  // namespace scep::cli
