// Requests at an upstream CA: recorded before they are sent (forwarding),
// acknowledged (pending there), decided, and found again by the poller.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "ra/store/store.h"
#include "store_support.h"
#include "support.h"

using namespace scep;
using namespace storetest;
using testsupport::TempDir;

namespace {

CaProgress forwarding(const std::string& reference) {
    CaProgress ca;
    ca.state = CaState::forwarding;
    ca.reference = reference;
    ca.csr = bytes({0x30, 0x00, 0x01});
    ca.since = 1000;
    return ca;
}

RequestRecord forwardedRequest(Store& store, const std::string& transaction_id,
                               const std::string& reference) {
    RequestRecord r = sampleRequest(transaction_id);
    r.ca = forwarding(reference);
    store.addPendingRequest(r, event("forward", "pending"));
    return r;
}

}  // namespace

TEST_CASE("CA state names round-trip") {
    for (const CaState state : {CaState::none, CaState::forwarding, CaState::pending}) {
        CHECK(caStateFromName(caStateName(state)) == state);
    }
    CHECK_FALSE(caStateFromName("sent"));
}

TEST_CASE("store: a request forwarded at once keeps its reference, CSR and start") {
    TempDir dir;
    auto store = openSqliteStore(dir.file("ra.db"));
    const RequestRecord r = forwardedRequest(*store, "tx-1", "REF-1");
    const auto back = store->findRequest(r.id);
    REQUIRE(back);
    CHECK(back->status == RequestStatus::pending);
    CHECK(back->ca.state == CaState::forwarding);
    CHECK(back->ca.reference == "REF-1");
    CHECK(back->ca.csr == bytes({0x30, 0x00, 0x01}));
    CHECK(back->ca.since == 1000);
    CHECK(back->ca.last_error.empty());
    CHECK_FALSE(back->ca.fail_info);
    // A request for an administrator is not at the CA.
    RequestRecord plain = sampleRequest("tx-2");
    store->addPendingRequest(plain, event("enroll", "pending"));
    CHECK(store->findRequest(plain.id)->ca.state == CaState::none);
    CHECK(store->findRequest(plain.id)->ca.reference.empty());
    const auto at_ca = store->requestsAtCa();
    REQUIRE(at_ca.size() == 1);
    CHECK(at_ca[0].id == r.id);
}

TEST_CASE("store: one reference is never given to two requests") {
    TempDir dir;
    auto store = openSqliteStore(dir.file("ra.db"));
    forwardedRequest(*store, "tx-1", "REF-1");
    RequestRecord second = sampleRequest("tx-2");
    second.ca = forwarding("REF-1");
    CHECK_THROWS_AS(store->addPendingRequest(second, event("forward", "pending")), StoreError);
    CHECK_FALSE(store->findRequestByTransaction("tx-2"));
    CHECK(auditCount(*store) == 1);
}

TEST_CASE("store: acknowledged by the CA drops the CSR; errors are noted, audited on demand") {
    TempDir dir;
    auto store = openSqliteStore(dir.file("ra.db"));
    const RequestRecord r = forwardedRequest(*store, "tx-1", "REF-1");

    CHECK(store->noteCaError(r.id, "connection refused", nullptr));
    CHECK(store->findRequest(r.id)->ca.last_error == "connection refused");
    CHECK(auditCount(*store) == 1);
    AuditEvent down = event("upstream", "failure");
    CHECK(store->noteCaError(r.id, "timed out", &down));
    CHECK(auditCount(*store) == 2);
    CHECK(store->listAudit(1, 0)[0].transaction_id == "tx-1");

    CHECK(store->acknowledgedByCa(r.id, event("forward", "pending")));
    auto back = store->findRequest(r.id);
    CHECK(back->ca.state == CaState::pending);
    CHECK(back->ca.csr.empty());  // it may have held a challengePassword
    CHECK(back->ca.last_error.empty());
    CHECK(back->ca.reference == "REF-1");
    // Only once, and only from forwarding.
    CHECK_FALSE(store->acknowledgedByCa(r.id, event("forward", "pending")));
    CHECK(auditCount(*store) == 3);
}

