// Store growth (issue 11): the admin searches that must stay index look-ups
// at a million certificates (CN substring through the trigram index,
// expiring and state through certificates_validity), their answers on the
// indexed path, their queues, and a v4 database gaining them in place.
#include <doctest/doctest.h>

#include <cstdio>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "ra/store/sqlite/db.h"
#include "ra/store/store.h"
#include "store_support.h"
#include "support.h"

using namespace scep;
using namespace storetest;
using testsupport::TempDir;

namespace scep {
// Defined in ra/store/sqlite/search_sql.cc: the SQL the store prepares for a filter.
std::string sqliteStoreSearchSqlForTesting(const CertificateFilter& filter, bool count);
std::string sqliteStoreSearchSqlForTesting(const RequestFilter& filter, bool count);
}  // namespace scep

namespace {

constexpr std::int64_t kSeedNow = 1800000000;

// 20,000 certificates of phones CP-8875-SEP<12 hex>, one request each, one
// a day backwards from kSeedNow, one-year validity, every 100th revoked; from a
// second connection, as another writer would.
void seedPhones(RawDb& raw) {
    REQUIRE(raw.exec(R"sql(
        BEGIN;
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
        INSERT INTO requests (id, transaction_id, message_type, method, identity, common_name,
                              csr, public_key_id, signer, status, reason, peer, cert_serial,
                              details, created_at, updated_at)
        SELECT i, 'tx-' || i, 'PKCSReq', 'mic', 'CN=x', printf('CP-8875-SEP005B%08X', i),
               x'30', x'00', x'30', 'issued', '', '192.0.2.1', printf('%032X', i),
               json_object('model', 'CP-8875', 'mac', printf('00:5B:00:00:%02X:%02X', i / 256,
                           i % 256)),
               1800000000 - i * 3000, 1800000000 - i * 3000
        FROM n;
        INSERT INTO certificates (serial, subject, issuer, common_name, not_before, not_after,
                                  der, request_id, revoked, revocation_reason, revoked_at)
        SELECT cert_serial, 'CN=' || common_name, 'CN=CA', common_name, created_at,
               created_at + 365 * 86400, x'30', id, id % 100 = 0, 0,
               CASE WHEN id % 100 = 0 THEN created_at + 1 ELSE 0 END
        FROM requests;
        COMMIT;)sql") == "");
}

// The EXPLAIN QUERY PLAN lines, one string.
std::string planText(RawDb& raw, const std::string& sql) {
    std::string text;
    for (const auto& line : raw.plan(sql)) {
        text += line + "\n";
    }
    return text;
}

// No line of the plan reads the certificates table from end to end.
bool scansCertificates(const std::string& plan) {
    return plan.find("SCAN c\n") != std::string::npos || plan.find("SCAN c ") != std::string::npos;
}

// The plan's lines from the one holding `marker` to the end of that arm of
// a compound query (the next "RIGHT"), or "" when there is no such line.
std::string armOf(const std::string& plan, const std::string& marker) {
    const auto from = plan.find(marker);
    if (from == std::string::npos) {
        return "";
    }
    const auto to = plan.find("\nRIGHT\n", from);
    return plan.substr(from, to == std::string::npos ? std::string::npos : to - from);
}

bool scansRequests(const std::string& plan) {
    return plan.find("SCAN requests\n") != std::string::npos ||
           plan.find("SCAN requests ") != std::string::npos;
}

}  // namespace

TEST_CASE("store growth: CN substring, expiring and state searches use an index") {
    TempDir dir;
    const std::string path = dir.file("ra.db");
    auto store = openSqliteStore(path);
    RawDb raw(path);
    seedPhones(raw);
    // Opening indexes the rows the seed queued: the answers below come from
    // the full-text indexes themselves.
    store.reset();
    store = openSqliteStore(path);
    REQUIRE(raw.count("SELECT count(*) FROM certificates_cn_queue") == 0);

    CertificateFilter text;
    text.text = "00001388";
    CertificateFilter expiring;
    expiring.now = kSeedNow;
    expiring.expiring_before = kSeedNow + 30 * 86400;
    CertificateFilter valid;
    valid.now = kSeedNow;
    valid.state = CertificateState::valid;
    for (bool count : {true, false}) {
        const std::string sql = sqliteStoreSearchSqlForTesting(text, count);
        const std::string plan = planText(raw, sql);
        INFO(sql);
        INFO(plan);
        CHECK_FALSE(scansCertificates(plan));
        CHECK(plan.find("SCAN f VIRTUAL TABLE") != std::string::npos);  // certificates_cn
        CHECK(plan.find("SCAN q\n") != std::string::npos);              // its queue
        // Both arms yield their ids newest first as they are: no sort.
        CHECK(armOf(plan, "SCAN f VIRTUAL TABLE").find("B-TREE") == std::string::npos);
        CHECK(armOf(plan, "SCAN q\n").find("B-TREE") == std::string::npos);
        CHECK(plan.find("INDEX sqlite_autoindex_certificates_1") != std::string::npos);
        CHECK(plan.find("INDEX requests_mac") != std::string::npos);
    }
    // The page of all valid ones (most certificates) may as well walk
    // certificates_not_before newest first: it stops after one page.
    for (const CertificateFilter& f : {expiring, valid}) {
        for (bool count : {true, false}) {
            if (f.state && !count) {
                continue;
            }
            const std::string sql = sqliteStoreSearchSqlForTesting(f, count);
            const std::string plan = planText(raw, sql);
            INFO(sql);
            INFO(plan);
            CHECK_FALSE(scansCertificates(plan));
            CHECK(plan.find("COVERING INDEX certificates_validity") != std::string::npos);
        }
    }

    RequestFilter requests;
    requests.text = "00001388";
    for (bool count : {true, false}) {
        const std::string sql = sqliteStoreSearchSqlForTesting(requests, count);
        const std::string plan = planText(raw, sql);
        INFO(sql);
        INFO(plan);
        CHECK_FALSE(scansRequests(plan));
        CHECK(plan.find("SCAN f VIRTUAL TABLE") != std::string::npos);  // fts_request_text
        CHECK(plan.find("SCAN q\n") != std::string::npos);              // its queue
        CHECK(armOf(plan, "SCAN f VIRTUAL TABLE").find("B-TREE") == std::string::npos);
        CHECK(armOf(plan, "SCAN q\n").find("B-TREE") == std::string::npos);
    }

    // The answers on these paths.
    CHECK(findIds(*store, requests) == Ids{0x1388});
    requests.text = "sep005b0000138";
    auto requestPage = store->findRequests(requests);
    CHECK(requestPage.total == 16);
    CHECK(requestPage.items.front().id == 0x138F);  // newest first: highest id
    auto page = store->findCertificates(text);
    CHECK(page.total == 1);
    REQUIRE(page.items.size() == 1);
    CHECK(page.items[0].certificate.common_name == "CP-8875-SEP005B00001388");
    CHECK(page.items[0].model == "CP-8875");
    text.text = "sep005b0000138";  // any case; 0x1380..0x138F
    page = store->findCertificates(text);
    CHECK(page.total == 16);
    CHECK(page.total_exact);
    // Most recently recorded first (the seed wrote them oldest last).
    CHECK(page.items.front().certificate.serial == std::string(28, '0') + "138F");
    // A text all 20,000 hold: counted up to kTextSearchCountAhead past the
    // offset; the page is the newest all the same.
    for (const char* all : {"SEP005B", "88"}) {  // trigram index; scan (short)
        CAPTURE(all);
        text.text = all;
        text.offset = 0;
        page = store->findCertificates(text);
        CHECK(page.total == kTextSearchCountAhead);
        CHECK_FALSE(page.total_exact);
        REQUIRE(page.items.size() == 50);
        CHECK(page.items.front().certificate.serial == std::string(28, '0') + "4E20");
        text.offset = 19990;
        page = store->findCertificates(text);
        CHECK(page.total == 20000);
        CHECK(page.total_exact);
        REQUIRE(page.items.size() == 10);
        CHECK(page.items.back().certificate.serial == std::string(28, '0') + "0001");
        RequestFilter r;
        r.text = all;
        r.offset = 100;
        requestPage = store->findRequests(r);
        CHECK(requestPage.total == 100 + kTextSearchCountAhead);
        CHECK_FALSE(requestPage.total_exact);
        REQUIRE(requestPage.items.size() == 50);
        CHECK(requestPage.items.front().id == 20000 - 100);
    }
    text.offset = 0;
    text.text = std::string(28, '0') + "4E2";  // a serial prefix: 0x4E20 = 20000
    CHECK(serials(store->findCertificates(text)) ==
          std::vector<std::string>{std::string(28, '0') + "4E20"});
    text.text = "00:5B:00:00:13:88";  // the MAC of the request
    CHECK(store->findCertificates(text).total == 1);

    // Valid (not revoked, not expired) and expiring within 30 days.
    page = store->findCertificates(expiring);
    std::int64_t expected = 0;
    for (int i = 1; i <= 20000; ++i) {
        const std::int64_t not_after = kSeedNow - i * 3000 + 365 * 86400;
        expected += i % 100 != 0 && not_after >= kSeedNow && not_after < kSeedNow + 30 * 86400;
    }
    CHECK(page.total == static_cast<std::size_t>(expected));
    REQUIRE(page.items.size() == 50);
    for (std::size_t i = 1; i < page.items.size(); ++i) {
        CHECK(page.items[i - 1].certificate.not_before > page.items[i].certificate.not_before);
    }
    CHECK(store->findCertificates(valid).total ==
          store->countValidCertificates(kSeedNow, std::numeric_limits<std::int64_t>::max()));
}

TEST_CASE("store growth: the indexed CN search is exact") {
    TempDir dir;
    const std::string path = dir.file("ra.db");
    auto store = openSqliteStore(path);
    int n = 0;
    for (const char* cn : {"ab%cd_ef\\gh", "abXcdYef-gh", "Ünïcode-phone", "plain-phone"}) {
        const std::string tx = "tx-" + std::to_string(++n);
        RequestRecord r = sampleRequest(tx, cn);
        store->addIssuedRequest(r, sampleCertificate("S" + std::to_string(n), cn), event("enroll"));
    }
    // The same answers from the rows' queue (just written) and from the
    // index (once the store is closed and opened again).
    for (const bool queued : {true, false}) {
        CAPTURE(queued);
        if (!queued) {
            store.reset();
            store = openSqliteStore(path);
        }
        CHECK(RawDb(path).count("SELECT count(*) FROM certificates_cn_queue") == (queued ? 4 : 0));
        auto found = [&](const std::string& text) {
            CertificateFilter f;
            f.text = text;
            f.now = 1700000001;
            std::set<std::string> cns;
            for (const auto& view : store->findCertificates(f).items) {
                cns.insert(view.certificate.common_name);
            }
            return cns;
        };
        using Cns = std::set<std::string>;
        // The user's LIKE wildcards match only themselves.
        CHECK(found("b%cd_e") == Cns{"ab%cd_ef\\gh"});
        CHECK(found("f\\g") == Cns{"ab%cd_ef\\gh"});
        CHECK(found("AB%CD") == Cns{"ab%cd_ef\\gh"});
        CHECK(found("XCDY") == Cns{"abXcdYef-gh"});
        // ASCII letters in any case; other letters as LIKE compares them.
        CHECK(found("Ünï") == Cns{"Ünïcode-phone"});
        CHECK(found("ÜNÏ").empty());
        CHECK(found("-phone") == Cns{"Ünïcode-phone", "plain-phone"});
        CHECK(found("e-p") == Cns{"Ünïcode-phone"});
        // The request search, on its CN and identity ("CN=CP-8841-<cn>,O=Cisco").
        auto requests = [&](const std::string& text) {
            RequestFilter f;
            f.text = text;
            return findIds(*store, f);
        };
        CHECK(requests("b%cd_e") == Ids{1});
        CHECK(requests("AB%CD") == Ids{1});
        CHECK(requests("ÜNÏ").empty());
        CHECK(requests("Ünï") == Ids{3});
        CHECK(requests("o=cisco") == Ids{4, 3, 2, 1});
        CHECK(requests("Xc") == Ids{2});
        // Shorter than the trigram index: the scan, same answers.
        CHECK(found("Xc") == Cns{"abXcdYef-gh"});
        CHECK(found("%") == Cns{"ab%cd_ef\\gh"});
        // A serial prefix in any case.
        CHECK(found("s1") == Cns{"ab%cd_ef\\gh"});
        CHECK(found("S1*").empty());
    }
}

// The triggers the release before version 5 added to a v4 database: every
// row straight into the full-text index.
constexpr const char* kV4SearchTriggers = R"sql(
CREATE TRIGGER certificates_cn_insert AFTER INSERT ON certificates
BEGIN
    INSERT INTO certificates_cn (rowid, common_name) VALUES (NEW.rowid, NEW.common_name);
END;
CREATE TRIGGER certificates_cn_delete AFTER DELETE ON certificates
BEGIN
    INSERT INTO certificates_cn (certificates_cn, rowid, common_name)
        VALUES ('delete', OLD.rowid, OLD.common_name);
END;
CREATE TRIGGER fts_request_text_insert AFTER INSERT ON requests
BEGIN
    INSERT INTO fts_request_text (rowid, common_name, identity)
        VALUES (NEW.id, NEW.common_name, NEW.identity);
END;
)sql";

