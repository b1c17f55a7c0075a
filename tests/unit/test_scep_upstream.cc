// ScepUpstream against a real loopback HTTP server that answers with the
// RA's own server codec (parsePkiMessage, decryptEnvelope, buildCertRep):
// discovery and the pin, algorithm choice, PKCSReq/CertPoll/GetCRL and
// every way an upstream can fail to give a usable answer.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include <httplib.h>
#include <openssl/x509v3.h>

#include "ra/ca/certificate.h"
#include "ra/ca/upstream/scep_upstream.h"
#include "ra/crypto.h"
#include "ra/scep/client_codec.h"
#include "ra/scep/pki_parts.h"
#include "ra/scep/routes.h"
#include "ra_support.h"

using namespace scep;
using testsupport::CsrSpec;
using testsupport::fixtureKey;
using testsupport::makeCsr;

namespace {

struct Party {
    EvpPkeyPtr key;
    X509Ptr cert;
};

Party issue(const std::string& cn, EvpPkeyPtr key, const Party* issuer, bool ca,
            const std::string& key_usage) {
    const X509NamePtr name = makeName(cn, CaSettings{});
    CertificateSpec spec;
    spec.subject = name.get();
    spec.subject_key = key.get();
    spec.not_before = std::time(nullptr) - 60;
    spec.not_after = std::time(nullptr) + 86400;
    spec.ca = ca;
    spec.key_usage = key_usage;
    X509Ptr cert = issuer ? signCertificate(spec, issuer->cert.get(), *issuer->key)
                          : signCertificate(spec, nullptr, *key);
    return Party{std::move(key), std::move(cert)};
}

// The upstream's PKI (root, issuing CA, RA encryption certificate), a
// stranger, our identity and the phone's key; keys from the fixture PKI
// (generating RSA keys is slow).
struct Pki {
    Party root = issue("Upstream Root", fixtureKey("mfr-root"), nullptr, true,
                       "critical,keyCertSign,cRLSign");
    Party ca = issue("Upstream Issuing CA", fixtureKey("mfr-ca"), &root, true,
                     "critical,keyCertSign,cRLSign");
    Party ra = issue("Upstream RA", fixtureKey("sudi-ca"), &ca, false,
                     "critical,digitalSignature,keyEncipherment");
    Party stranger = issue("Stranger", fixtureKey("evil-root"), nullptr, true,
                           "critical,keyCertSign,digitalSignature");
    Party identity = issue("scep-ra upstream identity", fixtureKey("hostile-leaf"), nullptr, false,
                           "critical,digitalSignature,keyEncipherment");
    EvpPkeyPtr phone_key = fixtureKey("newkey-1");
    EvpPkeyPtr other_key = fixtureKey("newkey-2");
};

const Pki& fixture() {
    static const Pki material;
    return material;
}

Bytes phoneCsr(const std::string& cn = "CP-8875-SEP001A2B3C4D5E") {
    CsrSpec spec;
    spec.common_name = cn;
    spec.challenge = "forwarded-challenge";
    return requestDer(*makeCsr(*fixture().phone_key, spec));
}

X509Ptr issueFor(const X509_REQ& csr, const Party& issuer) {
    CertificateSpec spec;
    spec.subject = X509_REQ_get_subject_name(&csr);
    spec.subject_key = X509_REQ_get0_pubkey(const_cast<X509_REQ*>(&csr));
    spec.not_before = std::time(nullptr) - 60;
    spec.not_after = std::time(nullptr) + 3600;
    spec.key_usage = "critical,digitalSignature,keyEncipherment";
    return signCertificate(spec, issuer.cert.get(), *issuer.key);
}

Bytes bytesOf(const std::string& text) {
    return Bytes(text.begin(), text.end());
}

// IssuerAndSubject read back with OpenSSL's own decoders: the SEQUENCE
// header, then two Names filling it exactly.
std::pair<X509NamePtr, X509NamePtr> issuerAndSubject(const Bytes& der) {
    const unsigned char* p = der.data();
    long length = 0;
    int tag = 0;
    int cls = 0;
    const int flags = ASN1_get_object(&p, &length, &tag, &cls, static_cast<long>(der.size()));
    REQUIRE((flags & 0x80) == 0);
    REQUIRE(tag == V_ASN1_SEQUENCE);
    const unsigned char* end = p + length;
    REQUIRE(end == der.data() + der.size());
    X509NamePtr issuer(d2i_X509_NAME(nullptr, &p, end - p));
    X509NamePtr subject(d2i_X509_NAME(nullptr, &p, end - p));
    REQUIRE(issuer);
    REQUIRE(subject);
    REQUIRE(p == end);
    return {std::move(issuer), std::move(subject)};
}

X509CrlPtr crlBy(const Party& issuer) {
    X509CrlPtr crl(X509_CRL_new());
    REQUIRE(crl);
    REQUIRE(X509_CRL_set_version(crl.get(), 1) == 1);
    REQUIRE(X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(issuer.cert.get())) == 1);
    const Asn1TimePtr now(ASN1_TIME_set(nullptr, std::time(nullptr)));
    const Asn1TimePtr next(ASN1_TIME_set(nullptr, std::time(nullptr) + 86400));
    REQUIRE(X509_CRL_set1_lastUpdate(crl.get(), now.get()) == 1);
    REQUIRE(X509_CRL_set1_nextUpdate(crl.get(), next.get()) == 1);
    REQUIRE(X509_CRL_sign(crl.get(), issuer.key.get(), EVP_sha256()) > 0);
    return crl;
}

