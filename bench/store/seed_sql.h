// The SQL of bench/store/store_seed: a plan of devices and their
// certificates in a temporary table, then the rows a real MIC enrollment
// writes (ra/scep/responder.cc, ra/ca/issuance.cc), one time slice per
// transaction.
#pragma once

namespace scep {
namespace seed {

// ?1 current certificates, ?2 previous ones (superseded by a renewal),
// ?3 expired ones of devices gone, ?4 pending requests, ?5 rejected ones,
// ?6 failed enrollments (audit rows only), ?7 now.
//
// Devices get MACs 00:5B:xx:xx:xx:xx (the test fixture's are 00:1A:2B:...,
// so scep_load's phones never collide with seeded identities). Device d's
// current certificate was issued within the last 360 days (1-year
// validity: about 1 in 12 expires within 30 days); 1 in 5 devices renewed
// once, 335-345 days before that; 1 in 20 certificates belongs to a device
// that left (expired). Exactly 1 certificate in 100 is revoked.
constexpr const char* kPlanTable = R"sql(
CREATE TEMP TABLE seed (
    n INTEGER PRIMARY KEY, kind TEXT NOT NULL, dev INTEGER NOT NULL, created INTEGER NOT NULL,
    txn TEXT NOT NULL, serial TEXT, prev_serial TEXT,
    revoked INTEGER NOT NULL DEFAULT 0, reason INTEGER NOT NULL DEFAULT 0,
    revoked_at INTEGER NOT NULL DEFAULT 0)
)sql";

constexpr const char* kPlanCurrentAndGone = R"sql(
WITH RECURSIVE k(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM k WHERE n < ?1 + ?3)
INSERT INTO seed (n, kind, dev, created, txn, serial)
SELECT CASE WHEN n <= ?1 THEN n ELSE n + ?2 END,
       CASE WHEN n <= ?1 THEN 'current' ELSE 'gone' END,
       CASE WHEN n <= ?1 THEN n ELSE n + ?2 END,
       CASE WHEN n <= ?1 THEN ?7 - 3600 - abs(random()) % (360 * 86400)
            ELSE ?7 - 366 * 86400 - abs(random()) % (364 * 86400) END,
       upper(hex(randomblob(16))),
       printf('%02X', 1 + abs(random()) % 127) || upper(hex(randomblob(15)))
FROM k
)sql";

constexpr const char* kPlanPrevious = R"sql(
INSERT INTO seed (n, kind, dev, created, txn, serial)
SELECT ?1 + n, 'previous', dev, created - 335 * 86400 - abs(random()) % (10 * 86400),
       upper(hex(randomblob(16))),
       printf('%02X', 1 + abs(random()) % 127) || upper(hex(randomblob(15)))
FROM seed WHERE kind = 'current' AND n <= ?2
)sql";

constexpr const char* kPlanLinkPrevious = R"sql(
UPDATE seed SET prev_serial = (SELECT p.serial FROM seed AS p WHERE p.n = seed.n + ?1)
WHERE kind = 'current' AND n <= ?2
)sql";

// Pending requests arrived within the last week, rejected ones within the
// last 60 days; failed enrollments over two years.
constexpr const char* kPlanOthers = R"sql(
WITH RECURSIVE k(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM k WHERE n < ?4 + ?5 + ?6)
INSERT INTO seed (n, kind, dev, created, txn)
SELECT ?1 + ?2 + ?3 + n,
       CASE WHEN n <= ?4 THEN 'pending' WHEN n <= ?4 + ?5 THEN 'rejected' ELSE 'failure' END,
       CASE WHEN n <= ?4 + ?5 THEN ?1 + ?2 + ?3 + n ELSE 1 + abs(random()) % (?1 + ?3) END,
       CASE WHEN n <= ?4 THEN ?7 - abs(random()) % (7 * 86400)
            WHEN n <= ?4 + ?5 THEN ?7 - 3600 - abs(random()) % (60 * 86400)
            ELSE ?7 - abs(random()) % (730 * 86400) END,
       upper(hex(randomblob(16)))
FROM k
)sql";

// 1 in 100 certificates, with a reason an administrator would give, some
// time within its validity and before now.
constexpr const char* kPlanRevocations = R"sql(
UPDATE seed SET revoked = 1,
    reason = CASE (n / 100) % 4 WHEN 0 THEN 1 WHEN 1 THEN 3 WHEN 2 THEN 4 ELSE 5 END,
    revoked_at = created + abs(random()) % max(1, min(?1, created + 365 * 86400) - created)
WHERE serial IS NOT NULL AND n % 100 = 37
)sql";

constexpr const char* kPlanIndex = "CREATE INDEX temp.seed_created ON seed (created)";

// Device d's identity, as the MIC authenticator records it.
#define SEED_HEX "printf('005B%08X', s.dev)"
#define SEED_MODEL                                                                      \
    "CASE s.dev % 5 WHEN 0 THEN 'CP-8875' WHEN 1 THEN 'CP-8865' WHEN 2 THEN 'DP-9841' " \
    "WHEN 3 THEN 'CP-7841' ELSE 'CP-8851' END"
#define SEED_CN "'CP-' || substr(" SEED_MODEL ", 4) || '-SEP' || " SEED_HEX
#define SEED_SN "printf('FCH%08X', (s.dev * 2654435761) % 4294967291)"
#define SEED_IDENTITY                                                                         \
    "'CN=' || " SEED_CN " || ',OU=CTG,O=Cisco Systems Inc.,serialNumber=PID:' || " SEED_MODEL \
    " || ' SN:' || " SEED_SN
