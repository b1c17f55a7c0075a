// The RA's decisions, independent of HTTP: what to answer to a SCEP
// message, and what an administrator's approve/reject/revoke does. Every
// decision lands in the store with its audit event in one transaction and
// in the event log.
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

#include "ra/config.h"
#include "ra/ops/audit_trail.h"
#include "ra/auth/authenticator.h"
#include "ra/ops/event_log.h"
#include "ra/ca/local_ca.h"
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

// Administrative refusals, mapped by front ends to 404 / 409 / 400.
class AdminError : public std::runtime_error {
public:
    enum class Kind { not_found, conflict, invalid };
    AdminError(Kind kind, const std::string& what) : std::runtime_error(what), kind_(kind) {}
    Kind kind() const { return kind_; }

private:
    Kind kind_;
};

using Clock = std::function<std::time_t()>;

struct MessageOutcome {
    std::string message_type;  // "PKCSReq", ..., "unknown", "unparseable"
    std::string outcome;       // "success" | "pending" | "failure"
    std::string method;        // auth method, "" when none
    double seconds = 0;        // receipt to reply
    bool issued = false;       // a certificate was issued for this message
    // An identity clash this message revealed, as a metric label:
    // "challenge-for-mic-name" (refused) or "mic-over-other" (a phone's MIC
    // claimed a name another method had obtained); "" when none.
    std::string clash;
};

// Observers for metrics and notifications; called on the request's thread,
// so they must be quick and must not throw.
struct EnrollmentHooks {
    std::function<void(const MessageOutcome&)> on_message;
    std::function<void(const RequestRecord&)> on_pending;
};

struct CrlInfo {
    std::time_t this_update = 0;
    std::time_t next_update = 0;
    std::size_t revoked = 0;
};

class EnrollmentService {
public:
    // Builds the first RuntimeConfig from `config` (loading the manufacturer
    // roots); throws like RuntimeConfig.
    EnrollmentService(const Config& config, State& state, Store& store, EventLog& log,
                      Clock clock = [] { return std::time(nullptr); });

    // GetCACaps: what every Debian client needs to pick AES/SHA-256 and POST
    // (strongSwan 5.9.8 tests capability bits off by one: it needs SHA-384
    // listed to use AES; see ra/scep/INTEROP.md), and exactly the digests
    // requests may use.
    static std::string capabilities();
    // GetCACert: degenerate SignedData with the RA certificate, then the CA.
    const Bytes& caCertificates() const { return ca_certificates_; }

    // PKIOperation: the CertRep to send. Throws UnanswerableMessage, and
    // Unavailable when state-dir is short of space or the store fails.
    Bytes pkiOperation(const Bytes& message, const std::string& peer);
    // The audit trail (and failure budget) the HTTP layers share with it.
    AuditTrail& auditTrail() { return trail_; }

    // Current CRL (DER), rebuilt when revocations changed or it is half-way
    // to its nextUpdate.
    Bytes crl();
    CrlInfo crlInfo();
    void setHooks(EnrollmentHooks hooks) { hooks_ = std::move(hooks); }
    State& state() { return state_; }

    // The configuration new requests are answered with. A request keeps the
    // snapshot it started with until it is answered.
    std::shared_ptr<const RuntimeConfig> runtime() const;
    // Swaps in a reloaded configuration for the requests that start from now
    // on, and applies its challenge-throttle and audit-budget limits (their
    // counts are kept). ra/reload.h decides what may change without a restart.
    void setRuntime(std::shared_ptr<const RuntimeConfig> next);

    // Issues the certificate of a pending request; returns its serial.
    // `peer` is where the administrator acted from ("" for the local CLI).
    std::string approve(std::int64_t request_id, const std::string& actor,
                        const std::string& peer = "");
    void reject(std::int64_t request_id, const std::string& reason, const std::string& actor,
                const std::string& peer = "");
    // RFC 5280 reason code (0-10 without 7).
    void revoke(const std::string& serial, int reason, const std::string& actor,
                const std::string& peer = "");

private:
    struct Context;

    Bytes answerMessage(std::shared_ptr<const RuntimeConfig> runtime, const Bytes& message,
                        const std::string& peer);
    Bytes answer(Context& ctx);
    Bytes enroll(Context& ctx);
    Bytes poll(Context& ctx);
    Bytes getCertificate(Context& ctx);
    Bytes getCrl(Context& ctx);
    Bytes answerExisting(Context& ctx, const RequestRecord& existing);
    Bytes success(Context& ctx, const Bytes& content);
    Bytes pending(Context& ctx);
    Bytes failure(Context& ctx, FailInfo fail, const std::string& reason, bool audit = true);
    static IssueRules issueRules(const Config& config, const std::string& method,
                                 const std::string& renews, std::time_t now);
    // How the identity behind `cert` was first proven: the method of the
    // request that issued it, following renewals back ("unknown" if lost).
    std::string originOf(CertificateRecord cert);
    // Describes the current certificate of `common_name` if a MIC did not
    // obtain it, for a MIC enrollment of that name; "" when there is none.
    std::string micNameClash(const std::string& common_name, std::time_t now);
    void logSuperseded(const AuditEvent& event, const std::vector<std::string>& serials,
                       const std::string& new_serial, bool revoked);
    // Records a MIC enrollment's clash (micNameClash) for the console and
    // the metrics.
    void auditClash(Context& ctx, const std::string& clash, std::int64_t request_id);
    RequestRecord requestOrThrow(std::int64_t request_id);
    CertificateRecord recordOf(X509& cert, std::int64_t request_id) const;
    std::mutex& lockFor(const std::string& transaction_id);

    mutable std::mutex runtime_mutex_;
    std::shared_ptr<const RuntimeConfig> runtime_;
    State& state_;
    Store& store_;
    EventLog& log_;
    Clock clock_;
    Bytes ca_certificates_;
    std::array<std::mutex, 64> transaction_locks_;
    std::mutex crl_mutex_;
    Bytes crl_der_;
    std::string crl_revocations_;  // what the cached CRL was built from
    std::time_t crl_built_ = 0;
    std::size_t crl_revoked_count_ = 0;
    int crl_days_ = 0;  // the nextUpdate distance of the cached CRL
    EnrollmentHooks hooks_;
    AuditTrail trail_;
    ChallengeThrottle challenges_;
};

}  // namespace scep
