#include <doctest/doctest.h>

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "ra/store.h"
#include "support.h"

using namespace scep;
using testsupport::TempDir;

namespace {

// A second, independent connection to the store's file, as the admin or an
// attacker with file access would have it.
class RawDb {
public:
    explicit RawDb(const std::string& path, bool create = false) {
        const int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
        if (sqlite3_open_v2(path.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
            const std::string message = db_ ? sqlite3_errmsg(db_) : "out of memory";
            sqlite3_close(db_);
            throw std::runtime_error("cannot open " + path + ": " + message);
        }
        sqlite3_busy_timeout(db_, 5000);
    }
    ~RawDb() { sqlite3_close(db_); }
    RawDb(const RawDb&) = delete;
    RawDb& operator=(const RawDb&) = delete;

    // Runs SQL; returns the error message, empty on success.
    std::string exec(const std::string& sql) {
        char* error = nullptr;
        if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error) == SQLITE_OK) {
            return "";
        }
        std::string message = error ? error : "unknown error";
        sqlite3_free(error);
        return message.empty() ? "error" : message;
    }
    // First column of every row, as text.
    std::vector<std::string> column(const std::string& sql) {
        sqlite3_stmt* stmt = nullptr;
        if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
            throw std::runtime_error(sql + ": " + sqlite3_errmsg(db_));
        }
        std::vector<std::string> out;
        int rc;
        while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
            const auto* text = sqlite3_column_text(stmt, 0);
            out.emplace_back(text ? reinterpret_cast<const char*>(text) : "NULL");
        }
        sqlite3_finalize(stmt);
        if (rc != SQLITE_DONE) {
            throw std::runtime_error(sql + ": " + sqlite3_errmsg(db_));
        }
        return out;
    }
    std::string scalar(const std::string& sql) {
        const auto rows = column(sql);
        return rows.empty() ? "" : rows.front();
    }
    long long count(const std::string& sql) { return std::stoll(scalar(sql)); }

private:
    sqlite3* db_ = nullptr;
};

Bytes bytes(std::initializer_list<int> values) {
    Bytes out;
    for (int v : values) {
        out.push_back(static_cast<std::uint8_t>(v));
    }
    return out;
}

RequestRecord sampleRequest(const std::string& transaction_id, const std::string& cn = "SEP001") {
    RequestRecord r;
    r.transaction_id = transaction_id;
    r.message_type = "PKCSReq";
    r.method = "mic";
    r.identity = "CN=CP-8841-" + cn + ",O=Cisco";
    r.common_name = cn;
    r.csr = bytes({0x30, 0x82, 0x00, 0x00, 0x01, 0x00, 0xff, 0x00});
    r.public_key_id = bytes({0x00, 0x00, 0xde, 0xad, 0x00});
    r.signer = bytes({0x30, 0x00, 0x00, 0x7f, 0x80});
    r.reason = "awaiting approval";
    r.peer = "192.0.2.7";
    r.details = R"({"model":"CP-8841","mac":"00:11:22:33:44:55","note":"caf\u00e9 ☎"})";
    return r;
}

CertificateRecord sampleCertificate(const std::string& serial, const std::string& cn = "SEP001",
                                    std::int64_t not_after = 4102444800 /* 2100 */) {
    CertificateRecord c;
    c.serial = serial;
    c.subject = "CN=" + cn;
    c.issuer = "CN=Unit Test Issuing CA";
    c.common_name = cn;
    c.not_before = 1700000000;
    c.not_after = not_after;
    c.der = bytes({0x30, 0x82, 0x00, 0x10, 0x00, 0x00, 0xa0, 0x03, 0x02, 0x01, 0x02});
    return c;
}

AuditEvent event(const std::string& action, const std::string& outcome = "success") {
    AuditEvent e;
    e.actor = "scep";
    e.action = action;
    e.outcome = outcome;
    e.method = "mic";
    e.identity = "CN=device";
    e.peer = "192.0.2.7";
    return e;
}

