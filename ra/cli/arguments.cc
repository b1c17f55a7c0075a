#include "ra/cli/arguments.h"

#include <stdexcept>

#include "ra/admin/revocation.h"

namespace scep::cli {

Arguments parseArguments(int argc, char** argv) {
    Arguments args;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg.rfind("--", 0) == 0) {
            const auto equals = arg.find('=');
            if (equals != std::string::npos) {
                args.options[arg.substr(2, equals - 2)] = arg.substr(equals + 1);
            } else if (i + 1 < argc) {
                args.options[arg.substr(2)] = argv[++i];
            } else {
                throw std::invalid_argument("option " + arg + " needs a value");
            }
        } else if (args.command.empty()) {
            args.command = arg;
        } else {
            args.positional.push_back(arg);
        }
    }
    return args;
}

int reasonCode(const std::string& text) {
    if (const auto code = revocationReasonCode(text)) {
        return *code;
    }
    if (!text.empty() && text.size() <= 2 &&
        text.find_first_not_of("0123456789") == std::string::npos) {
        return std::stoi(text);
    }
    throw std::invalid_argument("unknown revocation reason '" + text + "'");
}

std::int64_t requestId(const Arguments& args) {
    if (args.positional.size() != 1) {
        throw std::invalid_argument(args.command + " needs exactly one request ID");
    }
    const std::string& text = args.positional[0];
    if (text.empty() || text.size() > 18 ||
        text.find_first_not_of("0123456789") != std::string::npos) {
        throw std::invalid_argument("request ID must be a number");
    }
    return std::stoll(text);
}

}  // namespace scep::cli