// What the fake upstream received in one PKIOperation.
struct Received {
    std::string method;
    PkiRequest request;
    Decrypted content;
};

// How the fake upstream answers a PKIOperation; every field a fault knob.
struct Answer {
    PkiStatus status = PkiStatus::success;
    FailInfo fail = FailInfo::badRequest;
    const Party* signer = &fixture().ra;
    std::string transaction_id;  // "" echoes the request's
    Bytes recipient_nonce;       // empty echoes the request's senderNonce
    bool with_other_certificate = true;
    bool with_csr_certificate = true;
    X509CrlPtr crl;
};

Bytes certRep(const Received& got, const Bytes& csr_der, const Answer& answer) {
    CertRepParams params;
    params.status = answer.status;
    if (answer.status == PkiStatus::failure) {
        params.fail = answer.fail;
    }
    params.transaction_id =
        answer.transaction_id.empty() ? got.request.transaction_id : answer.transaction_id;
    params.recipient_nonce =
        answer.recipient_nonce.empty() ? got.request.sender_nonce : answer.recipient_nonce;
    params.digest_nid = got.request.digest_nid;
    params.cipher_nid = got.content.cipher_nid;
    params.recipient = got.request.signer.get();
    if (answer.status != PkiStatus::success) {
        return buildCertRep(params, nullptr, *answer.signer->key, *answer.signer->cert);
    }
    Bytes content;
    if (answer.crl) {
        content = degenerateSignedData({}, answer.crl.get());
    } else {
        const X509ReqPtr csr = decodeExactly<X509_REQ, d2i_X509_REQ, X509_REQ_free>(csr_der);
        const X509ReqPtr other = makeCsr(*fixture().other_key, CsrSpec{"someone else", {}, {}});
        const X509Ptr issued = issueFor(*csr, fixture().ca);
        const X509Ptr unrelated = issueFor(*other, fixture().ca);
        // The CSR's certificate second, so that picking it by key matters.
        std::vector<const X509*> certs;
        if (answer.with_other_certificate) {
            certs.push_back(unrelated.get());
        }
        if (answer.with_csr_certificate) {
            certs.push_back(issued.get());
        }
        content = degenerateSignedData(certs);
    }
    return buildCertRep(params, &content, *answer.signer->key, *answer.signer->cert);
}

// A SCEP upstream on 127.0.0.1, served by cpp-httplib on its own thread.
class FakeUpstream {
public:
    FakeUpstream() {
        server_.Get("/scep", [this](const httplib::Request& req, httplib::Response& res) {
            handle(req, res);
        });
        server_.Post("/scep", [this](const httplib::Request& req, httplib::Response& res) {
            handle(req, res);
        });
        port_ = server_.bind_to_any_port("127.0.0.1");
        thread_ = std::thread([this] { server_.listen_after_bind(); });
    }
    ~FakeUpstream() {
        server_.stop();
        thread_.join();
    }

    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/scep"; }
    UpstreamEndpoint endpoint(std::chrono::milliseconds timeout = std::chrono::seconds(5)) const {
        return UpstreamEndpoint{url(), timeout};
    }

