// The store's rows: requests, certificates and audit events round-trip, and
// the compare-and-set writes (issue, reject, revoke) write once.
#include <doctest/doctest.h>

#include <sqlite3.h>

#include <algorithm>
#include <string>
#include <vector>

#include "ra/store/sqlite/db.h"
#include "ra/store/store.h"
#include "store_support.h"
#include "support.h"

using namespace scep;
using namespace storetest;
using testsupport::TempDir;

TEST_CASE("request status names round-trip") {
    for (auto status : {RequestStatus::pending, RequestStatus::issued, RequestStatus::rejected}) {
        const auto parsed = requestStatusFromName(requestStatusName(status));
        REQUIRE(parsed);
        CHECK(*parsed == status);
    }
    CHECK(std::string(requestStatusName(RequestStatus::issued)) == "issued");
    CHECK_FALSE(requestStatusFromName("Pending"));
    CHECK_FALSE(requestStatusFromName(""));
}

TEST_CASE("store: pending request round-trips every field, binary blobs included") {
    TempDir dir;
    auto store = openSqliteStore(dir.file("ra.db"));

    RequestRecord r = sampleRequest("tx-1");
    r.status = RequestStatus::issued;  // the store decides: addPendingRequest means pending
    r.cert_serial = "BOGUS";
    store->addPendingRequest(r, event("enroll", "pending"));
    CHECK(r.id > 0);
    CHECK(r.status == RequestStatus::pending);
    CHECK(r.cert_serial.empty());
    CHECK(r.created_at > 0);  // set when 0 (value is "now": not asserted)
    CHECK(r.updated_at == r.created_at);

    const auto byId = store->findRequest(r.id);
    REQUIRE(byId);
    checkSameRequest(*byId, r);
    REQUIRE(byId->csr.size() == 8);
    CHECK(byId->csr[2] == 0x00);  // embedded NULs survive
    CHECK(byId->csr[6] == 0xff);

    const auto byTx = store->findRequestByTransaction("tx-1");
    REQUIRE(byTx);
    checkSameRequest(*byTx, r);
    CHECK_FALSE(store->findRequestByTransaction("tx-unknown"));
    CHECK_FALSE(store->findRequest(r.id + 1000));

    SUBCASE("explicit timestamps and empty blobs/strings are kept as given") {
        RequestRecord e;
        e.transaction_id = "tx-empty";
        e.created_at = 1000;
        e.updated_at = 2000;
        store->addPendingRequest(e, event("enroll", "pending"));
        const auto back = store->findRequest(e.id);
        REQUIRE(back);
        checkSameRequest(*back, e);
        CHECK(back->csr.empty());
        CHECK(back->signer.empty());
        CHECK(back->created_at == 1000);
        CHECK(back->updated_at == 2000);
    }

    SUBCASE("the audit event links to the request") {
        const auto events = store->listAudit(10, 0);
        REQUIRE(events.size() == 1);
        CHECK(events[0].action == "enroll");
        CHECK(events[0].outcome == "pending");
        REQUIRE(events[0].request_id);
        CHECK(*events[0].request_id == r.id);
        CHECK(events[0].transaction_id == "tx-1");
        CHECK(events[0].at > 0);
    }
}

TEST_CASE("store: issued request and certificate round-trip in one call") {
    TempDir dir;
    auto store = openSqliteStore(dir.file("ra.db"));

    RequestRecord r = sampleRequest("tx-auto");
    CertificateRecord c = sampleCertificate("0A1B2C");
    c.request_id = 999;  // ignored: the store links it to the new request
    store->addIssuedRequest(r, c, event("enroll"));
    CHECK(r.status == RequestStatus::issued);
    CHECK(r.cert_serial == "0A1B2C");

    const auto back = store->findRequest(r.id);
    REQUIRE(back);
    checkSameRequest(*back, r);

    const auto cert = store->findCertificate("0A1B2C");
    REQUIRE(cert);
    CertificateRecord expected = c;
    expected.request_id = r.id;
    checkSameCertificate(*cert, expected);
    CHECK(cert->der[4] == 0x00);
    CHECK_FALSE(store->findCertificate("0a1b2c"));  // serials are exact text

    const auto all = store->listCertificates();
    REQUIRE(all.size() == 1);
    checkSameCertificate(all[0], expected);

    const auto events = store->listAudit(10, 0);
    REQUIRE(events.size() == 1);
    CHECK(events[0].serial == "0A1B2C");
    REQUIRE(events[0].request_id);
    CHECK(*events[0].request_id == r.id);
}

