#include "ra/ops/notifier.h"

#include <stdexcept>

#include <httplib.h>

#include "common/url.h"

namespace scep {

Notifier::Notifier(std::string url, EventLog& log, Metrics& metrics, Policy policy)
    : url_(std::move(url)), log_(log), metrics_(metrics), policy_(policy) {
    const UrlParse parsed = parseUrl(url_, httpOrHttps);
    if (!parsed.url) {
        throw std::invalid_argument("notify-url '" + url_ + "' " + parsed.problem);
    }
    origin_ = parsed.url->origin();
    path_ = parsed.url->target();
    worker_ = std::thread([this] { run(); });
}

Notifier::~Notifier() {
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    worker_.join();
}

void Notifier::notify(nlohmann::json event) {
    std::string body = event.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        if (queue_.size() >= policy_.queue_limit) {
            queue_.pop_front();
            metrics_.countWebhook("dropped");
            log_.warn("webhook queue full; oldest event dropped", {{"url", url_}});
        }
        queue_.push_back(std::move(body));
    }
    wake_.notify_one();
}

bool Notifier::deliver(const std::string& body) {
    httplib::Client client(origin_);
    client.set_connection_timeout(std::chrono::seconds(5));
    client.set_read_timeout(std::chrono::seconds(10));
    client.set_write_timeout(std::chrono::seconds(10));
    if (origin_.rfind("https://", 0) == 0) {
        client.set_ca_cert_path("/etc/ssl/certs/ca-certificates.crt");
        client.enable_server_certificate_verification(true);
    }
    const auto result = client.Post(path_.c_str(), body, "application/json");
    return result && result->status >= 200 && result->status < 300;
}

void Notifier::run() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (true) {
        wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (stopping_) {
            return;
        }
        const std::string body = queue_.front();
        queue_.pop_front();
        auto delay = policy_.first_delay;
        for (int attempt = 1; attempt <= policy_.attempts; ++attempt) {
            lock.unlock();
            const bool delivered = deliver(body);
            lock.lock();
            if (delivered) {
                metrics_.countWebhook("delivered");
                break;
            }
            if (attempt == policy_.attempts) {
                metrics_.countWebhook("dropped");
                log_.warn("webhook gave up", {{"url", url_}, {"attempts", attempt}});
                break;
            }
            metrics_.countWebhook("retried");
            log_.warn("webhook failed; retrying",
                      {{"url", url_}, {"attempt", attempt}, {"retry_in_ms", delay.count()}});
            if (wake_.wait_for(lock, delay, [this] { return stopping_; })) {
                return;
            }
            delay = std::min(delay * 2, policy_.max_delay);
        }
    }
}

}  // namespace scep
