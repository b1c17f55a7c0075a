#include "ra/ca/upstream/scep_upstream.h"

#include <algorithm>
#include <cctype>
#include <initializer_list>
#include <set>
#include <utility>

#include <httplib.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "common/text.h"
#include "common/url.h"
#include "ra/ca/certificate.h"
#include "ra/crypto.h"
#include "ra/scep/client_codec.h"
#include "ra/scep/pki_parts.h"

namespace scep {

namespace {

constexpr const char* kCaCertType = "application/x-x509-ca-cert";
constexpr const char* kCaRaCertType = "application/x-x509-ca-ra-cert";
constexpr const char* kPkiMessageType = "application/x-pki-message";
// The same bundle the webhook verifies HTTPS servers with.
constexpr const char* kSystemCaBundle = "/etc/ssl/certs/ca-certificates.crt";
constexpr std::size_t kQuotedBody = 80;  // of an HTTP error reply, in the reason

[[noreturn]] void unavailable(const std::string& why) {
    throw UpstreamUnavailable(why);
}

std::string lowerCase(std::string text) {
    std::transform(text.begin(), text.end(), text.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return text;
}

std::string trimmed(const std::string& text) {
    const auto first = text.find_first_not_of(" \t\r\n");
    if (first == std::string::npos) {
        return "";
    }
    return text.substr(first, text.find_last_not_of(" \t\r\n") - first + 1);
}

// "application/x-x509-ca-cert; charset=..." -> "application/x-x509-ca-cert"
std::string mediaType(const std::string& content_type) {
    return lowerCase(trimmed(content_type.substr(0, content_type.find(';'))));
}

Url endpointUrl(const std::string& text) {
    UrlParse parsed = parseUrl(text, httpOrHttps);
    if (!parsed.url) {
        throw std::invalid_argument("upstream URL '" + printable(text) + "' " + parsed.problem);
    }
    return std::move(*parsed.url);
}

// ---- HTTP: one bounded exchange per operation ----

std::string transportProblem(httplib::Error error, std::chrono::milliseconds timeout) {
    const std::string limit = std::to_string(timeout.count()) + " ms";
    switch (error) {
    case httplib::Error::Connection:
        return "cannot connect (refused, unreachable, or no answer within " + limit + ")";
    case httplib::Error::ConnectionTimeout:
        return "no connection within " + limit;
    case httplib::Error::Read:
        return "no complete reply (nothing read for " + limit + ", or the connection closed)";
    case httplib::Error::Write:
        return "cannot send the request within " + limit;
    case httplib::Error::SSLConnection:
        return "the TLS handshake failed";
    case httplib::Error::SSLServerVerification:
        return "the server's TLS certificate does not verify against the system's CAs";
    default:
        return httplib::to_string(error);
    }
}

struct HttpReply {
    std::string content_type;
    std::string body;
};

struct HttpCall {
    std::string operation;           // GetCACaps, GetCACert, PKIOperation
    const Bytes* message = nullptr;  // PKIOperation's pkiMessage
    bool post = false;               // POST it (else GET ...&message=<base64>)
};

httplib::Request httpRequest(const Url& url, const HttpCall& call) {
    httplib::Params params{{"operation", call.operation}};
    if (call.message && !call.post) {
        params.emplace("message", base64Encode(*call.message));
    }
    httplib::Request req;
    req.method = call.post ? "POST" : "GET";
    req.path = httplib::append_query_params(url.target(), params);
    if (call.post) {
        req.body.assign(call.message->begin(), call.message->end());
        req.set_header("Content-Type", kPkiMessageType);
    }
    return req;
}

// Connect, write and each read are bounded by the endpoint's timeout; the
// body must also arrive within three timeouts in all, and be no larger than
// max_reply. Redirects are answers, not followed.
HttpReply exchange(const UpstreamEndpoint& endpoint, const HttpCall& call) {
    const Url url = endpointUrl(endpoint.url);
    const std::string what = call.operation + " at " + printable(endpoint.url);
    httplib::Client client(url.origin());
    client.set_connection_timeout(endpoint.timeout);
    client.set_read_timeout(endpoint.timeout);
    client.set_write_timeout(endpoint.timeout);
    client.set_follow_location(false);
    client.set_keep_alive(false);
    if (url.scheme == "https") {
        client.set_ca_cert_path(kSystemCaBundle);
        client.enable_server_certificate_verification(true);
    }
    httplib::Request req = httpRequest(url, call);
    std::string body;
    bool oversize = false;
    bool late = false;
    const auto deadline = std::chrono::steady_clock::now() + 3 * endpoint.timeout;
    req.content_receiver = [&](const char* data, std::size_t length, std::uint64_t, std::uint64_t) {
        oversize = body.size() + length > endpoint.max_reply;
        late = std::chrono::steady_clock::now() > deadline;
        if (oversize || late) {
            return false;
        }
        body.append(data, length);
        return true;
    };
    const httplib::Result result = client.send(req);
    if (oversize) {
        unavailable(what + ": the reply is larger than " + std::to_string(endpoint.max_reply) +
                    " bytes");
    }
    if (late) {
        unavailable(what + ": the reply took longer than " +
                    std::to_string(3 * endpoint.timeout.count()) + " ms");
    }
    if (!result) {
        unavailable(what + ": " + transportProblem(result.error(), endpoint.timeout));
    }
    if (result->status != 200) {
        const bool redirect = result->status >= 300 && result->status < 400;
        unavailable(what + ": HTTP " + std::to_string(result->status) +
                    (redirect ? " (redirects are not followed)" : "") +
                    (body.empty() ? "" : ": " + printable(trimmed(body), kQuotedBody)));
    }
    return HttpReply{result->get_header_value("Content-Type"), std::move(body)};
}

// ---- GetCACaps ----

struct Capabilities {
    std::string text;             // trimmed lines, as received
    std::set<std::string> names;  // lower case; SCEPStandard adds what it implies
};

Capabilities parseCapabilities(const std::string& body) {
    Capabilities caps;
    std::size_t start = 0;
    while (start <= body.size()) {
        const std::size_t end = std::min(body.find('\n', start), body.size());
        const std::string line = trimmed(body.substr(start, end - start));
        if (!line.empty()) {
            caps.text += (caps.text.empty() ? "" : "\n") + line;
            caps.names.insert(lowerCase(line));
        }
        start = end + 1;
    }
    // RFC 8894 3.5.2: SCEPStandard implies AES, SHA-256 and POSTPKIOperation.
    if (caps.names.count("scepstandard") != 0) {
        caps.names.insert({"aes", "sha-256", "postpkioperation"});
    }
    return caps;
}

struct Algorithm {
    const char* capability;  // lower case
    int nid;
};

// The first of `preferred` the upstream lists; 0 when none.
int strongest(const Capabilities& caps, std::initializer_list<Algorithm> preferred) {
    for (const Algorithm& algorithm : preferred) {
        if (caps.names.count(algorithm.capability) != 0) {
            return algorithm.nid;
        }
    }
    return 0;
}

// "AES" promises AES-128-CBC only (RFC 8894 3.5.2). Single DES and MD5, the
// fallbacks for CAs that list nothing better, are refused.
void chooseAlgorithms(const Capabilities& caps, UpstreamCaInfo& info) {
    info.cipher_nid = strongest(caps, {{"aes", NID_aes_128_cbc}, {"des3", NID_des_ede3_cbc}});
    if (info.cipher_nid == 0) {
        unavailable("GetCACaps offers neither AES nor DES3 (single DES is refused): '" +
                    printable(caps.text) + "'");
    }
    info.digest_nid =
        strongest(caps, {{"sha-512", NID_sha512}, {"sha-256", NID_sha256}, {"sha-1", NID_sha1}});
    if (info.digest_nid == 0) {
        unavailable("GetCACaps offers none of SHA-512, SHA-256, SHA-1 (MD5 is refused): '" +
                    printable(caps.text) + "'");
    }
    info.post = caps.names.count("postpkioperation") != 0;
}

// ---- GetCACert ----

std::vector<X509Ptr> readCaCertificates(const HttpReply& reply) {
    const std::string type = mediaType(reply.content_type);
    const Bytes der(reply.body.begin(), reply.body.end());
    std::vector<X509Ptr> certs;
    if (type == kCaCertType) {
        X509Ptr cert = decodeExactly<X509, d2i_X509, X509_free>(der);
        if (!cert) {
            unavailable("GetCACert: the x-x509-ca-cert reply is not one DER certificate");
        }
        certs.push_back(std::move(cert));
    } else if (type == kCaRaCertType) {
        try {
            certs = readDegenerateSignedData(der).certificates;
        } catch (const std::exception& e) {
            unavailable(std::string("GetCACert: the x-x509-ca-ra-cert reply is unusable: ") +
                        e.what());
        }
    } else {
        unavailable("GetCACert answered Content-Type '" + printable(reply.content_type) +
                    "', not " + kCaCertType + " or " + kCaRaCertType);
    }
    if (certs.empty()) {
        unavailable("GetCACert carries no certificate");
    }
    return certs;
}

bool isCa(X509& cert) {
    return X509_check_ca(&cert) != 0;
}

// The CA of `chain` that issued `cert` (itself only when self-signed).
X509* issuerIn(const std::vector<X509Ptr>& chain, X509& cert) {
    for (const auto& candidate : chain) {
        if (isCa(*candidate) && isIssuedBy(cert, *candidate)) {
            return candidate.get();
        }
    }
    return nullptr;
}

// The CA that issued the upstream's RA certificate(s); without RA
// certificates, the CA that issued no other CA of the chain.
X509* issuingCa(const std::vector<X509Ptr>& chain) {
    for (const auto& cert : chain) {
        if (!isCa(*cert)) {
            if (X509* issuer = issuerIn(chain, *cert)) {
                return issuer;
            }
        }
    }
    for (const auto& cert : chain) {
        const bool issues_a_ca = std::any_of(chain.begin(), chain.end(), [&](const X509Ptr& other) {
            return other != cert && isCa(*other) && !isSelfSigned(*other) &&
                   isIssuedBy(*other, *cert);
        });
        if (isCa(*cert) && !issues_a_ca) {
            return cert.get();
        }
    }
    return nullptr;
}

// `ca` and its issuers in `chain`, up to a self-signed root or the last
// issuer the chain holds.
std::vector<X509*> pathUp(const std::vector<X509Ptr>& chain, X509& ca) {
    std::vector<X509*> path{&ca};
    while (path.size() <= chain.size() && !isSelfSigned(*path.back())) {
        X509* issuer = issuerIn(chain, *path.back());
        if (!issuer || std::find(path.begin(), path.end(), issuer) != path.end()) {
            break;
        }
        path.push_back(issuer);
    }
    return path;
}

std::string fingerprintText(const X509& cert, Digest digest) {
    return std::string(digestName(digest)) + ":" + toHex(certificateFingerprint(cert, digest));
}

void checkPin(const std::vector<X509*>& path, Digest pin_digest, const Bytes& pin) {
    for (X509* cert : path) {
        if (certificateFingerprint(*cert, pin_digest) == pin) {
            return;
        }
    }
    X509& root = *path.back();
    throw UpstreamPinMismatch("ca-fingerprint " + std::string(digestName(pin_digest)) + ":" +
                              toHex(pin) + " matches no CA of the upstream's chain; its root '" +
                              nameText(X509_get_subject_name(&root)) + "' is " +
                              fingerprintText(root, pin_digest));
}

// An RA certificate of the upstream's that `ca` issued and that can receive
// an envelope; else the CA itself.
X509* chooseRecipient(const std::vector<X509Ptr>& chain, X509& ca) {
    for (const auto& cert : chain) {
        if (!isCa(*cert) && (X509_get_key_usage(cert.get()) & KU_KEY_ENCIPHERMENT) != 0 &&
            canEncryptTo(*cert) && isIssuedBy(*cert, ca)) {
            return cert.get();
        }
    }
    if (!canEncryptTo(ca)) {
        unavailable("the upstream CA '" + nameText(X509_get_subject_name(&ca)) +
                    "' has no RSA key and no RA encryption certificate to envelope requests to");
    }
    return &ca;
}

// Who may sign the upstream's CertReps: the CA, its issuers, and the
// certificates `ca` issued, from GetCACert or carried in the CertRep.
std::vector<X509*> trustedSigners(const UpstreamCaInfo& info, const std::vector<X509Ptr>& carried) {
    std::vector<X509*> signers = pathUp(info.chain, *info.ca);
    for (const auto* certs : {&info.chain, &carried}) {
        for (const auto& cert : *certs) {
            if (cert.get() != info.ca && isIssuedBy(*cert, *info.ca)) {
                signers.push_back(cert.get());
            }
        }
    }
    return signers;
}

// ---- PKIOperation ----

CertificationRequest parseCsr(const Bytes& csr) {
    try {
        CertificationRequest request = requestFromDer(csr);
        if (request.key) {
            return request;
        }
    } catch (const CryptoError&) {
    }
    throw std::invalid_argument("the CSR to forward upstream is not a DER PKCS#10 request");
}

CertRepView verifiedCertRep(const UpstreamCaInfo& info, const HttpReply& reply,
                            const RequestParams& sent) {
    if (mediaType(reply.content_type) != kPkiMessageType) {
        unavailable("PKIOperation answered Content-Type '" + printable(reply.content_type) +
                    "', not " + kPkiMessageType);
    }
    const Bytes der(reply.body.begin(), reply.body.end());
    CertRepView view;
    try {
        const std::vector<X509Ptr> carried = readDegenerateSignedData(der).certificates;
        view = parseCertRep(der, trustedSigners(info, carried));
    } catch (const std::exception& e) {
        unavailable(std::string("the upstream's CertRep is unusable: ") + e.what());
    }
    if (view.transaction_id != sent.transaction_id) {
        unavailable("the upstream's CertRep carries transactionID '" +
                    printable(view.transaction_id) + "', not ours '" + sent.transaction_id + "'");
    }
    if (view.recipient_nonce != sent.sender_nonce) {
        unavailable("the upstream's CertRep recipientNonce is not our senderNonce");
    }
    return view;
}

// The issued certificate carrying the CSR's public key.
X509Ptr certificateFor(const std::vector<X509Ptr>& issued, const CertificationRequest& csr) {
    const EVP_PKEY* key = csr.key.get();
    for (const auto& cert : issued) {
        if (EVP_PKEY_eq(X509_get0_pubkey(cert.get()), key) == 1) {
            return pki::upRef(*cert);
        }
    }
    return nullptr;
}

// The CRL must be signed by a CA of the upstream's chain.
void checkCrl(const UpstreamCaInfo& info, X509_CRL& crl) {
    for (X509* ca : pathUp(info.chain, *info.ca)) {
        if (X509_NAME_cmp(X509_get_subject_name(ca), X509_CRL_get_issuer(&crl)) == 0 &&
            X509_CRL_verify(&crl, X509_get0_pubkey(ca)) == 1) {
            return;
        }
    }
    ERR_clear_error();
    unavailable("the upstream's CRL is not signed by a CA of its chain");
}

// Sends one signed, enveloped request and returns the verified answer,
// SUCCESS decrypted with the identity key.
UpstreamReply pkiOperation(const UpstreamEndpoint& endpoint, const UpstreamCaInfo& info,
                           X509& identity, EVP_PKEY& identity_key, MessageType type,
                           const Bytes& content, const std::string& transaction_id) {
    RequestParams params;
    params.type = type;
    params.transaction_id = transaction_id;
    params.sender_nonce = pki::randomNonce();
    params.digest_nid = info.digest_nid;
    params.cipher_nid = info.cipher_nid;
    const Bytes message = buildPkiMessage(params, content, identity, identity_key, *info.recipient);
    const CertRepView view =
        verifiedCertRep(info, exchange(endpoint, {"PKIOperation", &message, info.post}), params);
    UpstreamReply reply;
    reply.status = view.status;
    if (view.status == PkiStatus::failure) {
        reply.fail = *view.fail;
    }
    if (view.status == PkiStatus::success) {
        try {
            DegenerateContent inside = openCertRep(view.envelope, identity_key, identity);
            reply.issued = std::move(inside.certificates);
            if (!inside.crls.empty()) {
                reply.crl = std::move(inside.crls.front());
            }
        } catch (const std::exception& e) {
            unavailable(std::string("cannot open the upstream's SUCCESS: ") + e.what());
        }
    }
    return reply;
}

// PKCSReq (the CSR itself) or CertPoll (IssuerAndSubject); a SUCCESS must
// carry a certificate for the CSR's key.
UpstreamReply issuance(const UpstreamEndpoint& endpoint, const UpstreamCaInfo& info, X509& identity,
                       EVP_PKEY& identity_key, MessageType type, const Bytes& csr,
                       const std::string& transaction_id) {
    const CertificationRequest request = parseCsr(csr);
    const Bytes content =
        type == MessageType::PKCSReq
            ? csr
            : issuerAndSubjectDer(*X509_get_subject_name(info.ca),
                                  *X509_REQ_get_subject_name(request.request.get()));
    UpstreamReply reply =
        pkiOperation(endpoint, info, identity, identity_key, type, content, transaction_id);
    if (reply.status == PkiStatus::success) {
        reply.certificate = certificateFor(reply.issued, request);
        if (!reply.certificate) {
            unavailable("the upstream's SUCCESS carries " + std::to_string(reply.issued.size()) +
                        " certificate(s), none for the CSR's public key");
        }
    }
    return reply;
}

}  // namespace

ScepUpstream::ScepUpstream(UpstreamEndpoint endpoint) : endpoint_(std::move(endpoint)) {
    endpointUrl(endpoint_.url);
}

UpstreamCaInfo pinnedChain(std::vector<X509Ptr> chain, Digest pin_digest, const Bytes& pin) {
    UpstreamCaInfo info;
    info.chain = std::move(chain);
    info.ca = issuingCa(info.chain);
    if (!info.ca) {
        unavailable("GetCACert carries no CA certificate (" + std::to_string(info.chain.size()) +
                    " certificates, none with basicConstraints CA)");
    }
    const std::vector<X509*> path = pathUp(info.chain, *info.ca);
    checkPin(path, pin_digest, pin);
    info.root = path.back();
    info.recipient = chooseRecipient(info.chain, *info.ca);
    return info;
}

UpstreamCaInfo ScepUpstream::discover(Digest pin_digest, const Bytes& pin) const {
    const Capabilities caps = parseCapabilities(exchange(endpoint_, {"GetCACaps"}).body);
    UpstreamCaInfo info =
        pinnedChain(readCaCertificates(exchange(endpoint_, {"GetCACert"})), pin_digest, pin);
    info.capabilities = caps.text;
    chooseAlgorithms(caps, info);
    return info;
}

UpstreamReply ScepUpstream::enroll(const UpstreamCaInfo& info, X509& identity,
                                   EVP_PKEY& identity_key, const Bytes& csr,
                                   const std::string& transaction_id) const {
    return issuance(endpoint_, info, identity, identity_key, MessageType::PKCSReq, csr,
                    transaction_id);
}

UpstreamReply ScepUpstream::poll(const UpstreamCaInfo& info, X509& identity, EVP_PKEY& identity_key,
                                 const Bytes& csr, const std::string& transaction_id) const {
    return issuance(endpoint_, info, identity, identity_key, MessageType::CertPoll, csr,
                    transaction_id);
}

UpstreamReply ScepUpstream::crl(const UpstreamCaInfo& info, X509& identity, EVP_PKEY& identity_key,
                                X509& certificate) const {
    const Bytes content = issuerAndSerialDer(*X509_get_issuer_name(&certificate),
                                             *X509_get0_serialNumber(&certificate));
    // GetCRL has no transactionID of its own to keep: a fresh one per ask.
    const std::string transaction_id = toHex(pki::randomNonce());
    UpstreamReply reply = pkiOperation(endpoint_, info, identity, identity_key, MessageType::GetCRL,
                                       content, transaction_id);
    if (reply.status == PkiStatus::success) {
        if (!reply.crl) {
            unavailable("the upstream's GetCRL SUCCESS carries no CRL");
        }
        checkCrl(info, *reply.crl);
    }
    return reply;
}

std::string upstreamTransactionId(const std::string& phone_transaction_id,
                                  const Bytes& public_key_id) {
    static const std::string kContext = "scep-ra upstream";
    Bytes input(kContext.begin(), kContext.end());
    input.insert(input.end(), phone_transaction_id.begin(), phone_transaction_id.end());
    input.insert(input.end(), public_key_id.begin(), public_key_id.end());
    Bytes digest(EVP_MAX_MD_SIZE);
    unsigned int length = 0;
    if (EVP_Digest(input.data(), input.size(), digest.data(), &length, EVP_sha256(), nullptr) !=
        1) {
        throw CryptoError("cannot hash the upstream transactionID");
    }
    digest.resize(length);
    return toHex(digest).substr(0, 32);
}

}  // namespace scep
