// The admin API's input parsing as pure functions (ra/admin/input.h).
#include <doctest/doctest.h>

#include "ra/admin/admin_error.h"
#include "ra/admin/input.h"
#include "ra/admin/revocation.h"
#include "ra/scep/responder.h"

using namespace scep;
using nlohmann::json;

namespace {

http::Params params(const std::string& query) {
    return http::parseQuery(query);
}

}  // namespace

TEST_CASE("request filters from query parameters") {
    const RequestFilter all = parseRequestFilter({});
    CHECK_FALSE(all.status);
    CHECK(all.limit == 50);
    const RequestFilter filter = parseRequestFilter(
        params("status=pending&model=CP-8875&mac=001a.2b3c.4d5e&q=SEP&since=10&until=20&limit=5&"
               "offset=7"));
    CHECK(filter.status == RequestStatus::pending);
    CHECK(filter.model == "CP-8875");
    CHECK(filter.mac == "00:1A:2B:3C:4D:5E");
    CHECK(filter.text == "SEP");
    CHECK(filter.since == 10);
    CHECK(filter.until == 20);
    CHECK(filter.limit == 5);
    CHECK(filter.offset == 7);
    CHECK_FALSE(parseRequestFilter(params("status=")).status);  // empty: no filter
    for (const char* bad : {"status=done", "mac=12", "limit=0", "limit=501", "limit=", "since=-1",
                            "offset=1e3", "until=9999999999999999999"}) {
        CAPTURE(bad);
        CHECK_THROWS_AS(parseRequestFilter(params(bad)), BadInput);
    }
}

TEST_CASE("certificate filters: text, serial or MAC, state, expiry window") {
    const CertificateFilter mac = parseCertificateFilter(params("q=00-1a-2b-3c-4d-5e"), 1000);
    CHECK(mac.text == "00:1A:2B:3C:4D:5E");
    CHECK(mac.now == 1000);
    CHECK(parseCertificateFilter(params("q=001a2b3c4d5e"), 0).text == "001a2b3c4d5e");  // a serial?
    CHECK(parseCertificateFilter(params("q=a.b"), 0).text == "a.b");
    CHECK(parseCertificateFilter(params("status=revoked"), 0).state == CertificateState::revoked);
    CHECK_FALSE(parseCertificateFilter(params("status=all"), 0).state);
    CHECK(parseCertificateFilter(params("expiring_within_days=2"), 1000).expiring_before ==
          1000 + 2 * 86400);
    CHECK_THROWS_AS(parseCertificateFilter(params("status=bad"), 0), BadInput);
    CHECK_THROWS_AS(parseCertificateFilter(params("expiring_within_days=36501"), 0), BadInput);
    const AuditPage page = parseAuditPage(params("limit=10&before=99"));
    CHECK(page.limit == 10);
    CHECK(page.before == 99);
    CHECK_THROWS_AS(parseAuditPage(params("before=x")), BadInput);
}

TEST_CASE("JSON bodies: revocation reasons, rejection reasons, new tokens") {
    CHECK(parseJsonBody("").empty());
    for (const char* bad : {"{", "[]", "\"x\"", "1", "{\"a\":1", "nul"}) {
        CAPTURE(bad);
        CHECK_THROWS_AS(parseJsonBody(bad), BadInput);
    }
    CHECK(parseRevocationReason(json::object()) == 0);
    CHECK(parseRevocationReason({{"reason", "keyCompromise"}}) == 1);
    CHECK(parseRevocationReason({{"reason", 9}}) == 9);
    CHECK(parseRevocationReason({{"reason", 4294967297LL}}) == -1);  // never narrowed to 1
    CHECK(parseRevocationReason({{"reason", -1}}) == -1);
    CHECK_THROWS_AS(parseRevocationReason({{"reason", "lost"}}), BadInput);
    CHECK_THROWS_AS(parseRevocationReason({{"reason", 1.5}}), BadInput);
    CHECK(revocationReasonName(1) == "keyCompromise");
    CHECK(revocationReasonName(7) == "7");

    CHECK(parseRejectReason({{"reason", "not ours"}}) == "not ours");
    for (const json& bad : {json::object(), json{{"reason", ""}}, json{{"reason", 5}},
                            json{{"reason", nullptr}}, json{{"reason", std::string(501, 'x')}}}) {
        CHECK_THROWS_AS(parseRejectReason(bad), BadInput);
    }
    const NewTokenInput token = parseNewToken({{"name", "robot-1"}, {"role", "viewer"}});
    CHECK(token.name == "robot-1");
    CHECK(token.role == Role::viewer);
    for (const json& bad :
         {json{{"name", "robot"}}, json{{"role", "viewer"}}, json{{"name", 5}, {"role", "viewer"}},
          json{{"name", "bad name"}, {"role", "viewer"}},
          json{{"name", "robot"}, {"role", "admin"}}}) {
        CHECK_THROWS_AS(parseNewToken(bad), BadInput);
    }
    CHECK(parseRequestId("42") == 42);
    CHECK_THROWS_AS(parseRequestId(std::string(19, '9')), AdminError);
}

TEST_CASE("revocation reasons: one table of RFC 5280 names and codes") {
    const auto& reasons = revocationReasons();
    REQUIRE(reasons.size() == 10);
    int previous = -1;
    for (const RevocationReason& reason : reasons) {
        CAPTURE(reason.name);
        CHECK(reason.code > previous);  // in code order, each once
        CHECK(reason.code != 7);        // unassigned in RFC 5280
        CHECK(revocationReasonCode(reason.name) == reason.code);
        CHECK(revocationReasonName(reason.code) == reason.name);
        CHECK(parseRevocationReason({{"reason", reason.name}}) == reason.code);
        previous = reason.code;
    }
    CHECK(revocationReasonCode("aACompromise") == 10);
    CHECK_FALSE(revocationReasonCode("KeyCompromise"));  // names are exact
    CHECK_FALSE(revocationReasonCode(""));
    CHECK(revocationReasonName(11) == "11");
}
