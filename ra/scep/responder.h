// The SCEP responder, independent of HTTP: what to answer to a SCEP
// message. Every decision lands in the store with its audit event in one
// transaction and in the event log.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>

#include "ra/auth/authenticator.h"
#include "ra/ca/bootstrap.h"
#include "ra/ca/crl_publisher.h"
#include "ra/ca/issuance.h"
#include "ra/config.h"
#include "ra/ops/audit_trail.h"
#include "ra/ops/audit_vocabulary.h"
#include "ra/ops/event_log.h"
#include "ra/runtime_config.h"
#include "ra/scep/message.h"
#include "ra/store/store.h"

namespace scep {

// A message with nothing authentic in it to answer: the HTTP layer sends
// 400 with this short, client-facing reason (the event, with the detail,
// is already audited and logged).
class UnanswerableMessage : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// The RA cannot record anything right now (disk short or full, database
// unwritable): the HTTP layer answers 503 with Retry-After, so clients try
// again later. Nothing was written, and no certificate left the RA.
class Unavailable : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct MessageOutcome {
    std::string message_type;            // "PKCSReq", ..., "unknown", "unparseable"
    Outcome outcome = Outcome::failure;  // success, pending or failure
    std::string method;                  // auth method, "" when none
    double seconds = 0;                  // receipt to reply
    bool issued = false;                 // a certificate was issued for this message
    // An identity clash this message revealed, as a metric label:
    // "challenge-for-mic-name" (refused) or "mic-over-other" (a phone's MIC
    // claimed a name another method had obtained); "" when none.
    std::string clash;
};

// Observers for metrics and notifications; called on the request's thread,
// so they must be quick and must not throw.
struct EnrollmentObservers {
    std::function<void(const MessageOutcome&)> on_message;
    std::function<void(const RequestRecord&)> on_pending;
};

// Answers SCEP: GetCACaps, GetCACert and PKIOperation (enrollment,
// renewal, polling, GetCert, GetCRL). Issuing goes through
// CertificateIssuance, shared with Administration's approvals.
class ScepResponder {
public:
    // Takes the challenge-throttle limits of every configuration `config`
    // is set to from now on.
    ScepResponder(
        CurrentConfig& config, const CaMaterial& material, Store& store, AuditTrail& trail,
        CertificateIssuance& issuance, CrlPublisher& crl, EventLog& log,
        Clock clock = [] { return std::time(nullptr); });

    // GetCACaps: what every Debian client needs to pick AES/SHA-256 and POST
    // (strongSwan 5.9.8 tests capability bits off by one: it needs SHA-384
    // listed to use AES; see ra/scep/INTEROP.md), and exactly the digests
    // requests may use.
    static std::string capabilities();
    // GetCACert: degenerate SignedData with the RA certificate, then the
    // issuing CA (and, for an upstream CA, the rest of its chain).
    Bytes caCertificates() const;

    // PKIOperation: the CertRep to send. Throws UnanswerableMessage, and
    // Unavailable when state-dir is short of space or the store fails.
    Bytes pkiOperation(const Bytes& message, const std::string& peer);
    void setObservers(EnrollmentObservers observers) { observers_ = std::move(observers); }

private:
    struct Context;

    Bytes answerMessage(std::shared_ptr<const RuntimeConfig> runtime, const Bytes& message,
                        const std::string& peer);
    Bytes answer(Context& ctx);
    Bytes enroll(Context& ctx);
    Bytes authenticateAndDecide(Context& ctx, const Bytes& key_id);
    Bytes holdPending(Context& ctx, RequestRecord& record, const std::string& clash);
    Bytes issueNow(Context& ctx, RequestRecord& record, const AuthResult& auth,
                   const std::string& clash);
    Bytes forwardNow(Context& ctx, RequestRecord& record, const std::string& clash);
    Bytes poll(Context& ctx);
    Bytes getCertificate(Context& ctx);
    Bytes getCrl(Context& ctx);
    Bytes answerExisting(Context& ctx, const RequestRecord& existing);
    static CertRepParams replyTo(const Context& ctx, PkiStatus status);
    Bytes success(Context& ctx, const Bytes& content);
    Bytes pending(Context& ctx);
    Bytes failure(Context& ctx, FailInfo fail, const std::string& reason, bool audit = true);
    // How the identity behind `cert` was first proven: the method of the
    // request that issued it, following renewals back ("unknown" if lost).
    std::string originOf(CertificateRecord cert);
    // Describes the current certificate of `common_name` if a MIC did not
    // obtain it, for a MIC enrollment of that name; "" when there is none.
    std::string micNameClash(const std::string& common_name, std::time_t now);
    // Records a MIC enrollment's clash (micNameClash) for the console and
    // the metrics.
    void auditClash(Context& ctx, const std::string& clash, std::int64_t request_id);
    std::mutex& lockFor(const std::string& transaction_id);

    CurrentConfig& config_;
    const CaMaterial& material_;
    Store& store_;
    AuditTrail& trail_;
    CertificateIssuance& issuance_;
    CrlPublisher& crl_;
    EventLog& log_;
    Clock clock_;
    std::array<std::mutex, 64> transaction_locks_;
    EnrollmentObservers observers_;
    ChallengeThrottle challenges_;
};

}  // namespace scep
