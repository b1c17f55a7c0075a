// kea-scep-check: validates SCEP TOML files exactly as the hook's load() and
// scep-reload do. Kea 2.2's `kea-dhcp4 -t` never calls a hook's load(), and a
// hook that fails to load during config-set or config-reload leaves Kea 2.2
// unable to serve, so operators run this before any of those.
//
//   kea-scep-check scep.toml            check one TOML file
//   kea-scep-check kea-dhcp4.conf       check the TOML of every libdhcp_scep.so entry
#include <config.h>

#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <cc/data.h>

#include "hooks/scep_hook.h"

namespace {

bool endsWith(const std::string& text, const std::string& suffix) {
    return text.size() >= suffix.size() &&
           text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Kea's configuration files allow #, // and /* */ comments, which Kea's
// generic JSON reader does not; blank them out (outside strings), keeping
// newlines so the reader's line numbers stay right.
std::string withoutComments(const std::string& text) {
    std::string out = text;
    bool in_string = false;
    for (std::size_t i = 0; i < out.size(); ++i) {
        if (in_string) {
            if (out[i] == '\\') {
                ++i;
            } else if (out[i] == '"') {
                in_string = false;
            }
        } else if (out[i] == '"') {
            in_string = true;
        } else if (out[i] == '#' || out.compare(i, 2, "//") == 0) {
            while (i < out.size() && out[i] != '\n') {
                out[i++] = ' ';
            }
        } else if (out.compare(i, 2, "/*") == 0) {
            const std::size_t end = out.find("*/", i + 2);
            const std::size_t stop = end == std::string::npos ? out.size() : end + 2;
            for (; i < stop; ++i) {
                if (out[i] != '\n') {
                    out[i] = ' ';
                }
            }
            --i;
        }
    }
    return out;
}

// The "config" parameter of every libdhcp_scep.so entry in a Kea config.
std::vector<std::string> tomlFilesOf(const std::string& kea_config) {
    using isc::data::Element;
    std::ifstream in(kea_config);
    if (!in) {
        throw std::runtime_error(kea_config + ": cannot read the file");
    }
    std::ostringstream text;
    text << in.rdbuf();
    std::istringstream json(withoutComments(text.str()));
    int line = 1, pos = 1;
    const auto root = Element::fromJSON(json, kea_config, line, pos);
    const auto dhcp4 = root->get("Dhcp4");
    const auto libraries = dhcp4 ? dhcp4->get("hooks-libraries") : nullptr;
    std::vector<std::string> files;
    for (std::size_t i = 0; libraries && i < libraries->size(); ++i) {
        const auto entry = libraries->get(i);
        const auto library = entry->get("library");
        // Kea 2.6 takes hooks by bare name, Kea 2.2 by path.
        const std::string name = library ? library->stringValue() : std::string();
        if (name != "libdhcp_scep.so" && !endsWith(name, "/libdhcp_scep.so")) {
            continue;
        }
        const auto parameters = entry->get("parameters");
        const auto path = parameters ? parameters->get("config") : nullptr;
        if (!path || path->getType() != Element::string) {
            throw std::runtime_error(kea_config +
                                     ": libdhcp_scep.so entry lacks the string "
                                     "parameter 'config' (path of the SCEP TOML file)");
        }
        files.push_back(path->stringValue());
    }
    if (files.empty()) {
        throw std::runtime_error(kea_config + ": no hooks-libraries entry loads libdhcp_scep.so");
    }
    return files;
}

bool check(const std::string& toml) {
    try {
        scep::hook::ScepHook hook;
        hook.configure(toml);
        const auto snapshot = hook.snapshot();
        std::cout << toml << ": OK, " << snapshot->config.profiles.size() << " profile(s)\n";
        for (const auto& profile : snapshot->config.profiles) {
            std::cout << "  " << profile.name << ": option 43 (" << profile.option43.size()
                      << " bytes) " << scep::maskedOption43Hex(profile.option43)
                      << (profile.domain ? ", option 15 " + *profile.domain : std::string())
                      << "\n";
        }
        return true;
    } catch (const std::exception& e) {
        std::cerr << e.what() << "\n";
        return false;
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
        std::cerr << "usage: kea-scep-check FILE...\n"
                     "  FILE is a SCEP TOML file, or a kea-dhcp4 configuration whose\n"
                     "  libdhcp_scep.so entries name the TOML files to check.\n"
                     "  Exit status 0 when every file would load, 1 otherwise.\n";
        return 2;
    }
    bool ok = true;
    for (int i = 1; i < argc; ++i) {
        const std::string file = argv[i];
        if (endsWith(file, ".toml")) {
            ok = check(file) && ok;
            continue;
        }
        try {
            for (const auto& toml : tomlFilesOf(file)) {
                ok = check(toml) && ok;
            }
        } catch (const std::exception& e) {
            std::cerr << e.what() << "\n";
            ok = false;
        }
    }
    return ok ? 0 : 1;
}
