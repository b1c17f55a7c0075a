// Storage behind one small interface: enrollment requests, issued
// certificates and the append-only audit trail. The SQLite implementation is
// the default; every write that must not be half-done (issuing, deciding,
// revoking) is one transaction together with its audit event.
#pragma once

#include <cstddef>
#include <cstdint>
#include <ctime>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/fingerprint.h"

namespace scep {

enum class RequestStatus { pending, issued, rejected };
const char* requestStatusName(RequestStatus status);
std::optional<RequestStatus> requestStatusFromName(const std::string& name);

// Where a pending request waits: for an administrator here (none), or at
// an upstream CA that was sent it (forwarding: recorded, not yet
// acknowledged; pending: the CA answered PENDING and is polled).
enum class CaState { none, forwarding, pending };
const char* caStateName(CaState state);  // "", "forwarding", "pending"
std::optional<CaState> caStateFromName(const std::string& name);

struct CaProgress {
    CaState state = CaState::none;
    std::string reference;  // the transactionID the CA knows the request by
    // The CSR exactly as received, to forward (again, after a crash); it may
    // hold a challengePassword, so it is dropped once the CA has answered.
    Bytes csr;
    std::int64_t since = 0;        // first forwarded (unix seconds), for poll-timeout
    std::string last_error;        // why the last attempt got no answer; "" after an answer
    std::optional<int> fail_info;  // the failInfo the CA refused the request with
};

struct RequestRecord {
    std::int64_t id = 0;
    std::string transaction_id;
    std::string message_type;  // "PKCSReq", "RenewalReq"
    std::string method;        // "mic", "challenge", "renewal"
    std::string identity;      // what authentication proved, e.g. the MIC subject
    std::string common_name;   // CN the certificate will carry
    Bytes csr;                 // DER PKCS#10
    Bytes public_key_id;       // SHA-256 of the CSR's SubjectPublicKeyInfo
    Bytes signer;              // DER certificate that signed the request (replies are
                               // encrypted to it, also when polled later)
    RequestStatus status = RequestStatus::pending;
    std::string reason;           // why rejected, or why pending
    std::string peer;             // client IP address
    std::string cert_serial;      // set once issued
    std::string details;          // JSON: model, mac, pid, sn, manufacturer issuer, SANs...
    std::int64_t created_at = 0;  // unix seconds
    std::int64_t updated_at = 0;
    CaProgress ca;  // pending requests the CA has (or is being sent)
};

struct CertificateRecord {
    std::string serial;  // upper-case hex, unique
    std::string subject;
    std::string issuer;
    std::string common_name;
    std::int64_t not_before = 0;
    std::int64_t not_after = 0;
    Bytes der;
    std::int64_t request_id = 0;  // 0 when not issued through a request
    bool revoked = false;
    int revocation_reason = 0;  // RFC 5280 CRLReason
    std::int64_t revoked_at = 0;
    std::string superseded_by;  // serial of the certificate that replaced it, or ""
};

struct AuditEvent {
    std::int64_t id = 0;
    std::int64_t at = 0;  // unix seconds; set by the store when 0
    std::string actor;    // "scep" (the protocol), "cli:<user>", "api:<token name>"
    std::string
        action;  // e.g. "enroll", "issue", "pending", "refuse", "approve", "reject", "revoke"
    std::string outcome;  // "success", "pending", "failure"
    std::string method;   // auth method, if any
    std::string identity;
    std::string reason;
    std::optional<std::int64_t> request_id;
    std::string serial;
    std::string peer;
    std::string transaction_id;
};

class StoreError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// A transactionID that already has a request row.
class DuplicateTransaction : public StoreError {
public:
    using StoreError::StoreError;
};

// The identity a certificate is for is its CN compared canonically: ASCII
// letters in any case and without trailing dots ("Victim.Example.NL." is
// victim.example.nl). The store compares with lower(rtrim(cn, '.')) in SQL,
// in a generated column with an index; canonicalName() in
// ra/auth/authenticator.h is the same rule in C++.
//
// At most one certificate per identity is *current*: neither revoked nor
// superseded (a UNIQUE index enforces it). Issuing for an identity
// supersedes its current certificate in the same transaction.
struct IssueRules {
    // Challenge enrollments: refuse (IdentityTaken) while any certificate of
    // the identity is active (valid at `now` by certificateState, whether
    // superseded or not). A shared secret proves no identity.
    bool exclusive = false;
    // Renewals: the certificate being replaced. It must still be current and
    // valid at `now` (certificateState), or RenewedCertificateGone is thrown.
    std::string renews;
    // Also revoke what is superseded, with CRLReason superseded (4).
    bool revoke_superseded = false;
    std::int64_t now = 0;  // unix seconds; 0: the current time
};

// IssueRules::exclusive and the identity holds an active certificate.
class IdentityTaken : public StoreError {
public:
    IdentityTaken(const std::string& what, std::string serial)
        : StoreError(what), serial_(std::move(serial)) {}
    const std::string& serial() const { return serial_; }

private:
    std::string serial_;
};

// IssueRules::renews names a certificate that was revoked, superseded or
// expired since the renewal was authenticated.
class RenewedCertificateGone : public StoreError {
public:
    using StoreError::StoreError;
};

// Admin API token: the secret is only ever stored as its SHA-256.
// The database refuses (StoreError) an empty id or name, any other role and
// a secret_hash that is not 32 bytes.
struct TokenRecord {
    std::string id;               // 8 hex characters, part of the token text, unique
    std::string name;             // unique, e.g. "alice"
    std::string role;             // "viewer" | "approver"
    Bytes secret_hash;            // SHA-256 of the secret part (32 bytes)
    std::int64_t created_at = 0;  // set by the store when 0
    std::string created_by;
};

class DuplicateToken : public StoreError {
public:
    using StoreError::StoreError;
};

// Empty strings and 0 bounds mean "no filter". limit is clamped to 1..500.
struct RequestFilter {
    std::optional<RequestStatus> status;
    std::string model;       // exact, case-sensitive, from the MIC (details JSON "model")
    std::string mac;         // exact: the caller normalizes to "00:1A:2B:3C:4D:5E"
                             // (details JSON "mac")
    std::string text;        // substring of common_name or identity; ASCII letters match
                             // in any case, '%' '_' '\' are literal
    std::int64_t since = 0;  // created_at >= since (0: no bound)
    std::int64_t until = 0;  // created_at <  until (0: no bound)
    std::size_t limit = 50;
    std::size_t offset = 0;
};

enum class CertificateState { valid, revoked, expired };

// The one rule for a certificate's state at `now` (unix seconds): revoked if
// revoked; else expired once not_after < now; else valid. notAfter is
// inclusive (RFC 5280 4.1.2.5): the certificate is valid through that second.
// Superseded is no state of its own: a superseded certificate stays valid
// until it expires or is revoked. The store's SQL that filters by state
// (ra/store/sqlite/) compares the same way.
CertificateState certificateState(const CertificateRecord& certificate, std::time_t now);
const char* certificateStateName(CertificateState state);  // "valid", "revoked", "expired"

// `state` as certificateState() at `now`. limit is clamped to 1..500.
struct CertificateFilter {
    // Substring of the CN (ASCII letters in any case, '%' '_' '\' literal),
    // a prefix of the serial, or exactly the MAC as recorded with the
    // request that led to it; any of them matching. The input is upper-cased
    // (ASCII) for the serial and MAC comparisons, so the caller passes a MAC
    // normalized to "00:1A:2B:3C:4D:5E" (lower-case hex also matches).
    std::string text;
    std::optional<CertificateState> state;  // evaluated at `now`
    std::int64_t expiring_before = 0;       // valid and not_after < this (0: no bound)
    std::int64_t now = 0;                   // unix seconds; 0: the current time
    std::size_t limit = 50;
    std::size_t offset = 0;
};

template <typename T>
struct Page {
    std::vector<T> items;
    // All matches, ignoring limit and offset; when total_exact is false, a
    // lower bound: a text search counts only up to kTextSearchCountAhead
    // matches past the offset.
    std::size_t total = 0;
    bool total_exact = true;
};

// How far past a page's offset a text search counts its matches. Checking
// a candidate reads its row: an exact count of the 200,000 certificates of
// one phone model out of a million took 1.7 s; this many take milliseconds.
inline constexpr std::size_t kTextSearchCountAhead = 1000;

// A certificate with what the request it came from says about the device.
struct CertificateView {
    CertificateRecord certificate;
    std::string model;
    std::string mac;
};

class Store {
public:
    virtual ~Store() = default;