    std::string caps = "POSTPKIOperation\nSCEPStandard\nAES\nDES3\nSHA-1\nSHA-256\nSHA-512\n";
    std::string ca_cert_type = "application/x-x509-ca-ra-cert";
    Bytes ca_certs = degenerateSignedData(
        {fixture().ra.cert.get(), fixture().ca.cert.get(), fixture().root.cert.get()});
    Answer answer;
    // Replaces the whole PKIOperation answer when set: faults below SCEP.
    std::function<void(httplib::Response&)> raw;

    std::vector<std::shared_ptr<const Received>> received() {
        const std::lock_guard<std::mutex> lock(mutex_);
        return received_;
    }

private:
    void handle(const httplib::Request& req, httplib::Response& res) {
        const std::string operation = req.get_param_value("operation");
        if (operation == "GetCACaps") {
            res.set_content(caps, "text/plain");
        } else if (operation == "GetCACert") {
            res.set_content(std::string(ca_certs.begin(), ca_certs.end()), ca_cert_type.c_str());
        } else if (raw) {
            raw(res);
        } else if (operation == "PKIOperation") {
            pkiOperation(req, res);
        } else {
            res.status = 400;
        }
    }

    void pkiOperation(const httplib::Request& req, httplib::Response& res) {
        const Bytes message = req.method == "POST"
                                  ? bytesOf(req.body)
                                  : decodeMessageParameter(req.get_param_value("message")).value();
        auto got = std::make_shared<Received>(Received{req.method, parsePkiMessage(message), {}});
        got->content = decrypt(got->request.envelope);
        const std::lock_guard<std::mutex> lock(mutex_);
        // CertPoll carries no CSR: the CA issues from the PKCSReq it kept.
        Bytes csr = got->content.content;
        if (got->request.message_type == static_cast<int>(MessageType::PKCSReq)) {
            csrs_[got->request.transaction_id] = csr;
        } else if (got->request.message_type == static_cast<int>(MessageType::CertPoll)) {
            csr = csrs_.at(got->request.transaction_id);
        }
        const Bytes rep = certRep(*got, csr, answer);
        res.set_content(std::string(rep.begin(), rep.end()), "application/x-pki-message");
        received_.push_back(std::move(got));
    }

    // Requests come enveloped to the RA certificate, or to the CA when
    // GetCACert offered no RA.
    static Decrypted decrypt(const Bytes& envelope) {
        try {
            return decryptEnvelope(envelope, *fixture().ra.key, *fixture().ra.cert, false);
        } catch (const ScepError&) {
            return decryptEnvelope(envelope, *fixture().ca.key, *fixture().ca.cert, false);
        }
    }

    httplib::Server server_;
    int port_ = 0;
    std::thread thread_;
    std::mutex mutex_;
    std::vector<std::shared_ptr<const Received>> received_;
    std::map<std::string, Bytes> csrs_;
};

Bytes rootPin() {
    return certificateFingerprint(*fixture().root.cert, Digest::sha256);
}

UpstreamCaInfo discover(const FakeUpstream& upstream) {
    return ScepUpstream(upstream.endpoint()).discover(Digest::sha256, rootPin());
}

UpstreamReply enroll(const FakeUpstream& upstream, const UpstreamCaInfo& info, const Bytes& csr,
                     const std::string& transaction_id = "UPSTREAM-TX-1") {
    return ScepUpstream(upstream.endpoint())
        .enroll(info, *fixture().identity.cert, *fixture().identity.key, csr, transaction_id);
}

// A loopback port nobody listens on: bound, then closed again.
int closedPort() {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof addr;
    REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length) == 0);
    close(fd);
    return ntohs(addr.sin_port);
}

}  // namespace