void checkSameRequest(const RequestRecord& a, const RequestRecord& b) {
    CHECK(a.id == b.id);
    CHECK(a.transaction_id == b.transaction_id);
    CHECK(a.message_type == b.message_type);
    CHECK(a.method == b.method);
    CHECK(a.identity == b.identity);
    CHECK(a.common_name == b.common_name);
    CHECK(a.csr == b.csr);
    CHECK(a.public_key_id == b.public_key_id);
    CHECK(a.signer == b.signer);
    CHECK(a.status == b.status);
    CHECK(a.reason == b.reason);
    CHECK(a.peer == b.peer);
    CHECK(a.cert_serial == b.cert_serial);
    CHECK(a.details == b.details);
    CHECK(a.created_at == b.created_at);
    CHECK(a.updated_at == b.updated_at);
}

void checkSameCertificate(const CertificateRecord& a, const CertificateRecord& b) {
    CHECK(a.serial == b.serial);
    CHECK(a.subject == b.subject);
    CHECK(a.issuer == b.issuer);
    CHECK(a.common_name == b.common_name);
    CHECK(a.not_before == b.not_before);
    CHECK(a.not_after == b.not_after);
    CHECK(a.der == b.der);
    CHECK(a.request_id == b.request_id);
    CHECK(a.revoked == b.revoked);
    CHECK(a.revocation_reason == b.revocation_reason);
    CHECK(a.revoked_at == b.revoked_at);
}

std::vector<std::string> serials(const std::vector<CertificateRecord>& certs) {
    std::vector<std::string> out;
    for (const auto& c : certs) {
        out.push_back(c.serial);
    }
    return out;
}

std::size_t auditCount(Store& store) {
    return store.listAudit(1000000, 0).size();
}

}  // namespace

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

    CHECK(serials(store->activeCertificatesFor("SEPA", now)) ==
          std::vector<std::string>{"VALID", "LAST-SECOND"});
    CHECK(serials(store->activeCertificatesFor("SEPA", now + 1)) ==
          std::vector<std::string>{"VALID"});
    CHECK(serials(store->activeCertificatesFor("SEPB", now)) ==
          std::vector<std::string>{"OTHER-CN"});
    CHECK(store->activeCertificatesFor("SEPC", now).empty());
    CHECK(store->activeCertificatesFor("sepa", now).empty());
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

TEST_CASE("store: the audit table refuses UPDATE and DELETE from any connection") {
    TempDir dir;
    const std::string path = dir.file("ra.db");
    auto store = openSqliteStore(path);
    AuditEvent e = event("enroll");
    e.reason = "original";
    store->audit(e);
    store->audit(e);

    RawDb raw(path);
    const std::string update = raw.exec("UPDATE audit SET reason = 'forged'");
    CHECK(update.find("append-only") != std::string::npos);
    CHECK(raw.exec("DELETE FROM audit WHERE id = 1").find("append-only") != std::string::npos);
    // Without WHERE SQLite would truncate without visiting rows, unless a
    // trigger exists.
    CHECK(raw.exec("DELETE FROM audit").find("append-only") != std::string::npos);
    // REPLACE deletes the old row without firing DELETE triggers.
    CHECK(raw.exec("INSERT OR REPLACE INTO audit (id, at, actor, action, outcome, method, "
                   "identity, reason, request_id, serial, peer, transaction_id) VALUES "
                   "(1, 0, 'x', 'x', 'x', '', '', 'forged', NULL, '', '', '')")
              .find("append-only") != std::string::npos);
    CHECK(raw.exec("INSERT INTO audit (id, at, actor, action, outcome, method, identity, "
                   "reason, request_id, serial, peer, transaction_id) VALUES (2, 0, 'x', 'x', "
                   "'x', '', '', 'forged', NULL, '', '', '') ON CONFLICT (id) DO UPDATE SET "
                   "reason = 'forged'")
              .find("append-only") != std::string::npos);

    const auto events = store->listAudit(10, 0);
    REQUIRE(events.size() == 2);
    for (const auto& ev : events) {
        CHECK(ev.reason == "original");
    }
    // Appending is what the table is for.
    CHECK(raw.exec("INSERT INTO audit (at, actor, action, outcome, method, identity, reason, "
                   "serial, peer, transaction_id) VALUES (1, 'cli:root', 'note', 'success', '', "
                   "'', '', '', '', '')") == "");
    CHECK(store->listAudit(10, 0).size() == 3);
}

