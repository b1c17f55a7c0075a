// scep_load's client: the requests built before the timed window, the
// window itself on keep-alive connections, and the checks on every reply.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "bench/scep/load_options.h"
#include "ra/crypto.h"

namespace scep::bench {

using Clock = std::chrono::steady_clock;

double secondsBetween(Clock::time_point from, Clock::time_point to);

struct Signer {
    X509Ptr cert;
    EvpPkeyPtr key_owned;  // challenge mode: the pool key's own cert
    EVP_PKEY* key = nullptr;
};

struct PoolEntry {
    EvpPkeyPtr key;
    std::size_t signer = 0;  // index into signers
};

struct Job {
    std::size_t pool = 0;
    std::string common_name;
    std::string transaction_id;
    Bytes nonce;
    Bytes message;
    // filled by the run
    int http_status = 0;
    std::string http_error;
    std::string body;
    double latency_ms = 0;
};

// Everything the timed window sends, and how long building it took.
struct Requests {
    std::vector<Signer> signers;
    std::vector<PoolEntry> pool;
    std::vector<Job> jobs;        // the warm-up ones first
    bool keys_generated = false;  // false: read from --pool-keys
    double keys_seconds = 0;
    double messages_seconds = 0;
};

struct ProcCpu {
    double user = 0;  // seconds
    double system = 0;
    double total() const { return user + system; }
};

struct CpuTimes {
    ProcCpu server;
    ProcCpu upstream;  // --upstream-pid
    double client = 0;
};

struct Window {
    CpuTimes before;
    CpuTimes after;
    double wall_seconds = 0;
};

// Per job: why its reply is not a checked SUCCESS ("" when it is), and the
// serial of the certificate it got.
struct Replies {
    std::size_t ok = 0;
    std::vector<std::string> failures;
    std::vector<std::string> serials;
};

// GetCACert: the recipient of requests and signer of replies.
X509Ptr fetchRecipient(const Url& url);
// The key pool, its signers and every pkiMessage, fully built (not timed).
Requests prepareRequests(const Options& opt, X509& ra_cert);
// Warm-up, then the timed window: fills each job's reply and latency.
Window runLoad(const Options& opt, std::vector<Job>& jobs);
// Checks every reply, warm-up included (not timed).
Replies checkReplies(const Options& opt, const Requests& requests, X509& ra_cert);

}  // namespace scep::bench
