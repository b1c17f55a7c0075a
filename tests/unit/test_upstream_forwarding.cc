// Forwarding to a CA that answers later (CertificateAuthority::forwards):
// the request is stored under its reference before the CA is asked; each
// answer (issued, PENDING, refused, no answer) lands in the store; the
// poller's step (continueAtCa) takes it further, also in a new process.
// ForwardingCa scripts the CA's answers and issues with the test RA's own
// CA; the real upstream is exercised in tests/integration/test_upstream.py.
#include <doctest/doctest.h>

#include <deque>

#include "ra/ca/upstream/poller.h"
#include "ra/ca/upstream/scep_upstream.h"
#include "ra/crypto.h"
#include "ra_support.h"

using namespace scep;
using namespace testsupport;

namespace {

class ForwardingCa : public CertificateAuthority {
public:
    explicit ForwardingCa(LocalCa& local) : local_(local) {}

    // What the next exchanges answer, in order; empty: issue.
    std::deque<CaAnswer> answers;
    std::vector<std::string> sent;    // references of every PKCSReq
    std::vector<std::string> polled;  // references of every CertPoll
    Bytes last_csr;

    CaAnswer issue(const IssueRequest& request, std::time_t now,
                   const CaSettings& settings) override {
        sent.push_back(request.reference);
        last_csr = request.csr;
        return next(request.csr, now, settings);
    }
    CaAnswer poll(const std::string& reference, const Bytes& csr) override {
        polled.push_back(reference);
        return next(csr, std::time(nullptr), CaSettings{});
    }
    X509CrlPtr crl(const std::vector<CertificateRecord>& revoked, std::time_t now,
                   const CaSettings& settings) override {
        return local_.crl(revoked, now, settings);
    }
    X509& certificate() override { return local_.certificate(); }
    bool forwards() const override { return true; }

private:
    CaAnswer next(const Bytes& csr_der, std::time_t now, const CaSettings& settings) {
        if (!answers.empty()) {
            CaAnswer answer = std::move(answers.front());
            answers.pop_front();
            if (answer.status != CaAnswer::Status::issued || answer.certificate) {
                return answer;
            }
        }
        const CertificationRequest csr = requestFromDer(csr_der);
        return local_.issue(
            {csr.key.get(),
             X509_REQ_get_X509_PUBKEY(csr.request.get()),
             nameEntry(X509_REQ_get_subject_name(csr.request.get()), NID_commonName),
             {},
             csr_der,
             ""},
            now, settings);
    }
    LocalCa& local_;
};

struct ForwardingRa {
    explicit ForwardingRa(const std::string& toml) : ra(toml), ca(*ra.state.ca) { rewire(); }
    // A new process on the same state: what a restart after kill -9 leaves.
    void rewire() {
        ra.service = std::make_unique<RaServices>(ra.config, ra.state, ca, *ra.store, ra.log,
                                                  [this] { return ra.now; });
    }
    CertificateIssuance& issuance() { return ra.service->issuance(); }
    RequestRecord only() {
        const auto all = ra.store->listRequests(std::nullopt);
        REQUIRE(all.size() == 1);
        return all.front();
    }
    TestRa ra;
    ForwardingCa ca;
};

Bytes pollContent(const Phone& phone) {
    return issuerAndSerialDer(*X509_get_issuer_name(phone.mic.get()),
                              *X509_get0_serialNumber(phone.mic.get()));
}

}  // namespace

