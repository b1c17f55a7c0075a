// One identity, one current certificate: canonical CNs, superseding, exclusive
// issuing and renewals checked inside the issuing transaction.
#include <doctest/doctest.h>

#include <sqlite3.h>

#include <algorithm>
#include <string>
#include <vector>

#include "ra/auth/authenticator.h"
#include "ra/store/store.h"
#include "store_support.h"
#include "support.h"

using namespace scep;
using namespace storetest;
using testsupport::TempDir;

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
    CHECK(store->addIssuedRequest(b, sampleCertificate("B", "phone.example.nl."),
                                  event("enroll")) == std::vector<std::string>{"A"});
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
    CHECK(serials(store->activeCertificatesFor("phone.example.nl", 1800000000,
                                               Store::Superseded::include)) ==
          std::vector<std::string>{"A", "B", "C"});  // all unexpired, none revoked
    CHECK(serials(store->activeCertificatesFor("phone.example.nl", 1800000000,
                                               Store::Superseded::exclude)) ==
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
                                      event("enroll"), exclusive) == std::vector<std::string>{"A"});
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
