#include "ra/store/sqlite/schema.h"

#include "ra/store/store.h"

namespace scep {
namespace sqlite {

namespace {

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

// Version 3 -> 4: requests forwarded to an upstream CA (ra/ca/upstream/).
//  - ca_state: '' waits for an administrator (or is decided), 'forwarding'
//    is recorded but not yet acknowledged by the CA, 'pending' is known to
//    the CA and polled. Only a pending request can be at the CA.
//  - ca_reference: the transactionID the CA knows it by; unique, so one
//    request is never forwarded under two of them (nor two under one).
//  - ca_csr: the CSR as received, kept only until the CA answered.
//  - ca_since, ca_error, ca_fail_info: poll-timeout, the last failure to
//    get an answer, and the failInfo the CA refused with.
//  - requests_at_ca: the poller's look-up; a partial index, so requests
//    that never see a CA cost nothing in it.
constexpr const char* kMigrationV4 = R"sql(
ALTER TABLE requests ADD COLUMN ca_state TEXT NOT NULL DEFAULT ''
    CHECK (ca_state IN ('', 'forwarding', 'pending'));
ALTER TABLE requests ADD COLUMN ca_reference TEXT;
ALTER TABLE requests ADD COLUMN ca_csr BLOB;
ALTER TABLE requests ADD COLUMN ca_since INTEGER NOT NULL DEFAULT 0;
ALTER TABLE requests ADD COLUMN ca_error TEXT NOT NULL DEFAULT '';
ALTER TABLE requests ADD COLUMN ca_fail_info INTEGER;
CREATE UNIQUE INDEX requests_ca_reference ON requests (ca_reference)
    WHERE ca_reference IS NOT NULL;
CREATE INDEX requests_at_ca ON requests (id) WHERE ca_state <> '';
CREATE TRIGGER requests_at_ca_pending BEFORE UPDATE OF ca_state, status ON requests
WHEN NEW.ca_state <> '' AND NEW.status <> 'pending'
BEGIN
    SELECT RAISE(ABORT, 'only a pending request can be at the CA');
END;
CREATE TRIGGER requests_at_ca_pending_insert BEFORE INSERT ON requests
WHEN NEW.ca_state <> '' AND NEW.status <> 'pending'
BEGIN
    SELECT RAISE(ABORT, 'only a pending request can be at the CA');
END;
)sql";

// The admin searches at a million certificates (issue 11), first added to
// v4 databases in place, with triggers that wrote every row into the
// full-text indexes at once.
//  - certificates_validity: expiring, valid and expired as ranges of one
//    covering index (`revoked` is in it so that SQLite need not read the row
//    to check what the partial index already guarantees): also the counts
//    of /metrics, and the page sorted without loading every match.
//  - certificates_revocations: what the CRL lists, read without the rows.
//  - certificates_cn: an FTS5 trigram index of the CN (SQLite >= 3.34), so a
//    CN substring of 3 or more characters is an index look-up instead of a
//    scan. detail=none keeps it at about 35 bytes a certificate: it answers
//    which rows hold all the text's trigrams, the exact LIKE decides.
//    External content: the CN is stored once; the triggers of kMigrationV5
//    keep the index in step with any writer.
//  - fts_request_text: the same for the request search's CN and identity.
constexpr const char* kSearchIndexes = R"sql(
CREATE INDEX certificates_validity ON certificates (not_after, not_before, serial, revoked)
    WHERE revoked = 0;
CREATE INDEX certificates_revocations
    ON certificates (revoked_at, serial, revocation_reason, revoked) WHERE revoked = 1;
CREATE VIRTUAL TABLE certificates_cn USING fts5(common_name, content = 'certificates',
    content_rowid = 'rowid', tokenize = 'trigram', detail = 'none');
INSERT INTO certificates_cn (certificates_cn) VALUES ('rebuild');
CREATE VIRTUAL TABLE fts_request_text USING fts5(common_name, identity, content = 'requests',
    content_rowid = 'id', tokenize = 'trigram', detail = 'none');
INSERT INTO fts_request_text (fts_request_text) VALUES ('rebuild');
)sql";

// Version 4 -> 5: rows reach the full-text indexes in batches.
// FTS5 writes its pending rows out as a new index segment at every statement
// savepoint, and each trigger-fired insert runs in one: a segment per row,
// whose merging costs more the bigger the index (bench/store/README.md has
// the profile at a million certificates).
// So the triggers only queue the rowid of a new or changed row, and
// drainSearchQueues() indexes the queue in one statement. A row is either
// in the index or in its queue, never both: a row leaving the table is
// deleted from the index only if it is not queued. The searches read the
// queue too (search_sql.cc), so they never miss a row, drained or not. Version 5
// and not additive: the release before would queue rows it never indexes.
//
// Also: valid_by_expiry_day, the certificates not revoked per day of their
// not_after (not_after / 86400), kept by triggers, so that counting the
// valid ones (/metrics, every scrape) adds up a few hundred days instead of
// reading 750,000 index entries at a million certificates (search.cc,
// countValidCertificates).
constexpr const char* kMigrationV5 = R"sql(
DROP TRIGGER IF EXISTS certificates_cn_insert;
DROP TRIGGER IF EXISTS certificates_cn_delete;
DROP TRIGGER IF EXISTS certificates_cn_update;
DROP TRIGGER IF EXISTS fts_request_text_insert;
DROP TRIGGER IF EXISTS fts_request_text_delete;
DROP TRIGGER IF EXISTS fts_request_text_update;
CREATE TABLE certificates_cn_queue (id INTEGER PRIMARY KEY) STRICT;
CREATE TABLE fts_request_text_queue (id INTEGER PRIMARY KEY) STRICT;
CREATE TRIGGER certificates_cn_insert AFTER INSERT ON certificates
BEGIN
    INSERT OR IGNORE INTO certificates_cn_queue (id) VALUES (NEW.rowid);
END;
CREATE TRIGGER certificates_cn_delete AFTER DELETE ON certificates
BEGIN
    INSERT INTO certificates_cn (certificates_cn, rowid, common_name)
        SELECT 'delete', OLD.rowid, OLD.common_name
        WHERE NOT EXISTS (SELECT 1 FROM certificates_cn_queue WHERE id = OLD.rowid);
    DELETE FROM certificates_cn_queue WHERE id = OLD.rowid;
END;
CREATE TRIGGER certificates_cn_update AFTER UPDATE OF common_name ON certificates
BEGIN
    INSERT INTO certificates_cn (certificates_cn, rowid, common_name)
        SELECT 'delete', OLD.rowid, OLD.common_name
        WHERE NOT EXISTS (SELECT 1 FROM certificates_cn_queue WHERE id = OLD.rowid);
    DELETE FROM certificates_cn_queue WHERE id = OLD.rowid;
    INSERT OR IGNORE INTO certificates_cn_queue (id) VALUES (NEW.rowid);
END;
CREATE TRIGGER fts_request_text_insert AFTER INSERT ON requests
BEGIN
    INSERT OR IGNORE INTO fts_request_text_queue (id) VALUES (NEW.id);
END;
CREATE TRIGGER fts_request_text_delete AFTER DELETE ON requests
BEGIN
    INSERT INTO fts_request_text (fts_request_text, rowid, common_name, identity)
        SELECT 'delete', OLD.id, OLD.common_name, OLD.identity
        WHERE NOT EXISTS (SELECT 1 FROM fts_request_text_queue WHERE id = OLD.id);
    DELETE FROM fts_request_text_queue WHERE id = OLD.id;
END;
CREATE TRIGGER fts_request_text_update AFTER UPDATE OF id, common_name, identity ON requests
BEGIN
    INSERT INTO fts_request_text (fts_request_text, rowid, common_name, identity)
        SELECT 'delete', OLD.id, OLD.common_name, OLD.identity
        WHERE NOT EXISTS (SELECT 1 FROM fts_request_text_queue WHERE id = OLD.id);
    DELETE FROM fts_request_text_queue WHERE id = OLD.id;
    INSERT OR IGNORE INTO fts_request_text_queue (id) VALUES (NEW.id);
END;
CREATE TABLE valid_by_expiry_day (
    day          INTEGER PRIMARY KEY,
    certificates INTEGER NOT NULL
) STRICT;
INSERT INTO valid_by_expiry_day (day, certificates)
    SELECT not_after / 86400, count(*) FROM certificates WHERE revoked = 0 GROUP BY 1;
CREATE TRIGGER valid_by_expiry_day_insert AFTER INSERT ON certificates WHEN NEW.revoked = 0
BEGIN
    INSERT INTO valid_by_expiry_day (day, certificates) VALUES (NEW.not_after / 86400, 1)
        ON CONFLICT (day) DO UPDATE SET certificates = certificates + 1;
END;
CREATE TRIGGER valid_by_expiry_day_delete AFTER DELETE ON certificates WHEN OLD.revoked = 0
BEGIN
    UPDATE valid_by_expiry_day SET certificates = certificates - 1
        WHERE day = OLD.not_after / 86400;
END;
CREATE TRIGGER valid_by_expiry_day_update AFTER UPDATE OF revoked, not_after ON certificates
BEGIN
    UPDATE valid_by_expiry_day SET certificates = certificates - 1
        WHERE OLD.revoked = 0 AND day = OLD.not_after / 86400;
    INSERT INTO valid_by_expiry_day (day, certificates)
        SELECT NEW.not_after / 86400, 1 WHERE NEW.revoked = 0
        ON CONFLICT (day) DO UPDATE SET certificates = certificates + 1;
END;
)sql";

