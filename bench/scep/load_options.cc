#include "bench/scep/load_options.h"

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <thread>

#include <openssl/obj_mac.h>

namespace scep::bench {

namespace {

[[noreturn]] void usage(const std::string& problem) {
    std::cerr
        << "scep_load: " << problem << "\n"
        << "usage: scep_load --url http://HOST:PORT/PATH (--mic CERT,KEY ... | --challenge PW)\n"
        << "                 [-n N] [-c C] [--warmup W] [--pool K] [--cipher "
           "aes128|aes256|des3|des]\n"
        << "                 [--digest sha256|sha1] [--server-pid PID] [--pool-keys FILE] "
           "[--threads T]\n"
        << "                 [--upstream-pid PID] [--tolerate-failures]\n";
    std::exit(2);
}

// Reads argv[i] and the values it takes, advancing i past them.
void readArgument(Options& o, int argc, char** argv, int& i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
        if (i + 1 >= argc) {
            usage(arg + " needs a value");
        }
        return argv[++i];
    };
    auto number = [&]() -> std::size_t {
        const std::string text = value();
        if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos) {
            usage(arg + " needs a number");
        }
        return std::stoul(text);
    };
    if (arg == "--url") {
        o.url = value();
    } else if (arg == "-n" || arg == "--requests") {
        o.requests = number();
    } else if (arg == "-c" || arg == "--concurrency") {
        o.concurrency = number();
    } else if (arg == "--warmup") {
        o.warmup = number();
    } else if (arg == "--pool") {
        o.pool = number();
    } else if (arg == "--mic") {
        const std::string pair = value();
        const auto comma = pair.find(',');
        if (comma == std::string::npos) {
            usage("--mic wants CERT,KEY");
        }
        o.mics.emplace_back(pair.substr(0, comma), pair.substr(comma + 1));
    } else if (arg == "--challenge") {
        o.challenge = value();
    } else if (arg == "--cipher") {
        o.cipher = value();
    } else if (arg == "--digest") {
        o.digest = value();
    } else if (arg == "--server-pid") {
        o.server_pid = static_cast<long>(number());
    } else if (arg == "--upstream-pid") {
        o.upstream_pid = static_cast<long>(number());
    } else if (arg == "--tolerate-failures") {
        o.tolerate_failures = true;
    } else if (arg == "--pool-keys") {
        o.pool_keys = value();
    } else if (arg == "--threads") {
        o.threads = number();
    } else {
        usage("unknown argument " + arg);
    }
}

int cipherNid(const std::string& name) {
    if (name == "aes128")
        return NID_aes_128_cbc;
    if (name == "aes256")
        return NID_aes_256_cbc;
    if (name == "des3")
        return NID_des_ede3_cbc;
    if (name == "des")
        return NID_des_cbc;
    usage("unknown cipher " + name);
}

int digestNid(const std::string& name) {
    if (name == "sha256")
        return NID_sha256;
    if (name == "sha1")
        return NID_sha1;
    if (name == "sha512")
        return NID_sha512;
    usage("unknown digest " + name);
}

std::string httpOnly(const std::string& scheme) {
    return scheme == "http" ? "" : "only http:// URLs are supported";
}

Url targetUrl(const std::string& text) {
    const UrlParse parsed = parseUrl(text, httpOnly);
    if (!parsed.url) {
        usage("--url: " + parsed.problem);
    }
    return *parsed.url;
}

}  // namespace

Options parseOptions(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        readArgument(o, argc, argv, i);
    }
    if (o.mics.empty() == o.challenge.empty()) {
        usage("exactly one of --mic (one or more) and --challenge is needed");
    }
    if (o.requests == 0 || o.concurrency == 0 || o.pool == 0) {
        usage("-n, -c and --pool must be positive");
    }
    if (o.warmup == 0) {
        o.warmup = 2 * o.concurrency;
    }
    if (o.threads == 0) {
        o.threads = std::max(1u, std::thread::hardware_concurrency());
    }
    o.target = targetUrl(o.url);
    o.cipher_nid = cipherNid(o.cipher);
    o.digest_nid = digestNid(o.digest);
    return o;
}

}  // namespace scep::bench
