// Forced into every translation unit of the fuzzing build (meson.build):
// toml++'s header-only assertions report instead of aborting.
//
// toml++ 3.3/3.4 (Debian 12/13) asserts preconditions that malformed input
// can break: parse_key() on "[[#a]]" or "[[[1]]]" (fixed upstream by
// marzer/tomlplusplus#301), parse_value() on "x = [}]". In Debian's release
// library these are TOML_ASSUME hints, and such files get a TOML syntax
// error, which is what kea-scep-check shows for each of them. They are
// toml++'s to fix; stopping the fuzzer on them every few seconds would keep
// it from our own code, so each failing assertion is printed once and the
// parse goes on to its normal error. Memory errors still abort (ASan).
#pragma once

#include <cstdio>
#include <mutex>
#include <set>
#include <string>

inline void scepFuzzTomlAssert(const char* expression, const char* file, int line) {
    static std::mutex mutex;
    static std::set<std::string> seen;
    const std::lock_guard<std::mutex> lock(mutex);
    if (seen.insert(expression).second) {
        std::fprintf(stderr, "%s:%d: toml++ precondition broken (reported once, not fatal): %s\n",
                     file, line, expression);
    }
}

#define TOML_ASSERT(expr) \
    ((expr) ? static_cast<void>(0) : scepFuzzTomlAssert(#expr, __FILE__, __LINE__))
