// The enrollment service's decisions: idempotency per transactionID, manual
// approval and polling, default deny, GetCert/GetCRL, admin errors.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <iterator>
#include <thread>
#include <utility>

#include <openssl/objects.h>

#include "ra/crypto.h"
#include "ra_support.h"

using namespace scep;
using namespace testsupport;

namespace {

Bytes issuerAndSerialOf(X509& cert) {
    return issuerAndSerialDer(*X509_get_issuer_name(&cert), *X509_get0_serialNumber(&cert));
}

}  // namespace

TEST_CASE("the same transaction and key get the same certificate, never a second one") {
    TestRa ra;
    Phone phone;
    const std::string txid = randomTransactionId();
    const auto first =
        ra.enroll(*phone.mic, *phone.mic_key, *phone.new_key, {kMicCn, {}, {}}, txid);
    const auto again =
        ra.enroll(*phone.mic, *phone.mic_key, *phone.new_key, {kMicCn, {}, {}}, txid);
    REQUIRE(first.cert);
    REQUIRE(again.cert);
    CHECK(X509_cmp(first.cert.get(), again.cert.get()) == 0);
    CHECK(ra.certificateCount() == 1);
    CHECK(again.rep.transaction_id == txid);
}

TEST_CASE("the same transaction with another key is refused") {
    TestRa ra;
    Phone phone;
    const std::string txid = randomTransactionId();
    REQUIRE(ra.enroll(*phone.mic, *phone.mic_key, *phone.new_key, {kMicCn, {}, {}}, txid).cert);
    const auto other = fixtureKey("newkey-2");
    const auto reply = ra.enroll(*phone.mic, *phone.mic_key, *other, {kMicCn, {}, {}}, txid);
    CHECK(reply.rep.status == PkiStatus::failure);
    CHECK(reply.rep.fail == FailInfo::badRequest);
    CHECK(ra.certificateCount() == 1);
    CHECK(ra.audit().front().reason.find("already used with a different key") != std::string::npos);
}

TEST_CASE("GetCACaps advertises exactly the digests requests may use") {
    TestRa ra;
    Phone phone;
    const std::string caps = ScepResponder::capabilities();
    const std::pair<int, const char*> candidates[] = {
        {NID_md5, "MD5"},        {NID_sha1, "SHA-1"},     {NID_sha224, "SHA-224"},
        {NID_sha256, "SHA-256"}, {NID_sha384, "SHA-384"}, {NID_sha512, "SHA-512"}};
    for (const auto& [nid, name] : candidates) {
        CAPTURE(name);
        RequestParams params;
        params.transaction_id = randomTransactionId();
        params.digest_nid = nid;
        const Bytes csr = requestDer(*makeCsr(*phone.new_key, {kMicCn, {}, {}}));
        const Bytes message =
            buildPkiMessage(params, csr, *phone.mic, *phone.mic_key, *ra.state.ra.cert);
        const auto reply =
            parseCertRep(ra.service->responder().pkiOperation(message, "peer"), *ra.state.ra.cert);
        const bool advertised = caps.find(std::string(name) + "\n") != std::string::npos;
        const bool refused = reply.status == PkiStatus::failure && reply.fail == FailInfo::badAlg;
        CHECK(advertised == !refused);
    }
}

TEST_CASE("an MD5-signed request gets a signed FAILURE badAlg, audited, and no certificate") {
    TestRa ra;
    Phone phone;
    RequestParams params;
    params.transaction_id = randomTransactionId();
    params.digest_nid = NID_md5;
    const Bytes csr = requestDer(*makeCsr(*phone.new_key, {kMicCn, {}, {}}));
    const Bytes message =
        buildPkiMessage(params, csr, *phone.mic, *phone.mic_key, *ra.state.ra.cert);
    const auto reply =
        parseCertRep(ra.service->responder().pkiOperation(message, "peer"), *ra.state.ra.cert);
    CHECK(reply.status == PkiStatus::failure);
    CHECK(reply.fail == FailInfo::badAlg);
    CHECK(reply.transaction_id == params.transaction_id);
    CHECK(ra.certificateCount() == 0);
    const auto audit = ra.audit();
    REQUIRE_FALSE(audit.empty());
    CHECK(audit.front().reason.find("digest MD5 is refused") != std::string::npos);
    CHECK(audit.front().transaction_id == params.transaction_id);
}

