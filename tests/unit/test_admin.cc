// Admin building blocks: tokens, MAC notation, metrics text, webhook retries.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include <httplib.h>

#include "ra/admin/api.h"
#include "ra/admin/tokens.h"
#include "ra/ops/metrics.h"
#include "ra/ops/notifier.h"
#include "ra_support.h"

using namespace scep;
using namespace testsupport;

TEST_CASE("tokens: format, one-way storage, constant-time match") {
    const NewToken token = makeToken("alice", Role::approver, "cli:root");
    CHECK(token.text.rfind("scepra_" + token.record.id + "_", 0) == 0);
    CHECK(token.text.size() == 7 + 8 + 1 + 43);
    CHECK(token.record.secret_hash.size() == 32);
    const auto parts = splitToken(token.text);
    REQUIRE(parts);
    CHECK(parts->id == token.record.id);
    // Nothing of the secret is in the record.
    CHECK(token.text.find(toHex(token.record.secret_hash)) == std::string::npos);
    CHECK(tokenMatches(token.record, parts->secret));
    std::string wrong = parts->secret;
    wrong[0] = wrong[0] == 'A' ? 'B' : 'A';
    CHECK_FALSE(tokenMatches(token.record, wrong));
    CHECK(makeToken("alice", Role::approver, "x").text != token.text);
    for (const char* bad : {"", "scepra_", "Bearer x", "scepra_ABCDEF12_", "scepra_abcdef1_xx"}) {
        CHECK_FALSE(splitToken(bad));
    }
    std::string tampered = token.text;
    tampered[10] = 'Z';  // not hex
    CHECK_FALSE(splitToken(tampered));
}

TEST_CASE("token names and roles") {
    CHECK(isValidTokenName("alice@example.nl"));
    CHECK_FALSE(isValidTokenName(""));
    CHECK_FALSE(isValidTokenName("al ice"));
    CHECK_FALSE(isValidTokenName(std::string(65, 'a')));
    CHECK(isRole("viewer"));
    CHECK_FALSE(isRole("admin"));
    CHECK(roleAllows(Role::approver, Role::viewer));
    CHECK(roleAllows(Role::approver, Role::approver));
    CHECK(roleAllows(Role::viewer, Role::viewer));
    CHECK_FALSE(roleAllows(Role::viewer, Role::approver));
    CHECK_FALSE(roleFromName(""));  // no role: allowed nothing
}

TEST_CASE("MAC addresses in every usual notation") {
    for (const char* text :
         {"001A2B3C4D5E", "00:1a:2b:3c:4d:5e", "00-1A-2B-3C-4D-5E", "001a.2b3c.4d5e"}) {
        CAPTURE(text);
        CHECK(normalizeMac(text) == std::string("00:1A:2B:3C:4D:5E"));
    }
    for (const char* bad :
         {"", "001A2B3C4D5", "001A2B3C4D5EF", "00:1A:2B:3C:4D:GG", "SEP001A2B3C4D5E"}) {
        CHECK_FALSE(normalizeMac(bad));
    }
}

TEST_CASE("metrics render as Prometheus text from counters and the store") {
    TestRa ra("[auth]\napproval = \"manual\"\n");
    const auto mic = fixtureCert("mic-cp8875");
    const auto mic_key = fixtureKey("mic-cp8875");
    const auto new_key = fixtureKey("newkey-1");
    REQUIRE(ra.enroll(*mic, *mic_key, *new_key, {"CP-8875-SEP001A2B3C4D5E", {}, {}}).rep.status ==
            PkiStatus::pending);
    Metrics metrics;
    metrics.countScep("PKIOperation", "PKCSReq", "pending", "mic");
    metrics.countScep("PKIOperation", "PKCSReq", "pending", "mic");
    metrics.countScep("GetCACaps", "", "success", "");
    metrics.observeIssuance(0.02);
    metrics.observeIssuance(3);
    metrics.countAuthFailure();
    metrics.countWebhook("retried");
    const std::string text = metrics.render(*ra.store, ra.now, 1234);
    CAPTURE(text);
    CHECK(text.find("scep_requests_total{operation=\"PKIOperation\",message_type=\"PKCSReq\","
                    "outcome=\"pending\",method=\"mic\"} 2\n") != std::string::npos);
    CHECK(text.find("method=\"none\"} 1\n") != std::string::npos);
    CHECK(text.find("scep_issuance_duration_seconds_bucket{le=\"0.025\"} 1\n") !=
          std::string::npos);
    CHECK(text.find("scep_issuance_duration_seconds_bucket{le=\"5\"} 2\n") != std::string::npos);
    CHECK(text.find("scep_issuance_duration_seconds_bucket{le=\"+Inf\"} 2\n") != std::string::npos);
    CHECK(text.find("scep_issuance_duration_seconds_count 2\n") != std::string::npos);
    CHECK(text.find("scep_pending_requests 1\n") != std::string::npos);
    CHECK(text.find("scep_crl_next_update_timestamp_seconds 1234\n") != std::string::npos);
    CHECK(text.find("scep_admin_auth_failures_total 1\n") != std::string::npos);
    CHECK(text.find("scep_webhook_deliveries_total{outcome=\"retried\"} 1\n") != std::string::npos);
    CHECK(text.find("scep_webhook_deliveries_total{outcome=\"dropped\"} 0\n") != std::string::npos);
}

