// SQLite implementation of the Store interface (see store.h).
//
// Durability and atomicity come from SQLite itself: WAL journal,
// synchronous=FULL (every COMMIT is fsynced before it returns, so neither
// kill -9 nor a power cut loses a committed certificate or request), and one
// BEGIN IMMEDIATE ... COMMIT per logical write including its audit event.
// The writes of enrollments go through group_commit.h: writes that queue
// while a COMMIT syncs share the next transaction, each in its own SAVEPOINT.
//
// Concurrency: one connection per store, guarded by a std::mutex.
//  - SQLite allows a single writer per database at any time anyway, so a pool
//    of connections would only add parallel *readers*. The RA's load (a few
//    enrollments per second at the very most) is far below what one connection
//    serves, so that buys nothing measurable.
//  - With several connections in one process, writers would contend through
//    SQLite's file locks, whose busy handler polls with sleeps and is not
//    fair; with one connection the std::mutex queues threads cheaply and no
//    in-process writer ever sees SQLITE_BUSY.
//  - sqlite3_errmsg() is per connection: reading it under the same lock as the
//    failing call is the only way the message belongs to that call.
//  - Other *processes* (the admin CLI) use their own connection; BEGIN
//    IMMEDIATE takes the write lock up front (no read->write upgrade deadlock)
//    and busy_timeout makes them wait for each other instead of failing.
// Because every use of the connection holds the mutex, it is opened with
// SQLITE_OPEN_NOMUTEX (SQLite's own per-connection mutex would be redundant).
//
// All SQL text is constant or, for the admin searches, assembled from
// constant fragments chosen by which filters are set; values are only ever
// bound as parameters.
//
// The files: schema.cc (DDL, migrations), db.cc (Query, Transaction),
// rows.cc (column lists, row readers), search.cc (every read), and this one
// (opening and every write).

#include "ra/store/sqlite/sqlite_store.h"

#include "ra/ops/abuse_limits.h"
#include "ra/ops/audit_vocabulary.h"
#include "ra/store/sqlite/rows.h"
#include "ra/store/sqlite/schema.h"

#include <utility>

