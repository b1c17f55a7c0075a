// Webhook for new pending requests ([admin] notify-url): POSTs JSON from a
// worker thread, retrying with exponential backoff, so a slow or dead
// receiver never delays a SCEP answer.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "ra/ops/event_log.h"
#include "ra/ops/metrics.h"

namespace scep {

class Notifier {
public:
    struct Policy {
        int attempts = 8;
        std::chrono::milliseconds first_delay{1000};
        std::chrono::milliseconds max_delay{60000};
        std::size_t queue_limit = 1000;
    };

    // Throws std::invalid_argument unless `url` is an http:// or https:// URL.
    Notifier(std::string url, EventLog& log, Metrics& metrics, Policy policy);
    Notifier(std::string url, EventLog& log, Metrics& metrics)
        : Notifier(std::move(url), log, metrics, Policy{}) {}
    ~Notifier();
    Notifier(const Notifier&) = delete;
    Notifier& operator=(const Notifier&) = delete;

    // Never blocks on the network; when the queue is full the oldest event
    // is dropped (and counted).
    void notify(nlohmann::json event);

private:
    void run();
    bool deliver(const std::string& body);

    std::string url_;
    std::string origin_;  // scheme://host[:port], scheme in lower case
    std::string path_;
    EventLog& log_;
    Metrics& metrics_;
    Policy policy_;
    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<std::string> queue_;
    bool stopping_ = false;
    std::thread worker_;
};

}  // namespace scep
