// What hostile clients cost the enrollment service: throttled challenge
// guessing, a bounded audit trail per source, and 503 instead of a half
// write when the disk is short or the store fails.
#include <doctest/doctest.h>

#include "ra/crypto.h"
#include "ra_support.h"

using namespace scep;
using namespace testsupport;

namespace {

const std::string kChallengeRa = R"(
[auth]
challenge = "s3cret-challenge"
challenge-attempts = 3
challenge-lockout = "10m"
)";

// A challenge PKCSReq for `cn` from `peer`.
CertRepView challengeRequest(TestRa& ra, const std::string& peer, const std::string& cn,
                             const std::string& challenge) {
    static const EvpPkeyPtr key = fixtureKey("newkey-3");
    static const X509Ptr signer = makeSelfSigned(*key, "SCEP SIGNER");
    RequestParams params;
    params.transaction_id = randomTransactionId();
    const Bytes csr = requestDer(*makeCsr(*fixtureKey("newkey-1"), {cn, {}, challenge}));
    const Bytes message = buildPkiMessage(params, csr, *signer, *key, *ra.state.ra.cert);
    return parseCertRep(ra.service->responder().pkiOperation(message, peer), *ra.state.ra.cert);
}

// A phone's MIC-signed PKCSReq, in a transaction of its own.
Bytes micRequest(TestRa& ra) {
    const X509Ptr mic = fixtureCert("mic-cp8875");
    const EvpPkeyPtr mic_key = fixtureKey("mic-cp8875");
    const X509ReqPtr csr = makeCsr(*fixtureKey("newkey-1"), {"CP-8875-SEP001A2B3C4D5E", {}, {}});
    RequestParams params;
    params.transaction_id = randomTransactionId();
    return buildPkiMessage(params, requestDer(*csr), *mic, *mic_key, *ra.state.ra.cert);
}

bool refusedFor(const CertRepView& reply, TestRa& ra, const std::string& text) {
    return reply.status == PkiStatus::failure &&
           ra.audit().front().reason.find(text) != std::string::npos;
}

// The SCEP messages of a hostile client: garbage from `peer`.
void sendGarbage(TestRa& ra, const std::string& peer, int count) {
    for (int i = 0; i < count; ++i) {
        CHECK_THROWS_AS(ra.service->responder().pkiOperation(Bytes(64, 0x30), peer),
                        UnanswerableMessage);
    }
}

// The real SQLite store, whose writes fail as on a full disk once `full`.
class FullDiskStore : public Store {
public:
    explicit FullDiskStore(Store& real) : real_(real) {}
    bool full = false;