TEST_CASE("store: schema invariants hold for other writers too") {
    TempDir dir;
    const std::string path = dir.file("ra.db");
    auto store = openSqliteStore(path);
    RawDb raw(path);
    REQUIRE(raw.exec("PRAGMA foreign_keys = ON") == "");
    const std::string columns =
        "INSERT INTO requests (transaction_id, message_type, method, identity, common_name, csr, "
        "public_key_id, signer, status, reason, peer, cert_serial, details, created_at, "
        "updated_at) VALUES ";
    // issued without a certificate serial: CHECK
    CHECK(raw.exec(columns + "('t1', '', '', '', '', x'', x'', x'', 'issued', '', '', NULL, '', "
                             "1, 1)") != "");
    // unknown status: CHECK
    CHECK(raw.exec(columns + "('t2', '', '', '', '', x'', x'', x'', 'approved', '', '', NULL, "
                             "'', 1, 1)") != "");
    // issued naming a certificate that does not exist: deferred FK at COMMIT
    CHECK(raw.exec("BEGIN; " + columns +
                   "('t3', '', '', '', '', x'', x'', x'', 'issued', '', '', 'MISSING', '', 1, 1); "
                   "COMMIT;") != "");
    raw.exec("ROLLBACK");
    // certificate of a request that does not exist: FK
    CHECK(raw.exec("INSERT INTO certificates (serial, subject, issuer, common_name, not_before, "
                   "not_after, der, request_id) VALUES ('C1', '', '', '', 0, 0, x'', 12345)") !=
          "");
    CHECK(store->listRequests(std::nullopt).empty());
    CHECK(store->listCertificates().empty());
}

TEST_CASE("store: WAL mode, schema version and reopening with data intact") {
    TempDir dir;
    const std::string path = dir.file("ra.db");
    std::int64_t id = 0;
    {
        auto store = openSqliteStore(path);
        RequestRecord r = sampleRequest("tx-keep");
        store->addIssuedRequest(r, sampleCertificate("KEEP"), event("enroll"));
        id = r.id;
        RequestRecord p = sampleRequest("tx-pending");
        store->addPendingRequest(p, event("enroll", "pending"));

        RawDb raw(path);
        CHECK(raw.scalar("PRAGMA journal_mode") == "wal");
        CHECK(raw.scalar("PRAGMA user_version") == "1");
        CHECK(raw.scalar("PRAGMA application_id") == "1396917584");
        const auto indexes = raw.column("SELECT name FROM sqlite_master WHERE type = 'index' "
                                        "AND name NOT LIKE 'sqlite_%' ORDER BY name");
        const std::set<std::string> names(indexes.begin(), indexes.end());
        for (const char* expected : {"requests_status", "requests_common_name",
                                     "certificates_common_name", "certificates_not_after",
                                     "certificates_revoked", "certificates_request"}) {
            CHECK_MESSAGE(names.count(expected) == 1, expected);
        }
    }
    auto reopened = openSqliteStore(path);
    const auto r = reopened->findRequest(id);
    REQUIRE(r);
    checkSameRequest(*r, [&] {
        RequestRecord expected = sampleRequest("tx-keep");
        expected.id = id;
        expected.status = RequestStatus::issued;
        expected.cert_serial = "KEEP";
        expected.created_at = r->created_at;
        expected.updated_at = r->updated_at;
        return expected;
    }());
    REQUIRE(reopened->findCertificate("KEEP"));
    CHECK(reopened->findCertificate("KEEP")->request_id == id);
    CHECK(reopened->listRequests(RequestStatus::pending).size() == 1);
    CHECK(auditCount(*reopened) == 2);
    // A second store on the same file (the CLI next to the server) sees it too.
    auto second = openSqliteStore(path);
    CHECK(second->listRequests(std::nullopt).size() == 2);
}

