// Bounds on what unauthenticated clients cost: audit field sizes, audit
// rows per source, failed challenge attempts.
#include <doctest/doctest.h>

#include "ra/ops/abuse_limits.h"

using namespace scep;

namespace {

AuditEvent failureFrom(const std::string& peer, const std::string& reason = "badRequest: x") {
    AuditEvent event;
    event.actor = "scep";
    event.action = "PKCSReq";
    event.outcome = "failure";
    event.peer = peer;
    event.reason = reason;
    return event;
}

}  // namespace

TEST_CASE("long audit text is cut with its length and a hash, never over the bound") {
    CHECK(boundedText("short", 512) == "short");
    const std::string huge(55 * 1024, 'O');
    const std::string cut = boundedText(huge, 512);
    CHECK(cut.size() <= 512);
    CHECK(cut.rfind("OOOO", 0) == 0);
    CHECK(cut.find("truncated: 56320 bytes, sha256 ") != std::string::npos);
    CHECK(boundedText(huge + "x", 512) != cut);  // the hash tells them apart
    // A multi-byte character is never split.
    std::string utf8;
    for (int i = 0; i < 300; ++i) {
        utf8 += "\xC3\xA9";
    }
    const std::string cut_utf8 = boundedText(utf8, 100);
    const std::size_t head = cut_utf8.find("...[");
    CHECK(head % 2 == 0);
    const AuditEvent bounded = boundedEvent(failureFrom("192.0.2.1", huge));
    CHECK(bounded.reason.size() <= kMaxAuditField);
}

TEST_CASE("failures are grouped by IPv4 address and by IPv6 /64") {
    CHECK(sourceOf("192.0.2.7") == "192.0.2.7");
    CHECK(sourceOf("2001:db8:1:2:aaaa:bbbb:cccc:dddd") == "2001:db8:1:2::/64");
    CHECK(sourceOf("2001:db8:1:2::1") == sourceOf("2001:db8:1:2:ffff::9"));
    CHECK(sourceOf("::ffff:192.0.2.7") == "192.0.2.7");
    CHECK(sourceOf("not an address") == "not an address");
}

TEST_CASE("one source gets a burst of audit rows per window, then one summary") {
    FailureAudit audit({3, 1000, 60, 100});
    std::size_t written = 0;
    for (int i = 0; i < 50; ++i) {
        const auto decision = audit.admit(failureFrom("192.0.2.1"), 1000 + i % 10);
        written += decision.write ? 1 : 0;
        CHECK(decision.summaries.empty());
    }
    CHECK(written == 3);
    // Another source is not affected.
    CHECK(audit.admit(failureFrom("192.0.2.2"), 1005).write);
    // The window ends: the next failure is written and brings the summary.
    const auto later = audit.admit(failureFrom("192.0.2.1", "badRequest: last"), 1060);
    CHECK(later.write);
    REQUIRE(later.summaries.size() == 1);
    CHECK(later.summaries[0].action == "suppressed");
    CHECK(later.summaries[0].peer == "192.0.2.1");
    CHECK(later.summaries[0].reason.find("47 more failures") == 0);
}

TEST_CASE("flush reports ended windows; a shutdown flush reports all") {
    FailureAudit audit({1, 1000, 60, 100});
    audit.admit(failureFrom("192.0.2.1"), 1000);
    audit.admit(failureFrom("192.0.2.1"), 1001);
    audit.admit(failureFrom("192.0.2.2"), 1030);
    audit.admit(failureFrom("192.0.2.2"), 1031);
    CHECK(audit.flush(1059).empty());
    CHECK(audit.flush(1061).size() == 1);  // 192.0.2.1's window ended
    CHECK(audit.flush(0).size() == 1);     // shutdown: 192.0.2.2 too
    CHECK(audit.flush(0).empty());
}

TEST_CASE("many sources share one overall budget, and tracking is capped") {
    FailureAudit audit({5, 10, 60, 8});
    std::size_t written = 0;
    std::size_t summaries = 0;
    for (int i = 0; i < 100; ++i) {
        const auto decision = audit.admit(failureFrom("198.51.100." + std::to_string(i)), 1000);
        written += decision.write ? 1 : 0;
        summaries += decision.summaries.size();
    }
    CHECK(written == 10);
    // Every suppressed failure is in exactly one summary: of an evicted
    // source, or of one still tracked when flushed.
    CHECK(summaries + audit.flush(0).size() == 100 - 10);
}

TEST_CASE("failed challenges lock out the source and the identity for a while") {
    ChallengeThrottle throttle({3, 900, 100});
    const std::time_t t = 10000;
    for (int i = 0; i < 3; ++i) {
        CHECK_FALSE(throttle.refusal("192.0.2.1", "a.example.nl", t + i));
        throttle.failed("192.0.2.1", "cn-" + std::to_string(i) + ".example.nl", t + i);
    }
    // The source is locked for any identity...
    const auto refused = throttle.refusal("192.0.2.1", "other.example.nl", t + 10);
    REQUIRE(refused);
    CHECK(refused->find("from 192.0.2.1") != std::string::npos);
    CHECK(refused->find("890 s") != std::string::npos);
    // ...another source is not...
    CHECK_FALSE(throttle.refusal("192.0.2.2", "other.example.nl", t + 10));
    // ...until the lockout has passed.
    CHECK_FALSE(throttle.refusal("192.0.2.1", "other.example.nl", t + 900));

    // An identity guessed at from many sources is locked too.
    for (int i = 0; i < 3; ++i) {
        throttle.failed("203.0.113." + std::to_string(i), "victim.example.nl", t + 100);
    }
    const auto identity = throttle.refusal("203.0.113.99", "victim.example.nl", t + 101);
    REQUIRE(identity);
    CHECK(identity->find("for 'victim.example.nl'") != std::string::npos);
    // IPv6 hosts cannot escape by hopping inside their /64.
    for (int i = 0; i < 3; ++i) {
        throttle.failed("2001:db8::" + std::to_string(i + 1), "x" + std::to_string(i), t);
    }
    CHECK(throttle.refusal("2001:db8::ffff", "y", t + 1));
}

TEST_CASE("the challenge throttle forgets the oldest keys beyond its cap") {
    ChallengeThrottle throttle({2, 900, 10});
    for (int i = 0; i < 1000; ++i) {
        throttle.failed("198.51.100." + std::to_string(i % 250), "id-" + std::to_string(i), 5000);
    }
    // Still answering, still locking the latest offenders.
    throttle.failed("192.0.2.50", "z", 5000);
    throttle.failed("192.0.2.50", "z", 5000);
    CHECK(throttle.refusal("192.0.2.50", "fresh", 5001));
}