TEST_CASE("store: duplicate transactionID throws DuplicateTransaction and writes nothing") {
    TempDir dir;
    auto store = openSqliteStore(dir.file("ra.db"));
    RequestRecord first = sampleRequest("tx-dup");
    store->addPendingRequest(first, event("enroll", "pending"));

    SUBCASE("addPendingRequest") {
        RequestRecord again = sampleRequest("tx-dup", "OTHER");
        CHECK_THROWS_AS(store->addPendingRequest(again, event("enroll", "pending")),
                        DuplicateTransaction);
        CHECK(again.id == 0);  // not touched on failure
        try {
            store->addPendingRequest(again, event("enroll", "pending"));
            FAIL("no exception");
        } catch (const DuplicateTransaction& e) {
            CHECK(std::string(e.what()).find("addPendingRequest") != std::string::npos);
        }
    }
    SUBCASE("addIssuedRequest") {
        RequestRecord again = sampleRequest("tx-dup", "OTHER");
        CHECK_THROWS_AS(store->addIssuedRequest(again, sampleCertificate("FF01"), event("enroll")),
                        DuplicateTransaction);
        CHECK_FALSE(store->findCertificate("FF01"));
    }
    // DuplicateTransaction is a StoreError, so generic handlers catch it too.
    RequestRecord third = sampleRequest("tx-dup");
    CHECK_THROWS_AS(store->addPendingRequest(third, event("enroll")), StoreError);

    CHECK(store->listRequests(std::nullopt).size() == 1);
    CHECK(auditCount(*store) == 1);
    const auto kept = store->findRequestByTransaction("tx-dup");
    REQUIRE(kept);
    CHECK(kept->common_name == "SEP001");

    // The connection is usable afterwards (the failed transaction is gone).
    RequestRecord next = sampleRequest("tx-next");
    store->addPendingRequest(next, event("enroll", "pending"));
    CHECK(store->listRequests(std::nullopt).size() == 2);
}

TEST_CASE("store: a clashing certificate serial is a StoreError and rolls back the request") {
    TempDir dir;
    auto store = openSqliteStore(dir.file("ra.db"));
    RequestRecord a = sampleRequest("tx-a");
    store->addIssuedRequest(a, sampleCertificate("AA"), event("enroll"));

    RequestRecord b = sampleRequest("tx-b");
    bool duplicate_transaction = false;
    std::string message;
    try {
        store->addIssuedRequest(b, sampleCertificate("AA"), event("enroll"));
    } catch (const DuplicateTransaction&) {
        duplicate_transaction = true;
    } catch (const StoreError& e) {
        message = e.what();
    }
    CHECK_FALSE(duplicate_transaction);
    CHECK(message.find("addIssuedRequest") != std::string::npos);
    CHECK(message.find("certificates.serial") != std::string::npos);
    CHECK_FALSE(store->findRequestByTransaction("tx-b"));
    CHECK(store->listCertificates().size() == 1);
    CHECK(auditCount(*store) == 1);

    // An empty serial cannot make an issued request either.
    RequestRecord c = sampleRequest("tx-c");
    CHECK_THROWS_AS(store->addIssuedRequest(c, sampleCertificate(""), event("enroll")), StoreError);
    CHECK_FALSE(store->findRequestByTransaction("tx-c"));
}

namespace {

struct Flagged : StoreError {
    using StoreError::StoreError;
};

// What inserting (id, name, n) into the table below throws: "flagged" when
// the statement's duplicate handler ran, "store" for a plain StoreError.
std::string insertOutcome(sqlite::Database& db, const char* id, const char* name, int n,
                          sqlite::DuplicateHandler handler) {
    static const std::string operation = "insert";
    try {
        sqlite::Query q = db.query("INSERT INTO t (id, name, n) VALUES (?1, ?2, ?3)", operation);
        q.onDuplicate(handler).bindText(1, id).bindText(2, name).bindInt(3, n).run();
    } catch (const Flagged&) {
        return "flagged";
    } catch (const StoreError&) {
        return "store";
    }
    return "inserted";
}

}  // namespace

