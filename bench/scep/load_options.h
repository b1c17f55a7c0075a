// scep_load's command line: what to send, how hard, and how to sign it.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "common/url.h"

namespace scep::bench {

struct Options {
    std::string url = "http://127.0.0.1:8080/scep";
    std::size_t requests = 2000;
    std::size_t concurrency = 8;
    std::size_t warmup = 0;  // 0: 2 per connection
    std::size_t pool = 64;
    std::vector<std::pair<std::string, std::string>> mics;  // cert, key
    std::string challenge;
    std::string cipher = "aes128";
    std::string digest = "sha256";
    long server_pid = 0;
    long upstream_pid = 0;  // the CA behind an RA (scep-ra backend = "scep"), measured apart
    std::string pool_keys;  // PEM file caching the pool's keys across runs
    bool tolerate_failures = false;  // reference servers with known bugs
    std::size_t threads = 0;         // for pre-generation and checks; 0: all cores
    // Resolved from the above by parseOptions.
    Url target;
    int cipher_nid = 0;
    int digest_nid = 0;

    bool micMode() const { return !mics.empty(); }
    std::size_t total() const { return warmup + requests; }
};

// The options, defaults filled in; a bad command line prints the usage and
// exits with status 2.
Options parseOptions(int argc, char** argv);

}  // namespace scep::bench
