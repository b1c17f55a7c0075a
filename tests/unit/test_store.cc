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
#include <ctime>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "ra/auth/authenticator.h"
#include "ra/store/store.h"
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
    // One column (the first by default) of every row, as text.
    std::vector<std::string> column(const std::string& sql, int index = 0) {
        sqlite3_stmt* stmt = nullptr;
        if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
            throw std::runtime_error(sql + ": " + sqlite3_errmsg(db_));
        }
        std::vector<std::string> out;
        int rc;
        while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
            const auto* text = sqlite3_column_text(stmt, index);
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
    // The `detail` lines of EXPLAIN QUERY PLAN (parameters left unbound).
    std::vector<std::string> plan(const std::string& sql) {
        return column("EXPLAIN QUERY PLAN " + sql, 3);
    }

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
    CHECK(a.superseded_by == b.superseded_by);
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
        CHECK(raw.scalar("PRAGMA user_version") == "3");
        CHECK(raw.scalar("PRAGMA application_id") == "1396917584");
        const auto indexes = raw.column("SELECT name FROM sqlite_master WHERE type = 'index' "
                                        "AND name NOT LIKE 'sqlite_%' ORDER BY name");
        const std::set<std::string> names(indexes.begin(), indexes.end());
        for (const char* expected :
             {"requests_status", "requests_common_name", "requests_cert_serial", "requests_model",
              "requests_mac", "requests_created_at", "certificates_cn_key",
              "certificates_current", "certificates_superseded_by", "certificates_not_after",
              "certificates_not_before", "certificates_revoked", "certificates_request"}) {
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
    // One audit event per committed write (enrolls + approvals), plus one
    // per certificate superseded: all share the CN SEP001, one stays current.
    CHECK(auditCount(*store) == all.size() + kShared + (kShared - 1));
    CHECK(std::count_if(certs.begin(), certs.end(),
                        [](const CertificateRecord& c) { return c.superseded_by.empty(); }) == 1);
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
    // Enroll + approve each, and every certificate but the last of the
    // shared CN superseded.
    CHECK(auditCount(*server) == 2 * kPerThread + (kPerThread - 1));
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

// ---- Store v2: admin searches, counts, tokens, ping, migration 1 -> 2 ------

namespace scep {
// Defined in ra/store/sqlite/sqlite_store.cc for this file only: the SQL text the store
// prepares for a filter (count: the COUNT query, else the page query).
std::string sqliteStoreSearchSqlForTesting(const RequestFilter& filter, bool count);
std::string sqliteStoreSearchSqlForTesting(const CertificateFilter& filter, bool count);
}  // namespace scep

namespace {

// The version 1 schema exactly as the first release created it (a frozen copy
// of kSchemaV1 in ra/store/sqlite/sqlite_store.cc): the migration must upgrade databases
// that look like this, whatever later edits happen to the source.
const char* const kV1Schema = R"sql(
CREATE TABLE requests (
    id             INTEGER PRIMARY KEY,
    transaction_id TEXT    NOT NULL UNIQUE,
    message_type   TEXT    NOT NULL,
    method         TEXT    NOT NULL,
    identity       TEXT    NOT NULL,
    common_name    TEXT    NOT NULL,
    csr            BLOB    NOT NULL,
    public_key_id  BLOB    NOT NULL,
    signer         BLOB    NOT NULL,
    status         TEXT    NOT NULL CHECK (status IN ('pending', 'issued', 'rejected')),
    reason         TEXT    NOT NULL,
    peer           TEXT    NOT NULL,
    cert_serial    TEXT    REFERENCES certificates (serial) DEFERRABLE INITIALLY DEFERRED,
    details        TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    CHECK ((status = 'issued') = (cert_serial IS NOT NULL))
) STRICT;
CREATE INDEX requests_status ON requests (status, id);
CREATE INDEX requests_common_name ON requests (common_name);
-- The deferred foreign key from requests.cert_serial is checked at every
-- commit that adds a certificate; without this index that is a table scan.
CREATE INDEX requests_cert_serial ON requests (cert_serial);

CREATE TABLE certificates (
    serial            TEXT    NOT NULL PRIMARY KEY CHECK (serial <> ''),
    subject           TEXT    NOT NULL,
    issuer            TEXT    NOT NULL,
    common_name       TEXT    NOT NULL,
    not_before        INTEGER NOT NULL,
    not_after         INTEGER NOT NULL,
    der               BLOB    NOT NULL,
    request_id        INTEGER REFERENCES requests (id),
    revoked           INTEGER NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1)),
    revocation_reason INTEGER NOT NULL DEFAULT 0,
    revoked_at        INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE UNIQUE INDEX certificates_request ON certificates (request_id)
    WHERE request_id IS NOT NULL;
CREATE INDEX certificates_common_name ON certificates (common_name, not_after);
CREATE INDEX certificates_not_after ON certificates (not_after);
CREATE INDEX certificates_revoked ON certificates (revoked_at, serial) WHERE revoked = 1;

CREATE TABLE audit (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    at             INTEGER NOT NULL,
    actor          TEXT    NOT NULL,
    action         TEXT    NOT NULL,
    outcome        TEXT    NOT NULL,
    method         TEXT    NOT NULL,
    identity       TEXT    NOT NULL,
    reason         TEXT    NOT NULL,
    request_id     INTEGER,
    serial         TEXT    NOT NULL,
    peer           TEXT    NOT NULL,
    transaction_id TEXT    NOT NULL
) STRICT;
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'audit log is append-only');
END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'audit log is append-only');
END;
-- INSERT OR REPLACE deletes the clashing row without firing DELETE
-- triggers (unless recursive_triggers is on in that connection).
CREATE TRIGGER audit_no_replace BEFORE INSERT ON audit
WHEN EXISTS (SELECT 1 FROM audit WHERE id = NEW.id)
BEGIN
    SELECT RAISE(ABORT, 'audit log is append-only');
END;
)sql";

// A v1 database as the first release left it: WAL, application_id,
// user_version 1.
void createV1Database(const std::string& path) {
    RawDb raw(path, true);
    REQUIRE(raw.scalar("PRAGMA journal_mode = WAL") == "wal");
    REQUIRE(raw.exec(std::string("BEGIN;") + kV1Schema +
                     "PRAGMA application_id = 1396917584; PRAGMA user_version = 1; COMMIT;") ==
            "");
}

constexpr std::int64_t kNow = 2000000000;
constexpr std::int64_t kDay = 86400;

// A MIC-authenticated request as enrollment.cc records it, or (empty model)
// a challenge request without model / mac in its details.
RequestRecord deviceRequest(const std::string& transaction_id, const std::string& cn,
                            const std::string& model, const std::string& mac,
                            std::int64_t created_at) {
    RequestRecord r = sampleRequest(transaction_id, cn);
    if (model.empty()) {
        r.method = "challenge";
        r.identity = "challenge for CN " + cn;
        r.details = R"({"sans":[]})";
    } else {
        r.identity = "CN=" + model + "-SEP,OU=CTG,O=Cisco Systems Inc.,serialNumber=PID:" + model;
        r.details = R"({"model":")" + model + R"(","mac":")" + mac + R"(","pid":")" + model +
                    R"(","sn":"FCH0001","manufacturer_issuer":"CN=Cisco Manufacturing CA SHA2",)" +
                    R"("sans":[{"type":"dns","value":")" + cn + R"("}]})";
    }
    r.created_at = created_at;
    r.updated_at = created_at;
    return r;
}

std::vector<std::int64_t> ids(const Page<RequestRecord>& page) {
    std::vector<std::int64_t> out;
    for (const auto& r : page.items) {
        out.push_back(r.id);
    }
    return out;
}

std::vector<std::string> serials(const Page<CertificateView>& page) {
    std::vector<std::string> out;
    for (const auto& v : page.items) {
        out.push_back(v.certificate.serial);
    }
    return out;
}

using Ids = std::vector<std::int64_t>;
using Serials = std::vector<std::string>;

// The requests the search tests share; ids 1..6 in this order.
//  1  pending   CP-8841 00:1A:2B:3C:4D:5E  t=1000
//  2  issued    CP-8875 00:AA:BB:CC:DD:EE  t=2000
//  3  pending   challenge (no model/mac)   t=3000
//  4  rejected  CP-8841 00:1A:2B:3C:4D:5E  t=4000
//  5  pending   CP-8841 00:11:22:33:44:FF  t=5000
//  6  pending   details not JSON           t=6000
void addSearchRequests(Store& store) {
    RequestRecord r1 = deviceRequest("tx1", "SEP001A2B3C4D5E", "CP-8841", "00:1A:2B:3C:4D:5E", 1000);
    store.addPendingRequest(r1, event("enroll", "pending"));
    RequestRecord r2 = deviceRequest("tx2", "SEP00AABBCCDDEE", "CP-8875", "00:AA:BB:CC:DD:EE", 2000);
    store.addIssuedRequest(r2, sampleCertificate("0A02", "SEP00AABBCCDDEE"), event("enroll"));
    RequestRecord r3 = deviceRequest("tx3", "laptop-7", "", "", 3000);
    store.addPendingRequest(r3, event("enroll", "pending"));
    RequestRecord r4 = deviceRequest("tx4", "SEP001A2B3C4D5E", "CP-8841", "00:1A:2B:3C:4D:5E", 4000);
    store.addPendingRequest(r4, event("enroll", "pending"));
    REQUIRE(store.rejectPending(r4.id, "not this one", event("reject")));
    RequestRecord r5 = deviceRequest("tx5", "SEP0011223344FF", "CP-8841", "00:11:22:33:44:FF", 5000);
    store.addPendingRequest(r5, event("enroll", "pending"));
    RequestRecord r6 = deviceRequest("tx6", "printer", "", "", 6000);
    r6.details = "not json {";  // never written by enrollment, but must not break anything
    store.addPendingRequest(r6, event("enroll", "pending"));
    REQUIRE(Ids{r1.id, r2.id, r3.id, r4.id, r5.id, r6.id} == Ids{1, 2, 3, 4, 5, 6});
}

