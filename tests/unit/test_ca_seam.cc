// The CA seam: a CA may issue now, answer that the request is pending at
// the CA, or refuse. ScriptedCa is the seam's second implementation: it
// issues with the test RA's own CA, or answers as an upstream CA would.
#include <doctest/doctest.h>

#include "ra/crypto.h"
#include "ra_support.h"

using namespace scep;
using namespace testsupport;

namespace {

class ScriptedCa : public CertificateAuthority {
public:
    explicit ScriptedCa(LocalCa& local) : local_(local) {}

    CaAnswer next = CaAnswer::issuedNow(nullptr);  // a null certificate: issue with the local CA
    int calls = 0;
    Bytes last_csr;

    CaAnswer issue(const IssueRequest& request, std::time_t now,
                   const CaSettings& settings) override {
        ++calls;
        last_csr = request.csr;
        if (next.status == CaAnswer::Status::issued) {
            return local_.issue(request, now, settings);
        }
        return next.status == CaAnswer::Status::pending ? CaAnswer::pendingAtCa(next.reference)
                                                        : CaAnswer::failedWith(next.reason);
    }
    X509CrlPtr crl(const std::vector<CertificateRecord>& revoked, std::time_t now,
                   const CaSettings& settings) override {
        return local_.crl(revoked, now, settings);
    }
    X509& certificate() override { return local_.certificate(); }

private:
    LocalCa& local_;
};

// A test RA issuing through a ScriptedCa.
struct SeamRa {
    explicit SeamRa(const std::string& toml) : ra(toml), ca(*ra.state.ca) {
        ra.service = std::make_unique<RaServices>(ra.config, ra.state, ca, *ra.store, ra.log,
                                                  [this] { return ra.now; });
    }
    TestRa ra;
    ScriptedCa ca;
};

}  // namespace

TEST_CASE("CA seam: a CA that issues now gives the phone its certificate") {
    SeamRa seam("");
    Phone phone;
    const auto reply = seam.ra.enroll(*phone.mic, *phone.mic_key, *phone.new_key, {kMicCn, {}, {}});
    CHECK(reply.rep.status == PkiStatus::success);
    REQUIRE(reply.cert);
    CHECK(seam.ca.calls == 1);
    CHECK(seam.ra.certificateCount() == 1);
    // The CA is given the CSR as the phone sent it, to forward unchanged.
    CHECK(requestFromDer(seam.ca.last_csr).request != nullptr);
}

TEST_CASE("CA seam: pending at the CA keeps the request pending and answers PENDING") {
    SeamRa seam("");
    seam.ca.next = CaAnswer::pendingAtCa("upstream-txn-7");
    Phone phone;
    const std::string txid = randomTransactionId();
    const auto first =
        seam.ra.enroll(*phone.mic, *phone.mic_key, *phone.new_key, {kMicCn, {}, {}}, txid);
    CHECK(first.rep.status == PkiStatus::pending);
    CHECK(seam.ra.certificateCount() == 0);
    const auto pending = seam.ra.store->listRequests(RequestStatus::pending);
    REQUIRE(pending.size() == 1);
    CHECK(pending[0].transaction_id == txid);
    CHECK(pending[0].reason == "pending at the CA (reference upstream-txn-7)");
    const AuditEvent event = seam.ra.audit().front();
    CHECK(event.action == "enroll");
    CHECK(event.outcome == "pending");
    CHECK(event.request_id == pending[0].id);
    // The phone's poll gets the request's state: still PENDING.
    const Bytes poll_content = issuerAndSerialDer(*X509_get_issuer_name(phone.mic.get()),
                                                  *X509_get0_serialNumber(phone.mic.get()));
    CHECK(seam.ra.send(*phone.mic, *phone.mic_key, MessageType::CertPoll, poll_content, txid)
              .rep.status == PkiStatus::pending);
    CHECK(seam.ca.calls == 1);
}

TEST_CASE("CA seam: a CA that refuses gives FAILURE (badRequest), audited, no certificate") {
    SeamRa seam("");
    seam.ca.next = CaAnswer::failedWith("policy says no");
    Phone phone;
    const auto reply = seam.ra.enroll(*phone.mic, *phone.mic_key, *phone.new_key, {kMicCn, {}, {}});
    CHECK(reply.rep.status == PkiStatus::failure);
    CHECK(reply.rep.fail == FailInfo::badRequest);
    CHECK_FALSE(reply.cert);
    CHECK(seam.ra.certificateCount() == 0);
    CHECK(seam.ra.store->listRequests(std::nullopt).empty());
    const AuditEvent event = seam.ra.audit().front();
    CHECK(event.outcome == "failure");
    CHECK(event.reason == "badRequest: the CA refused the request: policy says no");
}

