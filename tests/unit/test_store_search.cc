// The admin API's searches: each filter, their combinations, paging, counts,
// and that the searches a phone's records need use an index.
#include <doctest/doctest.h>

#include <sqlite3.h>

#include <algorithm>
#include <ctime>
#include <limits>
#include <string>
#include <vector>

#include "ra/store/store.h"
#include "store_support.h"
#include "support.h"

using namespace scep;
using namespace storetest;
using testsupport::TempDir;

// ---- Store v2: admin searches, counts, tokens, ping, migration 1 -> 2 ------

namespace scep {
// Defined in ra/store/sqlite/search_sql.cc for this file only: the SQL text the store
// prepares for a filter (count: the COUNT query, else the page query).
std::string sqliteStoreSearchSqlForTesting(const RequestFilter& filter, bool count);
std::string sqliteStoreSearchSqlForTesting(const CertificateFilter& filter, bool count);
}  // namespace scep

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
    const std::vector<std::string> cns = {"50%off", "50Xoff",      "a_b",
                                          "aXb",    "back\\slash", "backXslash"};
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
    {                          // no request: valid through the last second kNow; 0A01 superseded it
        RawDb raw(path);
        REQUIRE(raw.exec("INSERT INTO certificates (serial, subject, issuer, common_name, "
                         "not_before, not_after, der, superseded_by) VALUES ('0B03', "
                         "'CN=phone-1.example.nl', 'CN=CA', 'phone-1.example.nl', " +
                         std::to_string(kNow - 300) + ", " + std::to_string(kNow) +
                         ", x'30', '0A01')") == "");
    }
    issue("0B04", "laptop_7", "", "", kNow - 300, kNow - 1);  // expired, non-MIC
    issue("0C05", "phone-3.example.nl", "CP-8841", "00:11:22:33:44:FF", kNow - 400,
          kNow + 5 * kDay);                                      // revoked below
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
        CHECK(find(f) == Serials{"0B03", "0A01"});
        f.text = "phone-2";
        CHECK(find(f).empty());
    }
    SUBCASE("text: CN substring, serial prefix, or exactly the MAC") {
        // With text, the most recently recorded first: 0C06 ... 0A01 here.
        f.text = "phone-1";
        CHECK(find(f) == Serials{"0B03", "0A01"});
        f.text = "PHONE-1.EXAMPLE";  // CN in any case
        CHECK(find(f) == Serials{"0B03", "0A01"});
        f.text = "0a";  // serial prefix, upper-cased
        CHECK(find(f) == Serials{"0A02", "0A01"});
        f.text = "0C0";
        CHECK(find(f) == Serials{"0C06", "0C05"});
        f.text = "A01";  // inside the serial, but not a prefix
        CHECK(find(f).empty());
        f.text = "00:1A:2B:3C:4D:5E";
        CHECK(find(f) == Serials{"0A01"});
        f.text = "00:1a:2b:3c:4d:5e";  // upper-cased like the serial
        CHECK(find(f) == Serials{"0A01"});
        f.text = "00:11:22:33:44:FF";  // revoked ones are found too
        CHECK(find(f) == Serials{"0C05"});
        for (const char* other :
             {"00:1A:2B:3C:4D", "1A:2B:3C:4D:5E", "001A2B3C4D5E", "00-1A-2B-3C-4D-5E"}) {
            f.text = other;
            CHECK_MESSAGE(find(f).empty(), other);
        }
        f.text = "laptop";
        CHECK(find(f) == Serials{"0C06", "0B04"});
        f.state = CertificateState::revoked;
        CHECK(find(f) == Serials{"0C06"});
        f.text = "phone";
        f.state = CertificateState::valid;
        CHECK(find(f) == Serials{"0B03", "0A02", "0A01"});
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
    issue("V1", kNow);  // last valid second is kNow
    issue("V2", kNow + 10 * kDay);
    issue("V3", kNow - 1);
    issue("R1", kNow + kDay);  // revoked below
    REQUIRE(store->revoke("R1", 0, kNow, event("revoke")));
    CHECK(store->countRequests(RequestStatus::issued) == 5);

    constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
    // 0A02 from addSearchRequests expires in 2100.
    CHECK(store->countValidCertificates(kNow, kMax) == 3);              // V1, V2, 0A02
    CHECK(store->countValidCertificates(kNow + 1, kMax) == 2);          // V2, 0A02
    CHECK(store->countValidCertificates(kNow, kNow + 30 * kDay) == 2);  // V1, V2
    CHECK(store->countValidCertificates(kNow - 1, kNow) == 1);          // V3: [from, to)
    CHECK(store->countValidCertificates(kNow, kNow) == 0);
    CHECK(store->countValidCertificates(0, kMax) == 4);
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