TEST_CASE("store: refuses newer schemas, foreign databases and non-databases") {
    TempDir dir;
    SUBCASE("newer user_version") {
        const std::string path = dir.file("ra.db");
        openSqliteStore(path).reset();
        RawDb(path).exec("PRAGMA user_version = 7");
        std::string message;
        try {
            openSqliteStore(path);
        } catch (const StoreError& e) {
            message = e.what();
        }
        CHECK(message.find("version 7") != std::string::npos);
        CHECK(message.find("newer") != std::string::npos);
    }
    SUBCASE("another application's database") {
        const std::string path = dir.file("other.db");
        REQUIRE(RawDb(path, true).exec("PRAGMA application_id = 1234; "
                                       "CREATE TABLE t (x INTEGER)") == "");
        std::string message;
        try {
            openSqliteStore(path);
        } catch (const StoreError& e) {
            message = e.what();
        }
        CHECK(message.find("not a kea-scep-ra database") != std::string::npos);
    }
    SUBCASE("a database with clashing tables: schema creation fails as a whole") {
        const std::string path = dir.file("clash.db");
        REQUIRE(RawDb(path, true).exec("CREATE TABLE audit (x INTEGER)") == "");
        CHECK_THROWS_AS(openSqliteStore(path), StoreError);
        RawDb raw(path);
        CHECK(raw.column("SELECT name FROM sqlite_master WHERE type = 'table'") ==
              std::vector<std::string>{"audit"});
        CHECK(raw.scalar("PRAGMA user_version") == "0");
    }
    SUBCASE("not a database") {
        const std::string path = dir.write("junk.db", std::string(4096, 'x'));
        CHECK_THROWS_AS(openSqliteStore(path), StoreError);
    }
    SUBCASE("unreachable path") {
        CHECK_THROWS_AS(openSqliteStore(dir.file("missing/dir/ra.db")), StoreError);
    }
}

TEST_CASE("store: concurrent writers on one store — one winner per transactionID") {
    TempDir dir;
    auto store = openSqliteStore(dir.file("ra.db"));
    constexpr int kThreads = 8;
    constexpr int kShared = 25;  // transaction IDs every thread tries
    constexpr int kOwn = 10;     // transaction IDs only one thread uses

    std::vector<std::atomic<int>> added(kShared);
    std::vector<std::atomic<int>> issued(kShared);
    std::atomic<int> duplicates{0}, own_added{0}, unexpected{0};
    std::vector<std::string> errors(kThreads);

    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            try {
                for (int k = 0; k < kShared; ++k) {
                    RequestRecord r = sampleRequest("shared-" + std::to_string(k));
                    try {
                        store->addPendingRequest(r, event("enroll", "pending"));
                        ++added[k];
                    } catch (const DuplicateTransaction&) {
                        ++duplicates;
                    }
                    if (k < kOwn) {
                        RequestRecord own = sampleRequest("own-" + std::to_string(t) + "-" +
                                                          std::to_string(k));
                        store->addPendingRequest(own, event("enroll", "pending"));
                        ++own_added;
                    }
                    const auto found = store->findRequestByTransaction(r.transaction_id);
                    if (!found) {
                        ++unexpected;
                        continue;
                    }
                    const std::string serial =
                        "S-" + std::to_string(t) + "-" + std::to_string(k);
                    if (store->issuePending(found->id, sampleCertificate(serial), event("approve"))) {
                        ++issued[k];
                    }
                }
            } catch (const std::exception& e) {
                errors[t] = e.what();
            }
        });
    }
    for (auto& th : threads) {
        th.join();
    }
    for (const auto& e : errors) {
        CHECK_MESSAGE(e.empty(), e);
    }
    CHECK(unexpected == 0);
    for (int k = 0; k < kShared; ++k) {
        CHECK_MESSAGE(added[k] == 1, "shared-", k);
        CHECK_MESSAGE(issued[k] == 1, "shared-", k);
    }
    CHECK(duplicates == (kThreads - 1) * kShared);
    CHECK(own_added == kThreads * kOwn);

    const auto all = store->listRequests(std::nullopt);
    CHECK(all.size() == static_cast<std::size_t>(kShared + kThreads * kOwn));
    CHECK(store->listRequests(RequestStatus::issued).size() == kShared);
    CHECK(store->listRequests(RequestStatus::pending).size() ==
          static_cast<std::size_t>(kThreads * kOwn));
    const auto certs = store->listCertificates();
    CHECK(certs.size() == kShared);
    for (const auto& c : certs) {
        const auto r = store->findRequest(c.request_id);
        REQUIRE(r);
        CHECK(r->cert_serial == c.serial);
        CHECK(r->transaction_id.rfind("shared-", 0) == 0);
    }
    // one audit event per committed write: enrolls + approvals
    CHECK(auditCount(*store) == all.size() + kShared);
}