Ids findIds(Store& store, RequestFilter filter) {
    const auto page = store.findRequests(filter);
    CHECK(page.total == page.items.size());  // the small data set fits one page
    return ids(page);
}

}  // namespace

TEST_CASE("store v2: findRequests — each filter alone, newest first") {
    TempDir dir;
    auto store = openSqliteStore(dir.file("ra.db"));
    addSearchRequests(*store);

    RequestFilter f;
    CHECK(findIds(*store, f) == Ids{6, 5, 4, 3, 2, 1});

    SUBCASE("status") {
        f.status = RequestStatus::pending;
        CHECK(findIds(*store, f) == Ids{6, 5, 3, 1});
        f.status = RequestStatus::issued;
        CHECK(findIds(*store, f) == Ids{2});
        f.status = RequestStatus::rejected;
        CHECK(findIds(*store, f) == Ids{4});
    }
    SUBCASE("model: exact and case-sensitive") {
        f.model = "CP-8841";
        CHECK(findIds(*store, f) == Ids{5, 4, 1});
        f.model = "CP-8875";
        CHECK(findIds(*store, f) == Ids{2});
        f.model = "CP-884";
        CHECK(findIds(*store, f).empty());
        f.model = "cp-8841";
        CHECK(findIds(*store, f).empty());
    }
    SUBCASE("mac: the normalized form, compared exactly") {
        f.mac = "00:1A:2B:3C:4D:5E";
        CHECK(findIds(*store, f) == Ids{4, 1});
        f.mac = "00:11:22:33:44:FF";
        CHECK(findIds(*store, f) == Ids{5});
        // Normalizing the other notations is the caller's job; the store
        // neither normalizes nor matches prefixes or substrings.
        for (const char* other : {"001A2B3C4D5E", "00-1A-2B-3C-4D-5E", "00:1a:2b:3c:4d:5e",
                                  "00:1A:2B:3C:4D", "1A:2B:3C:4D:5E", "%", "00:1A:2B:3C:4D:5_"}) {
            f.mac = other;
            CHECK_MESSAGE(findIds(*store, f).empty(), other);
        }
    }
    SUBCASE("text: substring of common_name or identity, any case") {
        f.text = "laptop";
        CHECK(findIds(*store, f) == Ids{3});
        f.text = "challenge for CN";  // identity only
        CHECK(findIds(*store, f) == Ids{6, 3});
        f.text = "for CN laptop";
        CHECK(findIds(*store, f) == Ids{3});
        f.text = "CP-8875";  // identity only
        CHECK(findIds(*store, f) == Ids{2});
        f.text = "sep001a2b";  // CN, other case
        CHECK(findIds(*store, f) == Ids{4, 1});
        f.text = "SEP";
        CHECK(findIds(*store, f) == Ids{5, 4, 2, 1});
        f.text = "nothing like it";
        CHECK(findIds(*store, f).empty());
    }
    SUBCASE("since / until on created_at: [since, until)") {
        f.since = 3000;
        CHECK(findIds(*store, f) == Ids{6, 5, 4, 3});
        f.since = 0;
        f.until = 3000;
        CHECK(findIds(*store, f) == Ids{2, 1});
        f.since = 2000;
        f.until = 5000;
        CHECK(findIds(*store, f) == Ids{4, 3, 2});
        f.since = 5000;
        f.until = 5000;
        CHECK(findIds(*store, f).empty());
    }
}

TEST_CASE("store v2: findRequests — filters combine with AND") {
    TempDir dir;
    auto store = openSqliteStore(dir.file("ra.db"));
    addSearchRequests(*store);

    RequestFilter f;
    f.status = RequestStatus::pending;
    f.model = "CP-8841";
    CHECK(findIds(*store, f) == Ids{5, 1});

    f = {};
    f.mac = "00:1A:2B:3C:4D:5E";
    f.status = RequestStatus::rejected;
    CHECK(findIds(*store, f) == Ids{4});
    f.status = RequestStatus::issued;
    CHECK(findIds(*store, f).empty());

    f = {};
    f.model = "CP-8841";
    f.since = 2000;
    f.until = 5000;
    CHECK(findIds(*store, f) == Ids{4});

    f = {};
    f.text = "SEP";
    f.status = RequestStatus::pending;
    f.until = 5001;
    CHECK(findIds(*store, f) == Ids{5, 1});

    f = {};
    f.status = RequestStatus::pending;
    f.model = "CP-8841";
    f.mac = "00:11:22:33:44:FF";
    f.text = "44ff";
    f.since = 5000;
    f.until = 5001;
    CHECK(findIds(*store, f) == Ids{5});
    f.status = RequestStatus::issued;  // one filter off: nothing
    const auto none = store->findRequests(f);
    CHECK(none.items.empty());
    CHECK(none.total == 0);

    // Records come back whole.
    f = {};
    f.status = RequestStatus::issued;
    const auto page = store->findRequests(f);
    REQUIRE(page.items.size() == 1);
    checkSameRequest(page.items[0], *store->findRequest(2));
    CHECK(page.items[0].cert_serial == "0A02");
}

TEST_CASE("store v2: findRequests — paging, total, limit clamp") {
    TempDir dir;
    auto store = openSqliteStore(dir.file("ra.db"));
    for (int i = 1; i <= 12; ++i) {
        RequestRecord r = deviceRequest("tx" + std::to_string(i), "SEP" + std::to_string(i),
                                        i % 2 ? "CP-8841" : "CP-8875", "00:00:00:00:00:01", i);
        store->addPendingRequest(r, event("enroll", "pending"));
    }
    RequestFilter f;
    f.limit = 5;
    auto page = store->findRequests(f);
    CHECK(page.total == 12);
    CHECK(ids(page) == Ids{12, 11, 10, 9, 8});
    f.offset = 5;
    page = store->findRequests(f);
    CHECK(page.total == 12);
    CHECK(ids(page) == Ids{7, 6, 5, 4, 3});
    f.offset = 10;
    page = store->findRequests(f);
    CHECK(page.total == 12);
    CHECK(ids(page) == Ids{2, 1});
    f.offset = 12;
    page = store->findRequests(f);
    CHECK(page.total == 12);  // total ignores offset even past the end
    CHECK(page.items.empty());
    f.offset = std::numeric_limits<std::size_t>::max();
    page = store->findRequests(f);
    CHECK(page.total == 12);
    CHECK(page.items.empty());

    f.offset = 0;
    f.limit = 0;  // clamped up to 1
    page = store->findRequests(f);
    CHECK(page.total == 12);
    CHECK(ids(page) == Ids{12});

    // Paging over a filtered set: total is the filtered count.
    f.model = "CP-8875";
    f.limit = 4;
    f.offset = 4;
    page = store->findRequests(f);
    CHECK(page.total == 6);
    CHECK(ids(page) == Ids{4, 2});
}

TEST_CASE("store v2: LIKE wildcards in the search text are literal") {
    TempDir dir;
    auto store = openSqliteStore(dir.file("ra.db"));
    const std::vector<std::string> cns = {"50%off", "50Xoff", "a_b", "aXb", "back\\slash",
                                          "backXslash"};
    for (std::size_t i = 0; i < cns.size(); ++i) {
        RequestRecord r = deviceRequest("tx" + std::to_string(i), cns[i], "", "", 100);
        r.identity = "challenge";
        const std::string serial = "C" + std::to_string(i);
        store->addIssuedRequest(r, sampleCertificate(serial, cns[i]), event("enroll"));
    }
    auto requestCns = [&](const std::string& text) {
        RequestFilter f;
        f.text = text;
        std::vector<std::string> out;
        for (const auto& r : store->findRequests(f).items) {
            out.push_back(r.common_name);
        }
        std::sort(out.begin(), out.end());
        return out;
    };
    auto certificateCns = [&](const std::string& text) {
        CertificateFilter f;
        f.text = text;
        f.now = 1;
        std::vector<std::string> out;
        for (const auto& v : store->findCertificates(f).items) {
            out.push_back(v.certificate.common_name);
        }
        std::sort(out.begin(), out.end());
        return out;
    };
    using Cns = std::vector<std::string>;
    for (const auto& search : {std::function<Cns(const std::string&)>(requestCns),
                               std::function<Cns(const std::string&)>(certificateCns)}) {
        CHECK(search("%") == Cns{"50%off"});
        CHECK(search("50%") == Cns{"50%off"});
        CHECK(search("0%o") == Cns{"50%off"});
        CHECK(search("_") == Cns{"a_b"});
        CHECK(search("a_b") == Cns{"a_b"});
        CHECK(search("\\") == Cns{"back\\slash"});
        CHECK(search("k\\s") == Cns{"back\\slash"});
        CHECK(search("%%").empty());
        CHECK(search("off") == Cns{"50%off", "50Xoff"});  // plain text still a substring
    }
}