TEST_CASE("replies echo the request's nonce and transaction and carry a fresh nonce") {
    TestRa ra;
    Phone phone;
    RequestParams params;
    params.transaction_id = randomTransactionId();
    params.sender_nonce = Bytes(16, 0x42);
    const Bytes csr = requestDer(*makeCsr(*phone.new_key, {kMicCn, {}, {}}));
    const Bytes message =
        buildPkiMessage(params, csr, *phone.mic, *phone.mic_key, *ra.state.ra.cert);
    const auto a =
        parseCertRep(ra.service->responder().pkiOperation(message, "peer"), *ra.state.ra.cert);
    const auto b =
        parseCertRep(ra.service->responder().pkiOperation(message, "peer"), *ra.state.ra.cert);
    CHECK(a.recipient_nonce == params.sender_nonce);
    CHECK(a.transaction_id == params.transaction_id);
    CHECK(a.sender_nonce.size() == 16);
    CHECK(a.sender_nonce != b.sender_nonce);
}

TEST_CASE("manual approval: PENDING, polling, approve, and the poller gets the certificate") {
    TestRa ra("[auth]\napproval-mic = \"manual\"\n");
    Phone phone;
    const std::string txid = randomTransactionId();
    const auto first =
        ra.enroll(*phone.mic, *phone.mic_key, *phone.new_key, {kMicCn, {}, {}}, txid);
    CHECK(first.rep.status == PkiStatus::pending);
    CHECK(ra.certificateCount() == 0);
    const auto pending = ra.store->listRequests(RequestStatus::pending);
    REQUIRE(pending.size() == 1);
    CHECK(pending[0].method == "mic");
    CHECK(pending[0].peer == "192.0.2.7");

    // CertPoll content (IssuerAndSubject) is ignored: clients disagree on it.
    const Bytes poll_content = issuerAndSerialOf(*phone.mic);
    CHECK(
        ra.send(*phone.mic, *phone.mic_key, MessageType::CertPoll, poll_content, txid).rep.status ==
        PkiStatus::pending);
    // Re-sending the whole PKCSReq (micromdm's way of polling) is also PENDING.
    CHECK(
        ra.enroll(*phone.mic, *phone.mic_key, *phone.new_key, {kMicCn, {}, {}}, txid).rep.status ==
        PkiStatus::pending);

    const std::string serial =
        ra.service->administration().approve(pending[0].id, "cli:alice").serial;
    const auto done =
        ra.send(*phone.mic, *phone.mic_key, MessageType::CertPoll, poll_content, txid);
    REQUIRE(done.cert);
    CHECK(serialHex(X509_get0_serialNumber(done.cert.get())) == serial);
    CHECK(ra.certificateCount() == 1);
    CHECK(ra.audit().front().action == "approve");
    CHECK(ra.audit().front().actor == "cli:alice");

    SUBCASE("deciding twice is a conflict; unknown ids are not found") {
        CHECK_THROWS_AS(ra.service->administration().approve(pending[0].id, "x"), AdminError);
        try {
            ra.service->administration().reject(pending[0].id, "late", "x");
        } catch (const AdminError& e) {
            CHECK(e.kind() == AdminError::Kind::conflict);
        }
        try {
            ra.service->administration().approve(999, "x");
        } catch (const AdminError& e) {
            CHECK(e.kind() == AdminError::Kind::not_found);
        }
        CHECK(ra.certificateCount() == 1);
    }
    SUBCASE("only the requester's key may collect") {
        const auto other = fixtureCert("mic-cp8875-b");
        const auto other_key = fixtureKey("mic-cp8875-b");
        const auto reply = ra.send(*other, *other_key, MessageType::CertPoll, poll_content, txid);
        CHECK(reply.rep.status == PkiStatus::failure);
        CHECK(reply.rep.fail == FailInfo::badRequest);
    }
}