TEST_CASE("forwarding: the CA issues at once; the CSR went as the phone sent it") {
    ForwardingRa f("");
    Phone phone;
    const std::string txid = randomTransactionId();
    const auto reply =
        f.ra.enroll(*phone.mic, *phone.mic_key, *phone.new_key, {kMicCn, {}, {}}, txid);
    CHECK(reply.rep.status == PkiStatus::success);
    REQUIRE(reply.cert);
    const RequestRecord request = f.only();
    CHECK(request.status == RequestStatus::issued);
    CHECK(request.ca.state == CaState::none);
    CHECK(request.ca.csr.empty());
    REQUIRE(f.ca.sent.size() == 1);
    CHECK(f.ca.sent[0] == request.ca.reference);
    CHECK(request.ca.reference == upstreamTransactionId(txid, request.public_key_id));
    CHECK(requestFromDer(f.ca.last_csr).request != nullptr);
    // Written before the CA was asked, then its answer.
    const auto audit = f.ra.audit();
    CHECK(audit.at(1).action == "forward");
    CHECK(audit.at(1).outcome == "pending");
    CHECK(audit.at(0).action == "upstream");
    CHECK(audit.at(0).outcome == "success");
    CHECK(audit.at(0).serial == request.cert_serial);
}

TEST_CASE("forwarding: PENDING at the CA, polled until it issues; the phone collects") {
    ForwardingRa f("");
    f.ca.answers.push_back(CaAnswer::pendingAtCa(""));
    Phone phone;
    const std::string txid = randomTransactionId();
    CHECK(f.ra.enroll(*phone.mic, *phone.mic_key, *phone.new_key, {kMicCn, {}, {}}, txid)
              .rep.status == PkiStatus::pending);
    RequestRecord request = f.only();
    CHECK(request.ca.state == CaState::pending);
    CHECK(request.ca.csr.empty());  // acknowledged: no longer needed
    auto poll = [&] {
        return f.ra.send(*phone.mic, *phone.mic_key, MessageType::CertPoll, pollContent(phone),
                         txid);
    };
    CHECK(poll().rep.status == PkiStatus::pending);

    f.ca.answers.push_back(CaAnswer::pendingAtCa(""));
    f.issuance().continueAtCa(request.id, f.ra.config, f.ra.now);
    CHECK(f.only().status == RequestStatus::pending);
    f.issuance().continueAtCa(request.id, f.ra.config, f.ra.now);
    CHECK(f.ca.polled == std::vector<std::string>{request.ca.reference, request.ca.reference});
    CHECK(f.ca.sent.size() == 1);  // polled, never sent again
    request = f.only();
    CHECK(request.status == RequestStatus::issued);
    const auto reply = poll();
    REQUIRE(reply.cert);
    CHECK(serialHex(X509_get0_serialNumber(reply.cert.get())) == request.cert_serial);
}

TEST_CASE("forwarding: the CA's refusal reaches the phone with its failInfo") {
    ForwardingRa f("");
    f.ca.answers.push_back(
        CaAnswer::failedWith("FAILURE, failInfo badCertId", static_cast<int>(FailInfo::badCertId)));
    Phone phone;
    const std::string txid = randomTransactionId();
    const auto reply =
        f.ra.enroll(*phone.mic, *phone.mic_key, *phone.new_key, {kMicCn, {}, {}}, txid);
    CHECK(reply.rep.status == PkiStatus::failure);
    CHECK(reply.rep.fail == FailInfo::badCertId);
    const RequestRecord request = f.only();
    CHECK(request.status == RequestStatus::rejected);
    REQUIRE(request.ca.fail_info);
    CHECK(*request.ca.fail_info == static_cast<int>(FailInfo::badCertId));
    CHECK(f.ra.audit().front().action == "upstream");
    CHECK(f.ra.audit().front().outcome == "failure");
    CHECK(f.ra.certificateCount() == 0);
    // The phone's resend gets the same answer; the CA is not asked again.
    const auto again =
        f.ra.enroll(*phone.mic, *phone.mic_key, *phone.new_key, {kMicCn, {}, {}}, txid);
    CHECK(again.rep.status == PkiStatus::failure);
    CHECK(f.ca.sent.size() == 1);
}