TEST_CASE("store v2: findCertificates — text, state at now, expiring_before, paging") {
    TempDir dir;
    const std::string path = dir.file("ra.db");
    auto store = openSqliteStore(path);
    int n = 0;
    auto issue = [&](const std::string& serial, const std::string& cn, const std::string& model,
                     const std::string& mac, std::int64_t not_before, std::int64_t not_after) {
        ++n;
        RequestRecord r = deviceRequest("tx" + std::to_string(n), cn, model, mac, 100 + n);
        CertificateRecord c = sampleCertificate(serial, cn, not_after);
        c.not_before = not_before;
        store->addIssuedRequest(r, c, event("enroll"));
    };
    // Newest first is by not_before: 0A01, 0A02, 0B03 = 0B04 (serial), 0C05, 0C06.
    issue("0A01", "phone-1.example.nl", "CP-8841", "00:1A:2B:3C:4D:5E", kNow - 100,
          kNow + 10 * kDay);  // valid, expiring within 30 days
    issue("0A02", "phone-2.example.nl", "CP-8875", "00:AA:BB:CC:DD:EE", kNow - 200,
          kNow + 400 * kDay);  // valid
    {  // no request: valid through the last second kNow; 0A01 superseded it
        RawDb raw(path);
        REQUIRE(raw.exec("INSERT INTO certificates (serial, subject, issuer, common_name, "
                         "not_before, not_after, der, superseded_by) VALUES ('0B03', "
                         "'CN=phone-1.example.nl', 'CN=CA', 'phone-1.example.nl', " +
                         std::to_string(kNow - 300) + ", " + std::to_string(kNow) +
                         ", x'30', '0A01')") == "");
    }
    issue("0B04", "laptop_7", "", "", kNow - 300, kNow - 1);  // expired, non-MIC
    issue("0C05", "phone-3.example.nl", "CP-8841", "00:11:22:33:44:FF", kNow - 400,
          kNow + 5 * kDay);  // revoked below
    issue("0C06", "laptopX7", "", "", kNow - 500, kNow - 1000);  // expired, then revoked
    REQUIRE(store->revoke("0C05", 1, kNow - 50, event("revoke")));
    REQUIRE(store->revoke("0C06", 4, kNow - 40, event("revoke")));

    auto find = [&](CertificateFilter f) {
        if (f.now == 0) {
            f.now = kNow;
        }
        const auto page = store->findCertificates(f);
        CHECK(page.total == page.items.size());
        return serials(page);
    };
    CertificateFilter f;
    CHECK(find(f) == Serials{"0A01", "0A02", "0B03", "0B04", "0C05", "0C06"});

    SUBCASE("the view carries the request's model and mac") {
        f.now = kNow;
        const auto page = store->findCertificates(f);
        REQUIRE(page.items.size() == 6);
        CHECK(page.items[0].model == "CP-8841");
        CHECK(page.items[0].mac == "00:1A:2B:3C:4D:5E");
        checkSameCertificate(page.items[0].certificate, *store->findCertificate("0A01"));
        CHECK(page.items[1].model == "CP-8875");
        CHECK(page.items[1].mac == "00:AA:BB:CC:DD:EE");
        CHECK(page.items[2].certificate.request_id == 0);  // no request
        CHECK(page.items[2].model.empty());
        CHECK(page.items[2].mac.empty());
        CHECK(page.items[3].certificate.serial == "0B04");  // non-MIC request
        CHECK(page.items[3].model.empty());
        CHECK(page.items[3].mac.empty());
        CHECK(page.items[4].certificate.revoked);
        CHECK(page.items[4].certificate.revocation_reason == 1);
    }
    SUBCASE("state at a given now; notAfter inclusive; revoked wins over expired") {
        f.state = CertificateState::valid;
        CHECK(find(f) == Serials{"0A01", "0A02", "0B03"});
        f.state = CertificateState::expired;
        CHECK(find(f) == Serials{"0B04"});
        f.state = CertificateState::revoked;
        CHECK(find(f) == Serials{"0C05", "0C06"});
        f.now = kNow + 1;
        f.state = CertificateState::valid;
        CHECK(find(f) == Serials{"0A01", "0A02"});
        f.state = CertificateState::expired;
        CHECK(find(f) == Serials{"0B03", "0B04"});
        f.now = kNow + 11 * kDay;
        f.state = CertificateState::valid;
        CHECK(find(f) == Serials{"0A02"});
        f.now = kNow - 2000;  // before anything expired
        f.state = CertificateState::expired;
        CHECK(find(f).empty());
    }
    SUBCASE("now = 0 is the current time") {
        f.state = CertificateState::valid;
        f.now = 0;
        const auto implicit = serials(store->findCertificates(f));
        f.now = static_cast<std::int64_t>(std::time(nullptr));
        CHECK(serials(store->findCertificates(f)) == implicit);
        f.now = std::numeric_limits<std::int64_t>::max();  // nothing is valid then
        CHECK(store->findCertificates(f).items.empty());
    }
    SUBCASE("expiring_before: valid and not_after before it") {
        f.expiring_before = kNow + 30 * kDay;
        CHECK(find(f) == Serials{"0A01", "0B03"});  // 0C05 is revoked, 0B04 expired
        f.now = kNow + 1;
        CHECK(find(f) == Serials{"0A01"});
        f.now = kNow;
        f.expiring_before = kNow + 10 * kDay;  // exclusive
        CHECK(find(f) == Serials{"0B03"});
        f.expiring_before = kNow + 10 * kDay + 1;
        CHECK(find(f) == Serials{"0A01", "0B03"});
        f.state = CertificateState::valid;
        CHECK(find(f) == Serials{"0A01", "0B03"});
        f.state = CertificateState::expired;
        CHECK(find(f).empty());
        f.state = CertificateState::revoked;
        CHECK(find(f).empty());
        f.state.reset();
        f.text = "phone-1";
        f.expiring_before = kNow + 30 * kDay;
        CHECK(find(f) == Serials{"0A01", "0B03"});
        f.text = "phone-2";
        CHECK(find(f).empty());
    }
    SUBCASE("text: CN substring, serial prefix, or exactly the MAC") {
        f.text = "phone-1";
        CHECK(find(f) == Serials{"0A01", "0B03"});
        f.text = "PHONE-1.EXAMPLE";  // CN in any case
        CHECK(find(f) == Serials{"0A01", "0B03"});
        f.text = "0a";  // serial prefix, upper-cased
        CHECK(find(f) == Serials{"0A01", "0A02"});
        f.text = "0C0";
        CHECK(find(f) == Serials{"0C05", "0C06"});
        f.text = "A01";  // inside the serial, but not a prefix
        CHECK(find(f).empty());
        f.text = "00:1A:2B:3C:4D:5E";
        CHECK(find(f) == Serials{"0A01"});
        f.text = "00:1a:2b:3c:4d:5e";  // upper-cased like the serial
        CHECK(find(f) == Serials{"0A01"});
        f.text = "00:11:22:33:44:FF";  // revoked ones are found too
        CHECK(find(f) == Serials{"0C05"});
        for (const char* other : {"00:1A:2B:3C:4D", "1A:2B:3C:4D:5E", "001A2B3C4D5E",
                                  "00-1A-2B-3C-4D-5E"}) {
            f.text = other;
            CHECK_MESSAGE(find(f).empty(), other);
        }
        f.text = "laptop";
        CHECK(find(f) == Serials{"0B04", "0C06"});
        f.state = CertificateState::revoked;
        CHECK(find(f) == Serials{"0C06"});
        f.text = "phone";
        f.state = CertificateState::valid;
        CHECK(find(f) == Serials{"0A01", "0A02", "0B03"});
        f.state = CertificateState::revoked;
        CHECK(find(f) == Serials{"0C05"});
    }
    SUBCASE("paging and total") {
        f.now = kNow;
        f.limit = 2;
        auto page = store->findCertificates(f);
        CHECK(page.total == 6);
        CHECK(serials(page) == Serials{"0A01", "0A02"});
        f.offset = 2;
        page = store->findCertificates(f);
        CHECK(page.total == 6);
        CHECK(serials(page) == Serials{"0B03", "0B04"});
        f.offset = 4;
        page = store->findCertificates(f);
        CHECK(serials(page) == Serials{"0C05", "0C06"});
        f.offset = 6;
        page = store->findCertificates(f);
        CHECK(page.total == 6);
        CHECK(page.items.empty());
        f.offset = 1;
        f.limit = 0;  // clamped to 1
        page = store->findCertificates(f);
        CHECK(serials(page) == Serials{"0A02"});
        f.offset = 0;
        f.limit = 1;
        f.state = CertificateState::valid;
        page = store->findCertificates(f);
        CHECK(page.total == 3);
        CHECK(serials(page) == Serials{"0A01"});
    }
}

