#include "ra/store/sqlite/rows.h"

#include <string>

namespace scep {
namespace sqlite {

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
    const std::string ca_state = q.text(16);
    const auto state = caStateFromName(ca_state);
    if (!state) {
        throw StoreError("request " + std::to_string(r.id) + " has unknown ca_state '" + ca_state +
                         "'");
    }
    r.ca.state = *state;
    r.ca.reference = q.text(17);  // NULL reads as ""
    r.ca.csr = q.blob(18);
    r.ca.since = q.integer(19);
    r.ca.last_error = q.text(20);
    if (!q.isNull(21)) {
        r.ca.fail_info = static_cast<int>(q.integer(21));
    }
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

}  // namespace sqlite
}  // namespace scep
