// SQLite implementation of the Store interface (see store.h).
//
// Durability and atomicity come from SQLite itself: WAL journal,
// synchronous=FULL (every COMMIT is fsynced before it returns, so neither
// kill -9 nor a power cut loses a committed certificate or request), and one
// BEGIN IMMEDIATE ... COMMIT per logical write including its audit event.
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

#include "ra/ops/abuse_limits.h"
#include "ra/store/sqlite/handle.h"
#include "ra/store/store.h"

#include <sqlite3.h>

#include <algorithm>
#include <ctime>
#include <limits>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <variant>

namespace scep {

const char* requestStatusName(RequestStatus status) {
    switch (status) {
    case RequestStatus::pending:
        return "pending";
    case RequestStatus::issued:
        return "issued";
    case RequestStatus::rejected:
        return "rejected";
    }
    return "unknown";
}

std::optional<RequestStatus> requestStatusFromName(const std::string& name) {
    if (name == "pending") {
        return RequestStatus::pending;
    }
    if (name == "issued") {
        return RequestStatus::issued;
    }
    if (name == "rejected") {
        return RequestStatus::rejected;
    }
    return std::nullopt;
}

namespace {

// Bump together with a migration step in SqliteStore::migrate().
constexpr int kSchemaVersion = 3;
// PRAGMA application_id: "SCEP", so `file` and we can tell our databases
// from other SQLite files.
constexpr std::int64_t kApplicationId = 0x53434550;

// Version 1, as released: a new database is created with it and then
// migrated step by step (kMigrationV2...), all in one transaction together
// with user_version, so a fresh and an upgraded database have the same
// schema by construction. Never edit it; add a migration instead.
//
// Invariants the schema enforces on its own (also against the admin CLI or
// a hand-written sqlite3 session, as long as foreign_keys is on):
//  - a request is 'issued' exactly when it names a certificate, and that
//    certificate exists (deferred FK: request and certificate are inserted in
//    the same transaction, in either order);
//  - a certificate belongs to at most one request, and that request exists;
//  - audit rows can be added but never changed or removed (UPDATE, DELETE
//    and INSERT OR REPLACE abort). This stops mistakes and application bugs;
//    whoever can write the file can still DROP the triggers.
// Empty strings are stored as '' (NOT NULL), except requests.cert_serial and
// certificates.request_id / audit.request_id where "none" is NULL so the
// foreign keys and the CHECK can express it.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE requests (
    id             INTEGER PRIMARY KEY,
    transaction_id TEXT    NOT NULL UNIQUE,
    message_type   TEXT    NOT NULL,
    method         TEXT    NOT NULL,
    identity       TEXT    NOT NULL,
    common_name    TEXT    NOT NULL,
    csr            BLOB    NOT NULL,
    public_key_id  BLOB    NOT NULL,
    signer         BLOB    NOT NULL,
    status         TEXT    NOT NULL CHECK (status IN ('pending', 'issued', 'rejected')),
    reason         TEXT    NOT NULL,
    peer           TEXT    NOT NULL,
    cert_serial    TEXT    REFERENCES certificates (serial) DEFERRABLE INITIALLY DEFERRED,
    details        TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    CHECK ((status = 'issued') = (cert_serial IS NOT NULL))
) STRICT;
CREATE INDEX requests_status ON requests (status, id);
CREATE INDEX requests_common_name ON requests (common_name);
-- The deferred foreign key from requests.cert_serial is checked at every
-- commit that adds a certificate; without this index that is a table scan.
CREATE INDEX requests_cert_serial ON requests (cert_serial);

CREATE TABLE certificates (
    serial            TEXT    NOT NULL PRIMARY KEY CHECK (serial <> ''),
    subject           TEXT    NOT NULL,
    issuer            TEXT    NOT NULL,
    common_name       TEXT    NOT NULL,
    not_before        INTEGER NOT NULL,
    not_after         INTEGER NOT NULL,
    der               BLOB    NOT NULL,
    request_id        INTEGER REFERENCES requests (id),
    revoked           INTEGER NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1)),
    revocation_reason INTEGER NOT NULL DEFAULT 0,
    revoked_at        INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE UNIQUE INDEX certificates_request ON certificates (request_id)
    WHERE request_id IS NOT NULL;
CREATE INDEX certificates_common_name ON certificates (common_name, not_after);
CREATE INDEX certificates_not_after ON certificates (not_after);
CREATE INDEX certificates_revoked ON certificates (revoked_at, serial) WHERE revoked = 1;

CREATE TABLE audit (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    at             INTEGER NOT NULL,
    actor          TEXT    NOT NULL,
    action         TEXT    NOT NULL,
    outcome        TEXT    NOT NULL,
    method         TEXT    NOT NULL,
    identity       TEXT    NOT NULL,
    reason         TEXT    NOT NULL,
    request_id     INTEGER,
    serial         TEXT    NOT NULL,
    peer           TEXT    NOT NULL,
    transaction_id TEXT    NOT NULL
) STRICT;
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'audit log is append-only');
END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'audit log is append-only');
END;
-- INSERT OR REPLACE deletes the clashing row without firing DELETE
-- triggers (unless recursive_triggers is on in that connection).
CREATE TRIGGER audit_no_replace BEFORE INSERT ON audit
WHEN EXISTS (SELECT 1 FROM audit WHERE id = NEW.id)
BEGIN
    SELECT RAISE(ABORT, 'audit log is append-only');
END;
)sql";

// Version 1 -> 2: the admin API's searches and its tokens.
//  - requests.model / requests.mac: VIRTUAL generated columns over the
//    details JSON (JSON1), so they cost nothing per row on disk and the
//    indexes on them make "all requests of this phone" a lookup instead of
//    parsing every row's JSON. A row whose details is not valid JSON, or
//    whose value is not a string (or absent: non-MIC requests), gets NULL:
//    json_extract() on malformed JSON would raise, which in an indexed
//    column would make the INSERT itself fail. (CASE only evaluates the
//    branch it takes.) ADD COLUMN of a VIRTUAL column rewrites nothing.
//  - requests_created_at for since/until; certificates_not_before for the
//    newest-first certificate list (ORDER BY not_before DESC, serial).
//  - tokens: admin API tokens; only the SHA-256 of the secret is stored.
constexpr const char* kMigrationV2 = R"sql(
ALTER TABLE requests ADD COLUMN model TEXT GENERATED ALWAYS AS (
    CASE WHEN json_valid(details) THEN
        CASE json_type(details, '$.model') WHEN 'text' THEN json_extract(details, '$.model') END
    END) VIRTUAL;