TEST_CASE("store v2: countRequests and countValidCertificates") {
    TempDir dir;
    auto store = openSqliteStore(dir.file("ra.db"));
    CHECK(store->countRequests(RequestStatus::pending) == 0);
    CHECK(store->countValidCertificates(0, std::numeric_limits<std::int64_t>::max()) == 0);
    addSearchRequests(*store);
    CHECK(store->countRequests(RequestStatus::pending) == 4);
    CHECK(store->countRequests(RequestStatus::issued) == 1);
    CHECK(store->countRequests(RequestStatus::rejected) == 1);

    int n = 0;
    auto issue = [&](const std::string& serial, std::int64_t not_after) {
        ++n;
        RequestRecord r = sampleRequest("c" + std::to_string(n), "cn" + std::to_string(n));
        store->addIssuedRequest(r, sampleCertificate(serial, r.common_name, not_after),
                                event("enroll"));
    };
    issue("V1", kNow);             // last valid second is kNow
    issue("V2", kNow + 10 * kDay);
    issue("V3", kNow - 1);
    issue("R1", kNow + kDay);      // revoked below
    REQUIRE(store->revoke("R1", 0, kNow, event("revoke")));
    CHECK(store->countRequests(RequestStatus::issued) == 5);

    constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
    // 0A02 from addSearchRequests expires in 2100.
    CHECK(store->countValidCertificates(kNow, kMax) == 3);      // V1, V2, 0A02
    CHECK(store->countValidCertificates(kNow + 1, kMax) == 2);  // V2, 0A02
    CHECK(store->countValidCertificates(kNow, kNow + 30 * kDay) == 2);  // V1, V2
    CHECK(store->countValidCertificates(kNow - 1, kNow) == 1);  // V3: [from, to)
    CHECK(store->countValidCertificates(kNow, kNow) == 0);
    CHECK(store->countValidCertificates(0, kMax) == 4);
}

TEST_CASE("store v2: tokens — add, find, list, delete, each with its audit event") {
    TempDir dir;
    const std::string path = dir.file("ra.db");
    auto store = openSqliteStore(path);
    const Bytes hash(32, 0xab);
    auto token = [&](const std::string& id, const std::string& name, const std::string& role) {
        TokenRecord t;
        t.id = id;
        t.name = name;
        t.role = role;
        t.secret_hash = hash;
        t.secret_hash[0] = static_cast<std::uint8_t>(name.size());
        t.created_by = "cli:root";
        return t;
    };
    auto auditEvent = [](const std::string& action, const std::string& name) {
        AuditEvent e = event(action);
        e.actor = "cli:root";
        e.identity = name;
        return e;
    };

    TokenRecord bob = token("0000ffff", "bob", "viewer");
    bob.created_at = 1234;
    store->addToken(bob, auditEvent("token-create", "bob"));
    TokenRecord alice = token("0a1b2c3d", "alice", "approver");
    store->addToken(alice, auditEvent("token-create", "alice"));
    CHECK(auditCount(*store) == 2);
    const auto created = store->listAudit(1, 0);
    REQUIRE(created.size() == 1);
    CHECK(created[0].action == "token-create");
    CHECK(created[0].identity == "alice");
    CHECK(created[0].at > 0);

    const auto found = store->findToken("0a1b2c3d");
    REQUIRE(found);
    CHECK(found->id == "0a1b2c3d");
    CHECK(found->name == "alice");
    CHECK(found->role == "approver");
    CHECK(found->secret_hash == alice.secret_hash);
    CHECK(found->created_at > 0);  // stamped
    CHECK(found->created_by == "cli:root");
    CHECK(store->findToken("0000ffff")->created_at == 1234);  // kept
    CHECK_FALSE(store->findToken("alice"));  // by id, not name
    CHECK_FALSE(store->findToken("0A1B2C3D"));
    CHECK_FALSE(store->findToken(""));

    auto names = [&] {
        std::vector<std::string> out;
        for (const auto& t : store->listTokens()) {
            out.push_back(t.name);
        }
        return out;
    };
    CHECK(names() == std::vector<std::string>{"alice", "bob"});

    SUBCASE("a clashing name or id is DuplicateToken and writes nothing") {
        CHECK_THROWS_AS(store->addToken(token("12345678", "alice", "viewer"),
                                        auditEvent("token-create", "alice")),
                        DuplicateToken);
        CHECK_THROWS_AS(store->addToken(token("0a1b2c3d", "carol", "viewer"),
                                        auditEvent("token-create", "carol")),
                        DuplicateToken);
        CHECK(names() == std::vector<std::string>{"alice", "bob"});
        CHECK(store->findToken("0a1b2c3d")->name == "alice");
        CHECK_FALSE(store->findToken("12345678"));
        CHECK(auditCount(*store) == 2);
    }
    SUBCASE("invalid tokens are a StoreError, not a duplicate, and write nothing") {
        auto kind = [&](const TokenRecord& t) -> std::string {
            try {
                store->addToken(t, auditEvent("token-create", t.name));
            } catch (const DuplicateToken&) {
                return "duplicate";
            } catch (const StoreError&) {
                return "error";
            }
            return "added";
        };
        CHECK(kind(token("11111111", "carol", "admin")) == "error");
        CHECK(kind(token("11111111", "", "viewer")) == "error");
        CHECK(kind(token("", "carol", "viewer")) == "error");
        TokenRecord short_hash = token("11111111", "carol", "viewer");
        short_hash.secret_hash = Bytes{1, 2, 3};
        CHECK(kind(short_hash) == "error");
        CHECK(names() == std::vector<std::string>{"alice", "bob"});
        CHECK(auditCount(*store) == 2);
        CHECK(kind(token("11111111", "carol", "viewer")) == "added");
    }
    SUBCASE("delete by name") {
        CHECK(store->deleteToken("alice", auditEvent("token-delete", "alice")));
        CHECK_FALSE(store->findToken("0a1b2c3d"));
        CHECK(names() == std::vector<std::string>{"bob"});
        CHECK(auditCount(*store) == 3);
        CHECK(store->listAudit(1, 0)[0].action == "token-delete");
        // Unknown (or already deleted): false, no audit row.
        CHECK_FALSE(store->deleteToken("alice", auditEvent("token-delete", "alice")));
        CHECK_FALSE(store->deleteToken("0000ffff", auditEvent("token-delete", "x")));  // an id
        CHECK(auditCount(*store) == 3);
        // The name and id are free again.
        store->addToken(token("0a1b2c3d", "alice", "viewer"), auditEvent("token-create", "alice"));
        CHECK(store->findToken("0a1b2c3d")->role == "viewer");
    }
    SUBCASE("token and audit row are one transaction") {
        // Make the audit insert fail for one action, from outside the store.
        RawDb raw(path);
        REQUIRE(raw.exec("CREATE TRIGGER test_explode BEFORE INSERT ON audit "
                         "WHEN NEW.action = 'explode' BEGIN SELECT RAISE(ABORT, 'boom'); END") ==
                "");
        CHECK_THROWS_AS(store->addToken(token("22222222", "dave", "viewer"),
                                        auditEvent("explode", "dave")),
                        StoreError);
        CHECK_FALSE(store->findToken("22222222"));  // the token insert was rolled back
        CHECK_THROWS_AS(store->deleteToken("bob", auditEvent("explode", "bob")), StoreError);
        CHECK(store->findToken("0000ffff"));  // the delete was rolled back
        CHECK(names() == std::vector<std::string>{"alice", "bob"});
        CHECK(auditCount(*store) == 2);
    }
    SUBCASE("tokens survive reopening and are visible to a second store") {
        store.reset();
        auto reopened = openSqliteStore(path);
        REQUIRE(reopened->listTokens().size() == 2);
        CHECK(reopened->listTokens()[0].secret_hash == alice.secret_hash);
        RawDb raw(path);
        std::string expected_hex = "03";  // first byte: the name's length, then 0xab
        for (int i = 1; i < 32; ++i) {
            expected_hex += "AB";
        }
        CHECK(raw.scalar("SELECT hex(secret_hash) FROM tokens WHERE name = 'bob'") ==
              expected_hex);
        // Only the hash is stored: the table has no other blob or secret column.
        CHECK(raw.column("SELECT name FROM pragma_table_info('tokens') ORDER BY cid") ==
              std::vector<std::string>{"id", "name", "role", "secret_hash", "created_at",
                                       "created_by"});
    }
}

TEST_CASE("store v2: ping") {
    TempDir dir;
    const std::string path = dir.file("ra.db");
    auto store = openSqliteStore(path);
    CHECK_NOTHROW(store->ping());
    RawDb raw(path);
    // Another process moved the schema on (a newer release migrated it):
    // this store must not keep reporting healthy.
    REQUIRE(raw.exec("PRAGMA user_version = 4") == "");
    std::string message;
    try {
        store->ping();
    } catch (const StoreError& e) {
        message = e.what();
    }
    CHECK(message.find("ping") != std::string::npos);
    CHECK(message.find("4") != std::string::npos);
    REQUIRE(raw.exec("PRAGMA user_version = 3") == "");
    CHECK_NOTHROW(store->ping());
}