    void addPendingRequest(RequestRecord& r, const AuditEvent& e) override {
        check();
        real_.addPendingRequest(r, e);
    }
    std::vector<std::string> addIssuedRequest(RequestRecord& r, const CertificateRecord& c,
                                              const AuditEvent& e,
                                              const IssueRules& rules) override {
        check();
        return real_.addIssuedRequest(r, c, e, rules);
    }
    bool issuePending(std::int64_t id, const CertificateRecord& c, const AuditEvent& e,
                      const IssueRules& rules, std::vector<std::string>* superseded) override {
        check();
        return real_.issuePending(id, c, e, rules, superseded);
    }
    bool rejectPending(std::int64_t id, const std::string& why, const AuditEvent& e,
                       std::optional<int> fail) override {
        check();
        return real_.rejectPending(id, why, e, fail);
    }
    bool forwardPending(std::int64_t id, const CaProgress& ca, const AuditEvent& e) override {
        check();
        return real_.forwardPending(id, ca, e);
    }
    bool acknowledgedByCa(std::int64_t id, const AuditEvent& e) override {
        check();
        return real_.acknowledgedByCa(id, e);
    }
    bool noteCaError(std::int64_t id, const std::string& error, const AuditEvent* e) override {
        check();
        return real_.noteCaError(id, error, e);
    }
    std::vector<RequestRecord> requestsAtCa() override { return real_.requestsAtCa(); }
    std::optional<RequestRecord> findRequest(std::int64_t id) override {
        return real_.findRequest(id);
    }
    std::optional<RequestRecord> findRequestByTransaction(const std::string& t) override {
        return real_.findRequestByTransaction(t);
    }
    std::vector<RequestRecord> listRequests(std::optional<RequestStatus> s) override {
        return real_.listRequests(s);
    }
    std::optional<CertificateRecord> findCertificate(const std::string& s) override {
        return real_.findCertificate(s);
    }
    std::vector<CertificateRecord> listCertificates() override { return real_.listCertificates(); }
    std::vector<CertificateRecord> activeCertificatesFor(const std::string& cn, std::int64_t now,
                                                         Superseded superseded) override {
        return real_.activeCertificatesFor(cn, now, superseded);
    }
    bool revoke(const std::string& s, int reason, std::int64_t at, const AuditEvent& e) override {
        check();
        return real_.revoke(s, reason, at, e);
    }
    std::vector<CertificateRecord> revokedCertificates() override {
        return real_.revokedCertificates();
    }
    Page<RequestRecord> findRequests(const RequestFilter& f) override {
        return real_.findRequests(f);
    }
    Page<CertificateView> findCertificates(const CertificateFilter& f) override {
        return real_.findCertificates(f);
    }
    std::size_t countRequests(RequestStatus s) override { return real_.countRequests(s); }
    std::size_t countValidCertificates(std::int64_t a, std::int64_t b) override {
        return real_.countValidCertificates(a, b);
    }
    void addToken(const TokenRecord& t, const AuditEvent& e) override {
        check();
        real_.addToken(t, e);
    }
    std::optional<TokenRecord> findToken(const std::string& id) override {
        return real_.findToken(id);
    }
    std::vector<TokenRecord> listTokens() override { return real_.listTokens(); }
    bool deleteToken(const std::string& n, const AuditEvent& e) override {
        check();
        return real_.deleteToken(n, e);
    }
    void ping() override { real_.ping(); }
    void checkWritable() override {
        check();
        real_.checkWritable();
    }
    void audit(const AuditEvent& e) override {
        check();
        real_.audit(e);
    }
    std::vector<AuditEvent> listAudit(std::size_t limit, std::int64_t before) override {
        return real_.listAudit(limit, before);
    }

private:
    void check() const {
        if (full) {
            throw StoreError("addIssuedRequest: database or disk is full");
        }
    }
    Store& real_;
};

}  // namespace

TEST_CASE("a store that cannot write makes enrollment answer 503, never a certificate") {
    TestRa ra;
    FullDiskStore store(*ra.store);
    RaServices service(ra.config, ra.state, store, ra.log, [&ra] { return ra.now; });
    const Bytes message = micRequest(ra);
    store.full = true;
    CHECK_THROWS_AS(service.responder().pkiOperation(message, "192.0.2.7"), Unavailable);
    // Failures of garbage cannot be audited either: 503 too, not 500.
    CHECK_THROWS_AS(service.responder().pkiOperation(Bytes(64, 0x30), "192.0.2.7"), Unavailable);
    CHECK(ra.certificateCount() == 0);
    CHECK(ra.store->listRequests(std::nullopt).empty());
    // Space again: the same message now enrolls.
    store.full = false;
    CHECK(parseCertRep(service.responder().pkiOperation(message, "192.0.2.7"), *ra.state.ra.cert)
              .status == PkiStatus::success);
}

TEST_CASE("wrong challenges lock out their source, even for the right challenge") {
    TestRa ra(kChallengeRa);
    for (int i = 0; i < 3; ++i) {
        const auto reply =
            challengeRequest(ra, "198.51.100.1", "guess-" + std::to_string(i) + ".example.nl",
                             "wrong-guess-" + std::to_string(i));
        CHECK(refusedFor(reply, ra, "challengePassword does not match"));
    }
    // Locked: the right challenge is refused too, so a lucky guess cannot
    // be told apart from a wrong one.
    CHECK(refusedFor(challengeRequest(ra, "198.51.100.1", "lucky.example.nl", "s3cret-challenge"),
                     ra, "too many failed challenge attempts from 198.51.100.1"));
    CHECK(ra.certificateCount() == 0);
    // Another source is unaffected.
    CHECK(challengeRequest(ra, "198.51.100.2", "fine.example.nl", "s3cret-challenge").status ==
          PkiStatus::success);
    // After the lockout the source may try again.
    ra.now += 600;
    CHECK(challengeRequest(ra, "198.51.100.1", "later.example.nl", "s3cret-challenge").status ==
          PkiStatus::success);
}