ALTER TABLE requests ADD COLUMN mac TEXT GENERATED ALWAYS AS (
    CASE WHEN json_valid(details) THEN
        CASE json_type(details, '$.mac') WHEN 'text' THEN json_extract(details, '$.mac') END
    END) VIRTUAL;
CREATE INDEX requests_model ON requests (model);
CREATE INDEX requests_mac ON requests (mac);
CREATE INDEX requests_created_at ON requests (created_at);
CREATE INDEX certificates_not_before ON certificates (not_before DESC, serial);

CREATE TABLE tokens (
    id          TEXT    NOT NULL PRIMARY KEY CHECK (id <> ''),
    name        TEXT    NOT NULL UNIQUE CHECK (name <> ''),
    role        TEXT    NOT NULL CHECK (role IN ('viewer', 'approver')),
    secret_hash BLOB    NOT NULL CHECK (length(secret_hash) = 32),
    created_at  INTEGER NOT NULL,
    created_by  TEXT    NOT NULL
) STRICT;
)sql";

// Version 2 -> 3: one identity, one current certificate.
//  - certificates.cn_key: the identity, the CN compared canonically (ASCII
//    letters in any case, no trailing dots; canonicalName() in C++ is the
//    same rule). VIRTUAL, so any SQLite client reads it; it replaces the
//    plain common_name index.
//  - certificates.superseded_by: the certificate that replaced this one
//    (deferred FK: the replacement is inserted after the UPDATE that names
//    it, in the same transaction).
//  - certificates_current: at most one current certificate (neither revoked
//    nor superseded) per identity, whoever writes.
//  - Databases written before this rule may hold several current
//    certificates for one identity (the races of issue 7): the newest stays
//    current and the others are marked superseded by it, each with an audit
//    event, before the index is created.
constexpr const char* kMigrationV3 = R"sql(
ALTER TABLE certificates ADD COLUMN superseded_by TEXT
    REFERENCES certificates (serial) DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE certificates ADD COLUMN cn_key TEXT
    GENERATED ALWAYS AS (lower(rtrim(common_name, '.'))) VIRTUAL;
CREATE TEMP TABLE migration_v3_superseded AS
    SELECT serial, subject, request_id, newest FROM (
        SELECT serial, subject, request_id,
               first_value(serial) OVER (PARTITION BY cn_key
                                         ORDER BY not_before DESC, rowid DESC) AS newest
        FROM certificates WHERE revoked = 0)
    WHERE serial <> newest;
INSERT INTO audit (at, actor, action, outcome, method, identity, reason, request_id, serial,
                   peer, transaction_id)
    SELECT CAST(strftime('%s', 'now') AS INTEGER), 'migration', 'supersede', 'success', '',
           subject, 'schema v3 allows one current certificate per CN: superseded by ' || newest,
           request_id, serial, '', ''
    FROM migration_v3_superseded ORDER BY rowid;
UPDATE certificates SET superseded_by = m.newest
    FROM migration_v3_superseded AS m WHERE certificates.serial = m.serial;
DROP TABLE migration_v3_superseded;
DROP INDEX certificates_common_name;
CREATE INDEX certificates_cn_key ON certificates (cn_key, not_after);
CREATE UNIQUE INDEX certificates_current ON certificates (cn_key)
    WHERE revoked = 0 AND superseded_by IS NULL;
CREATE INDEX certificates_superseded_by ON certificates (superseded_by)
    WHERE superseded_by IS NOT NULL;
)sql";

// Column lists shared by the SELECTs and the row readers below.
#define SCEP_REQUEST_COLUMNS                                                                   \
    "id, transaction_id, message_type, method, identity, common_name, csr, public_key_id, "   \
    "signer, status, reason, peer, cert_serial, details, created_at, updated_at"
#define SCEP_CERTIFICATE_COLUMNS                                                               \
    "serial, subject, issuer, common_name, not_before, not_after, der, request_id, revoked, " \
    "revocation_reason, revoked_at, superseded_by"
// The same, qualified, for the certificate search that joins requests.
#define SCEP_CERTIFICATE_COLUMNS_C                                                             \
    "c.serial, c.subject, c.issuer, c.common_name, c.not_before, c.not_after, c.der, "        \
    "c.request_id, c.revoked, c.revocation_reason, c.revoked_at, c.superseded_by"
#define SCEP_TOKEN_COLUMNS "id, name, role, secret_hash, created_at, created_by"
#define SCEP_AUDIT_COLUMNS                                                                     \
    "id, at, actor, action, outcome, method, identity, reason, request_id, serial, peer, "    \
    "transaction_id"

std::int64_t now() {
    return static_cast<std::int64_t>(std::time(nullptr));
}

// Throws StoreError (DuplicateTransaction for a clashing transactionID) with
// the operation name and SQLite's message. Call with the store mutex held.
[[noreturn]] void fail(sqlite3* db, int code, const std::string& operation) {
    const std::string message = db ? sqlite3_errmsg(db) : sqlite3_errstr(code);
    const std::string what = operation + ": " + message + " (SQLite error " +
                             std::to_string(code) + ")";
    if (code == SQLITE_CONSTRAINT_UNIQUE &&
        message.find("requests.transaction_id") != std::string::npos) {
        throw DuplicateTransaction(what);
    }
    if ((code == SQLITE_CONSTRAINT_UNIQUE || code == SQLITE_CONSTRAINT_PRIMARYKEY) &&
        (message.find("tokens.name") != std::string::npos ||
         message.find("tokens.id") != std::string::npos)) {
        throw DuplicateToken(what);
    }
    throw StoreError(what);
}

struct StmtFinalizer {
    void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

// One execution of a cached prepared statement. The destructor resets it and
// clears its bindings, so a statement never keeps a read transaction open or
// carries values into its next use, whatever path (return, exception) leaves
// the scope.
class Query {
public:
    Query(sqlite3* db, sqlite3_stmt* stmt, const std::string& operation)
        : db_(db), stmt_(stmt), operation_(operation) {}
    ~Query() {
        sqlite3_reset(stmt_);
        sqlite3_clear_bindings(stmt_);
    }
    Query(const Query&) = delete;
    Query& operator=(const Query&) = delete;