TEST_CASE("store v2: a v1 database with data is migrated in place to v2 (and on to v3)") {
    TempDir dir;
    const std::string path = dir.file("ra.db");
    createV1Database(path);
    {
        RawDb raw(path);
        const std::string columns =
            "INSERT INTO requests (id, transaction_id, message_type, method, identity, "
            "common_name, csr, public_key_id, signer, status, reason, peer, cert_serial, "
            "details, created_at, updated_at) VALUES ";
        const std::string mic =
            R"('{"model":"CP-8841","mac":"00:1A:2B:3C:4D:5E","pid":"CP-8841","sn":"FCH1","manufacturer_issuer":"CN=Cisco","sans":[]}')";
        const std::string mic2 =
            R"('{"model":"CP-8875","mac":"00:1A:2B:3C:4D:5E","pid":"CP-8875","sn":"FCH2","manufacturer_issuer":"CN=Cisco","sans":[],"renews":"AA"}')";
        REQUIRE(raw.exec(
                    "PRAGMA foreign_keys = ON; BEGIN;" + columns +
                    "(1, 'tx1', 'PKCSReq', 'mic', 'CN=CP-8841-SEP', 'SEP001A2B3C4D5E', x'3001', "
                    "x'aa', x'3002', 'pending', 'approval-mic is manual', '192.0.2.1', NULL, " +
                    mic + ", 1000, 1000);" + columns +
                    "(2, 'tx2', 'RenewalReq', 'renewal', 'CN=CP-8875-SEP', 'SEP001A2B3C4D5E', "
                    "x'3003', x'bb', x'3004', 'issued', '', '192.0.2.2', 'V1CERT1', " +
                    mic2 + ", 2000, 2100);" + columns +
                    "(3, 'tx3', 'PKCSReq', 'challenge', 'challenge for CN laptop', 'laptop', "
                    "x'30', x'cc', x'30', 'rejected', 'no', '192.0.2.3', NULL, "
                    "'{\"sans\":[]}', 3000, 3100);" + columns +
                    "(4, 'tx4', 'PKCSReq', 'mic', 'x', 'odd1', x'30', x'dd', x'30', 'pending', "
                    "'', '', NULL, '', 4000, 4000);" + columns +
                    "(5, 'tx5', 'PKCSReq', 'mic', 'x', 'odd2', x'30', x'ee', x'30', 'pending', "
                    "'', '', NULL, '{\"model\":8841,\"mac\":null}', 5000, 5000);"
                    "INSERT INTO certificates (serial, subject, issuer, common_name, not_before, "
                    "not_after, der, request_id) VALUES ('V1CERT1', 'CN=SEP001A2B3C4D5E', "
                    "'CN=CA', 'SEP001A2B3C4D5E', 2000, 4102444800, x'308201', 2);"
                    "INSERT INTO certificates (serial, subject, issuer, common_name, not_before, "
                    "not_after, der, request_id, revoked, revocation_reason, revoked_at) VALUES "
                    "('V1CERT2', 'CN=old', 'CN=CA', 'old', 500, 4102444800, x'308202', NULL, 1, "
                    "1, 900);"
                    "INSERT INTO audit (at, actor, action, outcome, method, identity, reason, "
                    "request_id, serial, peer, transaction_id) VALUES "
                    "(1000, 'scep', 'enroll', 'pending', 'mic', 'i', '', 1, '', 'p', 'tx1'), "
                    "(2000, 'scep', 'enroll', 'success', 'renewal', 'i', '', 2, 'V1CERT1', "
                    "'p', 'tx2'), "
                    "(3100, 'cli:root', 'reject', 'success', '', '', 'no', 3, '', '', 'tx3');"
                    "COMMIT;") == "");
    }
    auto store = openSqliteStore(path);
    RawDb raw(path);
    CHECK(raw.scalar("PRAGMA user_version") == "3");
    CHECK(raw.scalar("PRAGMA application_id") == "1396917584");
    CHECK(raw.scalar("PRAGMA integrity_check") == "ok");
    CHECK(raw.column("PRAGMA foreign_key_check").empty());

    SUBCASE("the data is intact") {
        const auto requests = store->listRequests(std::nullopt);
        REQUIRE(requests.size() == 5);
        CHECK(requests[0].transaction_id == "tx1");
        CHECK(requests[0].csr == bytes({0x30, 0x01}));
        CHECK(requests[0].reason == "approval-mic is manual");
        CHECK(requests[0].details.find("\"model\":\"CP-8841\"") != std::string::npos);
        CHECK(requests[1].status == RequestStatus::issued);
        CHECK(requests[1].cert_serial == "V1CERT1");
        CHECK(requests[1].message_type == "RenewalReq");
        CHECK(requests[1].updated_at == 2100);
        CHECK(requests[2].status == RequestStatus::rejected);
        CHECK(requests[3].details.empty());
        const auto certificates = store->listCertificates();
        REQUIRE(certificates.size() == 2);
        CHECK(certificates[0].request_id == 2);
        CHECK(certificates[0].der == bytes({0x30, 0x82, 0x01}));
        CHECK(certificates[1].revoked);
        CHECK(certificates[1].revoked_at == 900);
        CHECK(serials(store->revokedCertificates()) == std::vector<std::string>{"V1CERT2"});
        const auto audit = store->listAudit(10, 0);
        REQUIRE(audit.size() == 3);
        CHECK(audit[0].action == "reject");
        CHECK(audit[2].transaction_id == "tx1");
        // Still append-only after the migration.
        CHECK(raw.exec("UPDATE audit SET reason = 'forged'").find("append-only") !=
              std::string::npos);
        CHECK(raw.exec("DELETE FROM audit").find("append-only") != std::string::npos);
    }
    SUBCASE("the new searches work on the old rows") {
        RequestFilter f;
        f.mac = "00:1A:2B:3C:4D:5E";
        CHECK(findIds(*store, f) == Ids{2, 1});
        f = {};
        f.model = "CP-8841";
        CHECK(findIds(*store, f) == Ids{1});  // row 5's numeric model is not a match
        f.model = "8841";
        CHECK(findIds(*store, f).empty());
        f = {};
        f.status = RequestStatus::pending;
        f.text = "odd";
        CHECK(findIds(*store, f) == Ids{5, 4});

        CertificateFilter c;
        c.now = 3000;
        c.text = "00:1A:2B:3C:4D:5E";
        const auto page = store->findCertificates(c);
        REQUIRE(page.items.size() == 1);
        CHECK(page.items[0].certificate.serial == "V1CERT1");
        CHECK(page.items[0].model == "CP-8875");
        CHECK(page.items[0].mac == "00:1A:2B:3C:4D:5E");
        c.text.clear();
        CHECK(serials(store->findCertificates(c)) ==
              std::vector<std::string>{"V1CERT1", "V1CERT2"});
        c.state = CertificateState::revoked;
        CHECK(serials(store->findCertificates(c)) == std::vector<std::string>{"V1CERT2"});
        CHECK(store->countRequests(RequestStatus::pending) == 3);
        CHECK(store->countValidCertificates(0, std::numeric_limits<std::int64_t>::max()) == 1);
    }
    SUBCASE("new rows, tokens, reopening") {
        RequestRecord r = deviceRequest("tx6", "SEP001A2B3C4D5E", "CP-8841", "00:1A:2B:3C:4D:5E",
                                        6000);
        store->addPendingRequest(r, event("enroll", "pending"));
        CHECK(r.id == 6);
        TokenRecord t;
        t.id = "abcdef01";
        t.name = "alice";
        t.role = "approver";
        t.secret_hash = Bytes(32, 1);
        store->addToken(t, event("token-create"));
        store.reset();
        auto reopened = openSqliteStore(path);  // already v3: no second migration
        CHECK(raw.scalar("PRAGMA user_version") == "3");
        RequestFilter f;
        f.mac = "00:1A:2B:3C:4D:5E";
        CHECK(findIds(*reopened, f) == Ids{6, 2, 1});
        CHECK(reopened->listTokens().size() == 1);
        CHECK(reopened->listAudit(100, 0).size() == 5);
        CHECK_NOTHROW(reopened->ping());
    }
    SUBCASE("a migrated database has the same schema as a new one") {
        auto fresh_store = openSqliteStore(dir.file("fresh.db"));
        RawDb fresh(dir.file("fresh.db"));
        const std::string schema =
            "SELECT type || ' ' || name || ' ' || tbl_name || ' ' || coalesce(sql, '') "
            "FROM sqlite_master WHERE name <> 'sqlite_sequence' ORDER BY type, name";
        const auto migrated = raw.column(schema);
        CHECK(migrated == fresh.column(schema));
        CHECK(migrated.size() > 10);
        CHECK(raw.count("SELECT count(*) FROM pragma_table_xinfo('requests') "
                        "WHERE name IN ('model', 'mac') AND hidden = 2") == 2);  // VIRTUAL
    }
}

