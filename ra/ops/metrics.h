// Counters the RA keeps in memory for Prometheus (GET /metrics on the admin
// listener); gauges are read from the store at scrape time. Label values
// come from fixed vocabularies, never from requests.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <ctime>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

#include "ra/ops/audit_vocabulary.h"
#include "ra/store/store.h"

namespace scep {

class Metrics {
public:
    void countScep(const std::string& operation, const std::string& message_type,
                   const std::string& outcome, const std::string& method);
    void countScep(const std::string& operation, const std::string& message_type, Outcome outcome,
                   const std::string& method) {
        countScep(operation, message_type, outcomeName(outcome), method);
    }
    void observeIssuance(double seconds);
    void countAuthFailure() { auth_failures_++; }
    void countWebhook(const std::string& outcome);
    // MessageOutcome::clash: "challenge-for-mic-name" | "mic-over-other".
    void countIdentityClash(const std::string& kind);
    // A configuration reload: "success" | "failure".
    void countConfigReload(const std::string& outcome);

    // Prometheus text exposition format 0.0.4.
    std::string render(Store& store, std::time_t now, std::int64_t crl_next_update) const;

private:
    static constexpr std::array<double, 10> kBuckets = {0.005, 0.01, 0.025, 0.05, 0.1,
                                                        0.25,  0.5,  1,     2.5,  5};
    mutable std::mutex mutex_;
    std::map<std::tuple<std::string, std::string, std::string, std::string>, std::uint64_t> scep_;
    std::map<std::string, std::uint64_t> webhook_;
    std::map<std::string, std::uint64_t> clashes_;
    std::map<std::string, std::uint64_t> reloads_;
    std::array<std::uint64_t, kBuckets.size()> bucket_counts_{};
    std::uint64_t issuance_count_ = 0;
    double issuance_sum_ = 0;
    std::atomic<std::uint64_t> auth_failures_{0};
};

}  // namespace scep