TEST_CASE("store: a duplicate key is told by SQLite's extended code and the failing statement") {
    TempDir dir;
    sqlite::Database db(dir.file("keys.db"), "open");
    db.exec("CREATE TABLE t (id TEXT PRIMARY KEY, name TEXT UNIQUE, n INTEGER CHECK (n > 0))",
            "create");
    const sqlite::DuplicateHandler flag = [](const std::string& what) { throw Flagged(what); };
    CHECK(insertOutcome(db, "a", "alice", 1, flag) == "inserted");
    CHECK(insertOutcome(db, "a", "bob", 1, flag) == "flagged");    // PRIMARY KEY
    CHECK(insertOutcome(db, "b", "alice", 1, flag) == "flagged");  // UNIQUE
    // Another constraint, or a statement that names no handler: StoreError.
    CHECK(insertOutcome(db, "b", "bob", 0, flag) == "store");  // CHECK
    CHECK(insertOutcome(db, "a", "bob", 1, nullptr) == "store");
    CHECK(insertOutcome(db, "b", "bob", 1, flag) == "inserted");
}

TEST_CASE("store: issuePending / rejectPending are compare-and-set on pending") {
    TempDir dir;
    auto store = openSqliteStore(dir.file("ra.db"));
    RequestRecord r = sampleRequest("tx-p", "SEP777");
    r.created_at = 100;  // so updated_at visibly moves
    r.updated_at = 100;
    store->addPendingRequest(r, event("enroll", "pending"));

    SUBCASE("issue twice: the second loses and writes nothing") {
        CHECK(store->issuePending(r.id, sampleCertificate("01", "SEP777"), event("approve")));
        CHECK_FALSE(store->issuePending(r.id, sampleCertificate("02", "SEP777"), event("approve")));
        CHECK_FALSE(store->findCertificate("02"));

        const auto back = store->findRequest(r.id);
        REQUIRE(back);
        CHECK(back->status == RequestStatus::issued);
        CHECK(back->cert_serial == "01");
        CHECK(back->created_at == 100);
        CHECK(back->updated_at > 100);
        const auto cert = store->findCertificate("01");
        REQUIRE(cert);
        CHECK(cert->request_id == r.id);

        CHECK_FALSE(store->rejectPending(r.id, "too late", event("reject")));
        CHECK(store->findRequest(r.id)->status == RequestStatus::issued);
        CHECK(auditCount(*store) == 2);  // enroll + approve

        const auto events = store->listAudit(1, 0);
        REQUIRE(events.size() == 1);
        CHECK(events[0].action == "approve");
        CHECK(events[0].serial == "01");
        CHECK(events[0].transaction_id == "tx-p");
        REQUIRE(events[0].request_id);
        CHECK(*events[0].request_id == r.id);
    }
    SUBCASE("reject, then neither approve nor reject again") {
        CHECK(store->rejectPending(r.id, "unknown device", event("reject")));
        CHECK_FALSE(store->issuePending(r.id, sampleCertificate("03", "SEP777"), event("approve")));
        CHECK_FALSE(store->rejectPending(r.id, "twice", event("reject")));
        CHECK_FALSE(store->findCertificate("03"));

        const auto back = store->findRequest(r.id);
        REQUIRE(back);
        CHECK(back->status == RequestStatus::rejected);
        CHECK(back->reason == "unknown device");
        CHECK(back->cert_serial.empty());
        CHECK(auditCount(*store) == 2);  // enroll + reject
        const auto events = store->listAudit(1, 0);
        REQUIRE(events.size() == 1);
        CHECK(events[0].reason == "unknown device");
    }
    SUBCASE("unknown request ids") {
        CHECK_FALSE(store->issuePending(r.id + 1, sampleCertificate("04"), event("approve")));
        CHECK_FALSE(store->rejectPending(r.id + 1, "x", event("reject")));
        CHECK(store->listCertificates().empty());
        CHECK(auditCount(*store) == 1);
    }
    SUBCASE("a failing certificate insert leaves the request pending") {
        RequestRecord other = sampleRequest("tx-other");
        store->addIssuedRequest(other, sampleCertificate("DUP"), event("enroll"));
        CHECK_THROWS_AS(store->issuePending(r.id, sampleCertificate("DUP"), event("approve")),
                        StoreError);
        CHECK(store->findRequest(r.id)->status == RequestStatus::pending);
        CHECK(store->findRequest(r.id)->cert_serial.empty());
        CHECK(auditCount(*store) == 2);
        // and it can still be decided
        CHECK(store->issuePending(r.id, sampleCertificate("NEW"), event("approve")));
    }
}