TEST_CASE("store v2: a failing migration leaves the v1 database untouched") {
    TempDir dir;
    const std::string path = dir.file("ra.db");
    createV1Database(path);
    {
        RawDb raw(path);
        // Something in the way of the migration's last step, after the
        // ALTERs and CREATE INDEXes have run.
        REQUIRE(raw.exec("INSERT INTO requests (transaction_id, message_type, method, identity, "
                         "common_name, csr, public_key_id, signer, status, reason, peer, "
                         "details, created_at, updated_at) VALUES ('tx1', 'PKCSReq', 'mic', '', "
                         "'SEP1', x'', x'', x'', 'pending', '', '', '{\"mac\":\"M\"}', 1, 1);"
                         "CREATE TABLE tokens (x INTEGER);") == "");
    }
    std::string message;
    try {
        openSqliteStore(path);
    } catch (const StoreError& e) {
        message = e.what();
    }
    CHECK(message.find("tokens") != std::string::npos);
    RawDb raw(path);
    CHECK(raw.scalar("PRAGMA user_version") == "1");
    CHECK(raw.count("SELECT count(*) FROM pragma_table_xinfo('requests') "
                    "WHERE name IN ('model', 'mac')") == 0);
    CHECK(raw.count("SELECT count(*) FROM sqlite_master WHERE name IN ('requests_model', "
                    "'requests_mac', 'requests_created_at', 'certificates_not_before')") == 0);
    CHECK(raw.scalar("SELECT common_name FROM requests") == "SEP1");
    // Once the obstacle is gone, the migration goes through.
    REQUIRE(raw.exec("DROP TABLE tokens") == "");
    auto store = openSqliteStore(path);
    RequestFilter f;
    f.mac = "M";
    CHECK(findIds(*store, f) == Ids{1});
}

TEST_CASE("store v3: a v4 database is refused and left alone") {
    TempDir dir;
    const std::string path = dir.file("ra.db");
    openSqliteStore(path).reset();
    RawDb raw(path);
    REQUIRE(raw.exec("PRAGMA user_version = 4") == "");
    std::string message;
    try {
        openSqliteStore(path);
    } catch (const StoreError& e) {
        message = e.what();
    }
    CHECK(message.find("version 4") != std::string::npos);
    CHECK(message.find("newer") != std::string::npos);
    CHECK(raw.scalar("PRAGMA user_version") == "4");
}

TEST_CASE("store v2: 10,000 requests — mac/model/status searches use an index") {
    TempDir dir;
    const std::string path = dir.file("ra.db");
    auto store = openSqliteStore(path);
    RawDb raw(path);
    // One transaction from a second connection: 10,000 requests (every third
    // issued), their 3,333 certificates and 6,667 certificates without one.
    REQUIRE(raw.exec(R"sql(
        BEGIN;
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000)
        INSERT INTO requests (id, transaction_id, message_type, method, identity, common_name,
                              csr, public_key_id, signer, status, reason, peer, cert_serial,
                              details, created_at, updated_at)
        SELECT i, 'tx-' || i, 'PKCSReq', 'mic', 'CN=CP-' || (8800 + i % 50) || '-SEP',
               printf('SEP%012X', i), x'30', x'00', x'30',
               CASE i % 3 WHEN 0 THEN 'issued' WHEN 1 THEN 'pending' ELSE 'rejected' END,
               '', '192.0.2.1', CASE WHEN i % 3 = 0 THEN printf('R%08X', i) END,
               json_object('model', 'CP-' || (8800 + i % 50),
                           'mac', printf('00:00:00:00:%02X:%02X', i / 256, i % 256),
                           'pid', 'CP-' || (8800 + i % 50), 'sn', 'FCH' || i, 'sans', json('[]')),
               1700000000 + i, 1700000000 + i
        FROM n;
        INSERT INTO certificates (serial, subject, issuer, common_name, not_before, not_after,
                                  der, request_id)
        SELECT cert_serial, 'CN=' || common_name, 'CN=CA', common_name, created_at,
               created_at + 365 * 86400, x'30', id
        FROM requests WHERE status = 'issued';
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 6667)
        INSERT INTO certificates (serial, subject, issuer, common_name, not_before, not_after,
                                  der, request_id)
        SELECT printf('U%08X', i), 'CN=x' || i, 'CN=CA', 'x' || i, 1600000000 + i,
               1700000000 + i, x'30', NULL
        FROM n;
        COMMIT;)sql") == "");
    REQUIRE(raw.count("SELECT count(*) FROM requests") == 10000);
    REQUIRE(raw.count("SELECT count(*) FROM certificates") == 10000);

    // The plans of the exact statements the store prepares.
    auto usesIndex = [&](const std::string& sql, const std::string& index) {
        const auto plan = raw.plan(sql);
        std::string text;
        bool scans = false;
        bool uses = false;
        for (const auto& line : plan) {
            text += line + "\n";
            scans = scans || line.rfind("SCAN requests", 0) == 0 || line.rfind("SCAN r", 0) == 0;
            uses = uses || line.find("INDEX " + index + " ") != std::string::npos;
        }
        INFO(sql);
        INFO(text);
        CHECK_FALSE(scans);
        CHECK(uses);
    };
    RequestFilter f;
    f.mac = "00:00:00:00:10:92";
    for (bool count : {true, false}) {
        usesIndex(sqliteStoreSearchSqlForTesting(f, count), "requests_mac");
    }
    f = {};
    f.model = "CP-8842";
    for (bool count : {true, false}) {
        usesIndex(sqliteStoreSearchSqlForTesting(f, count), "requests_model");
    }
    f = {};
    f.status = RequestStatus::pending;
    for (bool count : {true, false}) {
        usesIndex(sqliteStoreSearchSqlForTesting(f, count), "requests_status");
    }
    f = {};
    f.mac = "00:00:00:00:10:92";
    f.status = RequestStatus::issued;
    f.model = "CP-8842";
    f.text = "SEP";
    f.since = 1;
    f.until = 2000000000;
    for (bool count : {true, false}) {
        usesIndex(sqliteStoreSearchSqlForTesting(f, count), "requests_mac");
    }
    // The certificate search reaches requests through requests_mac only.
    CertificateFilter c;
    c.text = "00:00:00:00:10:92";
    for (bool count : {true, false}) {
        usesIndex(sqliteStoreSearchSqlForTesting(c, count), "requests_mac");
    }

    // And the answers are right at this size.
    f = {};
    f.mac = "00:00:00:00:10:92";  // 0x1092 = 4242
    auto page = store->findRequests(f);
    CHECK(page.total == 1);
    CHECK(ids(page) == Ids{4242});
    f = {};
    f.model = "CP-8842";  // i % 50 == 42
    page = store->findRequests(f);
    CHECK(page.total == 200);
    CHECK(page.items.size() == 50);
    CHECK(page.items.front().id == 9992);
    f = {};
    f.status = RequestStatus::pending;
    f.limit = 100000;  // clamped to 500
    page = store->findRequests(f);
    CHECK(page.total == 3334);
    CHECK(page.items.size() == 500);
    CHECK(page.items.front().id == 10000);
    f.limit = 500;
    f.offset = 3000;
    page = store->findRequests(f);
    CHECK(page.items.size() == 334);
    CHECK(page.items.back().id == 1);
    CHECK(store->countRequests(RequestStatus::issued) == 3333);

    c.now = 1800000000;
    const auto certs = store->findCertificates(c);
    CHECK(certs.total == 1);
    REQUIRE(certs.items.size() == 1);
    CHECK(certs.items[0].certificate.serial == "R00001092");
    CHECK(certs.items[0].model == "CP-8842");
    c = {};
    c.now = 1700010000;  // after every unlinked one, before every issued one
    c.state = CertificateState::expired;
    CHECK(store->findCertificates(c).total == 6667);
    c.limit = 100000;
    CHECK(store->findCertificates(c).items.size() == 500);
    c.state = CertificateState::valid;
    CHECK(store->findCertificates(c).total == 3333);
    CHECK(store->countValidCertificates(c.now, std::numeric_limits<std::int64_t>::max()) == 3333);
}

// ---- Store v3: one current certificate per identity, canonical CNs --------

namespace {

// Migration 1 -> 2 exactly as released (a frozen copy of kMigrationV2).
const char* const kV2Migration = R"sql(
ALTER TABLE requests ADD COLUMN model TEXT GENERATED ALWAYS AS (
    CASE WHEN json_valid(details) THEN
        CASE json_type(details, '$.model') WHEN 'text' THEN json_extract(details, '$.model') END
    END) VIRTUAL;
ALTER TABLE requests ADD COLUMN mac TEXT GENERATED ALWAYS AS (
    CASE WHEN json_valid(details) THEN
        CASE json_type(details, '$.mac') WHEN 'text' THEN json_extract(details, '$.mac') END
    END) VIRTUAL;
CREATE INDEX requests_model ON requests (model);
CREATE INDEX requests_mac ON requests (mac);
CREATE INDEX requests_created_at ON requests (created_at);
CREATE INDEX certificates_not_before ON certificates (not_before DESC, serial);

CREATE TABLE tokens (
    id          TEXT    NOT NULL PRIMARY KEY CHECK (id <> ''),
    name        TEXT    NOT NULL UNIQUE CHECK (name <> ''),
    role        TEXT    NOT NULL CHECK (role IN ('viewer', 'approver')),
    secret_hash BLOB    NOT NULL CHECK (length(secret_hash) = 32),
    created_at  INTEGER NOT NULL,
    created_by  TEXT    NOT NULL
) STRICT;
)sql";

