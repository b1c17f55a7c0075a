// The store's rows: the column lists its SELECTs name, and the readers that
// turn one row of them into a record.
#pragma once

#include "ra/store/sqlite/db.h"
#include "ra/store/store.h"

// Column lists shared by the SELECTs and the row readers below (macros, so
// they concatenate with the SQL literals around them).
#define SCEP_REQUEST_COLUMNS                                                                 \
    "id, transaction_id, message_type, method, identity, common_name, csr, public_key_id, "  \
    "signer, status, reason, peer, cert_serial, details, created_at, updated_at, ca_state, " \
    "ca_reference, ca_csr, ca_since, ca_error, ca_fail_info"
#define SCEP_CERTIFICATE_COLUMNS                                                              \
    "serial, subject, issuer, common_name, not_before, not_after, der, request_id, revoked, " \
    "revocation_reason, revoked_at, superseded_by"
// The same, qualified, for the certificate search that joins requests.
#define SCEP_CERTIFICATE_COLUMNS_C                                                     \
    "c.serial, c.subject, c.issuer, c.common_name, c.not_before, c.not_after, c.der, " \
    "c.request_id, c.revoked, c.revocation_reason, c.revoked_at, c.superseded_by"
#define SCEP_TOKEN_COLUMNS "id, name, role, secret_hash, created_at, created_by"
#define SCEP_AUDIT_COLUMNS                                                                 \
    "id, at, actor, action, outcome, method, identity, reason, request_id, serial, peer, " \
    "transaction_id"

#include <cstdint>
#include <ctime>

namespace scep {
namespace sqlite {

// The clock the store stamps rows with (unix seconds).
inline std::int64_t now() {
    return static_cast<std::int64_t>(std::time(nullptr));
}

// Each reads a row selected with the matching column list above.
RequestRecord readRequest(const Query& q);
CertificateRecord readCertificate(const Query& q);
AuditEvent readAudit(const Query& q);
TokenRecord readToken(const Query& q);

}  // namespace sqlite
}  // namespace scep
