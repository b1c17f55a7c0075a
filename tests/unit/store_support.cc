#include "store_support.h"

#include <doctest/doctest.h>

#include <thread>

using namespace scep;

namespace storetest {

Bytes bytes(std::initializer_list<int> values) {
    Bytes out;
    for (int v : values) {
        out.push_back(static_cast<std::uint8_t>(v));
    }
    return out;
}

RequestRecord sampleRequest(const std::string& transaction_id, const std::string& cn) {
    RequestRecord r;
    r.transaction_id = transaction_id;
    r.message_type = "PKCSReq";
    r.method = "mic";
    r.identity = "CN=CP-8841-" + cn + ",O=Cisco";
    r.common_name = cn;
    r.csr = bytes({0x30, 0x82, 0x00, 0x00, 0x01, 0x00, 0xff, 0x00});
    r.public_key_id = bytes({0x00, 0x00, 0xde, 0xad, 0x00});
    r.signer = bytes({0x30, 0x00, 0x00, 0x7f, 0x80});
    r.reason = "awaiting approval";
    r.peer = "192.0.2.7";
    r.details = R"({"model":"CP-8841","mac":"00:11:22:33:44:55","note":"caf\u00e9 ☎"})";
    return r;
}

CertificateRecord sampleCertificate(const std::string& serial, const std::string& cn,
                                    std::int64_t not_after) {
    CertificateRecord c;
    c.serial = serial;
    c.subject = "CN=" + cn;
    c.issuer = "CN=Unit Test Issuing CA";
    c.common_name = cn;
    c.not_before = 1700000000;
    c.not_after = not_after;
    c.der = bytes({0x30, 0x82, 0x00, 0x10, 0x00, 0x00, 0xa0, 0x03, 0x02, 0x01, 0x02});
    return c;
}

AuditEvent event(const std::string& action, const std::string& outcome) {
    AuditEvent e;
    e.actor = "scep";
    e.action = action;
    e.outcome = outcome;
    e.method = "mic";
    e.identity = "CN=device";
    e.peer = "192.0.2.7";
    return e;
}

void checkSameRequest(const RequestRecord& a, const RequestRecord& b) {
    CHECK(a.id == b.id);
    CHECK(a.transaction_id == b.transaction_id);
    CHECK(a.message_type == b.message_type);
    CHECK(a.method == b.method);
    CHECK(a.identity == b.identity);
    CHECK(a.common_name == b.common_name);
    CHECK(a.csr == b.csr);
    CHECK(a.public_key_id == b.public_key_id);
    CHECK(a.signer == b.signer);
    CHECK(a.status == b.status);
    CHECK(a.reason == b.reason);
    CHECK(a.peer == b.peer);
    CHECK(a.cert_serial == b.cert_serial);
    CHECK(a.details == b.details);
    CHECK(a.created_at == b.created_at);
    CHECK(a.updated_at == b.updated_at);
}

void checkSameCertificate(const CertificateRecord& a, const CertificateRecord& b) {
    CHECK(a.serial == b.serial);
    CHECK(a.subject == b.subject);
    CHECK(a.issuer == b.issuer);
    CHECK(a.common_name == b.common_name);
    CHECK(a.not_before == b.not_before);
    CHECK(a.not_after == b.not_after);
    CHECK(a.der == b.der);
    CHECK(a.request_id == b.request_id);
    CHECK(a.revoked == b.revoked);
    CHECK(a.revocation_reason == b.revocation_reason);
    CHECK(a.revoked_at == b.revoked_at);
    CHECK(a.superseded_by == b.superseded_by);
}

std::vector<std::string> serials(const std::vector<CertificateRecord>& certs) {
    std::vector<std::string> out;
    for (const auto& c : certs) {
        out.push_back(c.serial);
    }
    return out;
}

std::size_t auditCount(Store& store) {
    return store.listAudit(1000000, 0).size();
}

std::vector<AuditEvent> auditWith(Store& store, const std::string& action) {
    std::vector<AuditEvent> out;
    for (const auto& e : store.listAudit(1000, 0)) {
        if (e.action == action) {
            out.push_back(e);
        }
    }
    return out;
}

CertificateRecord certificate(Store& store, const std::string& serial) {
    const auto found = store.findCertificate(serial);
    REQUIRE(found);
    return *found;
}

std::vector<std::string> runThreads(int count, const std::function<void(int)>& body) {
    std::vector<std::string> errors(static_cast<std::size_t>(count));
    std::vector<std::thread> threads;
    for (int t = 0; t < count; ++t) {
        threads.emplace_back([&, t] {
            try {
                body(t);
            } catch (const std::exception& e) {
                errors[static_cast<std::size_t>(t)] = e.what();
            }
        });
    }
    for (auto& th : threads) {
        th.join();
    }
    return errors;
}

const char* const kV1Schema = R"sql(
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

const char* const kV2Migration = R"sql(
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

void createV1Database(const std::string& path) {
    RawDb raw(path, true);
    REQUIRE(raw.scalar("PRAGMA journal_mode = WAL") == "wal");
    REQUIRE(raw.exec(std::string("BEGIN;") + kV1Schema +
                     "PRAGMA application_id = 1396917584; PRAGMA user_version = 1; COMMIT;") == "");
}

void createV2Database(const std::string& path) {
    createV1Database(path);
    RawDb raw(path);
    REQUIRE(raw.exec(std::string("BEGIN;") + kV2Migration + "PRAGMA user_version = 2; COMMIT;") ==
            "");
}

RequestRecord deviceRequest(const std::string& transaction_id, const std::string& cn,
                            const std::string& model, const std::string& mac,
                            std::int64_t created_at) {
    RequestRecord r = sampleRequest(transaction_id, cn);
    if (model.empty()) {
        r.method = "challenge";
        r.identity = "challenge for CN " + cn;
        r.details = R"({"sans":[]})";
    } else {
        r.identity = "CN=" + model + "-SEP,OU=CTG,O=Cisco Systems Inc.,serialNumber=PID:" + model;
        r.details = R"({"model":")" + model + R"(","mac":")" + mac + R"(","pid":")" + model +
                    R"(","sn":"FCH0001","manufacturer_issuer":"CN=Cisco Manufacturing CA SHA2",)" +
                    R"("sans":[{"type":"dns","value":")" + cn + R"("}]})";
    }
    r.created_at = created_at;
    r.updated_at = created_at;
    return r;
}