    Query& bindText(int index, const std::string& value) {
        check(sqlite3_bind_text64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT,
                                  SQLITE_UTF8));
        return *this;
    }
    Query& bindBlob(int index, const Bytes& value) {
        // sqlite3_bind_blob(nullptr, 0) would bind NULL, and an empty vector's
        // data() may well be nullptr: bind a zero-length blob explicitly.
        if (value.empty()) {
            check(sqlite3_bind_zeroblob(stmt_, index, 0));
        } else {
            check(sqlite3_bind_blob64(stmt_, index, value.data(), value.size(),
                                      SQLITE_TRANSIENT));
        }
        return *this;
    }
    Query& bindInt(int index, std::int64_t value) {
        check(sqlite3_bind_int64(stmt_, index, value));
        return *this;
    }
    Query& bindNull(int index) {
        check(sqlite3_bind_null(stmt_, index));
        return *this;
    }
    // NULL when empty: for the nullable references (cert_serial).
    Query& bindTextOrNull(int index, const std::string& value) {
        return value.empty() ? bindNull(index) : bindText(index, value);
    }
    // NULL when absent or 0 (request_id references).
    Query& bindIdOrNull(int index, std::optional<std::int64_t> value) {
        return value && *value != 0 ? bindInt(index, *value) : bindNull(index);
    }

    // Binds `params` to ?first, ?first+1, ...; returns the next index.
    template <typename Params>
    int bindAll(const Params& params, int first = 1) {
        for (const auto& param : params) {
            if (const auto* number = std::get_if<std::int64_t>(&param)) {
                bindInt(first++, *number);
            } else {
                bindText(first++, std::get<std::string>(param));
            }
        }
        return first;
    }

    // True while there is a row to read, false once done.
    bool step() {
        const int rc = sqlite3_step(stmt_);
        if (rc == SQLITE_ROW) {
            return true;
        }
        if (rc == SQLITE_DONE) {
            return false;
        }
        fail(db_, rc, operation_);
    }
    // For statements that return no rows.
    void run() {
        while (step()) {
        }
    }

    bool isNull(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }
    std::int64_t integer(int column) const { return sqlite3_column_int64(stmt_, column); }
    std::string text(int column) const {
        const auto* data = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
        const int size = sqlite3_column_bytes(stmt_, column);
        return data ? std::string(data, static_cast<std::size_t>(size)) : std::string();
    }
    Bytes blob(int column) const {
        const auto* data = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt_, column));
        const int size = sqlite3_column_bytes(stmt_, column);
        return data ? Bytes(data, data + size) : Bytes();
    }

private:
    void check(int rc) {
        if (rc != SQLITE_OK) {
            fail(db_, rc, operation_);
        }
    }

    sqlite3* db_;
    sqlite3_stmt* stmt_;
    const std::string& operation_;
};

RequestRecord readRequest(const Query& q) {
    RequestRecord r;
    r.id = q.integer(0);
    r.transaction_id = q.text(1);
    r.message_type = q.text(2);
    r.method = q.text(3);
    r.identity = q.text(4);
    r.common_name = q.text(5);
    r.csr = q.blob(6);
    r.public_key_id = q.blob(7);
    r.signer = q.blob(8);
    const std::string status = q.text(9);
    const auto parsed = requestStatusFromName(status);
    if (!parsed) {
        throw StoreError("request " + std::to_string(r.id) + " has unknown status '" + status +
                         "'");
    }
    r.status = *parsed;
    r.reason = q.text(10);
    r.peer = q.text(11);
    r.cert_serial = q.text(12);  // NULL reads as ""
    r.details = q.text(13);
    r.created_at = q.integer(14);
    r.updated_at = q.integer(15);
    return r;
}

CertificateRecord readCertificate(const Query& q) {
    CertificateRecord c;
    c.serial = q.text(0);
    c.subject = q.text(1);
    c.issuer = q.text(2);
    c.common_name = q.text(3);
    c.not_before = q.integer(4);
    c.not_after = q.integer(5);
    c.der = q.blob(6);
    c.request_id = q.isNull(7) ? 0 : q.integer(7);
    c.revoked = q.integer(8) != 0;
    c.revocation_reason = static_cast<int>(q.integer(9));
    c.revoked_at = q.integer(10);
    c.superseded_by = q.text(11);  // NULL reads as ""
    return c;
}

AuditEvent readAudit(const Query& q) {
    AuditEvent e;
    e.id = q.integer(0);
    e.at = q.integer(1);
    e.actor = q.text(2);
    e.action = q.text(3);
    e.outcome = q.text(4);
    e.method = q.text(5);
    e.identity = q.text(6);
    e.reason = q.text(7);
    if (!q.isNull(8)) {
        e.request_id = q.integer(8);
    }
    e.serial = q.text(9);
    e.peer = q.text(10);
    e.transaction_id = q.text(11);
    return e;
}

TokenRecord readToken(const Query& q) {
    TokenRecord t;
    t.id = q.text(0);
    t.name = q.text(1);
    t.role = q.text(2);
    t.secret_hash = q.blob(3);
    t.created_at = q.integer(4);
    t.created_by = q.text(5);
    return t;
}

// ---- Admin searches -------------------------------------------------------
//
// The WHERE clause is assembled from the constant fragments below, one per
// filter that is set, so every combination is a plain conjunction the
// planner can match against an index ("?1 IS NULL OR status = ?1" could not
// use one). Each shape is prepared once and cached like any other statement:
// at most 2^6 request and 2^4 certificate shapes, times count/page.

constexpr std::size_t kMaxPageSize = 500;

using Param = std::variant<std::int64_t, std::string>;

struct Search {
    std::string where;          // "" or " WHERE a AND b ..."
    std::vector<Param> params;  // one per '?' in `where`, in order

    void add(const char* condition) {
        where += where.empty() ? " WHERE " : " AND ";
        where += condition;
    }
};

