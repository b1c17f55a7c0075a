// The one rule for a certificate's state at a given second (certificateState
// in ra/store/store.h), at the notAfter boundary: in C++, in the store's SQL,
// and where the RA decides a renewal.
#include <doctest/doctest.h>

#include <openssl/x509.h>

#include <algorithm>
#include <ctime>
#include <string>
#include <vector>

#include "ra/crypto.h"
#include "ra/store/store.h"
#include "ra_support.h"
#include "store_support.h"
#include "support.h"

using namespace scep;
using namespace storetest;
using testsupport::TempDir;

namespace {

constexpr std::int64_t kNotAfter = 2000000000;

bool listed(const std::vector<std::string>& serials, const std::string& serial) {
    return std::find(serials.begin(), serials.end(), serial) != serials.end();
}

}  // namespace

TEST_CASE("certificateState: notAfter is inclusive (RFC 5280 4.1.2.5)") {
    CertificateRecord c = sampleCertificate("01", "SEP001", kNotAfter);
    CHECK(certificateState(c, kNotAfter - 1) == CertificateState::valid);
    CHECK(certificateState(c, kNotAfter) == CertificateState::valid);
    CHECK(certificateState(c, kNotAfter + 1) == CertificateState::expired);
    // Superseded is no state of its own: valid until it expires.
    c.superseded_by = "02";
    CHECK(certificateState(c, kNotAfter) == CertificateState::valid);
    CHECK(certificateState(c, kNotAfter + 1) == CertificateState::expired);
    // Revoked wins, before and after notAfter.
    c.revoked = true;
    CHECK(certificateState(c, kNotAfter) == CertificateState::revoked);
    CHECK(certificateState(c, kNotAfter + 1) == CertificateState::revoked);

    CHECK(std::string(certificateStateName(CertificateState::valid)) == "valid");
    CHECK(std::string(certificateStateName(CertificateState::expired)) == "expired");
    CHECK(std::string(certificateStateName(CertificateState::revoked)) == "revoked");
}

TEST_CASE("store: the SQL state filters agree with certificateState at the boundary second") {
    TempDir dir;
    auto store = openSqliteStore(dir.file("ra.db"));
    // One identity per certificate, so none supersedes another.
    std::vector<CertificateRecord> certs = {
        sampleCertificate("0A", "a", kNotAfter - 1), sampleCertificate("0B", "b", kNotAfter),
        sampleCertificate("0C", "c", kNotAfter + 1), sampleCertificate("0D", "d", kNotAfter)};
    for (std::size_t i = 0; i < certs.size(); ++i) {
        RequestRecord r = sampleRequest("tx-" + std::to_string(i), certs[i].common_name);
        store->addIssuedRequest(r, certs[i], event("enroll"));
    }
    REQUIRE(store->revoke("0D", 1, kNotAfter - 10, event("revoke")));
    certs[3] = certificate(*store, "0D");

    for (const std::int64_t now : {kNotAfter - 1, kNotAfter, kNotAfter + 1}) {
        CAPTURE(now);
        for (const CertificateState state :
             {CertificateState::valid, CertificateState::expired, CertificateState::revoked}) {
            CAPTURE(certificateStateName(state));
            CertificateFilter filter;
            filter.state = state;
            filter.now = now;
            const Serials found = serials(store->findCertificates(filter));
            for (const auto& c : certs) {
                CAPTURE(c.serial);
                CHECK(listed(found, c.serial) == (certificateState(c, now) == state));
            }
        }
        std::size_t valid = 0;
        for (const auto& c : certs) {
            CAPTURE(c.serial);
            const bool is_valid = certificateState(c, now) == CertificateState::valid;
            valid += is_valid ? 1 : 0;
            const auto active =
                store->activeCertificatesFor(c.common_name, now, Store::Superseded::include);
            CHECK(active.size() == (is_valid ? 1U : 0U));
        }
        CHECK(store->countValidCertificates(now, kNotAfter + 100) == valid);
    }
}

TEST_CASE("store: the issuing rules use certificateState at the boundary second") {
    for (const std::int64_t now : {kNotAfter, kNotAfter + 1}) {
        CAPTURE(now);
        const bool valid = now <= kNotAfter;
        // A store (fresh for each rule) where "phone" holds 01 until kNotAfter,
        // and an attempt to issue 02 for it under `rules`.
        auto issueAgain = [&](IssueRules rules) {
            TempDir dir;
            auto store = openSqliteStore(dir.file("ra.db"));
            RequestRecord first = sampleRequest("tx-first", "phone");
            store->addIssuedRequest(first, sampleCertificate("01", "phone", kNotAfter),
                                    event("enroll"));
            rules.now = now;
            RequestRecord again = sampleRequest("tx-again", "phone");
            store->addIssuedRequest(again, sampleCertificate("02", "phone"), event("enroll"),
                                    rules);
        };
        // A challenge enrollment is refused while the identity holds a valid
        // certificate...
        IssueRules exclusive;
        exclusive.exclusive = true;
        if (valid) {
            CHECK_THROWS_AS(issueAgain(exclusive), IdentityTaken);
        } else {
            CHECK_NOTHROW(issueAgain(exclusive));
        }
        // ...and a renewal needs the renewed certificate still valid.
        IssueRules renewal;
        renewal.renews = "01";
        if (valid) {
            CHECK_NOTHROW(issueAgain(renewal));
        } else {
            CHECK_THROWS_WITH_AS(issueAgain(renewal), doctest::Contains("has expired"),
                                 RenewedCertificateGone);
        }
    }
}

TEST_CASE("renewal at the boundary second: notAfter is the last second it renews") {
    const std::string profiles = "[[profile]]\nname = \"cisco\"\nvendor-class = [\"CP-8875\"]\n" +
                                 testsupport::kSeedProfileBody;
    for (const int past : {0, 1}) {
        CAPTURE(past);
        testsupport::TestRa ra(profiles);
        testsupport::Phone phone;
        const auto first =
            ra.enroll(*phone.mic, *phone.mic_key, *phone.new_key, {testsupport::kMicCn, {}, {}});
        REQUIRE(first.cert);
        const auto record =
            ra.store->findCertificate(serialHex(X509_get0_serialNumber(first.cert.get())));
        REQUIRE(record);
        ra.now = static_cast<std::time_t>(record->not_after + past);
        const auto renewed =
            ra.enroll(*first.cert, *phone.new_key, *testsupport::fixtureKey("newkey-2"),
                      {testsupport::kMicCn, {}, {}}, "", MessageType::RenewalReq);
        if (past == 0) {
            CHECK(renewed.cert);
            CHECK(ra.audit()[1].method == "renewal");
        } else {
            CHECK_FALSE(renewed.cert);
            CHECK(ra.audit().front().reason.find("is not valid now") != std::string::npos);
        }
    }
}