TEST_CASE("store: revoke once; certificates without a request") {
    TempDir dir;
    auto store = openSqliteStore(dir.file("ra.db"));
    RequestRecord r = sampleRequest("tx-r");
    store->addIssuedRequest(r, sampleCertificate("R1"), event("enroll"));

    CHECK(store->revoke("R1", 4 /* superseded */, 1800000000, event("revoke")));
    CHECK_FALSE(store->revoke("R1", 1, 1800000001, event("revoke")));
    CHECK_FALSE(store->revoke("NOPE", 1, 1800000001, event("revoke")));
    CHECK(auditCount(*store) == 2);

    const auto cert = store->findCertificate("R1");
    REQUIRE(cert);
    CHECK(cert->revoked);
    CHECK(cert->revocation_reason == 4);
    CHECK(cert->revoked_at == 1800000000);

    const auto revoked = store->revokedCertificates();
    REQUIRE(revoked.size() == 1);
    checkSameCertificate(revoked[0], *cert);

    const auto events = store->listAudit(1, 0);
    REQUIRE(events.size() == 1);
    CHECK(events[0].action == "revoke");
    CHECK(events[0].serial == "R1");
    REQUIRE(events[0].request_id);
    CHECK(*events[0].request_id == r.id);

    // revoked_at 0 means now
    RequestRecord r2 = sampleRequest("tx-r2");
    store->addIssuedRequest(r2, sampleCertificate("R2"), event("enroll"));
    CHECK(store->revoke("R2", 0, 0, event("revoke")));
    CHECK(store->findCertificate("R2")->revoked_at > 0);
    auto revoked_serials = serials(store->revokedCertificates());
    std::sort(revoked_serials.begin(), revoked_serials.end());
    CHECK(revoked_serials == std::vector<std::string>{"R1", "R2"});
}

TEST_CASE("store: activeCertificatesFor excludes revoked, expired and other CNs") {
    TempDir dir;
    auto store = openSqliteStore(dir.file("ra.db"));
    const std::int64_t now = 2000000000;
    int n = 0;
    auto add = [&](const std::string& serial, const std::string& cn, std::int64_t not_after) {
        RequestRecord r = sampleRequest("tx-" + std::to_string(++n), cn);
        store->addIssuedRequest(r, sampleCertificate(serial, cn, not_after), event("enroll"));
    };
    add("VALID", "SEPA", now + 86400);
    add("LAST-SECOND", "SEPA", now);  // notAfter is inclusive
    add("EXPIRED", "SEPA", now - 1);
    add("REVOKED", "SEPA", now + 86400 * 2);
    add("OTHER-CN", "SEPB", now + 86400);
    REQUIRE(store->revoke("REVOKED", 1, now - 10, event("revoke")));

    CHECK(serials(store->activeCertificatesFor("SEPA", now, Store::Superseded::include)) ==
          std::vector<std::string>{"VALID", "LAST-SECOND"});
    CHECK(serials(store->activeCertificatesFor("SEPA", now + 1, Store::Superseded::include)) ==
          std::vector<std::string>{"VALID"});
    CHECK(serials(store->activeCertificatesFor("SEPB", now, Store::Superseded::include)) ==
          std::vector<std::string>{"OTHER-CN"});
    CHECK(store->activeCertificatesFor("SEPC", now, Store::Superseded::include).empty());
    // The CN is compared canonically: any case, trailing dots ignored.
    CHECK(serials(store->activeCertificatesFor("sepa", now, Store::Superseded::include)) ==
          serials(store->activeCertificatesFor("SEPA", now, Store::Superseded::include)));
    CHECK(serials(store->activeCertificatesFor("Sepa..", now, Store::Superseded::include)) ==
          serials(store->activeCertificatesFor("SEPA", now, Store::Superseded::include)));
    CHECK(store->listCertificates().size() == 5);
}