TEST_CASE("manual approval: rejection turns polling into FAILURE") {
    TestRa ra("[auth]\napproval = \"manual\"\n");
    Phone phone;
    const std::string txid = randomTransactionId();
    REQUIRE(
        ra.enroll(*phone.mic, *phone.mic_key, *phone.new_key, {kMicCn, {}, {}}, txid).rep.status ==
        PkiStatus::pending);
    const auto id = ra.store->listRequests(RequestStatus::pending).front().id;
    CHECK_THROWS_AS(ra.service->administration().reject(id, "", "cli:bob"),
                    AdminError);  // a reason is required
    ra.service->administration().reject(id, "unknown phone", "cli:bob");
    const auto reply =
        ra.send(*phone.mic, *phone.mic_key, MessageType::CertPoll, Bytes{0x30, 0x00}, txid);
    CHECK(reply.rep.status == PkiStatus::failure);
    CHECK(reply.rep.fail == FailInfo::badRequest);
    CHECK(ra.certificateCount() == 0);
    CHECK(ra.store->findRequest(id)->reason == "unknown phone");
}

TEST_CASE("polling an unknown transaction is badCertId") {
    TestRa ra;
    Phone phone;
    const auto reply = ra.send(*phone.mic, *phone.mic_key, MessageType::CertPoll, Bytes{0x30, 0x00},
                               randomTransactionId());
    CHECK(reply.rep.fail == FailInfo::badCertId);
}

TEST_CASE("message types the RA does not handle are refused: default deny") {
    TestRa ra;
    Phone phone;
    const Bytes csr = requestDer(*makeCsr(*phone.new_key, {kMicCn, {}, {}}));
    for (int type : {3, 18, 23, 99}) {
        CAPTURE(type);
        const auto reply = ra.send(*phone.mic, *phone.mic_key, static_cast<MessageType>(type), csr,
                                   randomTransactionId());
        CHECK(reply.rep.status == PkiStatus::failure);
        CHECK(reply.rep.fail == FailInfo::badRequest);
        CHECK(ra.audit().front().reason.find("is not accepted") != std::string::npos);
    }
    CHECK(ra.certificateCount() == 0);
}

TEST_CASE("single DES needs allow-des; 3DES and AES are always accepted") {
    Phone phone;
    {
        TestRa ra;
        const auto reply = ra.enroll(*phone.mic, *phone.mic_key, *phone.new_key, {kMicCn, {}, {}},
                                     "", MessageType::PKCSReq, NID_des_cbc);
        CHECK(reply.rep.fail == FailInfo::badAlg);
        CHECK(ra.certificateCount() == 0);
        for (int nid : {NID_des_ede3_cbc, NID_aes_128_cbc, NID_aes_256_cbc}) {
            CHECK(ra.enroll(*phone.mic, *phone.mic_key, *phone.new_key, {kMicCn, {}, {}}, "",
                            MessageType::PKCSReq, nid)
                      .cert);
        }
    }
    TestRa des("[auth]\nallow-des = true\n");
    CHECK(des.enroll(*phone.mic, *phone.mic_key, *phone.new_key, {kMicCn, {}, {}}, "",
                     MessageType::PKCSReq, NID_des_cbc)
              .cert);
}

TEST_CASE("garbage is unanswerable, audited, and issues nothing") {
    TestRa ra;
    for (const Bytes& junk : {Bytes{}, Bytes{0x30, 0x03, 0x02, 0x01}, Bytes(300, 0x41)}) {
        CHECK_THROWS_AS(ra.service->responder().pkiOperation(junk, "198.51.100.9"),
                        UnanswerableMessage);
        CHECK(ra.audit().front().peer == "198.51.100.9");
        CHECK(ra.audit().front().outcome == "failure");
    }
    CHECK(ra.certificateCount() == 0);
}

TEST_CASE("an envelope that does not hold a CSR is badRequest") {
    TestRa ra;
    Phone phone;
    const auto reply = ra.send(*phone.mic, *phone.mic_key, MessageType::PKCSReq, Bytes{1, 2, 3},
                               randomTransactionId());
    CHECK(reply.rep.fail == FailInfo::badRequest);
}

