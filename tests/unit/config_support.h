// Checking refused RA configurations: the message must name the file with
// a line, the table, the key in quotes and the rule broken.
#pragma once

#include <doctest/doctest.h>

#include <string>

#include "ra/config.h"

namespace testsupport {

// The whole refusal of `text` (as /etc/kea-scep-ra/scep.toml); fails the
// test when it is accepted.
inline std::string raRefusal(const std::string& text) {
    try {
        scep::parseConfig(text, "/etc/kea-scep-ra/scep.toml");
    } catch (const scep::ConfigError& e) {
        return e.what();
    }
    FAIL("configuration was accepted:\n" << text);
    return {};
}

inline void checkRaRefused(const std::string& text, const std::string& table,
                           const std::string& key, const std::string& rule) {
    const std::string message = raRefusal(text);
    CAPTURE(message);
    CHECK(message.find("/etc/kea-scep-ra/scep.toml:") != std::string::npos);
    CHECK(message.find(table) != std::string::npos);
    CHECK(message.find("'" + key + "'") != std::string::npos);
    CHECK(message.find(rule) != std::string::npos);
}

}  // namespace testsupport
