#include "ra/scep/responder.h"

#include <nlohmann/json.hpp>

#include <openssl/objects.h>

#include "ra/ca/issuance.h"
#include "ra/ca/upstream/scep_upstream.h"
#include "ra/crypto.h"
#include "ra/store/state_dir.h"

namespace scep {

struct ScepResponder::Context {
    // Taken when the request arrives; a reload meanwhile does not change it.
    std::shared_ptr<const RuntimeConfig> runtime;
    const Config& config() const { return runtime->config; }
    PkiRequest request;
    Outcome outcome = Outcome::failure;  // for the observers
    bool issued = false;                 // a certificate was issued by this message
    std::string clash;                   // MessageOutcome::clash
    Bytes content;             // decrypted: CSR, IssuerAndSubject or IssuerAndSerialNumber
    CertificationRequest csr;  // PKCSReq / RenewalReq
    int cipher_nid = 0;
    std::string peer;
    std::time_t now = 0;
    AuditEvent event;  // actor, peer and transaction filled in; the rest per decision
};

namespace {

std::string toJson(const AuthResult& auth, const std::string& clash) {
    nlohmann::json details = nlohmann::json::object();
    if (auth.mic) {
        // The PID names the product as admins know it (DP-9841); the CN
        // says CP-9841 for DP models.
        details["model"] = auth.mic->pid.empty() ? auth.mic->model : auth.mic->pid;
        details["mac"] = auth.mic->mac;
        details["pid"] = auth.mic->pid;
        details["sn"] = auth.mic->serial_number;
        details["manufacturer_issuer"] = auth.mic->issuer;
    }
    nlohmann::json sans = nlohmann::json::array();
    for (const auto& san : auth.sans) {
        sans.push_back({{"type", san.type == SubjectAltName::Type::dns ? "dns" : "email"},
                        {"value", san.value}});
    }
    details["sans"] = sans;
    if (!auth.renewed_serial.empty()) {
        details["renews"] = auth.renewed_serial;
    }
    if (!clash.empty()) {
        details["identity_clash"] = clash;
    }
    return details.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

bool sameSignerKey(const RequestRecord& request, X509& signer) {
    const X509Ptr original = certificateFromDer(request.signer);
    return publicKeyId(*X509_get_X509_PUBKEY(original.get())) ==
           publicKeyId(*X509_get_X509_PUBKEY(&signer));
}

// The CSR as stored: its challengePassword, a secret, is removed (in place;
// the request needs it no more). The signature no longer covers the result;
// it was verified on arrival.
Bytes csrWithoutSecrets(X509_REQ& csr) {
    int index;
    while ((index = X509_REQ_get_attr_by_NID(&csr, NID_pkcs9_challengePassword, -1)) >= 0) {
        X509_ATTRIBUTE_free(X509_REQ_delete_attr(&csr, index));
    }
    return requestDer(csr);
}

// What a client is told about a message that cannot be answered: our own
// words only, short. OpenSSL's reasons (CryptoError appends them after
// ": error:") stay in the audit trail and the log.
std::string clientReason(const std::exception& e) {
    if (dynamic_cast<const ScepError*>(&e) == nullptr) {
        return "not a SCEP message";
    }
    std::string ours = e.what();
    ours = ours.substr(0, ours.find(": error:"));
    if (ours.size() > 80) {
        ours = ours.substr(0, 80) + "...";
    }
    return "not a usable SCEP message: " + ours;
}

Approval approvalFor(const Config& config, AuthMethod method) {
    switch (method) {
    case AuthMethod::mic:
        return config.auth.approval_mic;
    case AuthMethod::challenge:
        return config.auth.approval_challenge;
    case AuthMethod::renewal:
        return config.auth.approval_renewal;
    case AuthMethod::ra:
        return config.auth.approval_ra;
    }
    return Approval::manual;
}

ChallengeThrottle::Limits throttleLimits(const Config& config) {
    const auto lockout =
        std::chrono::duration_cast<std::chrono::seconds>(config.auth.challenge_lockout);
    return {config.auth.challenge_attempts, static_cast<std::time_t>(lockout.count()), 16384};
}

}  // namespace

ScepResponder::ScepResponder(CurrentConfig& config, const CaMaterial& material, Store& store,
                             AuditTrail& trail, CertificateIssuance& issuance, CrlPublisher& crl,
                             EventLog& log, Clock clock)
    : config_(config),
      material_(material),
      store_(store),
      trail_(trail),
      issuance_(issuance),
      crl_(crl),
      log_(log),
      clock_(std::move(clock)),
      challenges_(throttleLimits(config.get()->config)) {
    config.watch([this](const Config& next) { challenges_.setLimits(throttleLimits(next)); });
}

Bytes ScepResponder::caCertificates() const {
    std::vector<const X509*> certs = {material_.ra.cert.get()};
    for (X509* cert : issuance_.authority().chain()) {
        certs.push_back(cert);
    }
    return degenerateSignedData(certs);
}

std::string ScepResponder::capabilities() {
    std::string caps = "POSTPKIOperation\nSCEPStandard\nRenewal\nAES\nDES3\n";
    for (const AcceptedDigest& digest : acceptedDigests()) {
        caps += digest.capability;
        caps += '\n';
    }
    return caps;
}

std::mutex& ScepResponder::lockFor(const std::string& transaction_id) {
    return transaction_locks_[std::hash<std::string>{}(transaction_id) % transaction_locks_.size()];
}

Bytes ScepResponder::pkiOperation(const Bytes& message, const std::string& peer) {
    std::shared_ptr<const RuntimeConfig> snapshot = config_.get();
    const Config& config = snapshot->config;
    // Refused before any work: SQLite would otherwise run out of disk in the
    // middle of a transaction (rolled back, but after the CA signed).
    const std::uint64_t free = availableBytes(config.ra.state_dir);
    if (free < config.ra.min_free_space) {
        log_.error("refusing SCEP requests: state-dir is short of space",
                   {{"state_dir", config.ra.state_dir},
                    {"available", free},
                    {"min_free_space", config.ra.min_free_space},
                    {"peer", peer}});
        throw Unavailable("the RA is short of disk space; try again later");
    }
    try {
        return answerMessage(std::move(snapshot), message, peer);
    } catch (const StoreError& e) {
        // Every write is one transaction: nothing half-written remains.
        log_.error("SCEP request not recorded", {{"error", e.what()}, {"peer", peer}});
        throw Unavailable("the RA cannot record requests right now; try again later");
    }
}

Bytes ScepResponder::answerMessage(std::shared_ptr<const RuntimeConfig> runtime,
                                   const Bytes& message, const std::string& peer) {
    const auto started = std::chrono::steady_clock::now();
    Context ctx;
    ctx.runtime = std::move(runtime);
    ctx.peer = peer;
    ctx.now = clock_();
    ctx.event.actor = "scep";
    ctx.event.action = auditActionName(AuditAction::message);
    ctx.event.peer = peer;
    try {
        ctx.request = parsePkiMessage(message);
    } catch (const std::exception& e) {
        ctx.event.outcome = outcomeName(Outcome::failure);
        ctx.event.reason = std::string("unusable SCEP message: ") + e.what();
        trail_.failure(ctx.event);
        if (observers_.on_message) {
            observers_.on_message({"unparseable", Outcome::failure, "", 0, false, ""});
        }
        throw UnanswerableMessage(clientReason(e));
    }
    Bytes reply = answer(ctx);
    if (observers_.on_message) {
        const std::chrono::duration<double> took = std::chrono::steady_clock::now() - started;
        observers_.on_message({messageTypeName(ctx.request.message_type), ctx.outcome,
                               ctx.event.method, took.count(), ctx.issued, ctx.clash});
    }
    return reply;
}

Bytes ScepResponder::answer(Context& ctx) {
    ctx.event.transaction_id = ctx.request.transaction_id;
    ctx.event.action = messageTypeName(ctx.request.message_type);
    ctx.event.identity = nameText(X509_get_subject_name(ctx.request.signer.get()));

    if (!isAcceptedDigest(ctx.request.digest_nid)) {
        const int refused = ctx.request.digest_nid;
        ctx.request.digest_nid = 0;  // the FAILURE itself is signed with SHA-256
        return failure(
            ctx, FailInfo::badAlg,
            std::string("digest ") + OBJ_nid2sn(refused) + " is refused; use one GetCACaps lists");
    }
    const int type = ctx.request.message_type;
    const bool handled = type == static_cast<int>(MessageType::PKCSReq) ||
                         type == static_cast<int>(MessageType::RenewalReq) ||
                         type == static_cast<int>(MessageType::CertPoll) ||
                         type == static_cast<int>(MessageType::GetCert) ||
                         type == static_cast<int>(MessageType::GetCRL);
    if (!handled) {
        return failure(ctx, FailInfo::badRequest,
                       "messageType " + std::to_string(type) + " is not accepted");
    }
    if (!canEncryptTo(*ctx.request.signer)) {
        return failure(ctx, FailInfo::badAlg,
                       "the signer's key is not RSA, so no reply can be encrypted to it");
    }
    Decrypted inner;
    try {
        inner = decryptEnvelope(ctx.request.envelope, *material_.ra.key, *material_.ra.cert,
                                ctx.config().auth.allow_des);
    } catch (const ScepError& e) {
        return failure(ctx, e.fail(), e.what());
    }
    ctx.cipher_nid = inner.cipher_nid;
    ctx.content = std::move(inner.content);
    switch (static_cast<MessageType>(type)) {
    case MessageType::PKCSReq:
    case MessageType::RenewalReq:
        try {
            ctx.csr = requestFromDer(ctx.content);
        } catch (const std::exception&) {
            return failure(ctx, FailInfo::badRequest, "the envelope does not hold a PKCS#10 CSR");
        }
        return enroll(ctx);
    case MessageType::CertPoll:
        return poll(ctx);
    case MessageType::GetCert:
        return getCertificate(ctx);
    default:
        return getCrl(ctx);
    }
}

Bytes ScepResponder::enroll(Context& ctx) {
    if (!ctx.csr.key) {
        return failure(ctx, FailInfo::badRequest, "the CSR has no usable public key");
    }
    const Bytes key_id = publicKeyId(*X509_REQ_get_X509_PUBKEY(ctx.csr.request.get()));
    X509& signer = *ctx.request.signer;
    // Before the transactionID lookup: micromdm's scepclient renews with its
    // old key and derives the transactionID from that key, so its renewal
    // reuses the first enrollment's transactionID and would look like a
    // resend of it.
    if (key_id == publicKeyId(*X509_get_X509_PUBKEY(&signer)) &&
        ctx.runtime->authenticator.issuedByUs(signer)) {
        ctx.event.method = authMethodName(AuthMethod::renewal);
        return failure(ctx, FailInfo::badRequest,
                       "renewal must use a new key; the CSR reuses the key of certificate " +
                           serialHex(X509_get0_serialNumber(&signer)) +
                           " (enroll again with a new key)");
    }

    // One decision per transactionID, even when a client sends it twice at
    // once; different transactions proceed in parallel.
    const std::lock_guard<std::mutex> lock(lockFor(ctx.request.transaction_id));
    if (const auto existing = store_.findRequestByTransaction(ctx.request.transaction_id)) {
        // A resend (lost reply, or micromdm polling by resending): the same
        // requester with the same key gets the earlier answer. Checking
        // authentication again would wrongly trip rules such as one
        // challenge certificate per CN, which that answer itself satisfied.
        if (existing->public_key_id != key_id) {
            return failure(ctx, FailInfo::badRequest,
                           "transactionID " + ctx.request.transaction_id +
                               " was already used with a different key");
        }
        if (!sameSignerKey(*existing, *ctx.request.signer)) {
            return failure(
                ctx, FailInfo::badRequest,
                "transactionID " + ctx.request.transaction_id + " belongs to another requester");
        }
        ctx.event.method = existing->method;
        return answerExisting(ctx, *existing);
    }

    return authenticateAndDecide(ctx, key_id);
}

Bytes ScepResponder::authenticateAndDecide(Context& ctx, const Bytes& key_id) {
    const AuthResult auth =
        ctx.runtime->authenticator.authenticate(ctx.request, ctx.csr, store_, ctx.now);
    if (auth.method) {
        ctx.event.method = authMethodName(*auth.method);
    }
    if (!auth.identity.empty()) {
        ctx.event.identity = auth.identity;
    }
    if (auth.method == AuthMethod::challenge) {
        // Throttled whatever the outcome: once locked, a right guess must not
        // be told apart from a wrong one.
        const std::string identity = canonicalName(
            nameEntry(X509_REQ_get_subject_name(ctx.csr.request.get()), NID_commonName));
        if (const auto refusal = challenges_.refusal(ctx.peer, identity, ctx.now)) {
            return failure(ctx, FailInfo::badRequest, *refusal);
        }
        if (auth.wrong_secret) {
            challenges_.failed(ctx.peer, identity, ctx.now);
        }
    }
    if (!auth.ok) {
        ctx.clash = auth.clash;
        return failure(ctx, auth.fail, auth.reason);
    }
    const std::string clash =
        auth.method == AuthMethod::mic ? micNameClash(auth.common_name, ctx.now) : std::string();

    RequestRecord record;
    record.transaction_id = ctx.request.transaction_id;
    record.message_type = messageTypeName(ctx.request.message_type);
    record.method = authMethodName(*auth.method);
    record.identity = auth.identity;
    record.common_name = auth.common_name;
    record.csr = csrWithoutSecrets(*ctx.csr.request);
    record.public_key_id = key_id;
    record.signer = certificateDer(*ctx.request.signer);
    record.peer = ctx.peer;
    record.details = toJson(auth, clash);

    if (approvalFor(ctx.config(), *auth.method) == Approval::manual) {
        record.reason = std::string("approval-") + authMethodName(*auth.method) + " is manual";
        if (issuance_.forwards()) {
            record.ca.csr = ctx.content;  // forwarded byte for byte once approved
        }
        const Bytes reply = holdPending(ctx, record, clash);
        if (observers_.on_pending) {
            observers_.on_pending(record);
        }
        return reply;
    }
    return issueNow(ctx, record, auth, clash);
}

// Stores the request as pending (for an administrator, or while the CA
// works on it) and answers PENDING.
Bytes ScepResponder::holdPending(Context& ctx, RequestRecord& record, const std::string& clash) {
    record.status = RequestStatus::pending;
    ctx.event.action = auditActionName(AuditAction::enroll);
    ctx.event.outcome = outcomeName(Outcome::pending);
    ctx.event.reason = record.reason;
    store_.addPendingRequest(record, ctx.event);
    ctx.event.request_id = record.id;
    trail_.logStored(ctx.event);
    auditClash(ctx, clash, record.id);
    return pending(ctx);
}

Bytes ScepResponder::issueNow(Context& ctx, RequestRecord& record, const AuthResult& auth,
                              const std::string& clash) {
    if (issuance_.forwards()) {
        return forwardNow(ctx, record, clash);
    }
    AuditEvent issued = ctx.event;
    issued.action = auditActionName(AuditAction::enroll);
    issued.outcome = outcomeName(Outcome::success);
    issued.reason = std::string("approval-") + authMethodName(*auth.method) + " is auto";
    const IssueRequest request{ctx.csr.key.get(), X509_REQ_get_X509_PUBKEY(ctx.csr.request.get()),
                               auth.common_name,  auth.sans,
                               ctx.content,       ""};
    CertificateIssuance::Outcome outcome;
    try {
        outcome = issuance_.issueForNewRequest(record, request, issued, ctx.config(),
                                               auth.renewed_serial, ctx.now);
    } catch (const IdentityTaken& e) {
        return failure(ctx, FailInfo::badRequest, e.what());
    } catch (const RenewedCertificateGone& e) {
        return failure(ctx, FailInfo::badRequest, e.what());
    }
    switch (outcome.status) {
    case CaAnswer::Status::pending:
        // Nothing for an administrator to decide: the phone polls until the
        // CA has answered.
        record.reason = "pending at the CA (reference " + outcome.reference + ")";
        return holdPending(ctx, record, clash);
    case CaAnswer::Status::failed:
    case CaAnswer::Status::unreachable:  // only a forwarding CA is retried later
        return failure(ctx, FailInfo::badRequest, "the CA refused the request: " + outcome.reason);
    case CaAnswer::Status::issued:
        break;
    }
    ctx.event = issued;
    auditClash(ctx, clash, record.id);
    ctx.issued = true;
    return success(ctx, degenerateSignedData({outcome.certificate.get()}));
}

// An upstream CA: the request is stored, then sent; the phone gets what the
// CA answered (or PENDING while it cannot be reached).
Bytes ScepResponder::forwardNow(Context& ctx, RequestRecord& record, const std::string& clash) {
    record.ca.csr = ctx.content;  // byte for byte: its signature must stay valid
    AuditEvent forwarded = ctx.event;
    issuance_.forwardNewRequest(record, forwarded, ctx.config(), ctx.now);
    ctx.event.request_id = record.id;
    auditClash(ctx, clash, record.id);
    const auto now_stored = store_.findRequest(record.id);
    if (!now_stored) {
        throw StoreError("request " + std::to_string(record.id) + " vanished");
    }
    ctx.issued = now_stored->status == RequestStatus::issued;
    return answerExisting(ctx, *now_stored);
}

void ScepResponder::auditClash(Context& ctx, const std::string& clash, std::int64_t request_id) {
    if (clash.empty()) {
        return;
    }
    ctx.clash = "mic-over-other";
    AuditEvent event = ctx.event;
    event.action = auditActionName(AuditAction::identity_clash);
    event.outcome = outcomeName(Outcome::warning);
    event.reason = clash;
    event.request_id = request_id;
    trail_.writeAlways(event);
}

std::string ScepResponder::originOf(CertificateRecord cert) {
    for (int hops = 0; hops < 64; ++hops) {  // renewals chain back; never loop forever
        const auto request = cert.request_id ? store_.findRequest(cert.request_id) : std::nullopt;
        if (!request) {
            break;
        }
        if (request->method != authMethodName(AuthMethod::renewal)) {
            return request->method;
        }
        const std::string renewed = renewsFromDetails(request->details);
        auto previous = renewed.empty() ? std::nullopt : store_.findCertificate(renewed);
        if (!previous) {
            break;
        }
        cert = std::move(*previous);
    }
    return "unknown";
}

std::string ScepResponder::micNameClash(const std::string& common_name, std::time_t now) {
    std::string clash;
    // A superseded certificate was flagged when it was superseded, if it clashed.
    for (const CertificateRecord& held :
         store_.activeCertificatesFor(common_name, now, Store::Superseded::exclude)) {
        const std::string origin = originOf(held);
        if (origin != authMethodName(AuthMethod::mic)) {
            clash += std::string(clash.empty() ? "" : "; ") + "CN '" + held.common_name +
                     "' holds certificate " + held.serial + " obtained by " + origin +
                     ", not by this phone's MIC";
        }
    }
    return clash;
}

// A transaction the RA has seen: same answer as before, never a second
// certificate (clients resend PKCSReq while pending, or lose a reply).
Bytes ScepResponder::answerExisting(Context& ctx, const RequestRecord& existing) {
    ctx.event.request_id = existing.id;
    switch (existing.status) {
    case RequestStatus::pending:
        return pending(ctx);
    case RequestStatus::rejected:
        // An upstream CA's refusal reaches the phone with its failInfo.
        return failure(ctx,
                       existing.ca.fail_info ? static_cast<FailInfo>(*existing.ca.fail_info)
                                             : FailInfo::badRequest,
                       "request rejected: " + existing.reason, false);
    case RequestStatus::issued:
        break;
    }
    const auto cert = store_.findCertificate(existing.cert_serial);
    if (!cert) {
        return failure(ctx, FailInfo::badCertId,
                       "certificate " + existing.cert_serial + " is missing");
    }
    if (cert->revoked) {
        return failure(ctx, FailInfo::badRequest,
                       "the certificate of this transaction (" + cert->serial +
                           ") is revoked; enroll with a new key");
    }
    const X509Ptr x509 = certificateFromDer(cert->der);
    return success(ctx, degenerateSignedData({x509.get()}));
}

Bytes ScepResponder::poll(Context& ctx) {
    const auto existing = store_.findRequestByTransaction(ctx.request.transaction_id);
    if (!existing) {
        return failure(ctx, FailInfo::badCertId,
                       "no request with transactionID " + ctx.request.transaction_id);
    }
    // Only the requester may collect: the reply is encrypted to the poller.
    if (!sameSignerKey(*existing, *ctx.request.signer)) {
        return failure(ctx, FailInfo::badRequest,
                       "CertPoll signed by a different key than the request");
    }
    return answerExisting(ctx, *existing);
}

Bytes ScepResponder::getCertificate(Context& ctx) {
    IssuerAndSerial wanted;
    try {
        wanted = parseIssuerAndSerial(ctx.content);
    } catch (const std::exception&) {
        return failure(ctx, FailInfo::badRequest,
                       "GetCert content is not an IssuerAndSerialNumber");
    }
    const std::string serial = serialHex(wanted.serial.get());
    const auto cert =
        X509_NAME_cmp(wanted.issuer.get(),
                      X509_get_subject_name(&issuance_.authority().certificate())) == 0
            ? store_.findCertificate(serial)
            : std::nullopt;
    if (!cert) {
        return failure(ctx, FailInfo::badCertId, "no certificate " + serial + " from this CA");
    }
    const X509Ptr x509 = certificateFromDer(cert->der);
    return success(ctx, degenerateSignedData({x509.get()}));
}

Bytes ScepResponder::getCrl(Context& ctx) {
    IssuerAndSerial wanted;
    try {
        wanted = parseIssuerAndSerial(ctx.content);
    } catch (const std::exception&) {
        return failure(ctx, FailInfo::badRequest, "GetCRL content is not an IssuerAndSerialNumber");
    }
    if (X509_NAME_cmp(wanted.issuer.get(),
                      X509_get_subject_name(&issuance_.authority().certificate())) != 0) {
        return failure(ctx, FailInfo::badCertId, "GetCRL names another issuer");
    }
    Bytes der;
    try {
        der = crl_.crl();
    } catch (const UpstreamUnavailable& e) {
        return failure(ctx, FailInfo::badRequest, e.what());  // SCEP has no "later" for GetCRL
    }
    const unsigned char* p = der.data();
    const X509CrlPtr current(d2i_X509_CRL(nullptr, &p, static_cast<long>(der.size())));
    if (!current) {
        throw CryptoError("the current CRL does not parse");  // never SUCCESS without it
    }
    return success(ctx, degenerateSignedData({}, current.get()));
}

// A CertRep's fields that echo the request, for every status.
CertRepParams ScepResponder::replyTo(const Context& ctx, PkiStatus status) {
    CertRepParams params;
    params.status = status;
    params.transaction_id = ctx.request.transaction_id;
    params.recipient_nonce = ctx.request.sender_nonce;
    params.digest_nid = ctx.request.digest_nid;
    return params;
}

Bytes ScepResponder::success(Context& ctx, const Bytes& content) {
    ctx.outcome = Outcome::success;
    CertRepParams params = replyTo(ctx, PkiStatus::success);
    params.cipher_nid = ctx.cipher_nid;
    params.recipient = ctx.request.signer.get();
    return buildCertRep(params, &content, *material_.ra.key, *material_.ra.cert);
}

Bytes ScepResponder::pending(Context& ctx) {
    ctx.outcome = Outcome::pending;
    return buildCertRep(replyTo(ctx, PkiStatus::pending), nullptr, *material_.ra.key,
                        *material_.ra.cert);
}

Bytes ScepResponder::failure(Context& ctx, FailInfo fail, const std::string& reason, bool audit) {
    ctx.outcome = Outcome::failure;
    if (audit) {
        ctx.event.outcome = outcomeName(Outcome::failure);
        ctx.event.reason = std::string(failInfoName(fail)) + ": " + reason;
        trail_.failure(ctx.event);
    }
    CertRepParams params = replyTo(ctx, PkiStatus::failure);
    params.fail = fail;
    return buildCertRep(params, nullptr, *material_.ra.key, *material_.ra.cert);
}

}  // namespace scep