TEST_CASE("wrong challenges for one CN from many sources lock that CN") {
    TestRa ra(kChallengeRa);
    for (int i = 0; i < 3; ++i) {
        challengeRequest(ra, "203.0.113." + std::to_string(i), "victim.example.nl",
                         "nope-nope-nope");
    }
    CHECK(refusedFor(challengeRequest(ra, "203.0.113.50", "Victim.Example.NL.", "s3cret-challenge"),
                     ra, "too many failed challenge attempts for 'victim.example.nl'"));
    CHECK(challengeRequest(ra, "203.0.113.50", "other.example.nl", "s3cret-challenge").status ==
          PkiStatus::success);
}

TEST_CASE("one source's failures are audited up to its budget, then summarised") {
    TestRa ra("[ra]\naudit-failures-per-source = 5\naudit-failures-overall = 50\n");
    const std::size_t before = ra.audit().size();
    sendGarbage(ra, "198.51.100.9", 40);
    sendGarbage(ra, "198.51.100.10", 2);
    auto rows = ra.audit();
    CHECK(rows.size() - before == 5 + 2);
    // The next minute's flush writes one summary for the 35 not written.
    ra.now += 61;
    ra.service->auditTrail().flush();
    rows = ra.audit();
    REQUIRE(rows.size() - before == 5 + 2 + 1);
    CHECK(rows.front().action == "suppressed");
    CHECK(rows.front().peer == "198.51.100.9");
    CHECK(rows.front().reason.rfind("35 more failures", 0) == 0);
}

TEST_CASE("client-chosen text is bounded in the audit table") {
    TestRa ra;
    // A signer whose subject is 700 OUs long: 55 KB in every audit row before.
    const EvpPkeyPtr key = generateKey("ec:p256");
    X509NamePtr name(X509_NAME_new());
    for (int i = 0; i < 700; ++i) {
        const std::string ou =
            "Organizational unit number " + std::to_string(i) + " xxxxxxxxxxxxxxxxxxxxxxxxx";
        REQUIRE(X509_NAME_add_entry_by_txt(name.get(), "OU", MBSTRING_ASC,
                                           reinterpret_cast<const unsigned char*>(ou.data()),
                                           static_cast<int>(ou.size()), -1, 0) == 1);
    }
    X509Ptr signer(X509_new());
    X509_set_version(signer.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(signer.get()), 1);
    X509_set_subject_name(signer.get(), name.get());
    X509_set_issuer_name(signer.get(), name.get());
    X509_gmtime_adj(X509_getm_notBefore(signer.get()), 0);
    X509_gmtime_adj(X509_getm_notAfter(signer.get()), 86400);
    X509_set_pubkey(signer.get(), key.get());
    REQUIRE(X509_sign(signer.get(), key.get(), EVP_sha256()) > 0);
    const X509ReqPtr csr = makeCsr(*fixtureKey("newkey-1"), {"x.example.nl", {}, {}});
    RequestParams params;
    params.transaction_id = randomTransactionId();
    const Bytes message =
        buildPkiMessage(params, requestDer(*csr), *signer, *key, *ra.state.ra.cert);
    CHECK(message.size() > 50000);
    ra.service->responder().pkiOperation(message, "198.51.100.20");
    const AuditEvent row = ra.audit().front();
    CHECK(row.identity.size() <= kMaxAuditField);
    CHECK(row.identity.find("truncated: ") != std::string::npos);
    CHECK(row.reason.size() <= kMaxAuditField);
}

TEST_CASE("short of disk space: 503, before anything is written") {
    TestRa ra("[ra]\nmin-free-space = \"999999999MiB\"\n");  // more than any disk here
    const std::size_t before = ra.audit().size();
    const Bytes message = micRequest(ra);
    CHECK_THROWS_AS(ra.service->responder().pkiOperation(message, "192.0.2.7"), Unavailable);
    CHECK(ra.audit().size() == before);
    CHECK(ra.certificateCount() == 0);
}