// CROSS JOIN: the queue drives (a few hundred rows), not the table.
constexpr const char* kDrainSearchQueues = R"sql(
INSERT INTO certificates_cn (rowid, common_name)
    SELECT c.rowid, c.common_name
    FROM certificates_cn_queue AS q CROSS JOIN certificates AS c ON c.rowid = q.id;
DELETE FROM certificates_cn_queue;
INSERT INTO fts_request_text (rowid, common_name, identity)
    SELECT r.id, r.common_name, r.identity
    FROM fts_request_text_queue AS q CROSS JOIN requests AS r ON r.id = q.id;
DELETE FROM fts_request_text_queue;
)sql";

// A v4 database may have them already; they come in one transaction.
bool hasSearchIndexes(Database& db, const std::string& operation) {
    return db.pragmaInteger(
               "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
               "name = 'fts_request_text'",
               operation) == 1;
}

void checkVersion(const std::string& path, std::int64_t version, std::int64_t application_id) {
    if (version > kSchemaVersion) {
        throw StoreError("open " + path + ": database schema version " + std::to_string(version) +
                         " is newer than this program supports (" + std::to_string(kSchemaVersion) +
                         "); refusing to use it — run the kea-scep-ra release that wrote it");
    }
    if (application_id != 0 && application_id != kApplicationId) {
        throw StoreError("open " + path +
                         ": not a kea-scep-ra database (PRAGMA application_id is " +
                         std::to_string(application_id) + ")");
    }
}