// For LIKE ... ESCAPE '\': the user's '%', '_' and '\' match themselves.
std::string escapeLike(const std::string& text) {
    std::string out;
    out.reserve(text.size() + 8);
    for (const char ch : text) {
        if (ch == '\\' || ch == '%' || ch == '_') {
            out += '\\';
        }
        out += ch;
    }
    return out;
}

std::string upperAscii(std::string text) {
    for (char& ch : text) {
        if (ch >= 'a' && ch <= 'z') {
            ch = static_cast<char>(ch - 'a' + 'A');
        }
    }
    return text;
}

std::int64_t pageLimit(std::size_t limit) {
    return static_cast<std::int64_t>(std::clamp<std::size_t>(limit, 1, kMaxPageSize));
}

std::int64_t pageOffset(std::size_t offset) {
    constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    return offset > kMax ? std::numeric_limits<std::int64_t>::max()
                         : static_cast<std::int64_t>(offset);
}

Search requestSearch(const RequestFilter& f) {
    Search s;
    if (f.status) {
        s.add("status = ?");  // requests_status (status, id)
        s.params.emplace_back(std::string(requestStatusName(*f.status)));
    }
    if (!f.model.empty()) {
        s.add("model = ?");  // requests_model
        s.params.emplace_back(f.model);
    }
    if (!f.mac.empty()) {
        s.add("mac = ?");  // requests_mac
        s.params.emplace_back(f.mac);
    }
    if (!f.text.empty()) {
        // A substring search cannot use an index: a scan in id order that
        // stops once the page is full (the total still counts them all).
        s.add("(common_name LIKE ? ESCAPE '\\' OR identity LIKE ? ESCAPE '\\')");
        const std::string pattern = "%" + escapeLike(f.text) + "%";
        s.params.emplace_back(pattern);
        s.params.emplace_back(pattern);
    }
    if (f.since != 0) {
        s.add("created_at >= ?");
        s.params.emplace_back(f.since);
    }
    if (f.until != 0) {
        s.add("created_at < ?");
        s.params.emplace_back(f.until);
    }
    return s;
}

std::string requestCountSql(const Search& s) {
    return "SELECT count(*) FROM requests" + s.where;
}

std::string requestPageSql(const Search& s) {
    return "SELECT " SCEP_REQUEST_COLUMNS " FROM requests" + s.where +
           " ORDER BY id DESC LIMIT ? OFFSET ?";
}

// `at` is the filter's `now`, already defaulted.
Search certificateSearch(const CertificateFilter& f, std::int64_t at) {
    Search s;
    if (!f.text.empty()) {
        // CN substring (any case), serial prefix, or exactly the MAC of the
        // request the certificate came from (through requests_mac, once).
        s.add("(c.common_name LIKE ? ESCAPE '\\' OR c.serial LIKE ? ESCAPE '\\' OR "
              "c.request_id IN (SELECT id FROM requests WHERE mac = ?))");
        const std::string upper = upperAscii(f.text);
        s.params.emplace_back("%" + escapeLike(f.text) + "%");
        s.params.emplace_back(escapeLike(upper) + "%");
        s.params.emplace_back(upper);
    }
    if (f.state) {
        switch (*f.state) {
        case CertificateState::revoked:
            s.add("c.revoked = 1");  // certificates_revoked (partial)
            break;
        case CertificateState::expired:
            s.add("c.revoked = 0 AND c.not_after < ?");
            s.params.emplace_back(at);
            break;
        case CertificateState::valid:
            // notAfter is inclusive (RFC 5280 4.1.2.5).
            s.add("c.revoked = 0 AND c.not_after >= ?");
            s.params.emplace_back(at);
            break;
        }
    }
    if (f.expiring_before != 0) {
        s.add("c.revoked = 0 AND c.not_after >= ? AND c.not_after < ?");
        s.params.emplace_back(at);
        s.params.emplace_back(f.expiring_before);
    }
    return s;
}

std::string certificateCountSql(const Search& s) {
    return "SELECT count(*) FROM certificates AS c" + s.where;
}

std::string certificatePageSql(const Search& s) {
    return "SELECT " SCEP_CERTIFICATE_COLUMNS_C ", coalesce(r.model, ''), coalesce(r.mac, '') "
           "FROM certificates AS c LEFT JOIN requests AS r ON r.id = c.request_id" +
           s.where + " ORDER BY c.not_before DESC, c.serial LIMIT ? OFFSET ?";
}

class SqliteStore final : public Store {
public:
    explicit SqliteStore(const std::string& path);

    void addPendingRequest(RequestRecord& record, const AuditEvent& event) override;
    std::vector<std::string> addIssuedRequest(RequestRecord& record, const CertificateRecord& cert,
                                              const AuditEvent& event,
                                              const IssueRules& rules) override;
    bool issuePending(std::int64_t request_id, const CertificateRecord& cert,
                      const AuditEvent& event, const IssueRules& rules,
                      std::vector<std::string>* superseded) override;
    bool rejectPending(std::int64_t request_id, const std::string& reason,
                       const AuditEvent& event) override;

    std::optional<RequestRecord> findRequest(std::int64_t id) override;
    std::optional<RequestRecord> findRequestByTransaction(
        const std::string& transaction_id) override;
    std::vector<RequestRecord> listRequests(std::optional<RequestStatus> status) override;

    std::optional<CertificateRecord> findCertificate(const std::string& serial) override;
    std::vector<CertificateRecord> listCertificates() override;
    std::vector<CertificateRecord> activeCertificatesFor(const std::string& common_name,
                                                         std::int64_t now,
                                                         Superseded superseded) override;
    bool revoke(const std::string& serial, int reason, std::int64_t at,
                const AuditEvent& event) override;
    std::vector<CertificateRecord> revokedCertificates() override;

    void audit(const AuditEvent& event) override;
    std::vector<AuditEvent> listAudit(std::size_t limit, std::int64_t before_id) override;

    Page<RequestRecord> findRequests(const RequestFilter& filter) override;
    Page<CertificateView> findCertificates(const CertificateFilter& filter) override;
    std::size_t countRequests(RequestStatus status) override;
    std::size_t countValidCertificates(std::int64_t from, std::int64_t to) override;