TEST_CASE("store: listRequests filters by status, oldest first") {
    TempDir dir;
    auto store = openSqliteStore(dir.file("ra.db"));
    std::vector<std::int64_t> ids;
    for (int i = 0; i < 6; ++i) {
        RequestRecord r = sampleRequest("tx-" + std::to_string(i));
        store->addPendingRequest(r, event("enroll", "pending"));
        ids.push_back(r.id);
    }
    REQUIRE(store->issuePending(ids[1], sampleCertificate("S1"), event("approve")));
    REQUIRE(store->issuePending(ids[4], sampleCertificate("S4"), event("approve")));
    REQUIRE(store->rejectPending(ids[2], "no", event("reject")));

    auto idsOf = [](const std::vector<RequestRecord>& rs) {
        std::vector<std::int64_t> out;
        for (const auto& r : rs) {
            out.push_back(r.id);
        }
        return out;
    };
    CHECK(idsOf(store->listRequests(RequestStatus::pending)) ==
          std::vector<std::int64_t>{ids[0], ids[3], ids[5]});
    CHECK(idsOf(store->listRequests(RequestStatus::issued)) ==
          std::vector<std::int64_t>{ids[1], ids[4]});
    CHECK(idsOf(store->listRequests(RequestStatus::rejected)) == std::vector<std::int64_t>{ids[2]});
    CHECK(idsOf(store->listRequests(std::nullopt)) == ids);
    for (const auto& r : store->listRequests(RequestStatus::issued)) {
        CHECK(r.status == RequestStatus::issued);
        CHECK_FALSE(r.cert_serial.empty());
        CHECK(r.csr == sampleRequest("x").csr);
    }
}

TEST_CASE("store: audit events round-trip and page newest first") {
    TempDir dir;
    auto store = openSqliteStore(dir.file("ra.db"));

    AuditEvent full;
    full.at = 1234;
    full.actor = "cli:alice";
    full.action = "revoke";
    full.outcome = "failure";
    full.method = "challenge";
    full.identity = "CN=x";
    full.reason = "no such serial";
    full.request_id = 42;  // a log entry, not a foreign key
    full.serial = "ABCD";
    full.peer = "::1";
    full.transaction_id = "tx-audit";
    store->audit(full);
    for (int i = 0; i < 9; ++i) {
        AuditEvent e = event("enroll");
        e.reason = "event " + std::to_string(i);
        store->audit(e);
    }

    const auto first = store->listAudit(1000, 0);
    REQUIRE(first.size() == 10);
    const AuditEvent& back = first.back();
    CHECK(back.at == 1234);
    CHECK(back.actor == full.actor);
    CHECK(back.action == full.action);
    CHECK(back.outcome == full.outcome);
    CHECK(back.method == full.method);
    CHECK(back.identity == full.identity);
    CHECK(back.reason == full.reason);
    REQUIRE(back.request_id);
    CHECK(*back.request_id == 42);
    CHECK(back.serial == full.serial);
    CHECK(back.peer == full.peer);
    CHECK(back.transaction_id == full.transaction_id);
    CHECK_FALSE(first.front().request_id);  // absent stays absent
    CHECK(first.front().at > 0);            // set when 0
    CHECK(first.front().reason == "event 8");

    // Page three at a time.
    std::vector<std::int64_t> paged;
    std::int64_t before = 0;
    int pages = 0;
    for (;;) {
        const auto page = store->listAudit(3, before);
        if (page.empty()) {
            break;
        }
        CHECK(page.size() <= 3);
        for (const auto& e : page) {
            paged.push_back(e.id);
        }
        before = page.back().id;
        ++pages;
        REQUIRE(pages < 10);
    }
    CHECK(pages == 4);
    REQUIRE(paged.size() == 10);
    for (std::size_t i = 0; i < paged.size(); ++i) {
        CHECK(paged[i] == first[i].id);
        if (i > 0) {
            CHECK(paged[i] < paged[i - 1]);
        }
    }
    CHECK(store->listAudit(0, 0).empty());
    CHECK(store->listAudit(5, first.back().id).empty());
    const auto two = store->listAudit(2, first[4].id);
    REQUIRE(two.size() == 2);
    CHECK(two[0].id == first[5].id);
    CHECK(two[1].id == first[6].id);
}