TEST_CASE("the webhook retries with backoff until the receiver accepts, off the caller's thread") {
    httplib::Server receiver;
    std::atomic<int> attempts{0};
    std::string body;
    std::mutex mutex;
    receiver.Post("/hook", [&](const httplib::Request& req, httplib::Response& res) {
        const int n = ++attempts;
        if (n <= 2) {
            res.status = 500;
            return;
        }
        const std::lock_guard<std::mutex> lock(mutex);
        body = req.body;
    });
    const int port = receiver.bind_to_any_port("127.0.0.1");
    std::thread serving([&] { receiver.listen_after_bind(); });

    TestRa ra;  // only its store, for rendering
    EventLog log;
    Metrics metrics;
    {
        Notifier::Policy policy;
        policy.first_delay = std::chrono::milliseconds(20);
        Notifier notifier("http://127.0.0.1:" + std::to_string(port) + "/hook", log, metrics,
                          policy);
        notifier.notify({{"event", "request.pending"}, {"request", {{"id", 7}}}});
        // Waiting for behaviour, bounded only to fail instead of hanging.
        for (int i = 0; i < 500 && attempts < 3; ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    }
    receiver.stop();
    serving.join();
    CHECK(attempts == 3);
    const std::lock_guard<std::mutex> lock(mutex);
    CHECK(body.find("\"event\":\"request.pending\"") != std::string::npos);
    const std::string text = metrics.render(*ra.store, 0, 0);
    CHECK(text.find("scep_webhook_deliveries_total{outcome=\"retried\"} 2\n") != std::string::npos);
    CHECK(text.find("scep_webhook_deliveries_total{outcome=\"delivered\"} 1\n") !=
          std::string::npos);
}

TEST_CASE("a webhook that never succeeds is dropped after its attempts") {
    TestRa ra;
    EventLog log;
    Metrics metrics;
    {
        Notifier::Policy policy;
        policy.attempts = 3;
        policy.first_delay = std::chrono::milliseconds(1);
        // Nothing listens on port 1 of the loopback: connection refused.
        Notifier notifier("http://127.0.0.1:1/hook", log, metrics, policy);
        notifier.notify({{"event", "x"}});
        for (int i = 0; i < 500; ++i) {
            if (metrics.render(*ra.store, 0, 0).find("outcome=\"dropped\"} 1") !=
                std::string::npos) {
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    }
    const std::string text = metrics.render(*ra.store, 0, 0);
    CHECK(text.find("scep_webhook_deliveries_total{outcome=\"retried\"} 2\n") != std::string::npos);
    CHECK(text.find("scep_webhook_deliveries_total{outcome=\"dropped\"} 1\n") != std::string::npos);
}

TEST_CASE("requests show what they renew and any identity clash; clashes are counted") {
    RequestRecord r;
    r.details = R"({"sans":[],"renews":"2321EC","identity_clash":"CN 'x' holds certificate 5AD"})";
    const auto json = requestToJson(r);
    CHECK(json["renews"] == "2321EC");
    CHECK(json["identity_clash"] == "CN 'x' holds certificate 5AD");
    r.details = R"({"sans":[]})";
    CHECK(requestToJson(r)["identity_clash"] == "");

    TestRa ra;
    Metrics metrics;
    metrics.countIdentityClash("mic-over-other");
    metrics.countIdentityClash("mic-over-other");
    const std::string text = metrics.render(*ra.store, 0, 0);
    CHECK(text.find("scep_identity_clashes_total{kind=\"mic-over-other\"} 2\n") !=
          std::string::npos);
    CHECK(text.find("scep_identity_clashes_total{kind=\"challenge-for-mic-name\"} 0\n") !=
          std::string::npos);
}

TEST_CASE("roles and principal kinds: enums with the names JSON and audit text use") {
    CHECK(std::string(roleName(Role::viewer)) == "viewer");
    CHECK(std::string(roleName(Role::approver)) == "approver");
    for (Role role : {Role::viewer, Role::approver}) {
        CHECK(roleFromName(roleName(role)) == role);
    }
    for (const char* bad : {"", "Viewer", "admin", "approver "}) {
        CAPTURE(bad);
        CHECK_FALSE(roleFromName(bad));
        CHECK_FALSE(isRole(bad));
    }
    CHECK(makeToken("bob", Role::viewer, "x").record.role == "viewer");  // what the store checks
    CHECK(std::string(principalKindName(PrincipalKind::token)) == "token");
    CHECK(std::string(principalKindName(PrincipalKind::client_certificate)) ==
          "client-certificate");
}