TEST_CASE("GetCert and GetCRL") {
    TestRa ra;
    Phone phone;
    const auto issued = ra.enroll(*phone.mic, *phone.mic_key, *phone.new_key, {kMicCn, {}, {}});
    REQUIRE(issued.cert);
    const auto got = ra.send(*phone.mic, *phone.mic_key, MessageType::GetCert,
                             issuerAndSerialOf(*issued.cert), randomTransactionId());
    REQUIRE(got.cert);
    CHECK(X509_cmp(got.cert.get(), issued.cert.get()) == 0);

    const auto unknown = ra.send(*phone.mic, *phone.mic_key, MessageType::GetCert,
                                 issuerAndSerialOf(*phone.mic), randomTransactionId());
    CHECK(unknown.rep.fail == FailInfo::badCertId);

    const std::string serial = serialHex(X509_get0_serialNumber(issued.cert.get()));
    ra.service->administration().revoke(serial, 1, "cli:carol");
    const auto crl_reply = ra.send(*phone.mic, *phone.mic_key, MessageType::GetCRL,
                                   issuerAndSerialOf(*issued.cert), randomTransactionId());
    REQUIRE(crl_reply.rep.status == PkiStatus::success);
    const auto content = openCertRep(crl_reply.rep.envelope, *phone.mic_key, *phone.mic);
    REQUIRE(content.crls.size() == 1);
    X509_REVOKED* entry = nullptr;
    CHECK(X509_CRL_get0_by_serial(content.crls[0].get(), &entry,
                                  X509_get0_serialNumber(issued.cert.get())) == 1);
    CHECK(X509_CRL_verify(content.crls[0].get(), X509_get0_pubkey(&ra.state.ca->certificate())) ==
          1);
}

TEST_CASE("revocation: reasons, twice, unknown") {
    TestRa ra;
    Phone phone;
    const std::string txid = randomTransactionId();
    const auto issued =
        ra.enroll(*phone.mic, *phone.mic_key, *phone.new_key, {kMicCn, {}, {}}, txid);
    const std::string serial = serialHex(X509_get0_serialNumber(issued.cert.get()));
    auto kind = [&](const std::string& s, int reason) {
        try {
            ra.service->administration().revoke(s, reason, "t");
        } catch (const AdminError& e) {
            return e.kind();
        }
        return AdminError::Kind::invalid;  // not reached when the call throws as expected
    };
    CHECK(kind(serial, 7) == AdminError::Kind::invalid);
    CHECK(kind(serial, 11) == AdminError::Kind::invalid);
    CHECK(kind("00", 1) == AdminError::Kind::not_found);
    ra.service->administration().revoke(serial, 4, "t");
    CHECK(kind(serial, 4) == AdminError::Kind::conflict);
    CHECK(ra.store->findCertificate(serial)->revocation_reason == 4);
    CHECK(ra.store->revokedCertificates().size() == 1);
    // The same transaction cannot fetch its revoked certificate again.
    const auto again =
        ra.enroll(*phone.mic, *phone.mic_key, *phone.new_key, {kMicCn, {}, {}}, txid);
    CHECK(again.rep.fail == FailInfo::badRequest);
    CHECK_FALSE(again.cert);
}