TEST_CASE("store growth: a v4 database, with or without search indexes, is migrated to v5") {
    for (const bool had_indexes : {false, true}) {
        CAPTURE(had_indexes);
        TempDir dir;
        const std::string path = dir.file("ra.db");
        {
            auto store = openSqliteStore(path);
            RequestRecord r = sampleRequest("tx-old", "CP-8875-SEP001122334455");
            store->addIssuedRequest(r, sampleCertificate("OLD", "CP-8875-SEP001122334455"),
                                    event("enroll"));
        }
        {
            // As a v4 release wrote it.
            RawDb raw(path);
            REQUIRE(raw.exec("DROP TRIGGER certificates_cn_insert; DROP TRIGGER "
                             "certificates_cn_delete; DROP TRIGGER certificates_cn_update;"
                             "DROP TRIGGER fts_request_text_insert; DROP TRIGGER "
                             "fts_request_text_delete; DROP TRIGGER fts_request_text_update;"
                             "DROP TABLE certificates_cn_queue; DROP TABLE fts_request_text_queue;"
                             "DROP TRIGGER valid_by_expiry_day_insert; DROP TRIGGER "
                             "valid_by_expiry_day_delete; DROP TRIGGER valid_by_expiry_day_update;"
                             "DROP TABLE valid_by_expiry_day; PRAGMA user_version = 4") == "");
            REQUIRE(raw.exec(had_indexes ? kV4SearchTriggers
                                         : "DROP TABLE certificates_cn; DROP TABLE "
                                           "fts_request_text; DROP INDEX certificates_validity; "
                                           "DROP INDEX certificates_revocations;") == "");
            REQUIRE(raw.exec("INSERT INTO certificates (serial, subject, issuer, common_name, "
                             "not_before, not_after, der) VALUES ('BEFORE', 'CN=b', 'CN=CA', "
                             "'CP-8875-SEP00AABBCCDDEE', 1, 4102444800, x'30')") == "");
        }
        auto store = openSqliteStore(path);
        RawDb raw(path);
        CHECK(raw.scalar("PRAGMA user_version") == "5");
        CHECK(raw.scalar("PRAGMA integrity_check") == "ok");
        CHECK(raw.count("SELECT count(*) FROM sqlite_master WHERE name IN ('certificates_cn', "
                        "'certificates_validity', 'certificates_revocations', "
                        "'certificates_cn_queue', 'certificates_cn_insert', "
                        "'certificates_cn_delete', 'certificates_cn_update', 'fts_request_text', "
                        "'fts_request_text_queue', 'fts_request_text_insert', "
                        "'fts_request_text_delete', 'fts_request_text_update', "
                        "'valid_by_expiry_day', 'valid_by_expiry_day_insert', "
                        "'valid_by_expiry_day_delete', 'valid_by_expiry_day_update')") == 16);
        // Filled from the rows there were: OLD and BEFORE, valid until 2100.
        CHECK(store->countValidCertificates(1700000000, std::numeric_limits<std::int64_t>::max()) ==
              2);
        CHECK(raw.searchIndexErrors() == "");
        CertificateFilter f;
        f.now = 1700000001;
        f.text = "SEP0011223344";
        CHECK(serials(store->findCertificates(f)) == std::vector<std::string>{"OLD"});
        f.text = "sep00aabbcc";
        CHECK(serials(store->findCertificates(f)) == std::vector<std::string>{"BEFORE"});
        RequestFilter rf;
        rf.text = "sep0011223344";
        CHECK(findIds(*store, rf).size() == 1);
    }
}