    // What the store fills in for the writers below: created_at / updated_at
    // of a new request when 0 (unix seconds now; updated_at = created_at),
    // the event's `at` when 0, and in the audit event any of request_id,
    // transaction_id and serial the caller left empty, from the rows written.
    // `record` is updated only once the transaction has committed. Any other
    // failure throws StoreError naming the operation, with nothing written.

    // Inserts a pending request and its audit event; sets record.id and
    // timestamps, status = pending and an empty cert_serial. A request
    // forwarded to the CA at once carries record.ca (state forwarding).
    // Throws DuplicateTransaction when the transactionID exists.
    virtual void addPendingRequest(RequestRecord& record, const AuditEvent& event) = 0;
    // Inserts an already-issued request, its certificate and the audit event
    // in one transaction (auto-approval). Sets record.id, timestamps,
    // status = issued and cert_serial = cert.serial; the certificate's
    // request_id is the new request's id (cert.request_id is ignored).
    // `rules` are checked and the identity's current certificate superseded
    // (each with an audit event: "supersede", or "revoke") in the same
    // transaction; returns the serials superseded. Throws
    // DuplicateTransaction, IdentityTaken, RenewedCertificateGone (nothing
    // written); a clashing serial is a StoreError.
    virtual std::vector<std::string> addIssuedRequest(RequestRecord& record,
                                                      const CertificateRecord& cert,
                                                      const AuditEvent& event,
                                                      const IssueRules& rules = {}) = 0;
    // pending -> issued with its certificate, atomically; false if the
    // request is not pending any more (someone decided first) or unknown,
    // and then nothing is written. cert.request_id is ignored. `rules` and
    // the exceptions as for addIssuedRequest; the superseded serials are
    // appended to `superseded` when given.
    virtual bool issuePending(std::int64_t request_id, const CertificateRecord& cert,
                              const AuditEvent& event, const IssueRules& rules = {},
                              std::vector<std::string>* superseded = nullptr) = 0;
    // pending -> rejected with `reason` (and the CA's failInfo, when the CA
    // refused); false if not pending (nothing written).
    virtual bool rejectPending(std::int64_t request_id, const std::string& reason,
                               const AuditEvent& event,
                               std::optional<int> ca_fail_info = std::nullopt) = 0;
    // issuePending and rejectPending also end the request's CaProgress
    // (state none, CSR dropped).

