// What one unauthenticated client may cost the RA in audit bytes and in
// challenge guesses. Pure and clock-injected, memory-bounded, thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <ctime>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "ra/store/store.h"

namespace scep {

// `text` itself when it fits in `max` bytes; otherwise its first bytes and
// "…[truncated: N bytes, sha256 0123456789abcdef]", never longer than
// `max`: enough to recognise a value and match it to another record.
std::string boundedText(const std::string& text, std::size_t max);

// Every text field of an audit event bounded (identity and reason carry
// whatever a client put in its certificates and CSRs).
AuditEvent boundedEvent(AuditEvent event);
constexpr std::size_t kMaxAuditField = 512;

// The part of an address failures are counted by: IPv4 as is, IPv6 by its
// /64 (one host can use a whole /64 at will).
std::string sourceOf(const std::string& peer);

// Decides which failure events from unauthenticated clients are written
// individually. Per source (sourceOf(peer)) and window, the first
// `per_source` failures are written; the rest are counted and reported as
// one summary event when the window is over. A global budget per window
// (`overall`) bounds many sources together. Sources tracked at once are
// capped at `max_sources`; the oldest is summarised and dropped first.
class FailureAudit {
public:
    struct Limits {
        std::size_t per_source = 20;
        std::size_t overall = 600;
        std::time_t window = 60;
        std::size_t max_sources = 4096;
    };
    FailureAudit() : FailureAudit(Limits{}) {}
    explicit FailureAudit(Limits limits) : limits_(limits) {}

    struct Decision {
        bool write = false;                 // write `event` itself
        std::vector<AuditEvent> summaries;  // write these too (windows that ended)
    };
    Decision admit(const AuditEvent& event, std::time_t now);
    // Summaries of every window that has ended by `now` (or of all, for a
    // shutdown, with `now` = 0).
    std::vector<AuditEvent> flush(std::time_t now);
    // A configuration reload: new budgets apply from the next failure on;
    // what each window has written and suppressed so far is kept.
    void setLimits(Limits limits);

private:
    struct Window {
        std::time_t start = 0;
        std::size_t written = 0;
        std::size_t suppressed = 0;
        std::string last_reason;
    };
    AuditEvent summary(const std::string& source, const Window& window, std::time_t now) const;
    void rollOverall(std::time_t now);

    Limits limits_;
    std::mutex mutex_;
    std::unordered_map<std::string, Window> sources_;
    std::time_t overall_start_ = 0;
    std::size_t overall_written_ = 0;
};

// Failed challenge attempts, per source (sourceOf) and per identity: after
// `max_failures` within `lockout`, further challenge requests from that
// source or for that identity are refused without comparing the challenge,
// until the oldest of those failures is `lockout` old. Keys tracked at once
// are capped at `max_keys` (the least recently failed are forgotten first).
class ChallengeThrottle {
public:
    struct Limits {
        std::size_t max_failures = 5;
        std::time_t lockout = 15 * 60;
        std::size_t max_keys = 16384;
    };
    ChallengeThrottle() : ChallengeThrottle(Limits{}) {}
    explicit ChallengeThrottle(Limits limits) : limits_(limits) {}

    // Why a challenge request from `peer` for `identity` (canonical) is
    // refused now, or nullopt.
    std::optional<std::string> refusal(const std::string& peer, const std::string& identity,
                                       std::time_t now);
    void failed(const std::string& peer, const std::string& identity, std::time_t now);
    // A configuration reload: failures already counted are kept and judged
    // by the new limits.
    void setLimits(Limits limits);

private:
    std::optional<std::time_t> lockedUntil(const std::string& key, std::time_t now);
    void record(const std::string& key, std::time_t now);

    Limits limits_;
    std::mutex mutex_;
    std::unordered_map<std::string, std::deque<std::time_t>> failures_;
    std::deque<std::string> order_;  // keys by first failure, for the cap
};

}  // namespace scep