TEST_CASE("store growth: new rows wait in a queue, are found there, and are indexed in batches") {
    TempDir dir;
    const std::string path = dir.file("ra.db");
    auto store = openSqliteStore(path);
    RawDb raw(path);
    auto queued = [&] {
        return raw.count(
            "SELECT (SELECT count(*) FROM certificates_cn_queue) + "
            "(SELECT count(*) FROM fts_request_text_queue)");
    };
    // What the index alone answers (no queue, no LIKE).
    auto indexed = [&](const std::string& trigram) {
        return raw.count("SELECT count(*) FROM certificates_cn WHERE certificates_cn MATCH '\"" +
                         trigram + "\"'");
    };
    auto found = [&](const std::string& text) {
        CertificateFilter f;
        f.text = text;
        f.now = 1700000001;
        f.limit = 1;
        return store->findCertificates(f).total;
    };
    auto enroll = [&](int from, int to) {
        for (int i = from; i < to; ++i) {
            char cn[32];
            std::snprintf(cn, sizeof cn, "SEP%012d", i);
            RequestRecord r = sampleRequest("tx-" + std::to_string(i), cn);
            store->addIssuedRequest(r, sampleCertificate("S" + std::to_string(i), cn),
                                    event("enroll"));
        }
    };

    enroll(0, 10);
    CHECK(queued() == 20);  // a request and a certificate each
    CHECK(indexed("SEP") == 0);
    CHECK(found("SEP") == 10);

    // Another writer's row: queued, renamed while queued, deleted while queued.
    auto raw_certificate = [&](const std::string& serial, const std::string& cn) {
        REQUIRE(raw.exec("INSERT INTO certificates (serial, subject, issuer, common_name, "
                         "not_before, not_after, der) VALUES ('" +
                         serial + "', 'CN=x', 'CN=CA', '" + cn + "', 1, 4102444800, x'30')") == "");
    };
    raw_certificate("RAW", "raw-written");
    CHECK(found("written") == 1);
    REQUIRE(raw.exec("UPDATE certificates SET common_name = 'raw-renamed' WHERE serial = 'RAW'") ==
            "");
    CHECK(queued() == 21);
    CHECK(found("written") == 0);
    CHECK(found("renamed") == 1);
    REQUIRE(raw.exec("DELETE FROM certificates WHERE serial = 'RAW'") == "");
    CHECK(queued() == 20);
    CHECK(found("renamed") == 0);

    // Enough enrollments to fill the queue: a batch indexes it, the
    // searches still see every row.
    enroll(10, 300);
    CHECK(queued() < 256);
    CHECK(indexed("SEP") > 0);
    CHECK(indexed("SEP") + raw.count("SELECT count(*) FROM certificates_cn_queue") == 300);
    CHECK(found("SEP") == 300);
    CHECK(found("SEP000000000299") == 1);

    // Closing indexes the rest.
    store.reset();
    CHECK(queued() == 0);
    CHECK(indexed("SEP") == 300);
    CHECK(raw.searchIndexErrors() == "");

    // Rows already indexed: renamed (out of the index, into the queue) and
    // deleted (out of the index).
    store = openSqliteStore(path);
    REQUIRE(raw.exec("UPDATE certificates SET common_name = 'renamed-phone' WHERE serial = 'S7'") ==
            "");
    CHECK(queued() == 1);
    CHECK(indexed("SEP") == 299);
    CHECK(found("SEP000000000007") == 0);
    CHECK(found("renamed-phone") == 1);
    REQUIRE(raw.exec("DELETE FROM certificates WHERE serial IN ('S8', 'S7')") == "");
    CHECK(queued() == 0);
    CHECK(indexed("SEP") == 298);
    CHECK(found("renamed-phone") == 0);
    CHECK(found("SEP000000000008") == 0);
    store.reset();
    CHECK(raw.searchIndexErrors() == "");
    CHECK(raw.scalar("PRAGMA integrity_check") == "ok");
}