    // A pending request waiting for an administrator goes to the CA with
    // `ca` (state forwarding, reference, CSR, since); false if it is not
    // pending or already at the CA (nothing written).
    virtual bool forwardPending(std::int64_t request_id, const CaProgress& ca,
                                const AuditEvent& event) = 0;
    // forwarding -> pending at the CA, which answered PENDING: the CSR is
    // dropped and last_error cleared; false unless it was forwarding.
    virtual bool acknowledgedByCa(std::int64_t request_id, const AuditEvent& event) = 0;
    // Why the CA gave no answer this time (last_error), with an audit event
    // when `event` is given; false unless the request is at the CA.
    virtual bool noteCaError(std::int64_t request_id, const std::string& error,
                             const AuditEvent* event) = 0;
    // Pending requests at the CA (forwarding or pending there), oldest first.
    virtual std::vector<RequestRecord> requestsAtCa() = 0;

    virtual std::optional<RequestRecord> findRequest(std::int64_t id) = 0;
    virtual std::optional<RequestRecord> findRequestByTransaction(
        const std::string& transaction_id) = 0;
    // Oldest first; all requests when `status` is empty.
    virtual std::vector<RequestRecord> listRequests(std::optional<RequestStatus> status) = 0;

    virtual std::optional<CertificateRecord> findCertificate(const std::string& serial) = 0;
    // In insertion order.
    virtual std::vector<CertificateRecord> listCertificates() = 0;
    // Certificates of this identity (the CN compared canonically, see
    // IssueRules) that are valid at `now` (certificateState); latest
    // not_after first. A phone that
    // renewed often has a long history: ask for the superseded ones only
    // when they matter.
    enum class Superseded { include, exclude };
    virtual std::vector<CertificateRecord> activeCertificatesFor(const std::string& common_name,
                                                                 std::int64_t now,
                                                                 Superseded superseded) = 0;
    // Marks revoked (with reason and time; `at` 0 means now) plus audit;
    // false if unknown or already revoked (nothing written).
    virtual bool revoke(const std::string& serial, int reason, std::int64_t at,
                        const AuditEvent& event) = 0;
    // Ordered by revoked_at, then serial.
    virtual std::vector<CertificateRecord> revokedCertificates() = 0;
    // What a CRL lists, in the same order, with only serial, revoked,
    // revocation_reason and revoked_at filled: the SQLite store reads them
    // from an index, without the certificates (the CRL is checked on every
    // request for it; at a million certificates 10,000 are revoked).
    virtual std::vector<CertificateRecord> revocations() { return revokedCertificates(); }