#define SEED_MAC                                                        \
    "'00:5B:' || substr(" SEED_HEX ", 5, 2) || ':' || substr(" SEED_HEX \
    ", 7, 2) || ':' "                                                   \
    "|| substr(" SEED_HEX ", 9, 2) || ':' || substr(" SEED_HEX ", 11, 2)"

// A time slice [?1, ?2): the renewals in it supersede (as the RA's issuing
// transaction does before it inserts the new certificate).
constexpr const char* kSliceSupersede = R"sql(
UPDATE certificates SET superseded_by = s.serial FROM seed AS s
WHERE s.created >= ?1 AND s.created < ?2 AND s.prev_serial IS NOT NULL
  AND certificates.serial = s.prev_serial
)sql";

// ?3 CSR, ?4 signer certificate, ?5 manufacturer issuer, ?6 peer: the
// template enrollment's.
constexpr const char* kSliceRequests =
    "INSERT INTO requests (transaction_id, message_type, method, identity, common_name, csr, "
    "public_key_id, signer, status, reason, peer, cert_serial, details, created_at, updated_at, "
    "ca_state, ca_reference, ca_csr, ca_since) "
    "SELECT s.txn, 'PKCSReq', 'mic', " SEED_IDENTITY ", " SEED_CN
    ", ?3, randomblob(32), ?4, "
    "CASE WHEN s.serial IS NOT NULL THEN 'issued' ELSE s.kind END, "
    "CASE s.kind WHEN 'pending' THEN 'approval-mic is manual' "
    "WHEN 'rejected' THEN 'not one of our phones' ELSE '' END, ?6, s.serial, "
    "json_object('mac', " SEED_MAC ", 'manufacturer_issuer', ?5, 'model', " SEED_MODEL
    ", 'pid', " SEED_MODEL ", 'sans', json('[]'), 'sn', " SEED_SN
    "), s.created, s.created + CASE s.kind WHEN 'rejected' THEN 3600 ELSE 0 END, "
    "'', NULL, NULL, 0 "
    "FROM seed AS s WHERE s.created >= ?1 AND s.created < ?2 AND s.kind <> 'failure' "
    "ORDER BY s.created";

// ?3 issuer, ?4 DER (the template certificate's bytes: the list and the
// CRL read only the columns).
constexpr const char* kSliceCertificates =
    "INSERT INTO certificates (serial, subject, issuer, common_name, not_before, not_after, "
    "der, request_id, revoked, revocation_reason, revoked_at) "
    "SELECT s.serial, 'CN=' || " SEED_CN ", ?3, " SEED_CN
    ", s.created - 300, s.created + 365 * 86400, ?4, r.id, s.revoked, s.reason, s.revoked_at "
    "FROM seed AS s JOIN requests AS r ON r.transaction_id = s.txn "
    "WHERE s.created >= ?1 AND s.created < ?2 AND s.serial IS NOT NULL ORDER BY s.created";

// Every audit row of the slice in time order: the enrollment (issued,
// pending or failed), the supersede of a renewal, an administrator's reject
// and revoke. ?3 peer.
constexpr const char* kSliceAudit =
    "INSERT INTO audit (at, actor, action, outcome, method, identity, reason, request_id, serial, "
    "peer, transaction_id) "
    "SELECT at, actor, action, outcome, method, identity, reason, request_id, serial, ?3, txn "
    "FROM ("
    "SELECT s.created AS at, 'scep' AS actor, 'enroll' AS action, "
    "CASE WHEN s.serial IS NOT NULL THEN 'success' WHEN s.kind = 'failure' THEN 'failure' "
    "ELSE 'pending' END AS outcome, 'mic' AS method, " SEED_IDENTITY
    " AS identity, "
    "CASE WHEN s.serial IS NOT NULL THEN 'approval-mic is auto' "
    "WHEN s.kind = 'failure' THEN 'the MIC does not chain to a manufacturer root' "
    "ELSE 'approval-mic is manual' END AS reason, r.id AS request_id, "
    "coalesce(s.serial, '') AS serial, s.txn AS txn "
    "FROM seed AS s LEFT JOIN requests AS r ON r.transaction_id = s.txn "
    "WHERE s.created >= ?1 AND s.created < ?2 "
    "UNION ALL SELECT s.created, 'scep', 'supersede', 'success', 'mic', 'CN=' || " SEED_CN
    ", 'superseded by ' || s.serial, r.id, s.prev_serial, s.txn "
    "FROM seed AS s JOIN requests AS r ON r.transaction_id = s.txn "
    "WHERE s.created >= ?1 AND s.created < ?2 AND s.prev_serial IS NOT NULL "
    "UNION ALL SELECT s.created + 3600, 'api:seed-admin', 'reject', 'success', 'mic', "
    "" SEED_IDENTITY
    ", 'not one of our phones', r.id, '', s.txn "
    "FROM seed AS s JOIN requests AS r ON r.transaction_id = s.txn "
    "WHERE s.created + 3600 >= ?1 AND s.created + 3600 < ?2 AND s.kind = 'rejected' "
    "UNION ALL SELECT s.revoked_at, 'api:seed-admin', 'revoke', 'success', '', 'CN=' || " SEED_CN
    ", 'CRLReason ' || s.reason, r.id, s.serial, '' "
    "FROM seed AS s JOIN requests AS r ON r.transaction_id = s.txn "
    "WHERE s.revoked = 1 AND s.revoked_at >= ?1 AND s.revoked_at < ?2"
    ") ORDER BY at";

}  // namespace seed
}  // namespace scep