TEST_CASE("store growth: a batch whose indexing fails still commits, and its rows stay queued") {
    TempDir dir;
    const std::string path = dir.file("ra.db");
    auto store = openSqliteStore(path);
    RawDb raw(path);
    // An index that cannot be written: every drain fails.
    REQUIRE(raw.exec("DROP TABLE certificates_cn") == "");
    for (int i = 0; i < 200; ++i) {
        const std::string cn = "SEP" + std::to_string(100000 + i);
        RequestRecord r = sampleRequest("tx-" + std::to_string(i), cn);
        CHECK_NOTHROW(store->addIssuedRequest(r, sampleCertificate("S" + std::to_string(i), cn),
                                              event("enroll")));
    }
    CHECK(raw.count("SELECT count(*) FROM certificates") == 200);
    CHECK(raw.count("SELECT count(*) FROM certificates_cn_queue") == 200);
    // The other index's drain was undone with it: its rows are queued too.
    CHECK(raw.count("SELECT count(*) FROM fts_request_text_queue") == 200);
    RequestFilter f;
    f.text = "SEP100199";
    CHECK(findIds(*store, f).size() == 1);
}

TEST_CASE(
    "store growth: valid certificates counted by expiry day, as the rows say, whoever writes") {
    TempDir dir;
    const std::string path = dir.file("ra.db");
    auto store = openSqliteStore(path);
    RawDb raw(path);
    constexpr std::int64_t kDay = 86400;
    constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
    constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
    // not_after on and around day boundaries, before 1970 and at the ends.
    std::vector<std::int64_t> times = {kMin,     -3 * kDay - 1, -kDay,       -1,       0,   1,
                                       kDay - 1, kDay,          kMax - kDay, kMax - 1, kMax};
    for (std::int64_t day = 20000; day < 20040; day += 3) {
        for (std::int64_t offset : {-1, 0, 1, 43200}) {
            times.push_back(day * kDay + offset);
        }
    }
    // Each time twice: one row revoked from the start, one not.
    std::string sql = "BEGIN;";
    for (std::size_t i = 0; i < times.size(); ++i) {
        for (int revoked : {0, 1}) {
            sql +=
                "INSERT INTO certificates (serial, subject, issuer, common_name, not_before, "
                "not_after, der, revoked) VALUES ('X" +
                std::to_string(i) + "-" + std::to_string(revoked) + "', 'CN=x', 'CN=CA', 'x" +
                std::to_string(i) + "-" + std::to_string(revoked) + "', 0, " +
                std::to_string(times[i]) + ", x'30', " + std::to_string(revoked) + ");";
        }
    }
    REQUIRE(raw.exec(sql + "COMMIT;") == "");
    auto agrees = [&] {
        CHECK(raw.count("SELECT coalesce(sum(certificates), 0) FROM valid_by_expiry_day") ==
              raw.count("SELECT count(*) FROM certificates WHERE revoked = 0"));
        for (const std::int64_t from : times) {
            for (const std::int64_t to :
                 {from, from == kMax ? kMax : from + 1, kDay * 20020, kMax}) {
                CAPTURE(from);
                CAPTURE(to);
                const long long expected = raw.count(
                    "SELECT count(*) FROM certificates WHERE revoked = 0 AND not_after >= " +
                    std::to_string(from) + " AND not_after < " + std::to_string(to));
                CHECK(store->countValidCertificates(from, to) ==
                      static_cast<std::size_t>(expected));
            }
        }
    };
    agrees();
    // Revoked through the store, un-revoked, moved to another day, deleted.
    REQUIRE(store->revoke("X20-0", 1, 1700000000, event("revoke")));
    REQUIRE(raw.exec("UPDATE certificates SET revoked = 0 WHERE serial = 'X21-1'") == "");
    REQUIRE(raw.exec("UPDATE certificates SET not_after = not_after + 5 * 86400 "
                     "WHERE serial IN ('X22-0', 'X22-1', 'X4-0')") == "");
    REQUIRE(raw.exec("DELETE FROM certificates WHERE serial IN ('X23-0', 'X23-1', 'X0-0')") == "");
    agrees();
    // And an enrollment.
    RequestRecord r = sampleRequest("tx-day", "day-phone");
    store->addIssuedRequest(r, sampleCertificate("DAY", "day-phone", 20010 * kDay),
                            event("enroll"));
    agrees();
}