    // Newest first (requests by id descending; certificates by not_before
    // descending, then serial, or, with `text`, most recently recorded first,
    // so that the first matches found are the page); filters combine with
    // AND. `total` and the page come from one snapshot. model / mac are ""
    // when the request had none (non-MIC) or the certificate has no request.
    virtual Page<RequestRecord> findRequests(const RequestFilter& filter) = 0;
    virtual Page<CertificateView> findCertificates(const CertificateFilter& filter) = 0;
    virtual std::size_t countRequests(RequestStatus status) = 0;
    // Not revoked, not_after in [from, to): with from = now, the ones valid
    // at `now` (certificateState) that expire before `to`.
    virtual std::size_t countValidCertificates(std::int64_t from, std::int64_t to) = 0;

    // Token and audit event in one transaction. Throws DuplicateToken when
    // the name or id exists (nothing written).
    virtual void addToken(const TokenRecord& token, const AuditEvent& event) = 0;
    virtual std::optional<TokenRecord> findToken(const std::string& id) = 0;
    virtual std::vector<TokenRecord> listTokens() = 0;  // by name
    // Deletes it with its audit event in one transaction; false when no
    // token has this name (nothing written).
    virtual bool deleteToken(const std::string& name, const AuditEvent& event) = 0;

    // Cheap round trip for health checks; throws StoreError when the
    // database cannot be read or another process has changed its schema
    // version since this store opened it.
    virtual void ping() = 0;
    // Takes the write lock and lets it go without writing: throws StoreError
    // when the database cannot be written now (read-only file or directory,
    // locked beyond the busy timeout, I/O error). Free space is the
    // caller's to check.
    virtual void checkWritable() = 0;

    virtual void audit(const AuditEvent& event) = 0;
    // Newest first, at most `limit` events (0 returns none) with
    // id < `before_id`; `before_id` 0 means from the newest. Page on by
    // passing the last id received.
    virtual std::vector<AuditEvent> listAudit(std::size_t limit, std::int64_t before_id) = 0;
};

// Opens (creating if needed) the SQLite database in WAL mode with
// synchronous=FULL and foreign keys on. Thread-safe: one store may be used
// from the HTTP worker threads concurrently (other processes, e.g. the CLI,
// may open the same file; they wait up to 5 s for each other's writes).
// Throws StoreError if the file is not a database, is another application's,
// or has a schema version newer than this code knows.
std::unique_ptr<Store> openSqliteStore(const std::string& path);

}  // namespace scep