TEST_CASE("store: two stores on one file (server and CLI) do not lose writes") {
    TempDir dir;
    const std::string path = dir.file("ra.db");
    auto server = openSqliteStore(path);
    auto cli = openSqliteStore(path);
    // Kept small: each store's total work must stay well under the 5 s busy
    // timeout even on a slow disk, because SQLite's file lock is not fair.
    constexpr int kPerThread = 15;
    std::vector<std::string> errors(4);
    std::atomic<int> decided{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] {
            Store& store = t % 2 ? *cli : *server;
            try {
                for (int i = 0; i < kPerThread; ++i) {
                    RequestRecord r = sampleRequest("tx-" + std::to_string(i));
                    try {
                        store.addPendingRequest(r, event("enroll", "pending"));
                    } catch (const DuplicateTransaction&) {
                        r = *store.findRequestByTransaction(r.transaction_id);
                    }
                    if (store.issuePending(r.id,
                                           sampleCertificate(std::to_string(t) + "-" +
                                                             std::to_string(i)),
                                           event("approve"))) {
                        ++decided;
                    }
                }
            } catch (const std::exception& e) {
                errors[t] = e.what();
            }
        });
    }
    for (auto& th : threads) {
        th.join();
    }
    for (const auto& e : errors) {
        CHECK_MESSAGE(e.empty(), e);
    }
    CHECK(decided == kPerThread);
    CHECK(server->listRequests(RequestStatus::issued).size() == kPerThread);
    CHECK(cli->listCertificates().size() == kPerThread);
    CHECK(auditCount(*server) == 2 * kPerThread);
}

namespace {

// What the crash child reports after each COMMIT returned.
struct Committed {
    std::int64_t kind;  // 0 addIssuedRequest, 1 addPendingRequest, 2 issuePending
    std::int64_t request_id;
};

// Runs in the forked child: writes until killed, reporting each commit.
[[noreturn]] void crashChild(const std::string& path, int round, int report_fd) {
    try {
        auto store = openSqliteStore(path);
        std::int64_t last_pending = 0;
        for (std::int64_t i = 0;; ++i) {
            const std::string tx = "r" + std::to_string(round) + "-" + std::to_string(i);
            Committed c{};
            switch (i % 3) {
            case 0: {
                RequestRecord r = sampleRequest(tx, "CN" + tx);
                store->addIssuedRequest(r, sampleCertificate("C" + tx, "CN" + tx),
                                        event("enroll"));
                c = {0, r.id};
                break;
            }
            case 1: {
                RequestRecord r = sampleRequest(tx, "CN" + tx);
                store->addPendingRequest(r, event("enroll", "pending"));
                last_pending = r.id;
                c = {1, r.id};
                break;
            }
            default:
                if (!store->issuePending(last_pending, sampleCertificate("C" + tx, "CN" + tx),
                                         event("approve"))) {
                    _exit(3);
                }
                c = {2, last_pending};
            }
            if (write(report_fd, &c, sizeof c) != static_cast<ssize_t>(sizeof c)) {
                _exit(4);
            }
        }
    } catch (...) {
        _exit(2);
    }
}

// Kills and reaps the child if the test leaves early.
struct ChildGuard {
    pid_t pid;
    ~ChildGuard() {
        if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, nullptr, 0);
        }
    }
};

}  // namespace