TEST_CASE("store growth: the CRL's revocations come from an index, as revokedCertificates") {
    TempDir dir;
    const std::string path = dir.file("ra.db");
    auto store = openSqliteStore(path);
    RawDb raw(path);
    seedPhones(raw);
    REQUIRE(store->revoke(std::string(28, '0') + "0001", 5, 1700000000, event("revoke")));

    const auto full = store->revokedCertificates();
    const auto listed = store->revocations();
    REQUIRE(full.size() == 201);
    REQUIRE(listed.size() == full.size());
    for (std::size_t i = 0; i < full.size(); ++i) {
        CHECK(listed[i].serial == full[i].serial);
        CHECK(listed[i].revoked);
        CHECK(listed[i].revocation_reason == full[i].revocation_reason);
        CHECK(listed[i].revoked_at == full[i].revoked_at);
        CHECK(listed[i].der.empty());
    }
    CHECK(listed.front().serial == std::string(28, '0') + "0001");  // revoked first
    CHECK(listed.front().revocation_reason == 5);
    // The statement revocations() prepares (ra/store/sqlite/search.cc).
    const std::string plan = planText(raw,
                                      "SELECT serial, revocation_reason, revoked_at FROM "
                                      "certificates WHERE revoked = 1 ORDER BY revoked_at, serial");
    INFO(plan);
    CHECK(plan.find("COVERING INDEX certificates_revocations") != std::string::npos);
    CHECK(plan.find("TEMP B-TREE") == std::string::npos);
}

TEST_CASE("store growth: a connection caches 32 MiB of pages, not SQLite's 2 MiB") {
    // An enrollment touches a leaf of a dozen indexes with random keys; at a
    // million certificates they fit 32 MiB, not 2 MiB (each miss a pread()).
    TempDir dir;
    sqlite::Database db(dir.file("ra.db"), "test");
    CHECK(db.pragmaInteger("PRAGMA cache_size", "test") == -32768);
}