TEST_CASE("CA seam: approving while the CA answers pending, then refuses or issues") {
    SeamRa seam("[auth]\napproval-mic = \"manual\"\n");
    Phone phone;
    const std::string txid = randomTransactionId();
    REQUIRE(seam.ra.enroll(*phone.mic, *phone.mic_key, *phone.new_key, {kMicCn, {}, {}}, txid)
                .rep.status == PkiStatus::pending);
    const std::int64_t id = seam.ra.store->listRequests(RequestStatus::pending).front().id;
    Administration& admin = seam.ra.service->administration();
    const Bytes poll_content = issuerAndSerialDer(*X509_get_issuer_name(phone.mic.get()),
                                                  *X509_get0_serialNumber(phone.mic.get()));
    auto poll = [&] {
        return seam.ra.send(*phone.mic, *phone.mic_key, MessageType::CertPoll, poll_content, txid);
    };

    seam.ca.next = CaAnswer::pendingAtCa("upstream-txn-9");
    const ApprovalResult approved = admin.approve(id, "cli:alice");
    CHECK(approved.serial.empty());
    CHECK(approved.reference == "upstream-txn-9");
    CHECK(seam.ra.store->findRequest(id)->status == RequestStatus::pending);
    CHECK(seam.ra.audit().front().action == "approve");
    CHECK(seam.ra.audit().front().outcome == "pending");
    CHECK(poll().rep.status == PkiStatus::pending);

    SUBCASE("the CA refuses: the request is rejected, the phone gets FAILURE") {
        seam.ca.next = CaAnswer::failedWith("no such profile upstream");
        try {
            admin.approve(id, "cli:alice");
            FAIL("approve succeeded although the CA refused");
        } catch (const AdminError& e) {
            CHECK(e.kind() == AdminError::Kind::conflict);
        }
        CHECK(seam.ra.store->findRequest(id)->status == RequestStatus::rejected);
        CHECK(seam.ra.audit().front().action == "approve");
        CHECK(seam.ra.audit().front().outcome == "failure");
        const auto reply = poll();
        CHECK(reply.rep.status == PkiStatus::failure);
        CHECK(reply.rep.fail == FailInfo::badRequest);
        CHECK(seam.ra.certificateCount() == 0);
    }
    SUBCASE("the CA issues: the phone collects its certificate") {
        seam.ca.next = CaAnswer::issuedNow(nullptr);
        const std::string serial = admin.approve(id, "cli:alice").serial;
        CHECK_FALSE(serial.empty());
        const auto reply = poll();
        REQUIRE(reply.cert);
        CHECK(serialHex(X509_get0_serialNumber(reply.cert.get())) == serial);
    }
}

TEST_CASE("Administration as the CLI builds it, approves, revokes and publishes") {
    TestRa ra("[auth]\napproval-mic = \"manual\"\n");
    Phone phone;
    REQUIRE(ra.enroll(*phone.mic, *phone.mic_key, *phone.new_key, {kMicCn, {}, {}}).rep.status ==
            PkiStatus::pending);
    const std::int64_t id = ra.store->listRequests(RequestStatus::pending).front().id;
    RaServices services(ra.config, ra.state, *ra.store, ra.log, [&ra] { return ra.now; });
    Administration& admin = services.administration();
    const std::string serial = admin.approve(id, "cli:alice").serial;
    REQUIRE_FALSE(serial.empty());
    CHECK(ra.store->findRequest(id)->status == RequestStatus::issued);
    admin.revoke(serial, 1, "cli:alice");
    CHECK(ra.audit().front().action == "revoke");
    CHECK(ra.store->findCertificate(serial)->revoked);
    const NewToken token = admin.createToken("ops", Role::viewer, "cli:alice");
    CHECK(ra.audit().front().action == "token-create");
    CHECK(ra.store->findToken(token.record.id));
    admin.deleteToken("ops", "cli:alice");
    CHECK(ra.audit().front().action == "token-delete");
    CHECK_THROWS_AS(admin.deleteToken("ops", "cli:alice"), AdminError);
}