namespace scep {
namespace sqlite {

namespace {

// The insert into requests can clash on transaction_id alone (its id is
// assigned by SQLite), the insert into tokens on its id or its name.
[[noreturn]] void duplicateTransaction(const std::string& what) {
    throw DuplicateTransaction(what);
}
[[noreturn]] void duplicateToken(const std::string& what) {
    throw DuplicateToken(what);
}

// Checks a PRAGMA took: SQLite ignores one it cannot honour.
void requirePragma(Database& db, const char* set, const char* get, std::int64_t expected,
                   const std::string& operation, const char* problem) {
    db.exec(set, operation);
    if (db.pragmaInteger(get, operation) != expected) {
        throw StoreError(operation + ": " + problem);
    }
}

}  // namespace

SqliteStore::SqliteStore(const std::string& path) : path_(path), db_(path, "open " + path) {
    const std::string operation = "open " + path;
    std::lock_guard<std::mutex> lock(mutex_);
    // The first statement reads the file: a file that is not a database
    // fails here with SQLite's "file is not a database".
    {
        Query q = db_.query("PRAGMA journal_mode = WAL", operation);
        const std::string mode = q.step() ? q.text(0) : std::string();
        if (mode != "wal" && !(path == ":memory:" && mode == "memory")) {
            throw StoreError(operation + ": cannot switch to WAL journal mode (got '" + mode +
                             "')");
        }
    }
    requirePragma(db_, "PRAGMA foreign_keys = ON", "PRAGMA foreign_keys", 1, operation,
                  "this SQLite does not enforce foreign keys");
    requirePragma(db_, "PRAGMA synchronous = FULL", "PRAGMA synchronous", 2, operation,
                  "cannot set synchronous=FULL");
    // RETURNING and sorting use scratch B-trees: in memory, not temp files.
    requirePragma(db_, "PRAGMA temp_store = MEMORY", "PRAGMA temp_store", 2, operation,
                  "cannot set temp_store=MEMORY");
    migrateSchema(db_, path_);
    // Left by a process that stopped before draining (or by store_seed).
    // Best effort, like the drain on close: a reader of a write-protected
    // file still opens it, and the searches find queued rows anyway.
    try {
        drainQueuedRows(operation);
    } catch (const StoreError&) {
    }
}

SqliteStore::~SqliteStore() {
    try {
        std::lock_guard<std::mutex> lock(mutex_);
        drainQueuedRows("close " + path_);
    } catch (...) {
        // Still queued, and still found by every search: the next open or
        // batch indexes them.
    }
}

void SqliteStore::drainQueuedRows(const std::string& operation) {
    if (searchQueueLength(db_, operation) == 0) {
        return;
    }
    Transaction tx(db_, operation);
    drainSearchQueues(db_, operation);
    tx.commit();
}

void SqliteStore::indexQueuedRows() {
    // At a million certificates, FTS5 spends 438 us of CPU on a row indexed
    // alone and 25 us a row in statements of 128 (bench/store/README.md);
    // the searches read a queue this short at no measurable cost.
    constexpr std::int64_t kSearchQueueBatch = 256;
    static const std::string operation = "index queued rows";
    if (searchQueueLength(db_, operation) < kSearchQueueBatch) {
        return;
    }
    // If it fails, the rows stay queued and searchable, and the batch's
    // enrollments still commit; a later batch tries again.
    (void)runInSavepoint(db_, "search_drain", operation,
                         [&] { drainSearchQueues(db_, operation); });
}

std::int64_t SqliteStore::insertRequest(const RequestRecord& r, const std::string& operation) {
    static const char* const sql =
        "INSERT INTO requests (transaction_id, message_type, method, identity, common_name, csr, "
        "public_key_id, signer, status, reason, peer, cert_serial, details, created_at, "
        "updated_at, ca_state, ca_reference, ca_csr, ca_since) VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
        "?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)";
    Query q = db_.query(sql, operation);
    q.onDuplicate(duplicateTransaction)
        .bindText(1, r.transaction_id)
        .bindText(2, r.message_type)
        .bindText(3, r.method)
        .bindText(4, r.identity)
        .bindText(5, r.common_name)
        .bindBlob(6, r.csr)
        .bindBlob(7, r.public_key_id)
        .bindBlob(8, r.signer)
        .bindText(9, requestStatusName(r.status))
        .bindText(10, r.reason)
        .bindText(11, r.peer)
        .bindTextOrNull(12, r.cert_serial)
        .bindText(13, r.details)
        .bindInt(14, r.created_at)
        .bindInt(15, r.updated_at)
        .bindText(16, caStateName(r.ca.state))
        .bindTextOrNull(17, r.ca.reference);
    if (r.ca.csr.empty()) {
        q.bindNull(18);
    } else {
        q.bindBlob(18, r.ca.csr);
    }
    q.bindInt(19, r.ca.since).run();
    return sqlite3_last_insert_rowid(db_.get());
}

void SqliteStore::insertCertificate(const CertificateRecord& c, std::int64_t request_id,
                                    const std::string& operation) {
    static const char* const sql =
        "INSERT INTO certificates (serial, subject, issuer, common_name, not_before, not_after, "
        "der, request_id, revoked, revocation_reason, revoked_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
    Query q = db_.query(sql, operation);
    q.bindText(1, c.serial)
        .bindText(2, c.subject)
        .bindText(3, c.issuer)
        .bindText(4, c.common_name)
        .bindInt(5, c.not_before)
        .bindInt(6, c.not_after)
        .bindBlob(7, c.der)
        .bindIdOrNull(8, request_id)
        .bindInt(9, c.revoked ? 1 : 0)
        .bindInt(10, c.revocation_reason)
        .bindInt(11, c.revoked_at)
        .run();
}

void SqliteStore::insertAudit(AuditEvent e, const std::string& operation) {
    static const char* const sql =
        "INSERT INTO audit (at, actor, action, outcome, method, identity, reason, request_id, "
        "serial, peer, transaction_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
    // Rows cannot be pruned: a client's 55 KB certificate subject must not
    // become 55 KB of audit for every request it sends.
    e = boundedEvent(std::move(e));
    if (e.at == 0) {
        e.at = now();
    }
    Query q = db_.query(sql, operation);
    q.bindInt(1, e.at)
        .bindText(2, e.actor)
        .bindText(3, e.action)
        .bindText(4, e.outcome)
        .bindText(5, e.method)
        .bindText(6, e.identity)
        .bindText(7, e.reason)
        .bindIdOrNull(8, e.request_id)
        .bindText(9, e.serial)
        .bindText(10, e.peer)
        .bindText(11, e.transaction_id)
        .run();
}

namespace {

void stampNew(RequestRecord& r) {
    if (r.created_at == 0) {
        r.created_at = now();
    }
    if (r.updated_at == 0) {
        r.updated_at = r.created_at;
    }
}

// Fills what the caller left empty in the audit event from the row it
// describes, so the trail links to the request and certificate.
AuditEvent linkEvent(const AuditEvent& event, std::optional<std::int64_t> request_id,
                     const std::string& transaction_id, const std::string& serial) {
    AuditEvent e = event;
    if (!e.request_id && request_id) {
        e.request_id = request_id;
    }
    if (e.transaction_id.empty()) {
        e.transaction_id = transaction_id;
    }
    if (e.serial.empty()) {
        e.serial = serial;
    }
    return e;
}

}  // namespace

void SqliteStore::addPendingRequest(RequestRecord& record, const AuditEvent& event) {
    static const std::string operation = "addPendingRequest";
    RequestRecord r = record;
    r.status = RequestStatus::pending;
    r.cert_serial.clear();
    stampNew(r);

    writes_.run(operation, [&] {
        r.id = insertRequest(r, operation);
        insertAudit(linkEvent(event, r.id, r.transaction_id, ""), operation);
    });
    record = std::move(r);  // only once committed
}

void SqliteStore::checkIssueRules(const IssueRules& rules, const CertificateRecord& cert,
                                  std::int64_t at, const std::string& operation) {
    if (rules.exclusive) {
        // Any certificate of the identity valid at `at`: certificateState()
        // in SQL (store.h; notAfter is inclusive).
        static const char* const sql =
            "SELECT serial FROM certificates WHERE cn_key = lower(rtrim(?1, '.')) AND "
            "revoked = 0 AND not_after >= ?2 ORDER BY not_after DESC, serial LIMIT 1";
        Query q = db_.query(sql, operation);
        q.bindText(1, cert.common_name).bindInt(2, at);
        if (q.step()) {
            const std::string serial = q.text(0);
            throw IdentityTaken("CN '" + cert.common_name + "' already holds active certificate " +
                                    serial + "; renew with it, or revoke it first",
                                serial);
        }
    }
    if (!rules.renews.empty()) {
        static const char* const sql =
            "SELECT " SCEP_CERTIFICATE_COLUMNS " FROM certificates WHERE serial = ?1";
        Query q = db_.query(sql, operation);
        q.bindText(1, rules.renews);
        const std::string what = "renewal certificate " + rules.renews;
        if (!q.step()) {
            throw RenewedCertificateGone(what + " is not in this RA's records");
        }
        const CertificateRecord renewed = readCertificate(q);
        if (renewed.revoked) {
            throw RenewedCertificateGone(what + " is revoked");
        }
        if (!renewed.superseded_by.empty()) {
            throw RenewedCertificateGone(what + " was superseded by " + renewed.superseded_by +
                                         "; renew with that one");
        }
        if (certificateState(renewed, at) == CertificateState::expired) {
            throw RenewedCertificateGone(what + " has expired");
        }
    }
}

std::vector<std::string> SqliteStore::applyIssueRules(
    const IssueRules& rules, const CertificateRecord& cert, std::int64_t request_id,
    const std::string& transaction_id, const AuditEvent& event, const std::string& operation) {
    const std::int64_t at = rules.now != 0 ? rules.now : now();
    checkIssueRules(rules, cert, at, operation);
    struct Superseded {
        std::string serial, subject;
    };
    std::vector<Superseded> rows;
    {
        static const char* const sql =
            "UPDATE certificates SET superseded_by = ?2, revoked = ?3, "
            "revocation_reason = CASE WHEN ?3 THEN 4 ELSE revocation_reason END, "
            "revoked_at = CASE WHEN ?3 THEN ?4 ELSE revoked_at END "
            "WHERE cn_key = lower(rtrim(?1, '.')) AND revoked = 0 AND superseded_by IS NULL "
            "RETURNING serial, subject";
        Query q = db_.query(sql, operation);
        q.bindText(1, cert.common_name)
            .bindText(2, cert.serial)
            .bindInt(3, rules.revoke_superseded ? 1 : 0)
            .bindInt(4, at);
        while (q.step()) {
            rows.push_back({q.text(0), q.text(1)});
        }
    }
    std::vector<std::string> serials;
    for (const Superseded& row : rows) {
        AuditEvent e;
        e.at = at;
        e.actor = event.actor;
        e.action =
            auditActionName(rules.revoke_superseded ? AuditAction::revoke : AuditAction::supersede);
        e.outcome = outcomeName(Outcome::success);
        e.method = event.method;
        e.identity = row.subject;
        e.reason = rules.revoke_superseded ? "CRLReason 4 (superseded by " + cert.serial + ")"
                                           : "superseded by " + cert.serial;
        e.request_id = request_id;
        e.serial = row.serial;
        e.peer = event.peer;
        e.transaction_id = transaction_id;
        insertAudit(std::move(e), operation);
        serials.push_back(row.serial);
    }
    return serials;
}

std::vector<std::string> SqliteStore::addIssuedRequest(RequestRecord& record,
                                                       const CertificateRecord& cert,
                                                       const AuditEvent& event,
                                                       const IssueRules& rules) {
    static const std::string operation = "addIssuedRequest";
    RequestRecord r = record;
    r.status = RequestStatus::issued;
    r.cert_serial = cert.serial;
    stampNew(r);

    std::vector<std::string> superseded;
    writes_.run(operation, [&] {
        r.id = insertRequest(r, operation);
        superseded = applyIssueRules(rules, cert, r.id, r.transaction_id, event, operation);
        insertCertificate(cert, r.id, operation);
        insertAudit(linkEvent(event, r.id, r.transaction_id, cert.serial), operation);
    });
    record = std::move(r);  // only once committed
    return superseded;
}

bool SqliteStore::issuePending(std::int64_t request_id, const CertificateRecord& cert,
                               const AuditEvent& event, const IssueRules& rules,
                               std::vector<std::string>* superseded) {
    static const std::string operation = "issuePending";
    static const char* const sql =
        "UPDATE requests SET status = 'issued', cert_serial = ?2, updated_at = ?3, "
        "ca_state = '', ca_csr = NULL, ca_error = '' "
        "WHERE id = ?1 AND status = 'pending' RETURNING transaction_id";
    std::lock_guard<std::mutex> lock(mutex_);
    Transaction tx(db_, operation);
    std::string transaction_id;
    {
        Query q = db_.query(sql, operation);
        q.bindInt(1, request_id).bindTextOrNull(2, cert.serial).bindInt(3, now());
        if (!q.step()) {
            return false;  // not pending (or unknown): nothing written, rolled back
        }
        transaction_id = q.text(0);
        q.run();
    }
    std::vector<std::string> replaced =
        applyIssueRules(rules, cert, request_id, transaction_id, event, operation);
    insertCertificate(cert, request_id, operation);
    insertAudit(linkEvent(event, request_id, transaction_id, cert.serial), operation);
    tx.commit();
    if (superseded) {
        superseded->insert(superseded->end(), replaced.begin(), replaced.end());
    }
    return true;
}

bool SqliteStore::updateRequest(const char* sql, std::int64_t request_id,
                                const std::function<void(Query&)>& bind, const AuditEvent* event,
                                const std::string& operation) {
    std::lock_guard<std::mutex> lock(mutex_);
    Transaction tx(db_, operation);
    std::string transaction_id;
    {
        Query q = db_.query(sql, operation);
        q.bindInt(1, request_id);
        bind(q);
        if (!q.step()) {
            return false;  // no such row in that state: nothing written, rolled back
        }
        transaction_id = q.text(0);
        q.run();
    }
    if (event) {
        insertAudit(linkEvent(*event, request_id, transaction_id, ""), operation);
    }
    tx.commit();
    return true;
}

bool SqliteStore::rejectPending(std::int64_t request_id, const std::string& reason,
                                const AuditEvent& event, std::optional<int> ca_fail_info) {
    static const char* const sql =
        "UPDATE requests SET status = 'rejected', reason = ?2, updated_at = ?3, ca_state = '', "
        "ca_csr = NULL, ca_fail_info = ?4 "
        "WHERE id = ?1 AND status = 'pending' RETURNING transaction_id";
    AuditEvent e = event;
    if (e.reason.empty()) {
        e.reason = reason;
    }
    return updateRequest(
        sql, request_id,
        [&](Query& q) {
            q.bindText(2, reason).bindInt(3, now());
            if (ca_fail_info) {
                q.bindInt(4, *ca_fail_info);
            } else {
                q.bindNull(4);
            }
        },
        &e, "rejectPending");
}

bool SqliteStore::forwardPending(std::int64_t request_id, const CaProgress& ca,
                                 const AuditEvent& event) {
    static const char* const sql =
        "UPDATE requests SET ca_state = ?2, ca_reference = ?3, ca_csr = ?4, ca_since = ?5, "
        "ca_error = '', updated_at = ?6 "
        "WHERE id = ?1 AND status = 'pending' AND ca_state = '' RETURNING transaction_id";
    return updateRequest(
        sql, request_id,
        [&](Query& q) {
            q.bindText(2, caStateName(ca.state))
                .bindText(3, ca.reference)
                .bindBlob(4, ca.csr)
                .bindInt(5, ca.since != 0 ? ca.since : now())
                .bindInt(6, now());
        },
        &event, "forwardPending");
}

bool SqliteStore::acknowledgedByCa(std::int64_t request_id, const AuditEvent& event) {
    static const char* const sql =
        "UPDATE requests SET ca_state = 'pending', ca_csr = NULL, ca_error = '', updated_at = ?2 "
        "WHERE id = ?1 AND status = 'pending' AND ca_state = 'forwarding' "
        "RETURNING transaction_id";
    return updateRequest(
        sql, request_id, [](Query& q) { q.bindInt(2, now()); }, &event, "acknowledgedByCa");
}

bool SqliteStore::noteCaError(std::int64_t request_id, const std::string& error,
                              const AuditEvent* event) {
    static const char* const sql =
        "UPDATE requests SET ca_error = ?2 WHERE id = ?1 AND status = 'pending' AND "
        "ca_state <> '' RETURNING transaction_id";
    return updateRequest(
        sql, request_id, [&](Query& q) { q.bindText(2, error); }, event, "noteCaError");
}

bool SqliteStore::revoke(const std::string& serial, int reason, std::int64_t at,
                         const AuditEvent& event) {
    static const std::string operation = "revoke";
    static const char* const sql =
        "UPDATE certificates SET revoked = 1, revocation_reason = ?2, revoked_at = ?3 "
        "WHERE serial = ?1 AND revoked = 0 RETURNING request_id";
    std::lock_guard<std::mutex> lock(mutex_);
    Transaction tx(db_, operation);
    std::optional<std::int64_t> request_id;
    {
        Query q = db_.query(sql, operation);
        q.bindText(1, serial).bindInt(2, reason).bindInt(3, at != 0 ? at : now());
        if (!q.step()) {
            return false;  // unknown or already revoked
        }
        if (!q.isNull(0)) {
            request_id = q.integer(0);
        }
        q.run();
    }
    insertAudit(linkEvent(event, request_id, "", serial), operation);
    tx.commit();
    return true;
}

void SqliteStore::audit(const AuditEvent& event) {
    static const std::string operation = "audit";
    writes_.run(operation, [&] { insertAudit(event, operation); });
}

void SqliteStore::addToken(const TokenRecord& token, const AuditEvent& event) {
    static const std::string operation = "addToken";
    static const char* const sql =
        "INSERT INTO tokens (" SCEP_TOKEN_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
    std::lock_guard<std::mutex> lock(mutex_);
    Transaction tx(db_, operation);
    {
        // A clashing id or name is DuplicateToken; the transaction then
        // rolls back and the audit event is not written.
        Query q = db_.query(sql, operation);
        q.onDuplicate(duplicateToken)
            .bindText(1, token.id)
            .bindText(2, token.name)
            .bindText(3, token.role)
            .bindBlob(4, token.secret_hash)
            .bindInt(5, token.created_at != 0 ? token.created_at : now())
            .bindText(6, token.created_by)
            .run();
    }
    insertAudit(event, operation);
    tx.commit();
}

bool SqliteStore::deleteToken(const std::string& name, const AuditEvent& event) {
    static const std::string operation = "deleteToken";
    static const char* const sql = "DELETE FROM tokens WHERE name = ?1 RETURNING id";
    std::lock_guard<std::mutex> lock(mutex_);
    Transaction tx(db_, operation);
    {
        Query q = db_.query(sql, operation);
        q.bindText(1, name);
        if (!q.step()) {
            return false;  // unknown name: nothing written, rolled back
        }
        q.run();
    }
    insertAudit(event, operation);
    tx.commit();
    return true;
}

void SqliteStore::ping() {
    static const std::string operation = "ping";
    // Starts a read transaction on the file (header and WAL index), and
    // notices another process having moved the schema past this code.
    std::lock_guard<std::mutex> lock(mutex_);
    const std::int64_t version = db_.pragmaInteger("PRAGMA user_version", operation);
    if (version != kSchemaVersion) {
        throw StoreError("ping " + path_ + ": database schema version is " +
                         std::to_string(version) + ", expected " + std::to_string(kSchemaVersion));
    }
}

void SqliteStore::checkWritable() {
    static const std::string operation = "check writable";
    std::lock_guard<std::mutex> lock(mutex_);
    Transaction tx(db_, operation);  // rolled back: nothing is written
}

}  // namespace sqlite

std::unique_ptr<Store> openSqliteStore(const std::string& path) {
    return std::make_unique<sqlite::SqliteStore>(path);
}

}  // namespace scep
