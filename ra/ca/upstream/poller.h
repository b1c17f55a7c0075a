// The background half of forwarding to an upstream CA: every poll-interval
// each request at the CA is taken a step further (sent again while its
// forwarding is unacknowledged, CertPoll while the CA says PENDING, given up
// after poll-timeout), and the CA itself is asked again while it cannot be
// reached (with backoff) and hourly otherwise. Requests survive restarts in
// the store, so a restarted poller picks up where the last one stopped.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <ctime>
#include <mutex>
#include <thread>

#include "ra/ca/issuance.h"
#include "ra/ca/upstream/upstream_ca.h"
#include "ra/ops/event_log.h"
#include "ra/runtime_config.h"
#include "ra/store/store.h"

namespace scep {

class UpstreamPoller {
public:
    UpstreamPoller(UpstreamCa& ca, CertificateIssuance& issuance, Store& store,
                   const CurrentConfig& config, EventLog& log, Clock clock);
    ~UpstreamPoller();
    UpstreamPoller(const UpstreamPoller&) = delete;
    UpstreamPoller& operator=(const UpstreamPoller&) = delete;

    void start();
    void stop();  // waits for the round in progress (each exchange is bounded by [ca] timeout)

    // One round: what the thread does each time it wakes. Returns how many
    // requests were at the CA.
    std::size_t pollOnce();

    // How long the thread sleeps after a round: poll-interval, doubled after
    // each round the CA could not be reached, up to 16 times it (at most
    // 10 minutes, never less than poll-interval).
    static std::chrono::milliseconds backoff(std::chrono::milliseconds interval, int failures);

private:
    void run();

    UpstreamCa& ca_;
    CertificateIssuance& issuance_;
    Store& store_;
    const CurrentConfig& config_;
    EventLog& log_;
    Clock clock_;
    std::mutex mutex_;
    std::condition_variable wake_;
    bool stopping_ = false;
    int failures_ = 0;  // rounds in a row the CA could not be reached
    std::thread thread_;
};

}  // namespace scep
