#include "ra/ops/abuse_limits.h"
#include "ra/ops/audit_vocabulary.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

#include <openssl/evp.h>

#include "common/fingerprint.h"

namespace scep {

namespace {

std::string sha256Prefix(const std::string& text) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EVP_Digest(text.data(), text.size(), digest, &length, EVP_sha256(), nullptr);
    return toHex(Bytes(digest, digest + 8));
}

std::string timeText(std::time_t when) {
    struct tm parts {};
    gmtime_r(&when, &parts);
    char text[32];
    std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &parts);
    return text;
}

}  // namespace

std::string boundedText(const std::string& text, std::size_t max) {
    if (text.size() <= max) {
        return text;
    }
    const std::string suffix = "...[truncated: " + std::to_string(text.size()) + " bytes, sha256 " +
                               sha256Prefix(text) + "]";
    if (suffix.size() >= max) {
        return suffix.substr(0, max);
    }
    std::size_t keep = max - suffix.size();
    // Never end inside a UTF-8 sequence.
    while (keep > 0 && (static_cast<unsigned char>(text[keep]) & 0xC0) == 0x80) {
        --keep;
    }
    return text.substr(0, keep) + suffix;
}

AuditEvent boundedEvent(AuditEvent event) {
    for (std::string* field :
         {&event.actor, &event.action, &event.outcome, &event.method, &event.identity,
          &event.reason, &event.serial, &event.peer, &event.transaction_id}) {
        *field = boundedText(*field, kMaxAuditField);
    }
    return event;
}