    void addToken(const TokenRecord& token, const AuditEvent& event) override;
    std::optional<TokenRecord> findToken(const std::string& id) override;
    std::vector<TokenRecord> listTokens() override;
    bool deleteToken(const std::string& name, const AuditEvent& event) override;

    void ping() override;
    void checkWritable() override;

private:
    template <typename T, typename ReadRow>
    Page<T> searchPage(const std::string& operation, const Search& search,
                       const std::string& count_sql, const std::string& page_sql,
                       std::size_t limit, std::size_t offset, ReadRow readRow);

    // BEGIN IMMEDIATE on construction; ROLLBACK on destruction unless
    // commit() succeeded. Declared after the lock and before any Query, so
    // the statements are reset before the rollback and the rollback happens
    // before the mutex is released.
    class Transaction {
    public:
        Transaction(SqliteStore& store, const std::string& operation)
            : store_(store), operation_(operation) {
            store_.query("BEGIN IMMEDIATE", operation_).run();
        }
        ~Transaction() {
            // SQLite may already have rolled back by itself (SQLITE_FULL,
            // IOERR...); a second ROLLBACK would only report an error.
            if (!committed_ && !sqlite3_get_autocommit(store_.db_.get())) {
                sqlite3_exec(store_.db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
            }
        }
        Transaction(const Transaction&) = delete;
        Transaction& operator=(const Transaction&) = delete;
        void commit() {
            // A deferred foreign key violation surfaces here; the transaction
            // then stays open and the destructor rolls it back.
            store_.query("COMMIT", operation_).run();
            committed_ = true;
        }

    private:
        SqliteStore& store_;
        const std::string& operation_;
        bool committed_ = false;
    };

    // A read transaction (BEGIN DEFERRED): the statements run inside it see
    // one snapshot, so a search's total and its page agree even while the
    // CLI writes. Same declaration order rules as Transaction; nothing to
    // commit, so it always ends with ROLLBACK.
    class ReadTransaction {
    public:
        ReadTransaction(SqliteStore& store, const std::string& operation) : store_(store) {
            store_.query("BEGIN DEFERRED", operation).run();
        }
        ~ReadTransaction() {
            if (!sqlite3_get_autocommit(store_.db_.get())) {
                sqlite3_exec(store_.db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
            }
        }
        ReadTransaction(const ReadTransaction&) = delete;
        ReadTransaction& operator=(const ReadTransaction&) = delete;

    private:
        SqliteStore& store_;
    };

    // A cached prepared statement for constant SQL. Caller holds mutex_.
    Query query(const char* sql, const std::string& operation);
    void exec(const char* sql, const std::string& operation);
    std::int64_t pragmaInteger(const char* sql, const std::string& operation);
    void migrate();

    std::int64_t insertRequest(const RequestRecord& r, const std::string& operation);
    void insertCertificate(const CertificateRecord& c, std::int64_t request_id,
                           const std::string& operation);
    void insertAudit(AuditEvent event, const std::string& operation);
    // Inside an issuing transaction, before `cert` is inserted: checks
    // `rules` and supersedes the identity's current certificate.
    std::vector<std::string> applyIssueRules(const IssueRules& rules, const CertificateRecord& cert,
                                             std::int64_t request_id,
                                             const std::string& transaction_id,
                                             const AuditEvent& event,
                                             const std::string& operation);