std::vector<std::int64_t> ids(const Page<RequestRecord>& page) {
    std::vector<std::int64_t> out;
    for (const auto& r : page.items) {
        out.push_back(r.id);
    }
    return out;
}

std::vector<std::string> serials(const Page<CertificateView>& page) {
    std::vector<std::string> out;
    for (const auto& v : page.items) {
        out.push_back(v.certificate.serial);
    }
    return out;
}

void addSearchRequests(Store& store) {
    RequestRecord r1 =
        deviceRequest("tx1", "SEP001A2B3C4D5E", "CP-8841", "00:1A:2B:3C:4D:5E", 1000);
    store.addPendingRequest(r1, event("enroll", "pending"));
    RequestRecord r2 =
        deviceRequest("tx2", "SEP00AABBCCDDEE", "CP-8875", "00:AA:BB:CC:DD:EE", 2000);
    store.addIssuedRequest(r2, sampleCertificate("0A02", "SEP00AABBCCDDEE"), event("enroll"));
    RequestRecord r3 = deviceRequest("tx3", "laptop-7", "", "", 3000);
    store.addPendingRequest(r3, event("enroll", "pending"));
    RequestRecord r4 =
        deviceRequest("tx4", "SEP001A2B3C4D5E", "CP-8841", "00:1A:2B:3C:4D:5E", 4000);
    store.addPendingRequest(r4, event("enroll", "pending"));
    REQUIRE(store.rejectPending(r4.id, "not this one", event("reject")));
    RequestRecord r5 =
        deviceRequest("tx5", "SEP0011223344FF", "CP-8841", "00:11:22:33:44:FF", 5000);
    store.addPendingRequest(r5, event("enroll", "pending"));
    RequestRecord r6 = deviceRequest("tx6", "printer", "", "", 6000);
    r6.details = "not json {";  // never written by enrollment, but must not break anything
    store.addPendingRequest(r6, event("enroll", "pending"));
    REQUIRE(Ids{r1.id, r2.id, r3.id, r4.id, r5.id, r6.id} == Ids{1, 2, 3, 4, 5, 6});
}

Ids findIds(Store& store, RequestFilter filter) {
    const auto page = store.findRequests(filter);
    CHECK(page.total == page.items.size());  // the small data set fits one page
    return ids(page);
}

}  // namespace storetest