TEST_CASE("store: the CA's answer ends the request's stay there") {
    TempDir dir;
    auto store = openSqliteStore(dir.file("ra.db"));
    const RequestRecord r = forwardedRequest(*store, "tx-1", "REF-1");
    SUBCASE("issued") {
        CHECK(store->issuePending(r.id, sampleCertificate("0A"), event("issue")));
        const auto back = store->findRequest(r.id);
        CHECK(back->status == RequestStatus::issued);
        CHECK(back->ca.state == CaState::none);
        CHECK(back->ca.csr.empty());
        CHECK(back->ca.reference == "REF-1");  // kept: what the CA knows it by
    }
    SUBCASE("refused, with the CA's failInfo") {
        CHECK(store->rejectPending(r.id, "upstream CA: badRequest", event("reject"), 2));
        const auto back = store->findRequest(r.id);
        CHECK(back->status == RequestStatus::rejected);
        CHECK(back->ca.state == CaState::none);
        CHECK(back->ca.csr.empty());
        REQUIRE(back->ca.fail_info);
        CHECK(*back->ca.fail_info == 2);
        CHECK_FALSE(store->noteCaError(r.id, "late", nullptr));
    }
    CHECK(store->requestsAtCa().empty());
}

TEST_CASE("store: an approved request goes to the CA once") {
    TempDir dir;
    auto store = openSqliteStore(dir.file("ra.db"));
    RequestRecord r = sampleRequest("tx-1");
    store->addPendingRequest(r, event("enroll", "pending"));
    CHECK(store->forwardPending(r.id, forwarding("REF-9"), event("approve")));
    CHECK_FALSE(store->forwardPending(r.id, forwarding("REF-10"), event("approve")));
    const auto back = store->findRequest(r.id);
    CHECK(back->ca.state == CaState::forwarding);
    CHECK(back->ca.reference == "REF-9");
    CHECK(auditCount(*store) == 2);
    CHECK(store->rejectPending(r.id, "no", event("reject")));
    CHECK_FALSE(store->forwardPending(r.id, forwarding("REF-11"), event("approve")));
}

TEST_CASE("store: the schema refuses a decided request at the CA, whoever writes") {
    TempDir dir;
    const std::string path = dir.file("ra.db");
    auto store = openSqliteStore(path);
    const RequestRecord r = forwardedRequest(*store, "tx-1", "REF-1");
    RawDb raw(path);
    CHECK(raw.exec("UPDATE requests SET status = 'rejected' WHERE id = " + std::to_string(r.id))
              .find("only a pending request can be at the CA") != std::string::npos);
    CHECK(raw.exec("UPDATE requests SET ca_state = 'sent' WHERE id = " + std::to_string(r.id)) !=
          "");
    CHECK(store->findRequest(r.id)->ca.state == CaState::forwarding);
}

TEST_CASE("store v4: a v3 database is migrated; its requests wait for no CA") {
    TempDir dir;
    const std::string path = dir.file("ra.db");
    createV2Database(path);
    {
        RawDb raw(path);
        REQUIRE(raw.exec("INSERT INTO requests (transaction_id, message_type, method, identity, "
                         "common_name, csr, public_key_id, signer, status, reason, peer, "
                         "details, created_at, updated_at) VALUES ('old', 'PKCSReq', 'mic', 'i', "
                         "'cn', x'30', x'01', x'30', 'pending', '', '', '{}', 1, 1)") == "");
    }
    auto store = openSqliteStore(path);
    RawDb raw(path);
    CHECK(raw.scalar("PRAGMA user_version") == "5");
    CHECK(raw.scalar("PRAGMA integrity_check") == "ok");
    const auto old = store->findRequestByTransaction("old");
    REQUIRE(old);
    CHECK(old->ca.state == CaState::none);
    CHECK(store->requestsAtCa().empty());
    CHECK(store->forwardPending(old->id, forwarding("REF-OLD"), event("approve")));
}