std::string sourceOf(const std::string& peer) {
    unsigned char address[16];
    if (inet_pton(AF_INET6, peer.c_str(), address) != 1) {
        return peer;
    }
    static const unsigned char kMappedV4[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    char text[INET6_ADDRSTRLEN] = {};
    if (std::memcmp(address, kMappedV4, sizeof(kMappedV4)) == 0) {
        inet_ntop(AF_INET, address + 12, text, sizeof(text));
        return text;
    }
    std::memset(address + 8, 0, 8);
    inet_ntop(AF_INET6, address, text, sizeof(text));
    return std::string(text) + "/64";
}

// ---- FailureAudit ----

AuditEvent FailureAudit::summary(const std::string& source, const Window& window,
                                 std::time_t now) const {
    AuditEvent event;
    event.at = now;
    event.actor = "scep";
    event.action = auditActionName(AuditAction::suppressed);
    event.outcome = outcomeName(Outcome::failure);
    event.peer = source;
    event.reason =
        std::to_string(window.suppressed) + " more failures from " + source + " between " +
        timeText(window.start) + " and " + timeText(window.start + limits_.window) +
        " were not recorded one by one (at most " + std::to_string(limits_.per_source) + " per " +
        std::to_string(limits_.window) + " s); the last: " + window.last_reason;
    return boundedEvent(std::move(event));
}

void FailureAudit::rollOverall(std::time_t now) {
    if (now - overall_start_ >= limits_.window) {
        overall_start_ = now;
        overall_written_ = 0;
    }
}

FailureAudit::Decision FailureAudit::admit(const AuditEvent& event, std::time_t now) {
    const std::lock_guard<std::mutex> lock(mutex_);
    rollOverall(now);
    Decision decision;
    const std::string source = sourceOf(event.peer);
    auto it = sources_.find(source);
    if (it != sources_.end() && now - it->second.start >= limits_.window) {
        if (it->second.suppressed > 0) {
            decision.summaries.push_back(summary(source, it->second, now));
        }
        sources_.erase(it);
        it = sources_.end();
    }
    if (it == sources_.end()) {
        if (sources_.size() >= limits_.max_sources) {
            const auto oldest = std::min_element(
                sources_.begin(), sources_.end(),
                [](const auto& a, const auto& b) { return a.second.start < b.second.start; });
            if (oldest->second.suppressed > 0) {
                decision.summaries.push_back(summary(oldest->first, oldest->second, now));
            }
            sources_.erase(oldest);
        }
        it = sources_.emplace(source, Window{now, 0, 0, {}}).first;
    }
    Window& window = it->second;
    if (window.written < limits_.per_source && overall_written_ < limits_.overall) {
        ++window.written;
        ++overall_written_;
        decision.write = true;
    } else {
        ++window.suppressed;
        window.last_reason = boundedText(event.action + ": " + event.reason, 200);
    }
    return decision;
}

std::vector<AuditEvent> FailureAudit::flush(std::time_t now) {
    const std::lock_guard<std::mutex> lock(mutex_);
    std::vector<AuditEvent> summaries;
    for (auto it = sources_.begin(); it != sources_.end();) {
        const bool ended = now == 0 || now - it->second.start >= limits_.window;
        if (!ended) {
            ++it;
            continue;
        }
        if (it->second.suppressed > 0) {
            summaries.push_back(
                summary(it->first, it->second, now == 0 ? std::time(nullptr) : now));
        }
        it = sources_.erase(it);
    }
    return summaries;
}

void FailureAudit::setLimits(Limits limits) {
    const std::lock_guard<std::mutex> lock(mutex_);
    limits_ = limits;
}

// ---- ChallengeThrottle ----

std::optional<std::time_t> ChallengeThrottle::lockedUntil(const std::string& key, std::time_t now) {
    const auto it = failures_.find(key);
    if (it == failures_.end()) {
        return std::nullopt;
    }
    auto& times = it->second;
    while (!times.empty() && now - times.front() >= limits_.lockout) {
        times.pop_front();
    }
    if (times.size() < limits_.max_failures) {
        return std::nullopt;
    }
    return times.front() + limits_.lockout;
}

std::optional<std::string> ChallengeThrottle::refusal(const std::string& peer,
                                                      const std::string& identity,
                                                      std::time_t now) {
    const std::lock_guard<std::mutex> lock(mutex_);
    const std::string source = sourceOf(peer);
    for (const auto& [key, what] :
         {std::pair<std::string, std::string>{"source " + source, "from " + source},
          {"identity " + identity, "for '" + identity + "'"}}) {
        if (const auto until = lockedUntil(key, now)) {
            return "too many failed challenge attempts " + what +
                   ": challenge requests are "
                   "refused for " +
                   std::to_string(*until - now) + " s more";
        }
    }
    return std::nullopt;
}

void ChallengeThrottle::record(const std::string& key, std::time_t now) {
    auto [it, inserted] = failures_.try_emplace(key);
    it->second.push_back(now);
    while (it->second.size() > limits_.max_failures) {
        it->second.pop_front();
    }
    if (!inserted) {
        return;
    }
    order_.push_back(key);
    if (failures_.size() <= limits_.max_keys) {
        return;
    }
    // Forget expired keys first; then, if still over the cap, the oldest.
    for (auto entry = failures_.begin(); entry != failures_.end();) {
        const bool expired = now - entry->second.back() >= limits_.lockout;
        entry = expired ? failures_.erase(entry) : std::next(entry);
    }
    order_.erase(std::remove_if(order_.begin(), order_.end(),
                                [this](const std::string& k) { return failures_.count(k) == 0; }),
                 order_.end());
    while (failures_.size() > limits_.max_keys && !order_.empty()) {
        failures_.erase(order_.front());
        order_.pop_front();
    }
}

void ChallengeThrottle::failed(const std::string& peer, const std::string& identity,
                               std::time_t now) {
    const std::lock_guard<std::mutex> lock(mutex_);
    record("source " + sourceOf(peer), now);
    record("identity " + identity, now);
}

void ChallengeThrottle::setLimits(Limits limits) {
    const std::lock_guard<std::mutex> lock(mutex_);
    limits_ = limits;
}

}  // namespace scep
