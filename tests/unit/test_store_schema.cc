// The schema: what it enforces against any writer, WAL and versions, and the
// migrations from the schemas earlier releases left behind.
#include <doctest/doctest.h>

#include <sqlite3.h>

#include <algorithm>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "ra/store/store.h"
#include "store_support.h"
#include "support.h"

using namespace scep;
using namespace storetest;
using testsupport::TempDir;

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
        CHECK(raw.scalar("PRAGMA user_version") == "5");
        CHECK(raw.scalar("PRAGMA application_id") == "1396917584");
        const auto indexes = raw.column(
            "SELECT name FROM sqlite_master WHERE type = 'index' "
            "AND name NOT LIKE 'sqlite_%' ORDER BY name");
        const std::set<std::string> names(indexes.begin(), indexes.end());
        for (const char* expected :
             {"requests_status", "requests_common_name", "requests_cert_serial", "requests_model",
              "requests_mac", "requests_created_at", "certificates_cn_key", "certificates_current",
              "certificates_superseded_by", "certificates_not_after", "certificates_not_before",
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
        REQUIRE(RawDb(path, true)
                    .exec("PRAGMA application_id = 1234; "
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
        REQUIRE(
            raw.exec("PRAGMA foreign_keys = ON; BEGIN;" + columns +
                     "(1, 'tx1', 'PKCSReq', 'mic', 'CN=CP-8841-SEP', 'SEP001A2B3C4D5E', x'3001', "
                     "x'aa', x'3002', 'pending', 'approval-mic is manual', '192.0.2.1', NULL, " +
                     mic + ", 1000, 1000);" + columns +
                     "(2, 'tx2', 'RenewalReq', 'renewal', 'CN=CP-8875-SEP', 'SEP001A2B3C4D5E', "
                     "x'3003', x'bb', x'3004', 'issued', '', '192.0.2.2', 'V1CERT1', " +
                     mic2 + ", 2000, 2100);" + columns +
                     "(3, 'tx3', 'PKCSReq', 'challenge', 'challenge for CN laptop', 'laptop', "
                     "x'30', x'cc', x'30', 'rejected', 'no', '192.0.2.3', NULL, "
                     "'{\"sans\":[]}', 3000, 3100);" +
                     columns +
                     "(4, 'tx4', 'PKCSReq', 'mic', 'x', 'odd1', x'30', x'dd', x'30', 'pending', "
                     "'', '', NULL, '', 4000, 4000);" +
                     columns +
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
    CHECK(raw.scalar("PRAGMA user_version") == "5");
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
        RequestRecord r =
            deviceRequest("tx6", "SEP001A2B3C4D5E", "CP-8841", "00:1A:2B:3C:4D:5E", 6000);
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
        CHECK(raw.scalar("PRAGMA user_version") == "5");
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

TEST_CASE("store v5: a v6 database is refused and left alone") {
    TempDir dir;
    const std::string path = dir.file("ra.db");
    openSqliteStore(path).reset();
    RawDb raw(path);
    REQUIRE(raw.exec("PRAGMA user_version = 6") == "");
    std::string message;
    try {
        openSqliteStore(path);
    } catch (const StoreError& e) {
        message = e.what();
    }
    CHECK(message.find("version 6") != std::string::npos);
    CHECK(message.find("newer") != std::string::npos);
    CHECK(raw.scalar("PRAGMA user_version") == "6");
}

// ---- Store v3: a v2 database migrated ---------------------------------------

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
    CHECK(raw.scalar("PRAGMA user_version") == "5");
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