// A v2 database as the second release left it.
void createV2Database(const std::string& path) {
    createV1Database(path);
    RawDb raw(path);
    REQUIRE(raw.exec(std::string("BEGIN;") + kV2Migration + "PRAGMA user_version = 2; COMMIT;") ==
            "");
}

std::vector<AuditEvent> auditWith(Store& store, const std::string& action) {
    std::vector<AuditEvent> out;
    for (const auto& e : store.listAudit(1000, 0)) {
        if (e.action == action) {
            out.push_back(e);
        }
    }
    return out;
}

CertificateRecord certificate(Store& store, const std::string& serial) {
    const auto found = store.findCertificate(serial);
    REQUIRE(found);
    return *found;
}

}  // namespace

TEST_CASE("store v3: the C++ and SQL canonical forms of a CN agree") {
    TempDir dir;
    RawDb raw(dir.file("x.db"), true);
    for (const char* cn : {"victim.example.nl", "VICTIM.example.nl", "Victim.Example.NL",
                                 "victim.example.nl.", "victim.example.nl...", "CP-8875-SEP001A2B3C4D5E",
                                 "a.b", "...", "Mixed-Case_0123 .Name.", "x"}) {
        CAPTURE(cn);
        CHECK(raw.scalar("SELECT lower(rtrim('" + std::string(cn) + "', '.'))") ==
              canonicalName(cn));
    }
    CHECK(canonicalName("Victim.Example.NL.") == "victim.example.nl");
}

TEST_CASE("store v3: issuing supersedes the identity's current certificate, with its audit event") {
    TempDir dir;
    auto store = openSqliteStore(dir.file("ra.db"));
    RequestRecord a = sampleRequest("tx-a", "Phone.Example.NL");
    CHECK(store->addIssuedRequest(a, sampleCertificate("A", "Phone.Example.NL"), event("enroll"))
              .empty());
    RequestRecord other = sampleRequest("tx-o", "other.example.nl");
    store->addIssuedRequest(other, sampleCertificate("O", "other.example.nl"), event("enroll"));
    // Another spelling of the same name is the same identity.
    RequestRecord b = sampleRequest("tx-b", "phone.example.nl.");
    CHECK(store->addIssuedRequest(b, sampleCertificate("B", "phone.example.nl."), event("enroll")) ==
          std::vector<std::string>{"A"});
    CHECK(certificate(*store, "A").superseded_by == "B");
    CHECK_FALSE(certificate(*store, "A").revoked);  // superseded, still valid
    CHECK(certificate(*store, "B").superseded_by.empty());
    CHECK(certificate(*store, "O").superseded_by.empty());
    const auto superseded = auditWith(*store, "supersede");
    REQUIRE(superseded.size() == 1);
    CHECK(superseded[0].serial == "A");
    CHECK(superseded[0].reason == "superseded by B");
    CHECK(superseded[0].request_id == b.id);
    CHECK(superseded[0].transaction_id == "tx-b");

    // A pending request approved later supersedes B the same way.
    RequestRecord c = sampleRequest("tx-c", "PHONE.example.nl");
    store->addPendingRequest(c, event("enroll", "pending"));
    std::vector<std::string> replaced;
    REQUIRE(store->issuePending(c.id, sampleCertificate("C", "PHONE.example.nl"), event("approve"),
                                {}, &replaced));
    CHECK(replaced == std::vector<std::string>{"B"});
    CHECK(certificate(*store, "B").superseded_by == "C");
    CHECK(serials(store->activeCertificatesFor("phone.example.nl", 1800000000, Store::Superseded::include)) ==
          std::vector<std::string>{"A", "B", "C"});  // all unexpired, none revoked
    CHECK(serials(store->activeCertificatesFor("phone.example.nl", 1800000000, Store::Superseded::exclude)) ==
          std::vector<std::string>{"C"});

    SUBCASE("the database itself allows one current certificate per identity") {
        RawDb raw(dir.file("ra.db"));
        const std::string error = raw.exec(
            "INSERT INTO certificates (serial, subject, issuer, common_name, not_before, "
            "not_after, der) VALUES ('D', 'CN=x', 'CN=CA', 'Phone.example.NL..', 1, 4102444800, "
            "x'30')");
        CHECK(error.find("UNIQUE constraint failed") != std::string::npos);
        // Revoked or superseded ones are no obstacle.
        CHECK(raw.exec("INSERT INTO certificates (serial, subject, issuer, common_name, "
                       "not_before, not_after, der, revoked) VALUES ('E', 'CN=x', 'CN=CA', "
                       "'phone.example.nl', 1, 4102444800, x'30', 1)") == "");
        CHECK(raw.scalar("PRAGMA foreign_key_check").empty());
        CHECK(raw.exec("PRAGMA foreign_keys = ON; UPDATE certificates SET superseded_by = "
                       "'NOPE' WHERE serial = 'E'")
                  .find("FOREIGN KEY") != std::string::npos);
    }
}

TEST_CASE("store v3: revoke_superseded also revokes, reason superseded") {
    TempDir dir;
    auto store = openSqliteStore(dir.file("ra.db"));
    RequestRecord a = sampleRequest("tx-a", "phone");
    store->addIssuedRequest(a, sampleCertificate("A", "phone"), event("enroll"));
    IssueRules rules;
    rules.revoke_superseded = true;
    rules.now = 1750000000;
    RequestRecord b = sampleRequest("tx-b", "phone");
    CHECK(store->addIssuedRequest(b, sampleCertificate("B", "phone"), event("enroll"), rules) ==
          std::vector<std::string>{"A"});
    const auto old = certificate(*store, "A");
    CHECK(old.revoked);
    CHECK(old.revocation_reason == 4);
    CHECK(old.revoked_at == 1750000000);
    CHECK(old.superseded_by == "B");
    CHECK(serials(store->revokedCertificates()) == std::vector<std::string>{"A"});
    const auto revoked = auditWith(*store, "revoke");
    REQUIRE(revoked.size() == 1);
    CHECK(revoked[0].reason == "CRLReason 4 (superseded by B)");
    CHECK(auditWith(*store, "supersede").empty());
}

TEST_CASE("store v3: exclusive issuing refuses while the identity holds an active certificate") {
    TempDir dir;
    auto store = openSqliteStore(dir.file("ra.db"));
    constexpr std::int64_t now = 2000000000;
    IssueRules exclusive;
    exclusive.exclusive = true;
    exclusive.now = now;
    RequestRecord a = sampleRequest("tx-a", "victim.example.nl");
    store->addIssuedRequest(a, sampleCertificate("A", "victim.example.nl", now), event("enroll"),
                            exclusive);
    const auto audit_before = auditCount(*store);
    for (const std::string& variant : std::vector<std::string>{
             "victim.example.nl", "VICTIM.example.nl", "Victim.Example.NL", "victim.example.nl."}) {
        CAPTURE(variant);
        RequestRecord r = sampleRequest("tx-" + variant, variant);
        try {
            store->addIssuedRequest(r, sampleCertificate("X-" + variant, variant), event("enroll"),
                                    exclusive);
            FAIL("issued for an identity that holds an active certificate");
        } catch (const IdentityTaken& e) {
            CHECK(e.serial() == "A");
            CHECK(std::string(e.what()).find("already holds active certificate A") !=
                  std::string::npos);
        }
        CHECK_FALSE(store->findRequestByTransaction("tx-" + variant));  // nothing written
    }
    CHECK(auditCount(*store) == audit_before);
    CHECK(store->listCertificates().size() == 1);

    SUBCASE("approving a pending request is refused the same way, and it stays pending") {
        RequestRecord p = sampleRequest("tx-p", "Victim.example.nl");
        store->addPendingRequest(p, event("enroll", "pending"));
        CHECK_THROWS_AS(store->issuePending(p.id, sampleCertificate("P", "Victim.example.nl"),
                                            event("approve"), exclusive),
                        IdentityTaken);
        CHECK(store->findRequest(p.id)->status == RequestStatus::pending);
    }
    SUBCASE("a superseded but unexpired certificate still counts") {
        RequestRecord m = sampleRequest("tx-m", "victim.example.nl");
        store->addIssuedRequest(m, sampleCertificate("M", "victim.example.nl"), event("enroll"));
        REQUIRE(store->revoke("M", 0, now, event("revoke")));
        RequestRecord r = sampleRequest("tx-r", "victim.example.nl");
        CHECK_THROWS_AS(store->addIssuedRequest(r, sampleCertificate("R", "victim.example.nl"),
                                                event("enroll"), exclusive),
                        IdentityTaken);  // A is superseded by M, but not revoked
    }
    SUBCASE("once it has expired, the identity is free, and the expired one is superseded") {
        exclusive.now = now + 1;
        RequestRecord r = sampleRequest("tx-r", "VICTIM.EXAMPLE.NL");
        CHECK(store->addIssuedRequest(r, sampleCertificate("R", "VICTIM.EXAMPLE.NL"),
                                      event("enroll"), exclusive) ==
              std::vector<std::string>{"A"});
    }
}