TEST_CASE(
    "forwarding: an unreachable CA gives PENDING, never FAILURE; after a restart the "
    "same request goes again under the same reference") {
    ForwardingRa f("");
    f.ca.answers.push_back(CaAnswer::unreachable("connection refused"));
    Phone phone;
    const std::string txid = randomTransactionId();
    CHECK(f.ra.enroll(*phone.mic, *phone.mic_key, *phone.new_key, {kMicCn, {}, {}}, txid)
              .rep.status == PkiStatus::pending);
    RequestRecord request = f.only();
    CHECK(request.ca.state == CaState::forwarding);
    CHECK(request.ca.last_error == "connection refused");
    CHECK_FALSE(request.ca.csr.empty());  // to send again
    const std::size_t audited = f.ra.audit().size();
    // The same failure again is not audited again.
    f.ca.answers.push_back(CaAnswer::unreachable("connection refused"));
    f.issuance().continueAtCa(request.id, f.ra.config, f.ra.now);
    CHECK(f.ra.audit().size() == audited);

    f.rewire();  // a new process: the poller finds it in the store
    const auto at_ca = f.ra.store->requestsAtCa();
    REQUIRE(at_ca.size() == 1);
    f.issuance().continueAtCa(at_ca[0].id, f.ra.config, f.ra.now);
    request = f.only();
    CHECK(request.status == RequestStatus::issued);
    REQUIRE(f.ca.sent.size() == 3);
    CHECK(f.ca.sent[0] == f.ca.sent[1]);
    CHECK(f.ca.sent[1] == f.ca.sent[2]);  // one reference, however often it is sent
}

TEST_CASE("forwarding: poll-timeout ends the wait, audited, no certificate") {
    ForwardingRa f("");
    f.ca.answers.push_back(CaAnswer::pendingAtCa(""));
    Phone phone;
    CHECK(f.ra.enroll(*phone.mic, *phone.mic_key, *phone.new_key, {kMicCn, {}, {}}).rep.status ==
          PkiStatus::pending);
    const RequestRecord request = f.only();
    const std::time_t later = f.ra.now + 7 * 24 * 3600 + 1;  // the default poll-timeout, passed
    const auto outcome = f.issuance().continueAtCa(request.id, f.ra.config, later);
    CHECK(outcome.status == CaAnswer::Status::failed);
    CHECK(f.ca.polled.empty());  // not asked any more
    CHECK(f.only().status == RequestStatus::rejected);
    CHECK(f.ra.audit().front().reason.find("poll-timeout") != std::string::npos);
    CHECK(f.ra.certificateCount() == 0);
}

TEST_CASE("forwarding: manual approval here, then the CA; approvals go once") {
    ForwardingRa f("[auth]\napproval-mic = \"manual\"\n");
    Phone phone;
    CHECK(f.ra.enroll(*phone.mic, *phone.mic_key, *phone.new_key, {kMicCn, {}, {}}).rep.status ==
          PkiStatus::pending);
    RequestRecord request = f.only();
    CHECK(request.ca.state == CaState::none);  // waits for an administrator
    CHECK_FALSE(request.ca.csr.empty());       // the CSR as received, to forward once approved
    CHECK(f.ca.sent.empty());
    f.ca.answers.push_back(CaAnswer::pendingAtCa(""));
    Administration& admin = f.ra.service->administration();
    const ApprovalResult approved = admin.approve(request.id, "cli:alice");
    CHECK(approved.serial.empty());
    CHECK_FALSE(approved.reference.empty());
    CHECK(f.only().ca.state == CaState::pending);
    CHECK_THROWS_AS(admin.approve(request.id, "cli:alice"), AdminError);
    CHECK(f.ca.sent.size() == 1);
}

TEST_CASE("forwarding: revoking here says the upstream CA must revoke too") {
    ForwardingRa f("");
    Phone phone;
    REQUIRE(f.ra.enroll(*phone.mic, *phone.mic_key, *phone.new_key, {kMicCn, {}, {}}).rep.status ==
            PkiStatus::success);
    const std::string note =
        f.ra.service->administration().revoke(f.only().cert_serial, 1, "cli:alice");
    CHECK(note.find("revoke it at the upstream CA too") != std::string::npos);
    CHECK(f.ra.store->findCertificate(f.only().cert_serial)->revoked);
}

