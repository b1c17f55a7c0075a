#include "ra/ca/upstream/poller.h"

#include <algorithm>

namespace scep {

namespace {

// A CA that was reachable is asked for its chain again this often: a
// renewed CA certificate (that still passes the pin) is picked up.
constexpr std::time_t kRediscoverEvery = 3600;

}  // namespace

UpstreamPoller::UpstreamPoller(UpstreamCa& ca, CertificateIssuance& issuance, Store& store,
                               const CurrentConfig& config, EventLog& log, Clock clock)
    : ca_(ca),
      issuance_(issuance),
      store_(store),
      config_(config),
      log_(log),
      clock_(std::move(clock)) {}

UpstreamPoller::~UpstreamPoller() {
    stop();
}

void UpstreamPoller::start() {
    thread_ = std::thread([this] { run(); });
}

void UpstreamPoller::stop() {
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) {
        thread_.join();
    }
}

std::chrono::milliseconds UpstreamPoller::backoff(std::chrono::milliseconds interval,
                                                  int failures) {
    const std::chrono::milliseconds cap =
        std::max(interval, std::min(interval * 16, std::chrono::milliseconds(10 * 60 * 1000)));
    std::chrono::milliseconds wait = interval;
    for (int i = 0; i < failures && wait < cap; ++i) {
        wait *= 2;
    }
    return std::min(wait, cap);
}

std::size_t UpstreamPoller::pollOnce() {
    const std::time_t now = clock_();
    const UpstreamHealth health = ca_.health();
    if (!health.reachable || now - health.last_discovery >= kRediscoverEvery) {
        ca_.refresh();
    }
    const std::vector<RequestRecord> at_ca = store_.requestsAtCa();
    if (!ca_.health().reachable) {
        ++failures_;  // each request would only wait for the same timeout
        return at_ca.size();
    }
    const auto snapshot = config_.get();
    for (const RequestRecord& record : at_ca) {
        {
            const std::lock_guard<std::mutex> lock(mutex_);
            if (stopping_) {
                break;
            }
        }
        try {
            issuance_.continueAtCa(record.id, snapshot->config, clock_());
        } catch (const std::exception& e) {
            // The store, most likely; the next round tries again.
            log_.error("cannot take a request at the upstream CA further",
                       {{"request_id", record.id}, {"error", e.what()}});
        }
    }
    failures_ = ca_.health().reachable ? 0 : failures_ + 1;
    return at_ca.size();
}

void UpstreamPoller::run() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stopping_) {
        lock.unlock();
        try {
            pollOnce();
        } catch (const std::exception& e) {
            log_.error("upstream poll round failed", {{"error", e.what()}});
        }
        const auto wait = backoff(config_.get()->config.ca.upstream.poll_interval, failures_);
        lock.lock();
        wake_.wait_for(lock, wait, [this] { return stopping_; });
    }
}

}  // namespace scep