namespace {

// Every byte the store wrote: the database and its WAL.
std::string databaseBytes(const TestRa& ra) {
    std::string all;
    for (const char* suffix : {"", "-wal"}) {
        std::ifstream in(ra.dir.file(std::string("state/scep-ra.db") + suffix), std::ios::binary);
        all.append(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    return all;
}

const std::string kChallengeConfig = "[auth]\nchallenge = \"Un1que-Challenge-Secret\"\n";

}  // namespace

TEST_CASE("a challenge client re-sending its request gets its certificate again, not a refusal") {
    TestRa ra(kChallengeConfig);
    const auto key = fixtureKey("newkey-3");
    const auto signer = makeSelfSigned(*key, "SCEP SIGNER");
    const auto new_key = fixtureKey("newkey-1");
    const std::string txid = randomTransactionId();
    const CsrSpec spec{"device-7", {}, std::string("Un1que-Challenge-Secret")};
    const auto first = ra.enroll(*signer, *key, *new_key, spec, txid);
    const auto again = ra.enroll(*signer, *key, *new_key, spec, txid);
    REQUIRE(first.cert);
    REQUIRE(again.cert);
    CHECK(X509_cmp(first.cert.get(), again.cert.get()) == 0);
    CHECK(ra.certificateCount() == 1);

    SUBCASE("but not for another signer") {
        const auto intruder_key = fixtureKey("newkey-2");
        const auto intruder = makeSelfSigned(*intruder_key, "SCEP SIGNER");
        const auto stolen = ra.enroll(*intruder, *intruder_key, *new_key, spec, txid);
        CHECK(stolen.rep.fail == FailInfo::badRequest);
        CHECK(ra.audit().front().reason.find("belongs to another requester") != std::string::npos);
    }
}

TEST_CASE("the challenge never reaches the database, not even inside the stored CSR") {
    TestRa ra(kChallengeConfig + "approval = \"manual\"\n");
    const auto key = fixtureKey("newkey-3");
    const auto signer = makeSelfSigned(*key, "SCEP SIGNER");
    const auto new_key = fixtureKey("newkey-1");
    CHECK(
        ra.enroll(*signer, *key, *new_key, {"device-8", {}, std::string("Un1que-Challenge-Secret")})
            .rep.status == PkiStatus::pending);
    const auto wrong =
        ra.enroll(*signer, *key, *new_key, {"device-9", {}, std::string("Wr0ng-Guess")});
    CHECK(wrong.rep.status == PkiStatus::failure);
    const std::string bytes = databaseBytes(ra);
    REQUIRE(bytes.size() > 4096);
    CHECK(bytes.find("Un1que-Challenge-Secret") == std::string::npos);
    CHECK(bytes.find("Wr0ng-Guess") == std::string::npos);
    // The stored CSR still names the key and CN, so approval can issue.
    const auto pending = ra.store->listRequests(RequestStatus::pending).front();
    const auto stored = requestFromDer(pending.csr);
    CHECK(X509_REQ_get_attr_by_NID(stored.request.get(), NID_pkcs9_challengePassword, -1) < 0);
    CHECK_FALSE(ra.service->administration().approve(pending.id, "cli:alice").serial.empty());
}

TEST_CASE("approving keeps the one-active-certificate-per-CN rule of challenge enrollment") {
    TestRa ra(kChallengeConfig + "approval = \"manual\"\n");
    const auto key = fixtureKey("newkey-3");
    const auto signer = makeSelfSigned(*key, "SCEP SIGNER");
    const CsrSpec spec{"shared-cn", {}, std::string("Un1que-Challenge-Secret")};
    const auto key_a = fixtureKey("newkey-1");
    const auto key_b = fixtureKey("newkey-2");
    REQUIRE(ra.enroll(*signer, *key, *key_a, spec).rep.status == PkiStatus::pending);
    REQUIRE(ra.enroll(*signer, *key, *key_b, spec).rep.status == PkiStatus::pending);
    const auto pending = ra.store->listRequests(RequestStatus::pending);
    REQUIRE(pending.size() == 2);
    ra.service->administration().approve(pending[0].id, "cli:alice");
    try {
        ra.service->administration().approve(pending[1].id, "cli:alice");
        FAIL("a second certificate for the CN was issued");
    } catch (const AdminError& e) {
        CHECK(e.kind() == AdminError::Kind::conflict);
        CHECK(std::string(e.what()).find("already holds active certificate") != std::string::npos);
    }
    CHECK(ra.certificateCount() == 1);
}

// ---- One identity, one certificate (issue 7, items 9, 11, 17) -------------

namespace {

// Messages built up front, then answered by `threads` threads released
// together: the RA's HTTP workers call pkiOperation concurrently the same way.
std::vector<TestRa::Reply> answerConcurrently(TestRa& ra, const std::vector<Bytes>& messages,
                                              X509& signer, EVP_PKEY& signer_key) {
    std::vector<Bytes> replies(messages.size());
    std::atomic<std::size_t> ready{0};
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < messages.size(); ++i) {
        threads.emplace_back([&, i] {
            ++ready;
            while (ready < messages.size()) {
                std::this_thread::yield();
            }
            replies[i] = ra.service->responder().pkiOperation(messages[i], "192.0.2.7");
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    std::vector<TestRa::Reply> out;
    for (const Bytes& reply : replies) {
        out.push_back(ra.open(reply, signer_key, signer));
    }
    return out;
}

Bytes enrollMessage(TestRa& ra, X509& signer, EVP_PKEY& signer_key, EVP_PKEY& csr_key,
                    const CsrSpec& spec) {
    RequestParams params;
    params.transaction_id = randomTransactionId();
    return buildPkiMessage(params, requestDer(*makeCsr(csr_key, spec)), signer, signer_key,
                           *ra.state.ra.cert);
}

std::size_t successes(const std::vector<TestRa::Reply>& replies) {
    return static_cast<std::size_t>(
        std::count_if(replies.begin(), replies.end(),
                      [](const TestRa::Reply& r) { return r.rep.status == PkiStatus::success; }));
}

std::size_t current(Store& store, const std::string& cn, std::time_t now) {
    const auto active = store.activeCertificatesFor(cn, now, Store::Superseded::include);
    return static_cast<std::size_t>(
        std::count_if(active.begin(), active.end(),
                      [](const CertificateRecord& c) { return c.superseded_by.empty(); }));
}

}  // namespace

TEST_CASE("concurrent challenge enrollments for one CN: one certificate per round") {
    TestRa ra(kChallengeConfig);
    const auto key = fixtureKey("newkey-3");
    const auto signer = makeSelfSigned(*key, "SCEP SIGNER");
    const auto csr_key = fixtureKey("newkey-1");
    for (int round = 0; round < 8; ++round) {
        CAPTURE(round);
        const std::string cn = "race-" + std::to_string(round) + ".example.nl";
        std::vector<Bytes> messages;
        for (int i = 0; i < 16; ++i) {
            // Half of them in another spelling of the same name.
            const std::string spelling =
                i % 2 ? cn : "RACE-" + std::to_string(round) + ".Example.NL.";
            messages.push_back(
                enrollMessage(ra, *signer, *key, *csr_key,
                              {spelling, {}, std::string("Un1que-Challenge-Secret")}));
        }
        const auto replies = answerConcurrently(ra, messages, *signer, *key);
        CHECK(successes(replies) == 1);
        CHECK(ra.store->activeCertificatesFor(cn, ra.now, Store::Superseded::include).size() == 1);
    }
}

TEST_CASE("concurrent approvals of pending requests for one CN: exactly one is issued") {
    TestRa ra(kChallengeConfig + "approval = \"manual\"\n");
    const auto key = fixtureKey("newkey-3");
    const auto signer = makeSelfSigned(*key, "SCEP SIGNER");
    for (int round = 0; round < 4; ++round) {
        const std::string cn = "approve-" + std::to_string(round);
        for (int i = 0; i < 12; ++i) {
            REQUIRE(ra.enroll(*signer, *key, *fixtureKey("newkey-1"),
                              {cn, {}, std::string("Un1que-Challenge-Secret")})
                        .rep.status == PkiStatus::pending);
        }
        std::vector<std::int64_t> ids;
        for (const auto& r : ra.store->listRequests(RequestStatus::pending)) {
            if (r.common_name == cn) {
                ids.push_back(r.id);
            }
        }
        REQUIRE(ids.size() == 12);
        std::atomic<int> approved{0}, conflicts{0}, ready{0};
        std::vector<std::thread> threads;
        for (std::int64_t id : ids) {
            threads.emplace_back([&, id] {
                ++ready;
                while (ready < 12) {
                    std::this_thread::yield();
                }
                try {
                    ra.service->administration().approve(id, "cli:alice");
                    ++approved;
                } catch (const AdminError& e) {
                    if (e.kind() == AdminError::Kind::conflict &&
                        std::string(e.what()).find("already holds active certificate") !=
                            std::string::npos) {
                        ++conflicts;
                    }
                }
            });
        }
        for (auto& t : threads) {
            t.join();
        }
        CHECK(approved == 1);
        CHECK(conflicts == 11);
        CHECK(ra.store->activeCertificatesFor(cn, ra.now, Store::Superseded::include).size() == 1);
    }
}

TEST_CASE("concurrent MIC enrollments for one identity all succeed; one stays current") {
    TestRa ra;
    Phone phone;
    std::vector<EvpPkeyPtr> keys;
    std::vector<Bytes> messages;
    for (int i = 0; i < 12; ++i) {
        keys.push_back(generateKey("rsa:2048"));
        messages.push_back(
            enrollMessage(ra, *phone.mic, *phone.mic_key, *keys.back(), {kMicCn, {}, {}}));
    }
    const auto replies = answerConcurrently(ra, messages, *phone.mic, *phone.mic_key);
    CHECK(successes(replies) == 12);
    CHECK(ra.store->activeCertificatesFor(kMicCn, ra.now, Store::Superseded::include).size() == 12);
    CHECK(current(*ra.store, kMicCn, ra.now) == 1);
    std::size_t superseded = 0;
    for (const auto& e : ra.audit()) {
        superseded += e.action == "supersede";
    }
    CHECK(superseded == 11);
}

TEST_CASE("renewal: the new certificate supersedes the old; revoking it is a setting") {
    Phone phone;
    for (const bool revoke : {false, true}) {
        CAPTURE(revoke);
        TestRa ra(revoke ? "[auth]\nrevoke-superseded = true\n" : "");
        const auto first = ra.enroll(*phone.mic, *phone.mic_key, *phone.new_key, {kMicCn, {}, {}});
        REQUIRE(first.cert);
        const auto next_key = fixtureKey("newkey-2");
        const auto second = ra.enroll(*first.cert, *phone.new_key, *next_key, {kMicCn, {}, {}}, "",
                                      MessageType::RenewalReq);
        REQUIRE(second.cert);
        const std::string old_serial = serialHex(X509_get0_serialNumber(first.cert.get()));
        const std::string new_serial = serialHex(X509_get0_serialNumber(second.cert.get()));
        const auto old = ra.store->findCertificate(old_serial);
        CHECK(old->superseded_by == new_serial);
        CHECK(old->revoked == revoke);
        CHECK(old->revocation_reason == (revoke ? 4 : 0));
        CHECK(ra.audit()[1].action == (revoke ? "revoke" : "supersede"));
        CHECK(ra.audit()[1].serial == old_serial);
        // The CRL follows at once.
        const Bytes der = ra.service->crlPublisher().crl();
        const unsigned char* p = der.data();
        const X509CrlPtr crl(d2i_X509_CRL(nullptr, &p, static_cast<long>(der.size())));
        X509_REVOKED* entry = nullptr;
        CHECK((X509_CRL_get0_by_serial(crl.get(), &entry,
                                       X509_get0_serialNumber(first.cert.get())) == 1) == revoke);
    }
}

TEST_CASE("a pending renewal is approved only while its certificate is current") {
    TestRa ra("[auth]\napproval-renewal = \"manual\"\n");
    Phone phone;
    const auto first = ra.enroll(*phone.mic, *phone.mic_key, *phone.new_key, {kMicCn, {}, {}});
    REQUIRE(first.cert);
    REQUIRE(ra.enroll(*first.cert, *phone.new_key, *fixtureKey("newkey-2"), {kMicCn, {}, {}})
                .rep.status == PkiStatus::pending);
    const auto pending = ra.store->listRequests(RequestStatus::pending).front();
    SUBCASE("superseded meanwhile (the phone re-enrolled with its MIC)") {
        REQUIRE(
            ra.enroll(*phone.mic, *phone.mic_key, *fixtureKey("newkey-3"), {kMicCn, {}, {}}).cert);
        try {
            ra.service->administration().approve(pending.id, "cli:alice");
            FAIL("a renewal of a superseded certificate was approved");
        } catch (const AdminError& e) {
            CHECK(e.kind() == AdminError::Kind::conflict);
            CHECK(std::string(e.what()).find("was superseded by") != std::string::npos);
        }
        CHECK(ra.certificateCount() == 2);
    }
    SUBCASE("revoked meanwhile") {
        ra.service->administration().revoke(serialHex(X509_get0_serialNumber(first.cert.get())), 1,
                                            "cli:alice");
        CHECK_THROWS_AS(ra.service->administration().approve(pending.id, "cli:alice"), AdminError);
        CHECK(ra.certificateCount() == 1);
    }
    CHECK(ra.store->findRequest(pending.id)->status == RequestStatus::pending);
}

TEST_CASE("identity clashes: refused challenges and a MIC finding its name taken are flagged") {
    TestRa ra(kChallengeConfig);
    std::vector<std::string> clashes;
    ra.service->responder().setObservers({[&](const MessageOutcome& o) {
                                              if (!o.clash.empty()) {
                                                  clashes.push_back(o.clash);
                                              }
                                          },
                                          nullptr});
    const std::string name = "CP-8875-SEP001A2B3C4D60";  // mic-cp8875-b's own CN
    const auto key = fixtureKey("newkey-3");
    const auto signer = makeSelfSigned(*key, "SCEP SIGNER");
    const auto refused =
        ra.enroll(*signer, *key, *fixtureKey("newkey-1"),
                  {name + ".example.nl", {}, std::string("Un1que-Challenge-Secret")});
    CHECK(refused.rep.status == PkiStatus::failure);
    CHECK(clashes == std::vector<std::string>{"challenge-for-mic-name"});

    // A challenge certificate for the phone's name from before that rule.
    RequestRecord legacy;
    legacy.transaction_id = "LEGACY";
    legacy.message_type = "PKCSReq";
    legacy.method = "challenge";
    legacy.identity = "challenge for CN " + name;
    legacy.common_name = name;
    legacy.details = R"({"sans":[]})";
    CertificateRecord squatter;
    squatter.serial = "5AD";
    squatter.subject = "CN=" + name;
    squatter.issuer = "CN=x";
    squatter.common_name = name;
    squatter.not_before = ra.now - 100;
    squatter.not_after = ra.now + 86400;
    squatter.der = Bytes{0x30, 0x00};
    ra.store->addIssuedRequest(legacy, squatter, AuditEvent{});

    const auto mic = fixtureCert("mic-cp8875-b");
    const auto reply =
        ra.enroll(*mic, *fixtureKey("mic-cp8875-b"), *fixtureKey("newkey-2"), {name, {}, {}});
    REQUIRE(reply.cert);  // the phone gets its name
    CHECK(clashes == std::vector<std::string>{"challenge-for-mic-name", "mic-over-other"});
    const auto audit = ra.audit();
    CHECK(audit.front().action == "identity-clash");
    CHECK(audit.front().outcome == "warning");
    CHECK(audit.front().reason.find("holds certificate 5AD obtained by challenge") !=
          std::string::npos);
    const auto request = ra.store->findRequestByTransaction(reply.rep.transaction_id);
    CHECK(request->details.find("\"identity_clash\":\"CN '" + name + "' holds certificate 5AD") !=
          std::string::npos);
    CHECK(ra.store->findCertificate("5AD")->superseded_by ==
          serialHex(X509_get0_serialNumber(reply.cert.get())));

    SUBCASE("no clash for the phone's own earlier certificates, renewed or not") {
        clashes.clear();
        const auto again = ra.enroll(*reply.cert, *fixtureKey("newkey-2"), *fixtureKey("newkey-3"),
                                     {name, {}, {}});
        REQUIRE(again.cert);
        const auto third =
            ra.enroll(*mic, *fixtureKey("mic-cp8875-b"), *fixtureKey("newkey-1"), {name, {}, {}});
        REQUIRE(third.cert);
        CHECK(clashes.empty());
    }
    SUBCASE("a pending challenge request for a MIC name from before the rule is not approved") {
        RequestRecord old_pending = legacy;
        old_pending.transaction_id = "LEGACY-PENDING";
        ra.store->addPendingRequest(old_pending, AuditEvent{});
        try {
            ra.service->administration().approve(old_pending.id, "cli:alice");
            FAIL("approved");
        } catch (const AdminError& e) {
            CHECK(e.kind() == AdminError::Kind::conflict);
            CHECK(std::string(e.what()).find("shape of a phone's MIC name") != std::string::npos);
        }
    }
}

TEST_CASE("micromdm's second run: a renewal with the same key and transactionID is refused") {
    // scepclient derives the transactionID from its key, so its renewal
    // (signed by the issued certificate, same key) reuses the transactionID
    // of its first enrollment.
    TestRa ra(kChallengeConfig);
    const auto key = fixtureKey("newkey-1");
    const auto self_signed = makeSelfSigned(*key, "mm-twice");
    const std::string txid = randomTransactionId();
    const auto first = ra.enroll(*self_signed, *key, *key,
                                 {"mm-twice", {}, std::string("Un1que-Challenge-Secret")}, txid);
    REQUIRE(first.cert);
    const auto audit_rows = ra.audit().size();
    const auto second =
        ra.enroll(*first.cert, *key, *key, {"mm-twice", {}, std::string("Un1que-Challenge-Secret")},
                  txid, MessageType::RenewalReq);
    CHECK(second.rep.status == PkiStatus::failure);
    CHECK(second.rep.fail == FailInfo::badRequest);
    CHECK_FALSE(second.cert);
    REQUIRE(ra.audit().size() == audit_rows + 1);
    CHECK(ra.audit().front().action == "RenewalReq");
    CHECK(ra.audit().front().method == "renewal");
    CHECK(ra.audit().front().reason.find("renewal must use a new key") != std::string::npos);
    CHECK(ra.certificateCount() == 1);
    // A genuine resend of the first request still gets its certificate.
    const auto resent = ra.enroll(*self_signed, *key, *key,
                                  {"mm-twice", {}, std::string("Un1que-Challenge-Secret")}, txid);
    REQUIRE(resent.cert);
    CHECK(X509_cmp(resent.cert.get(), first.cert.get()) == 0);
}
