// The configuration a request is answered with: the parsed file and what is
// built from it (the manufacturer roots). Immutable once built. Requests hold
// it by shared_ptr, so a reload (ra/reload.h) never changes the rules under a
// request being answered; the next request sees the new ones.
#pragma once

#include <ctime>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "ra/auth/authenticator.h"
#include "ra/config.h"

namespace scep {

struct RuntimeConfig {
    // Loads the manufacturer-roots bundle; throws like ManufacturerRoots.
    RuntimeConfig(Config parsed, X509& ca_cert)
        : config(std::move(parsed)), authenticator(config, ca_cert) {}
    RuntimeConfig(const RuntimeConfig&) = delete;
    RuntimeConfig& operator=(const RuntimeConfig&) = delete;

    const Config config;
    const Authenticator authenticator;  // refers to `config`
};

using Clock = std::function<std::time_t()>;

// The RuntimeConfig in force. A reload replaces it as a whole and tells the
// parts that keep limits of their own (the audit budget, the challenge
// throttle) to take the new ones.
class CurrentConfig {
public:
    explicit CurrentConfig(std::shared_ptr<const RuntimeConfig> first)
        : current_(std::move(first)) {}
    CurrentConfig(const CurrentConfig&) = delete;
    CurrentConfig& operator=(const CurrentConfig&) = delete;

    std::shared_ptr<const RuntimeConfig> get() const {
        const std::lock_guard<std::mutex> lock(mutex_);
        return current_;
    }
    // Called with every configuration set from now on; register before
    // requests are served.
    void watch(std::function<void(const Config&)> apply) { watchers_.push_back(std::move(apply)); }
    void set(std::shared_ptr<const RuntimeConfig> next) {
        for (const auto& apply : watchers_) {
            apply(next->config);
        }
        const std::lock_guard<std::mutex> lock(mutex_);
        current_ = std::move(next);
    }

private:
    mutable std::mutex mutex_;
    std::shared_ptr<const RuntimeConfig> current_;
    std::vector<std::function<void(const Config&)>> watchers_;
};

}  // namespace scep