TEST_CASE("poller backoff: doubles from poll-interval, capped at 16x or 10 minutes") {
    using std::chrono::milliseconds;
    using std::chrono::seconds;
    CHECK(UpstreamPoller::backoff(seconds(1), 0) == seconds(1));
    CHECK(UpstreamPoller::backoff(seconds(1), 3) == seconds(8));
    CHECK(UpstreamPoller::backoff(seconds(1), 40) == seconds(16));
    CHECK(UpstreamPoller::backoff(seconds(60), 40) == seconds(600));
    CHECK(UpstreamPoller::backoff(seconds(3600), 5) == seconds(3600));  // never below interval
}

namespace {

// A downstream RA's identity, self-signed, and the bundle that trusts it.
struct DownstreamRa {
    EvpPkeyPtr key = generateKey("rsa:2048");
    X509Ptr cert = makeSelfSigned(*key, "site-ra-amsterdam");
};

std::string raSignersConfig(TempDir& dir, X509& trusted, const std::string& approval) {
    dir.write("downstream-ras.pem", certificatePem(trusted));
    return "[auth]\nra-signers = \"" + dir.file("downstream-ras.pem") + "\"\napproval-ra = \"" +
           approval + "\"\n";
}

}  // namespace

TEST_CASE("ra-signers: another RA's request for a device is authenticated as method ra") {
    TempDir bundle;
    DownstreamRa site;
    TestRa central(raSignersConfig(bundle, *site.cert, "manual"));
    Phone phone;
    // A phone's MIC-shaped name: the site RA checked the MIC.
    const auto reply = central.enroll(*site.cert, *site.key, *phone.new_key, {kMicCn, {}, {}});
    CHECK(reply.rep.status == PkiStatus::pending);  // approval-ra defaults to manual
    const auto pending = central.store->listRequests(RequestStatus::pending);
    REQUIRE(pending.size() == 1);
    CHECK(pending[0].method == "ra");
    CHECK(pending[0].common_name == kMicCn);
    CHECK(pending[0].identity == "RA 'CN=site-ra-amsterdam' for CN " + kMicCn);
    CHECK(central.audit().front().identity == pending[0].identity);

    SUBCASE("the CSR rules still apply") {
        const auto refused =
            central.enroll(*site.cert, *site.key, *phone.new_key,
                           {"device-7", {{SubjectAltName::Type::email, "a@b"}}, {}});
        CHECK(refused.rep.status == PkiStatus::failure);
        CHECK(central.audit().front().reason.find("for requests of another RA") !=
              std::string::npos);
    }
}

TEST_CASE("ra-signers: approval-ra auto issues; a signer outside the bundle is refused") {
    TempDir bundle;
    DownstreamRa site;
    TestRa central(raSignersConfig(bundle, *site.cert, "auto"));
    Phone phone;
    const auto issued = central.enroll(*site.cert, *site.key, *phone.new_key, {kMicCn, {}, {}});
    CHECK(issued.rep.status == PkiStatus::success);
    REQUIRE(issued.cert);

    DownstreamRa stranger;
    const auto refused =
        central.enroll(*stranger.cert, *stranger.key, *fixtureKey("newkey-2"), {kMicCn, {}, {}});
    CHECK(refused.rep.status == PkiStatus::failure);
    CHECK(central.certificateCount() == 1);
}

TEST_CASE("ra-signers: a bundle without a root is refused naming the key") {
    TempDir bundle;
    bundle.write("empty.pem", "not a certificate\n");
    try {
        TestRa central("[auth]\nra-signers = \"" + bundle.file("empty.pem") + "\"\n");
        FAIL("an unusable ra-signers bundle was accepted");
    } catch (const std::exception& e) {
        CHECK(std::string(e.what()).find("key 'ra-signers'") != std::string::npos);
    }
}