TEST_CASE("store v3: a renewal needs its certificate still current, checked in the transaction") {
    TempDir dir;
    auto store = openSqliteStore(dir.file("ra.db"));
    constexpr std::int64_t now = 2000000000;
    RequestRecord a = sampleRequest("tx-a", "phone");
    store->addIssuedRequest(a, sampleCertificate("A", "phone", now + 100), event("enroll"));
    IssueRules renewal;
    renewal.renews = "A";
    renewal.now = now;
    auto refused = [&](const std::string& renews, const std::string& reason) {
        renewal.renews = renews;
        RequestRecord r = sampleRequest("tx-" + renews + reason, "phone");
        try {
            store->addIssuedRequest(r, sampleCertificate("N-" + reason, "phone"), event("enroll"),
                                    renewal);
            FAIL("renewed " << renews);
        } catch (const RenewedCertificateGone& e) {
            CHECK(std::string(e.what()).find(reason) != std::string::npos);
        }
        CHECK_FALSE(store->findRequestByTransaction(r.transaction_id));
    };
    refused("UNKNOWN", "is not in this RA's records");
    renewal.now = now + 101;
    refused("A", "has expired");
    renewal.now = now;
    RequestRecord b = sampleRequest("tx-b", "phone");
    renewal.renews = "A";
    CHECK(store->addIssuedRequest(b, sampleCertificate("B", "phone"), event("enroll"), renewal) ==
          std::vector<std::string>{"A"});
    refused("A", "was superseded by B");  // each certificate renews once
    REQUIRE(store->revoke("B", 1, now, event("revoke")));
    refused("B", "is revoked");
}

TEST_CASE("store v3: concurrent issuing keeps the identity rules (threads and two stores)") {
    TempDir dir;
    const std::string path = dir.file("ra.db");
    auto server = openSqliteStore(path);
    auto cli = openSqliteStore(path);
    constexpr int kWriters = 12;
    for (int round = 0; round < 10; ++round) {
        CAPTURE(round);
        const std::string cn = "race-" + std::to_string(round) + ".example.nl";
        // Challenge approvals: 12 pending requests for one CN, approved at once.
        std::vector<std::int64_t> pending;
        for (int i = 0; i < kWriters; ++i) {
            RequestRecord r = sampleRequest("p-" + std::to_string(round) + "-" + std::to_string(i),
                                            i % 2 ? cn : "Race-" + std::to_string(round) +
                                                             ".Example.NL.");
            server->addPendingRequest(r, event("enroll", "pending"));
            pending.push_back(r.id);
        }
        std::atomic<int> approved{0}, taken{0}, other{0}, superseding{0};
        std::vector<std::thread> threads;
        for (int i = 0; i < kWriters; ++i) {
            threads.emplace_back([&, i] {
                Store& store = i % 2 ? *cli : *server;
                IssueRules exclusive;
                exclusive.exclusive = true;
                try {
                    if (store.issuePending(pending[i],
                                           sampleCertificate("C" + std::to_string(round) + "-" +
                                                                 std::to_string(i),
                                                             cn),
                                           event("approve"), exclusive)) {
                        ++approved;
                    }
                } catch (const IdentityTaken&) {
                    ++taken;
                } catch (const std::exception&) {
                    ++other;
                }
                // And MIC enrollments of another identity, which supersede.
                RequestRecord m = sampleRequest("m-" + std::to_string(round) + "-" +
                                                    std::to_string(i),
                                                "mic-" + std::to_string(round));
                try {
                    store.addIssuedRequest(m,
                                           sampleCertificate("M" + std::to_string(round) + "-" +
                                                                 std::to_string(i),
                                                             "mic-" + std::to_string(round)),
                                           event("enroll"));
                    ++superseding;
                } catch (const std::exception&) {
                    ++other;
                }
            });
        }
        for (auto& t : threads) {
            t.join();
        }
        CHECK(approved == 1);
        CHECK(taken == kWriters - 1);
        CHECK(other == 0);
        CHECK(superseding == kWriters);
        CHECK(server->activeCertificatesFor(cn, 1800000000, Store::Superseded::include).size() == 1);
        CHECK(server->listRequests(RequestStatus::pending).size() ==
              static_cast<std::size_t>((round + 1) * (kWriters - 1)));
        const auto mic = server->activeCertificatesFor("mic-" + std::to_string(round), 1800000000, Store::Superseded::include);
        CHECK(mic.size() == kWriters);  // superseded, not revoked
        CHECK(std::count_if(mic.begin(), mic.end(), [](const CertificateRecord& c) {
                  return c.superseded_by.empty();
              }) == 1);
    }
}

TEST_CASE("store v3: a v2 database with duplicate current certificates is migrated to v3") {
    TempDir dir;
    const std::string path = dir.file("ra.db");
    createV2Database(path);
    {
        RawDb raw(path);
        const std::string insert =
            "INSERT INTO certificates (serial, subject, issuer, common_name, not_before, "
            "not_after, der, request_id, revoked) VALUES ";
        // What the races left: three active certificates for one name in
        // three spellings, one revoked, and an unrelated one.
        REQUIRE(raw.exec("BEGIN;" + insert +
                         "('OLD', 'CN=v', 'CN=CA', 'victim.example.nl', 100, 4102444800, x'30', "
                         "NULL, 0), "
                         "('MID', 'CN=v', 'CN=CA', 'VICTIM.example.nl', 200, 4102444800, x'30', "
                         "NULL, 0), "
                         "('NEW', 'CN=v', 'CN=CA', 'victim.example.nl.', 300, 4102444800, x'30', "
                         "NULL, 0), "
                         "('REV', 'CN=v', 'CN=CA', 'victim.example.nl', 400, 4102444800, x'30', "
                         "NULL, 1), "
                         "('ALONE', 'CN=a', 'CN=CA', 'alone', 100, 4102444800, x'30', NULL, 0);"
                         "COMMIT;") == "");
    }
    auto store = openSqliteStore(path);
    RawDb raw(path);
    CHECK(raw.scalar("PRAGMA user_version") == "3");
    CHECK(raw.scalar("PRAGMA integrity_check") == "ok");
    CHECK(raw.column("PRAGMA foreign_key_check").empty());
    CHECK(certificate(*store, "NEW").superseded_by.empty());
    CHECK(certificate(*store, "OLD").superseded_by == "NEW");
    CHECK(certificate(*store, "MID").superseded_by == "NEW");
    CHECK(certificate(*store, "REV").superseded_by.empty());
    CHECK(certificate(*store, "ALONE").superseded_by.empty());
    const auto migrated = auditWith(*store, "supersede");
    REQUIRE(migrated.size() == 2);
    for (const auto& e : migrated) {
        CHECK(e.actor == "migration");
        CHECK(e.reason.find("superseded by NEW") != std::string::npos);
    }
    // The rule holds from now on, for the store and for any other writer.
    RequestRecord r = sampleRequest("tx-1", "Victim.Example.NL");
    CHECK(store->addIssuedRequest(r, sampleCertificate("NEWER", "Victim.Example.NL"),
                                  event("enroll")) == std::vector<std::string>{"NEW"});
    CHECK(raw.exec("INSERT INTO certificates (serial, subject, issuer, common_name, not_before, "
                   "not_after, der) VALUES ('RAW', 'CN=a', 'CN=CA', 'ALONE.', 1, 4102444800, "
                   "x'30')")
              .find("UNIQUE") != std::string::npos);

    SUBCASE("a migrated database has the same schema as a new one") {
        auto fresh_store = openSqliteStore(dir.file("fresh.db"));
        RawDb fresh(dir.file("fresh.db"));
        const std::string schema =
            "SELECT type || ' ' || name || ' ' || tbl_name || ' ' || coalesce(sql, '') "
            "FROM sqlite_master WHERE name <> 'sqlite_sequence' ORDER BY type, name";
        CHECK(raw.column(schema) == fresh.column(schema));
    }
}

TEST_CASE("store v3: a failing migration leaves the v2 database untouched") {
    TempDir dir;
    const std::string path = dir.file("ra.db");
    createV2Database(path);
    {
        RawDb raw(path);
        REQUIRE(raw.exec("INSERT INTO certificates (serial, subject, issuer, common_name, "
                         "not_before, not_after, der) VALUES ('A', 'CN=a', 'CN=CA', 'a', 1, "
                         "4102444800, x'30'), ('B', 'CN=a', 'CN=CA', 'A', 2, 4102444800, x'30');"
                         "CREATE INDEX certificates_current ON certificates (serial);") == "");
    }
    CHECK_THROWS_WITH(openSqliteStore(path), doctest::Contains("certificates_current"));
    RawDb raw(path);
    CHECK(raw.scalar("PRAGMA user_version") == "2");
    CHECK(raw.count("SELECT count(*) FROM pragma_table_xinfo('certificates') "
                    "WHERE name IN ('superseded_by', 'cn_key')") == 0);
    CHECK(raw.count("SELECT count(*) FROM audit") == 0);
    REQUIRE(raw.exec("DROP INDEX certificates_current") == "");
    auto store = openSqliteStore(path);
    CHECK(certificate(*store, "A").superseded_by == "B");
}