TEST_SUITE("scep upstream") {
    TEST_CASE("discover reads GetCACaps line by line, in any case, and picks the strongest") {
        FakeUpstream upstream;
        upstream.caps = "  aes\r\nsha-1\r\nSHA-512\r\npostpkioperation\r\n\r\nDES3";
        const UpstreamCaInfo info = discover(upstream);
        CHECK(info.capabilities == "aes\nsha-1\nSHA-512\npostpkioperation\nDES3");
        CHECK(info.cipher_nid == NID_aes_128_cbc);  // what "AES" promises (RFC 8894 3.5.2)
        CHECK(info.digest_nid == NID_sha512);
        CHECK(info.post);

        upstream.caps = "DES3\nSHA-1\n";
        const UpstreamCaInfo old = discover(upstream);
        CHECK(old.cipher_nid == NID_des_ede3_cbc);
        CHECK(old.digest_nid == NID_sha1);
        CHECK_FALSE(old.post);

        upstream.caps = "SCEPStandard";  // implies AES, SHA-256 and POST
        const UpstreamCaInfo standard = discover(upstream);
        CHECK(standard.cipher_nid == NID_aes_128_cbc);
        CHECK(standard.digest_nid == NID_sha256);
        CHECK(standard.post);
    }

    TEST_CASE("an upstream offering only single DES or only MD5 is refused with the reason") {
        FakeUpstream upstream;
        upstream.caps = "DES\nSHA-256\n";
        CHECK_THROWS_WITH_AS(discover(upstream), doctest::Contains("neither AES nor DES3"),
                             UpstreamUnavailable);
        upstream.caps = "AES\nMD5\n";
        CHECK_THROWS_WITH_AS(discover(upstream), doctest::Contains("none of SHA-512"),
                             UpstreamUnavailable);
    }

    TEST_CASE("GetCACert x-x509-ca-ra-cert: issuing CA, root, RA recipient; the pin on root") {
        FakeUpstream upstream;
        const UpstreamCaInfo info = discover(upstream);
        REQUIRE(info.chain.size() == 3);
        CHECK(X509_cmp(info.ca, fixture().ca.cert.get()) == 0);
        CHECK(X509_cmp(info.root, fixture().root.cert.get()) == 0);
        CHECK(X509_cmp(info.recipient, fixture().ra.cert.get()) == 0);

        // An intermediate pin is allowed too, in another digest.
        const Bytes ca_pin = certificateFingerprint(*fixture().ca.cert, Digest::sha1);
        CHECK_NOTHROW(ScepUpstream(upstream.endpoint()).discover(Digest::sha1, ca_pin));
    }

    TEST_CASE("GetCACert x-x509-ca-cert: one CA, which is root and recipient") {
        FakeUpstream upstream;
        upstream.ca_cert_type = "application/x-x509-ca-cert";
        upstream.ca_certs = certificateDer(*fixture().root.cert);
        const UpstreamCaInfo info = discover(upstream);
        REQUIRE(info.chain.size() == 1);
        CHECK(info.ca == info.chain.front().get());
        CHECK(info.root == info.ca);
        CHECK(info.recipient == info.ca);
    }

    TEST_CASE("a pin that matches no CA of the chain names both fingerprints") {
        FakeUpstream upstream;
        const Bytes stranger_pin = certificateFingerprint(*fixture().stranger.cert, Digest::sha256);
        const std::string expected = "ca-fingerprint sha256:" + toHex(stranger_pin) +
                                     " matches no CA of the upstream's chain; its root "
                                     "'CN=Upstream Root' is sha256:" +
                                     toHex(rootPin());
        CHECK_THROWS_WITH_AS(
            ScepUpstream(upstream.endpoint()).discover(Digest::sha256, stranger_pin),
            expected.c_str(), UpstreamPinMismatch);
        // The RA certificate is in the chain but is no CA: it cannot be the pin.
        const Bytes ra_pin = certificateFingerprint(*fixture().ra.cert, Digest::sha256);
        CHECK_THROWS_AS(ScepUpstream(upstream.endpoint()).discover(Digest::sha256, ra_pin),
                        UpstreamPinMismatch);
    }

    TEST_CASE("GetCACert without a CA, or of another type, is unusable") {
        FakeUpstream upstream;
        upstream.ca_certs = degenerateSignedData({fixture().ra.cert.get()});
        CHECK_THROWS_WITH_AS(discover(upstream), doctest::Contains("no CA certificate"),
                             UpstreamUnavailable);
        upstream.ca_cert_type = "text/html";
        CHECK_THROWS_WITH_AS(discover(upstream), doctest::Contains("Content-Type 'text/html'"),
                             UpstreamUnavailable);
    }

    TEST_CASE("enroll forwards the CSR byte for byte and picks the certificate by its key") {
        FakeUpstream upstream;
        const UpstreamCaInfo info = discover(upstream);
        const Bytes csr = phoneCsr();
        const UpstreamReply reply = enroll(upstream, info, csr);

        const auto received = upstream.received();
        REQUIRE(received.size() == 1);
        const Received& got = *received.front();
        CHECK(got.method == "POST");
        CHECK(got.request.message_type == static_cast<int>(MessageType::PKCSReq));
        CHECK(got.request.transaction_id == "UPSTREAM-TX-1");
        CHECK(got.content.content == csr);
        CHECK(got.content.cipher_nid == info.cipher_nid);
        CHECK(got.request.digest_nid == info.digest_nid);
        CHECK(X509_cmp(got.request.signer.get(), fixture().identity.cert.get()) == 0);

        CHECK(reply.status == PkiStatus::success);
        CHECK(reply.issued.size() == 2);
        REQUIRE(reply.certificate);
        CHECK(EVP_PKEY_eq(X509_get0_pubkey(reply.certificate.get()), fixture().phone_key.get()) ==
              1);
        CHECK(isIssuedBy(*reply.certificate, *fixture().ca.cert));
    }

    TEST_CASE("without POSTPKIOperation the message goes in a GET, base64 and URL-encoded") {
        FakeUpstream upstream;
        upstream.caps = "AES\nSHA-256\n";
        const UpstreamCaInfo info = discover(upstream);
        const Bytes csr = phoneCsr();
        CHECK(enroll(upstream, info, csr).certificate);
        const auto received = upstream.received();
        REQUIRE(received.size() == 1);
        CHECK(received.front()->method == "GET");
        CHECK(received.front()->content.content == csr);
    }

    TEST_CASE("a CertRep signer carried in the reply is trusted when the CA issued it") {
        FakeUpstream upstream;  // GetCACert: the issuing CA alone, pinned itself
        upstream.ca_cert_type = "application/x-x509-ca-cert";
        upstream.ca_certs = certificateDer(*fixture().ca.cert);
        const Bytes ca_pin = certificateFingerprint(*fixture().ca.cert, Digest::sha256);
        const UpstreamCaInfo info =
            ScepUpstream(upstream.endpoint()).discover(Digest::sha256, ca_pin);
        CHECK(info.recipient == info.ca);
        CHECK(info.root == info.ca);             // the chain stops at the pinned intermediate
        upstream.answer.signer = &fixture().ra;  // not in GetCACert, carried in the CertRep
        CHECK(enroll(upstream, info, phoneCsr()).certificate);
    }

    TEST_CASE("PENDING, then CertPoll with IssuerAndSubject and the same transactionID") {
        FakeUpstream upstream;
        const UpstreamCaInfo info = discover(upstream);
        const Bytes csr = phoneCsr("poll me");
        upstream.answer.status = PkiStatus::pending;
        const UpstreamReply first = enroll(upstream, info, csr, "TX-POLL");
        CHECK(first.status == PkiStatus::pending);
        CHECK_FALSE(first.certificate);

        upstream.answer.status = PkiStatus::success;
        const UpstreamReply polled =
            ScepUpstream(upstream.endpoint())
                .poll(info, *fixture().identity.cert, *fixture().identity.key, csr, "TX-POLL");
        CHECK(polled.status == PkiStatus::success);
        REQUIRE(polled.certificate);
        CHECK(EVP_PKEY_eq(X509_get0_pubkey(polled.certificate.get()), fixture().phone_key.get()) ==
              1);

        const auto received = upstream.received();
        REQUIRE(received.size() == 2);
        const Received& poll = *received.back();
        CHECK(poll.request.message_type == static_cast<int>(MessageType::CertPoll));
        CHECK(poll.request.transaction_id == "TX-POLL");
        CHECK(poll.request.sender_nonce != received.front()->request.sender_nonce);
        const auto [issuer, subject] = issuerAndSubject(poll.content.content);
        CHECK(X509_NAME_cmp(issuer.get(), X509_get_subject_name(fixture().ca.cert.get())) == 0);
        CHECK(nameText(subject.get()) == "CN=poll me");
    }

    TEST_CASE("GetCRL asks for the certificate's issuer and serial and checks the CRL") {
        FakeUpstream upstream;
        const UpstreamCaInfo info = discover(upstream);
        const UpstreamReply issued = enroll(upstream, info, phoneCsr());
        REQUIRE(issued.certificate);
        const ScepUpstream client(upstream.endpoint());

        upstream.answer.crl = crlBy(fixture().ca);
        const UpstreamReply reply = client.crl(info, *fixture().identity.cert,
                                               *fixture().identity.key, *issued.certificate);
        CHECK(reply.status == PkiStatus::success);
        REQUIRE(reply.crl);
        const auto received = upstream.received();
        REQUIRE(received.size() == 2);
        CHECK(received.back()->request.message_type == static_cast<int>(MessageType::GetCRL));
        const IssuerAndSerial asked = parseIssuerAndSerial(received.back()->content.content);
        CHECK(ASN1_INTEGER_cmp(asked.serial.get(),
                               X509_get0_serialNumber(issued.certificate.get())) == 0);

        upstream.answer.crl = crlBy(fixture().stranger);
        CHECK_THROWS_WITH_AS(client.crl(info, *fixture().identity.cert, *fixture().identity.key,
                                        *issued.certificate),
                             doctest::Contains("CRL is not signed by a CA of its chain"),
                             UpstreamUnavailable);
    }

    TEST_CASE("FAILURE keeps the upstream's failInfo") {
        FakeUpstream upstream;
        const UpstreamCaInfo info = discover(upstream);
        upstream.answer.status = PkiStatus::failure;
        upstream.answer.fail = FailInfo::badCertId;
        const UpstreamReply reply = enroll(upstream, info, phoneCsr());
        CHECK(reply.status == PkiStatus::failure);
        CHECK(reply.fail == FailInfo::badCertId);
        CHECK_FALSE(reply.certificate);
    }

    TEST_CASE("no answer at all: connection refused, and a reply slower than the timeout") {
        const std::string url = "http://127.0.0.1:" + std::to_string(closedPort()) + "/scep";
        CHECK_THROWS_WITH_AS(
            ScepUpstream({url, std::chrono::milliseconds(200)}).discover(Digest::sha256, rootPin()),
            doctest::Contains(("GetCACaps at " + url + ": cannot connect").c_str()),
            UpstreamUnavailable);

        FakeUpstream upstream;
        const UpstreamCaInfo info = discover(upstream);
        upstream.raw = [](httplib::Response& res) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1500));
            res.set_content("too late", "application/x-pki-message");
        };
        const ScepUpstream impatient(upstream.endpoint(std::chrono::milliseconds(200)));
        CHECK_THROWS_WITH_AS(impatient.enroll(info, *fixture().identity.cert,
                                              *fixture().identity.key, phoneCsr(), "TX-SLOW"),
                             doctest::Contains("no complete reply (nothing read for 200 ms"),
                             UpstreamUnavailable);
    }

    TEST_CASE("a reply trickling in for longer than three timeouts is cut off") {
        FakeUpstream upstream;
        const UpstreamCaInfo info = discover(upstream);
        upstream.raw = [](httplib::Response& res) {
            res.set_chunked_content_provider(
                "application/x-pki-message", [](std::size_t, httplib::DataSink& sink) {
                    std::this_thread::sleep_for(std::chrono::milliseconds(50));
                    return sink.write("x", 1);
                });
        };
        const ScepUpstream patient(upstream.endpoint(std::chrono::milliseconds(200)));
        CHECK_THROWS_WITH_AS(patient.enroll(info, *fixture().identity.cert, *fixture().identity.key,
                                            phoneCsr(), "TX-DRIP"),
                             doctest::Contains("the reply took longer than 600 ms"),
                             UpstreamUnavailable);
    }

    TEST_CASE("HTTP errors, redirects and oversized replies are unusable, each saying so") {
        FakeUpstream upstream;
        const UpstreamCaInfo info = discover(upstream);
        upstream.raw = [](httplib::Response& res) {
            res.status = 500;
            res.set_content("not implemented\n", "text/plain");
        };
        CHECK_THROWS_WITH_AS(
            enroll(upstream, info, phoneCsr()),
            doctest::Contains(
                ("PKIOperation at " + upstream.url() + ": HTTP 500: not implemented").c_str()),
            UpstreamUnavailable);

        upstream.raw = [&](httplib::Response& res) { res.set_redirect(upstream.url() + "x"); };
        CHECK_THROWS_WITH_AS(enroll(upstream, info, phoneCsr()),
                             doctest::Contains("HTTP 302 (redirects are not followed)"),
                             UpstreamUnavailable);

        upstream.raw = [](httplib::Response& res) {
            res.set_content(std::string(std::size_t{64} * 1024, 'x'), "application/x-pki-message");
        };
        UpstreamEndpoint small = upstream.endpoint();
        small.max_reply = std::size_t{16} * 1024;
        CHECK_THROWS_WITH_AS(
            ScepUpstream(small).enroll(info, *fixture().identity.cert, *fixture().identity.key,
                                       phoneCsr(), "TX-BIG"),
            doctest::Contains("the reply is larger than 16384 bytes"), UpstreamUnavailable);
        CHECK(upstream.received().empty());
    }

    TEST_CASE("a garbage CertRep, or one of another Content-Type, is unusable") {
        FakeUpstream upstream;
        const UpstreamCaInfo info = discover(upstream);
        upstream.raw = [](httplib::Response& res) {
            res.set_content("<html>maintenance</html>", "application/x-pki-message");
        };
        CHECK_THROWS_WITH_AS(enroll(upstream, info, phoneCsr()),
                             doctest::Contains("the upstream's CertRep is unusable"),
                             UpstreamUnavailable);
        upstream.raw = [](httplib::Response& res) {
            res.set_content("<html>maintenance</html>", "text/html");
        };
        CHECK_THROWS_WITH_AS(enroll(upstream, info, phoneCsr()),
                             doctest::Contains("Content-Type 'text/html'"), UpstreamUnavailable);
    }

    TEST_CASE("a CertRep from a stranger, for another transaction or nonce is unusable") {
        FakeUpstream upstream;
        const UpstreamCaInfo info = discover(upstream);
        upstream.answer.signer = &fixture().stranger;
        CHECK_THROWS_WITH_AS(enroll(upstream, info, phoneCsr()),
                             doctest::Contains("not signed by any of the"), UpstreamUnavailable);

        upstream.answer.signer = &fixture().ra;
        upstream.answer.transaction_id = "SOMEONE-ELSE";
        CHECK_THROWS_WITH_AS(
            enroll(upstream, info, phoneCsr(), "TX-MINE"),
            "the upstream's CertRep carries transactionID 'SOMEONE-ELSE', not ours 'TX-MINE'",
            UpstreamUnavailable);

        upstream.answer.transaction_id.clear();
        upstream.answer.recipient_nonce = Bytes(16, 0x42);
        CHECK_THROWS_WITH_AS(enroll(upstream, info, phoneCsr()),
                             "the upstream's CertRep recipientNonce is not our senderNonce",
                             UpstreamUnavailable);
    }

    TEST_CASE("a SUCCESS without a certificate for the CSR's key is unusable") {
        FakeUpstream upstream;
        const UpstreamCaInfo info = discover(upstream);
        upstream.answer.with_csr_certificate = false;
        CHECK_THROWS_WITH_AS(enroll(upstream, info, phoneCsr()),
                             "the upstream's SUCCESS carries 1 certificate(s), none for the "
                             "CSR's public key",
                             UpstreamUnavailable);
    }

    TEST_CASE("upstreamTransactionId is derived: stable, 32 upper-case hex, input-bound") {
        const Bytes key_id = publicKeyId(*fixture().phone_key);
        const std::string id = upstreamTransactionId("phone-tx", key_id);
        CHECK(id.size() == 32);
        CHECK(id.find_first_not_of("0123456789ABCDEF") == std::string::npos);
        CHECK(upstreamTransactionId("phone-tx", key_id) == id);
        CHECK(upstreamTransactionId("phone-tx2", key_id) != id);
        CHECK(upstreamTransactionId("phone-tx", publicKeyId(*fixture().other_key)) != id);
        // Known answer: SHA-256("scep-ra upstream" || "T" || 00 01 02).
        CHECK(upstreamTransactionId("T", Bytes{0, 1, 2}) == "2F61D2109AB6416D208B0C190B02C418");
    }
}