TEST_CASE("store: SIGKILL mid-write loses no commit and leaves no half-written state") {
    TempDir dir;
    const std::string path = dir.file("ra.db");
    std::random_device device;
    const unsigned seed = device();
    INFO("seed ", seed);
    std::mt19937 rng(seed);
    std::vector<Committed> committed;
    long long reported_requests = 0;

    for (int round = 0; round < 8; ++round) {
        int fds[2];
        REQUIRE(pipe(fds) == 0);
        const pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            crashChild(path, round, fds[1]);
        }
        close(fds[1]);
        ChildGuard guard{pid};

        std::vector<char> buffer;
        auto readSome = [&](int timeout_ms) {
            pollfd p{fds[0], POLLIN, 0};
            if (poll(&p, 1, timeout_ms) <= 0) {
                return false;
            }
            char chunk[4096];
            const ssize_t n = read(fds[0], chunk, sizeof chunk);
            if (n <= 0) {
                return false;  // EOF: the child is gone
            }
            buffer.insert(buffer.end(), chunk, chunk + n);
            return true;
        };
        // Wait for the first commit (bounded: a child that cannot write at
        // all shows up as a failure below, not as a hang).
        for (int i = 0; i < 300 && buffer.size() < sizeof(Committed); ++i) {
            if (!readSome(100) && waitpid(pid, nullptr, WNOHANG) != 0) {
                break;
            }
        }
        REQUIRE_MESSAGE(buffer.size() >= sizeof(Committed), "the writer child never committed");
        // Let it run for a random while, draining its reports, then kill it
        // wherever it is: inside a transaction, an fsync, or between writes.
        const auto deadline = std::chrono::steady_clock::now() +
                              std::chrono::microseconds(
                                  std::uniform_int_distribution<int>(0, 40000)(rng));
        while (std::chrono::steady_clock::now() < deadline) {
            readSome(1);
        }
        REQUIRE(kill(pid, SIGKILL) == 0);
        int status = 0;
        REQUIRE(waitpid(pid, &status, 0) == pid);
        guard.pid = 0;
        CHECK_MESSAGE(WIFSIGNALED(status), "child exited by itself with status ",
                      WEXITSTATUS(status));
        while (readSome(0)) {
        }
        close(fds[0]);
        const std::size_t records = buffer.size() / sizeof(Committed);
        for (std::size_t i = 0; i < records; ++i) {
            Committed c;
            std::memcpy(&c, buffer.data() + i * sizeof c, sizeof c);
            committed.push_back(c);
            reported_requests += c.kind != 2;
        }

        // Recovery: the store opens the killed writer's WAL...
        auto store = openSqliteStore(path);
        RawDb raw(path);
        CHECK(raw.column("PRAGMA integrity_check") == std::vector<std::string>{"ok"});
        CHECK(raw.column("PRAGMA foreign_key_check").empty());
        // ...every issued request has its certificate, and vice versa...
        CHECK(raw.count("SELECT count(*) FROM requests r WHERE status = 'issued' AND NOT EXISTS "
                        "(SELECT 1 FROM certificates c WHERE c.serial = r.cert_serial AND "
                        "c.request_id = r.id)") == 0);
        CHECK(raw.count("SELECT count(*) FROM certificates c WHERE NOT EXISTS (SELECT 1 FROM "
                        "requests r WHERE r.id = c.request_id AND r.status = 'issued' AND "
                        "r.cert_serial = c.serial)") == 0);
        // ...every write came with its audit event and nothing else did...
        const long long requests = raw.count("SELECT count(*) FROM requests");
        const long long certificates = raw.count("SELECT count(*) FROM certificates");
        CHECK(raw.count("SELECT count(*) FROM audit WHERE action = 'enroll'") == requests);
        CHECK(raw.count("SELECT count(*) FROM audit WHERE outcome = 'success'") == certificates);
        CHECK(raw.count("SELECT count(*) FROM audit") ==
              requests + raw.count("SELECT count(*) FROM audit WHERE action = 'approve'"));
        // ...and nothing the child saw committed is missing.
        // (The child may have committed once more before it could report.)
        CHECK(requests >= reported_requests);
        CHECK(requests <= reported_requests + round + 1);
        std::vector<std::int64_t> lost;
        for (const auto& c : committed) {
            const auto r = store->findRequest(c.request_id);
            const bool issued = r && r->status == RequestStatus::issued &&
                                store->findCertificate(r->cert_serial).has_value();
            if (!r || (c.kind != 1 && !issued)) {
                lost.push_back(c.request_id);
            }
        }
        CHECK_MESSAGE(lost.empty(), lost.size(), " of ", committed.size(),
                      " reported commits are missing, first request id ",
                      lost.empty() ? 0 : lost.front());
    }
}