    const std::string path_;
    std::mutex mutex_;
    SqliteHandle db_;  // declared before the cache: statements are finalized first
    // Keyed by SQL text (all of it constant), prepared on first use.
    std::unordered_map<std::string, StmtPtr> statements_;
};

SqliteStore::SqliteStore(const std::string& path) : path_(path) {
    const std::string operation = "open " + path;
    sqlite3* raw = nullptr;
    const int rc = sqlite3_open_v2(
        path.c_str(), &raw,
        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
        nullptr);
    db_.reset(raw);  // the handle must be closed even when opening failed
    if (rc != SQLITE_OK) {
        fail(raw, rc, operation);
    }
    sqlite3_extended_result_codes(raw, 1);
    sqlite3_busy_timeout(raw, kSqliteBusyTimeoutMs);

    std::lock_guard<std::mutex> lock(mutex_);
    // The first statement reads the file: a file that is not a database
    // fails here with SQLite's "file is not a database".
    {
        const char* sql = "PRAGMA journal_mode = WAL";
        Query q = query(sql, operation);
        const std::string mode = q.step() ? q.text(0) : std::string();
        if (mode != "wal" && !(path == ":memory:" && mode == "memory")) {
            throw StoreError(operation + ": cannot switch to WAL journal mode (got '" + mode +
                             "')");
        }
    }
    exec("PRAGMA foreign_keys = ON", operation);
    if (pragmaInteger("PRAGMA foreign_keys", operation) != 1) {
        throw StoreError(operation + ": this SQLite does not enforce foreign keys");
    }
    exec("PRAGMA synchronous = FULL", operation);
    if (pragmaInteger("PRAGMA synchronous", operation) != 2) {
        throw StoreError(operation + ": cannot set synchronous=FULL");
    }
    migrate();
}

Query SqliteStore::query(const char* sql, const std::string& operation) {
    auto it = statements_.find(sql);
    if (it == statements_.end()) {
        sqlite3_stmt* stmt = nullptr;
        const int rc =
            sqlite3_prepare_v3(db_.get(), sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
        if (rc != SQLITE_OK) {
            fail(db_.get(), rc, operation);
        }
        it = statements_.emplace(sql, StmtPtr(stmt)).first;
    }
    return Query(db_.get(), it->second.get(), operation);
}

void SqliteStore::exec(const char* sql, const std::string& operation) {
    const int rc = sqlite3_exec(db_.get(), sql, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) {
        fail(db_.get(), rc, operation);
    }
}

std::int64_t SqliteStore::pragmaInteger(const char* sql, const std::string& operation) {
    Query q = query(sql, operation);
    return q.step() ? q.integer(0) : -1;
}

void SqliteStore::migrate() {
    const std::string operation = "open " + path_ + ": schema";
    auto checkVersion = [&](std::int64_t version, std::int64_t application_id) {
        if (version > kSchemaVersion) {
            throw StoreError("open " + path_ + ": database schema version " +
                             std::to_string(version) + " is newer than this program supports (" +
                             std::to_string(kSchemaVersion) +
                             "); refusing to use it — run the kea-scep-ra release that wrote it");
        }
        if (application_id != 0 && application_id != kApplicationId) {
            throw StoreError("open " + path_ +
                             ": not a kea-scep-ra database (PRAGMA application_id is " +
                             std::to_string(application_id) + ")");
        }
    };
    std::int64_t version = pragmaInteger("PRAGMA user_version", operation);
    checkVersion(version, pragmaInteger("PRAGMA application_id", operation));
    if (version == kSchemaVersion) {
        return;
    }
    // Another process may be creating the schema right now: decide again
    // under the write lock.
    Transaction tx(*this, operation);
    version = pragmaInteger("PRAGMA user_version", operation);
    checkVersion(version, pragmaInteger("PRAGMA application_id", operation));
    if (version == 0) {
        // CREATE TABLE without IF NOT EXISTS: a foreign database that
        // happens to have a table of the same name fails loudly.
        exec(kSchemaV1, operation);
        // Integer constants from this file, not values: no parameter binding
        // exists for PRAGMA arguments.
        exec("PRAGMA application_id = 1396917584", operation);  // kApplicationId
        static_assert(kApplicationId == 1396917584, "keep the PRAGMA text above in step");
        version = 1;
    }
    // Each step upgrades in place; a failing step rolls back all of them,
    // leaving the file exactly as it was (and still usable by the old
    // release).
    if (version < 2) {
        exec(kMigrationV2, operation);
    }
    if (version < 3) {
        exec(kMigrationV3, operation);
    }
    exec("PRAGMA user_version = 3", operation);  // kSchemaVersion
    static_assert(kSchemaVersion == 3, "keep the PRAGMA text above in step");
    tx.commit();
}

std::int64_t SqliteStore::insertRequest(const RequestRecord& r, const std::string& operation) {
    static const char* const sql =
        "INSERT INTO requests (transaction_id, message_type, method, identity, common_name, csr, "
        "public_key_id, signer, status, reason, peer, cert_serial, details, created_at, "
        "updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";
    Query q = query(sql, operation);
    q.bindText(1, r.transaction_id)
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
        .run();
    return sqlite3_last_insert_rowid(db_.get());
}

void SqliteStore::insertCertificate(const CertificateRecord& c, std::int64_t request_id,
                                    const std::string& operation) {
    static const char* const sql =
        "INSERT INTO certificates (serial, subject, issuer, common_name, not_before, not_after, "
        "der, request_id, revoked, revocation_reason, revoked_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
    Query q = query(sql, operation);
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
    Query q = query(sql, operation);
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

void SqliteStore::addPendingRequest(RequestRecord& record, const AuditEvent& event) {
    static const std::string operation = "addPendingRequest";
    RequestRecord r = record;
    r.status = RequestStatus::pending;
    r.cert_serial.clear();
    stampNew(r);

    std::lock_guard<std::mutex> lock(mutex_);
    Transaction tx(*this, operation);
    r.id = insertRequest(r, operation);
    insertAudit(linkEvent(event, r.id, r.transaction_id, ""), operation);
    tx.commit();
    record = std::move(r);  // only once committed
}

std::vector<std::string> SqliteStore::applyIssueRules(const IssueRules& rules,
                                                      const CertificateRecord& cert,
                                                      std::int64_t request_id,
                                                      const std::string& transaction_id,
                                                      const AuditEvent& event,
                                                      const std::string& operation) {
    const std::int64_t at = rules.now != 0 ? rules.now : now();
    if (rules.exclusive) {
        static const char* const sql =
            "SELECT serial FROM certificates WHERE cn_key = lower(rtrim(?1, '.')) AND "
            "revoked = 0 AND not_after >= ?2 ORDER BY not_after DESC, serial LIMIT 1";
        Query q = query(sql, operation);
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
            "SELECT revoked, coalesce(superseded_by, ''), not_after FROM certificates "
            "WHERE serial = ?1";
        Query q = query(sql, operation);
        q.bindText(1, rules.renews);
        const std::string what = "renewal certificate " + rules.renews;
        if (!q.step()) {
            throw RenewedCertificateGone(what + " is not in this RA's records");
        }
        if (q.integer(0) != 0) {
            throw RenewedCertificateGone(what + " is revoked");
        }
        if (!q.text(1).empty()) {
            throw RenewedCertificateGone(what + " was superseded by " + q.text(1) +
                                         "; renew with that one");
        }
        if (q.integer(2) < at) {
            throw RenewedCertificateGone(what + " has expired");
        }
    }
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
        Query q = query(sql, operation);
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
        e.action = rules.revoke_superseded ? "revoke" : "supersede";
        e.outcome = "success";
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

    std::lock_guard<std::mutex> lock(mutex_);
    Transaction tx(*this, operation);
    r.id = insertRequest(r, operation);
    std::vector<std::string> superseded =
        applyIssueRules(rules, cert, r.id, r.transaction_id, event, operation);
    insertCertificate(cert, r.id, operation);
    insertAudit(linkEvent(event, r.id, r.transaction_id, cert.serial), operation);
    tx.commit();
    record = std::move(r);
    return superseded;
}

bool SqliteStore::issuePending(std::int64_t request_id, const CertificateRecord& cert,
                               const AuditEvent& event, const IssueRules& rules,
                               std::vector<std::string>* superseded) {
    static const std::string operation = "issuePending";
    static const char* const sql =
        "UPDATE requests SET status = 'issued', cert_serial = ?2, updated_at = ?3 "
        "WHERE id = ?1 AND status = 'pending' RETURNING transaction_id";
    std::lock_guard<std::mutex> lock(mutex_);
    Transaction tx(*this, operation);
    std::string transaction_id;
    {
        Query q = query(sql, operation);
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

bool SqliteStore::rejectPending(std::int64_t request_id, const std::string& reason,
                                const AuditEvent& event) {
    static const std::string operation = "rejectPending";
    static const char* const sql =
        "UPDATE requests SET status = 'rejected', reason = ?2, updated_at = ?3 "
        "WHERE id = ?1 AND status = 'pending' RETURNING transaction_id";
    std::lock_guard<std::mutex> lock(mutex_);
    Transaction tx(*this, operation);
    std::string transaction_id;
    {
        Query q = query(sql, operation);
        q.bindInt(1, request_id).bindText(2, reason).bindInt(3, now());
        if (!q.step()) {
            return false;
        }
        transaction_id = q.text(0);
        q.run();
    }
    AuditEvent e = linkEvent(event, request_id, transaction_id, "");
    if (e.reason.empty()) {
        e.reason = reason;
    }
    insertAudit(std::move(e), operation);
    tx.commit();
    return true;
}

bool SqliteStore::revoke(const std::string& serial, int reason, std::int64_t at,
                         const AuditEvent& event) {
    static const std::string operation = "revoke";
    static const char* const sql =
        "UPDATE certificates SET revoked = 1, revocation_reason = ?2, revoked_at = ?3 "
        "WHERE serial = ?1 AND revoked = 0 RETURNING request_id";
    std::lock_guard<std::mutex> lock(mutex_);
    Transaction tx(*this, operation);
    std::optional<std::int64_t> request_id;
    {
        Query q = query(sql, operation);
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
    std::lock_guard<std::mutex> lock(mutex_);
    insertAudit(event, operation);  // a single INSERT is its own transaction
}

std::optional<RequestRecord> SqliteStore::findRequest(std::int64_t id) {
    static const std::string operation = "findRequest";
    static const char* const sql = "SELECT " SCEP_REQUEST_COLUMNS " FROM requests WHERE id = ?1";
    std::lock_guard<std::mutex> lock(mutex_);
    Query q = query(sql, operation);
    q.bindInt(1, id);
    if (!q.step()) {
        return std::nullopt;
    }
    return readRequest(q);
}

std::optional<RequestRecord> SqliteStore::findRequestByTransaction(
    const std::string& transaction_id) {
    static const std::string operation = "findRequestByTransaction";
    static const char* const sql =
        "SELECT " SCEP_REQUEST_COLUMNS " FROM requests WHERE transaction_id = ?1";
    std::lock_guard<std::mutex> lock(mutex_);
    Query q = query(sql, operation);
    q.bindText(1, transaction_id);
    if (!q.step()) {
        return std::nullopt;
    }
    return readRequest(q);
}

std::vector<RequestRecord> SqliteStore::listRequests(std::optional<RequestStatus> status) {
    static const std::string operation = "listRequests";
    // Two statements rather than "?1 IS NULL OR status = ?1", which could not
    // use the status index.
    static const char* const all = "SELECT " SCEP_REQUEST_COLUMNS " FROM requests ORDER BY id";
    static const char* const filtered =
        "SELECT " SCEP_REQUEST_COLUMNS " FROM requests WHERE status = ?1 ORDER BY id";
    std::lock_guard<std::mutex> lock(mutex_);
    Query q = query(status ? filtered : all, operation);
    if (status) {
        q.bindText(1, requestStatusName(*status));
    }
    std::vector<RequestRecord> out;
    while (q.step()) {
        out.push_back(readRequest(q));
    }
    return out;
}

std::optional<CertificateRecord> SqliteStore::findCertificate(const std::string& serial) {
    static const std::string operation = "findCertificate";
    static const char* const sql =
        "SELECT " SCEP_CERTIFICATE_COLUMNS " FROM certificates WHERE serial = ?1";
    std::lock_guard<std::mutex> lock(mutex_);
    Query q = query(sql, operation);
    q.bindText(1, serial);
    if (!q.step()) {
        return std::nullopt;
    }
    return readCertificate(q);
}

std::vector<CertificateRecord> SqliteStore::listCertificates() {
    static const std::string operation = "listCertificates";
    static const char* const sql =
        "SELECT " SCEP_CERTIFICATE_COLUMNS " FROM certificates ORDER BY rowid";
    std::lock_guard<std::mutex> lock(mutex_);
    Query q = query(sql, operation);
    std::vector<CertificateRecord> out;
    while (q.step()) {
        out.push_back(readCertificate(q));
    }
    return out;
}

std::vector<CertificateRecord> SqliteStore::activeCertificatesFor(const std::string& common_name,
                                                                  std::int64_t at,
                                                                  Superseded superseded) {
    static const std::string operation = "activeCertificatesFor";
    // notAfter is inclusive (RFC 5280 4.1.2.5): valid through that second.
    static const char* const all_sql =
        "SELECT " SCEP_CERTIFICATE_COLUMNS " FROM certificates "
        "WHERE cn_key = lower(rtrim(?1, '.')) AND revoked = 0 AND not_after >= ?2 "
        "ORDER BY not_after DESC, serial";
    static const char* const current_sql =
        "SELECT " SCEP_CERTIFICATE_COLUMNS " FROM certificates "
        "WHERE cn_key = lower(rtrim(?1, '.')) AND revoked = 0 AND not_after >= ?2 "
        "AND superseded_by IS NULL ORDER BY not_after DESC, serial";
    std::lock_guard<std::mutex> lock(mutex_);
    Query q = query(superseded == Superseded::include ? all_sql : current_sql, operation);
    q.bindText(1, common_name).bindInt(2, at);
    std::vector<CertificateRecord> out;
    while (q.step()) {
        out.push_back(readCertificate(q));
    }
    return out;
}

std::vector<CertificateRecord> SqliteStore::revokedCertificates() {
    static const std::string operation = "revokedCertificates";
    static const char* const sql =
        "SELECT " SCEP_CERTIFICATE_COLUMNS " FROM certificates "
        "WHERE revoked = 1 ORDER BY revoked_at, serial";
    std::lock_guard<std::mutex> lock(mutex_);
    Query q = query(sql, operation);
    std::vector<CertificateRecord> out;
    while (q.step()) {
        out.push_back(readCertificate(q));
    }
    return out;
}

std::vector<AuditEvent> SqliteStore::listAudit(std::size_t limit, std::int64_t before_id) {
    static const std::string operation = "listAudit";
    static const char* const sql =
        "SELECT " SCEP_AUDIT_COLUMNS " FROM audit WHERE id < ?1 ORDER BY id DESC LIMIT ?2";
    constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
    std::vector<AuditEvent> out;
    if (limit == 0) {
        return out;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    Query q = query(sql, operation);
    q.bindInt(1, before_id > 0 ? before_id : kMax)
        .bindInt(2, limit > static_cast<std::uint64_t>(kMax) ? kMax
                                                               : static_cast<std::int64_t>(limit));
    while (q.step()) {
        out.push_back(readAudit(q));
    }
    return out;
}

// The total and the page come from one read snapshot, so they agree.
template <typename T, typename ReadRow>
Page<T> SqliteStore::searchPage(const std::string& operation, const Search& search,
                                const std::string& count_sql, const std::string& page_sql,
                                std::size_t limit, std::size_t offset, ReadRow readRow) {
    Page<T> page;
    std::lock_guard<std::mutex> lock(mutex_);
    ReadTransaction snapshot(*this, operation);
    {
        Query q = query(count_sql.c_str(), operation);
        q.bindAll(search.params);
        page.total = q.step() ? static_cast<std::size_t>(q.integer(0)) : 0;
    }
    if (page.total == 0) {
        return page;
    }
    Query q = query(page_sql.c_str(), operation);
    const int next = q.bindAll(search.params);
    q.bindInt(next, pageLimit(limit)).bindInt(next + 1, pageOffset(offset));
    while (q.step()) {
        page.items.push_back(readRow(q));
    }
    return page;
}

Page<RequestRecord> SqliteStore::findRequests(const RequestFilter& filter) {
    const Search search = requestSearch(filter);
    return searchPage<RequestRecord>("findRequests", search, requestCountSql(search),
                                     requestPageSql(search), filter.limit, filter.offset,
                                     [](Query& q) { return readRequest(q); });
}

Page<CertificateView> SqliteStore::findCertificates(const CertificateFilter& filter) {
    const Search search = certificateSearch(filter, filter.now != 0 ? filter.now : now());
    return searchPage<CertificateView>("findCertificates", search, certificateCountSql(search),
                                       certificatePageSql(search), filter.limit, filter.offset,
                                       [](Query& q) {
                                           CertificateView view;
                                           view.certificate = readCertificate(q);
                                           view.model = q.text(12);
                                           view.mac = q.text(13);
                                           return view;
                                       });
}

std::size_t SqliteStore::countRequests(RequestStatus status) {
    static const std::string operation = "countRequests";
    static const char* const sql = "SELECT count(*) FROM requests WHERE status = ?1";
    std::lock_guard<std::mutex> lock(mutex_);
    Query q = query(sql, operation);
    q.bindText(1, requestStatusName(status));
    return q.step() ? static_cast<std::size_t>(q.integer(0)) : 0;
}

std::size_t SqliteStore::countValidCertificates(std::int64_t from, std::int64_t to) {
    static const std::string operation = "countValidCertificates";
    static const char* const sql =
        "SELECT count(*) FROM certificates WHERE revoked = 0 AND not_after >= ?1 AND "
        "not_after < ?2";
    std::lock_guard<std::mutex> lock(mutex_);
    Query q = query(sql, operation);
    q.bindInt(1, from).bindInt(2, to);
    return q.step() ? static_cast<std::size_t>(q.integer(0)) : 0;
}

void SqliteStore::addToken(const TokenRecord& token, const AuditEvent& event) {
    static const std::string operation = "addToken";
    static const char* const sql =
        "INSERT INTO tokens (" SCEP_TOKEN_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
    std::lock_guard<std::mutex> lock(mutex_);
    Transaction tx(*this, operation);
    {
        // A clashing id or name is DuplicateToken (see fail()); the
        // transaction then rolls back and the audit event is not written.
        Query q = query(sql, operation);
        q.bindText(1, token.id)
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

std::optional<TokenRecord> SqliteStore::findToken(const std::string& id) {
    static const std::string operation = "findToken";
    static const char* const sql = "SELECT " SCEP_TOKEN_COLUMNS " FROM tokens WHERE id = ?1";
    std::lock_guard<std::mutex> lock(mutex_);
    Query q = query(sql, operation);
    q.bindText(1, id);
    if (!q.step()) {
        return std::nullopt;
    }
    return readToken(q);
}

std::vector<TokenRecord> SqliteStore::listTokens() {
    static const std::string operation = "listTokens";
    static const char* const sql = "SELECT " SCEP_TOKEN_COLUMNS " FROM tokens ORDER BY name";
    std::lock_guard<std::mutex> lock(mutex_);
    Query q = query(sql, operation);
    std::vector<TokenRecord> out;
    while (q.step()) {
        out.push_back(readToken(q));
    }
    return out;
}

bool SqliteStore::deleteToken(const std::string& name, const AuditEvent& event) {
    static const std::string operation = "deleteToken";
    static const char* const sql = "DELETE FROM tokens WHERE name = ?1 RETURNING id";
    std::lock_guard<std::mutex> lock(mutex_);
    Transaction tx(*this, operation);
    {
        Query q = query(sql, operation);
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
    const std::int64_t version = pragmaInteger("PRAGMA user_version", operation);
    if (version != kSchemaVersion) {
        throw StoreError("ping " + path_ + ": database schema version is " +
                         std::to_string(version) + ", expected " +
                         std::to_string(kSchemaVersion));
    }
}

void SqliteStore::checkWritable() {
    static const std::string operation = "check writable";
    std::lock_guard<std::mutex> lock(mutex_);
    Transaction tx(*this, operation);  // rolled back: nothing is written
}

}  // namespace

std::unique_ptr<Store> openSqliteStore(const std::string& path) {
    return std::make_unique<SqliteStore>(path);
}

// For tests/unit/test_store.cc only (it declares them itself; they are not
// part of the Store interface): the exact SQL findRequests/findCertificates
// prepare for a filter, so the test can EXPLAIN QUERY PLAN it.
std::string sqliteStoreSearchSqlForTesting(const RequestFilter& filter, bool count);
std::string sqliteStoreSearchSqlForTesting(const CertificateFilter& filter, bool count);

std::string sqliteStoreSearchSqlForTesting(const RequestFilter& filter, bool count) {
    const Search search = requestSearch(filter);
    return count ? requestCountSql(search) : requestPageSql(search);
}

std::string sqliteStoreSearchSqlForTesting(const CertificateFilter& filter, bool count) {
    const Search search = certificateSearch(filter, filter.now);
    return count ? certificateCountSql(search) : certificatePageSql(search);
}

}  // namespace scep