std::int64_t checkedVersion(Database& db, const std::string& path, const std::string& operation) {
    const std::int64_t version = db.pragmaInteger("PRAGMA user_version", operation);
    checkVersion(path, version, db.pragmaInteger("PRAGMA application_id", operation));
    return version;
}

}  // namespace

void migrateSchema(Database& db, const std::string& path) {
    const std::string operation = "open " + path + ": schema";
    std::int64_t version = checkedVersion(db, path, operation);
    if (version == kSchemaVersion) {
        return;
    }
    // Another process may be creating the schema right now: decide again
    // under the write lock.
    Transaction tx(db, operation);
    version = checkedVersion(db, path, operation);
    if (version == 0) {
        // CREATE TABLE without IF NOT EXISTS: a foreign database that
        // happens to have a table of the same name fails loudly.
        db.exec(kSchemaV1, operation);
        // Integer constants from this file, not values: no parameter binding
        // exists for PRAGMA arguments.
        db.exec("PRAGMA application_id = 1396917584", operation);  // kApplicationId
        static_assert(kApplicationId == 1396917584, "keep the PRAGMA text above in step");
        version = 1;
    }
    // Each step upgrades in place; a failing step rolls back all of them,
    // leaving the file exactly as it was (and still usable by the old
    // release).
    if (version < 2) {
        db.exec(kMigrationV2, operation);
    }
    if (version < 3) {
        db.exec(kMigrationV3, operation);
    }
    if (version < 4) {
        db.exec(kMigrationV4, operation);
    }
    if (version < 5) {
        if (!hasSearchIndexes(db, operation)) {
            db.exec(kSearchIndexes, operation);
        }
        db.exec(kMigrationV5, operation);
    }
    db.exec("PRAGMA user_version = 5", operation);  // kSchemaVersion
    static_assert(kSchemaVersion == 5, "keep the PRAGMA text above in step");
    tx.commit();
}

std::int64_t searchQueueLength(Database& db, const std::string& operation) {
    return db.pragmaInteger(
        "SELECT (SELECT count(*) FROM certificates_cn_queue) + "
        "(SELECT count(*) FROM fts_request_text_queue)",
        operation);
}

void drainSearchQueues(Database& db, const std::string& operation) {
    db.exec(kDrainSearchQueues, operation);
}

}  // namespace sqlite
}  // namespace scep
