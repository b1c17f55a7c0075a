#include "ra/admin/certificate_resource.h"

#include <ctime>

#include "ra/admin/input.h"
#include "ra/admin/request_resource.h"
#include "ra/admin/revocation.h"
#include "ra/crypto.h"

namespace scep {

namespace {

using nlohmann::json;

const char* stateName(const CertificateRecord& c, std::int64_t now) {
    return certificateStateName(certificateState(c, now));
}

json certificateJson(const CertificateView& view, std::int64_t now) {
    const CertificateRecord& c = view.certificate;
    return {{"serial", c.serial},
            {"subject", c.subject},
            {"common_name", c.common_name},
            {"issuer", c.issuer},
            {"not_before", c.not_before},
            {"not_after", c.not_after},
            {"status", stateName(c, now)},
            {"revoked_at", c.revoked_at},
            {"revocation_reason", c.revocation_reason},
            {"revocation_reason_name", c.revoked ? revocationReasonName(c.revocation_reason) : ""},
            {"request_id", c.request_id},
            {"superseded_by", c.superseded_by},
            {"model", view.model},
            {"mac", view.mac}};
}

}  // namespace

CertificateRecord CertificateResource::find(const http::Request& req) {
    const std::string serial = req.matches[1];
    auto record = store_.findCertificate(serial);
    if (!record) {
        throw AdminError(AdminError::Kind::not_found, "no certificate " + serial);
    }
    return std::move(*record);
}

void CertificateResource::list(const Principal&, const http::Request& req, http::Response& res) {
    const CertificateFilter filter = parseCertificateFilter(req.params, std::time(nullptr));
    const auto page = store_.findCertificates(filter);
    json items = json::array();
    for (const auto& view : page.items) {
        items.push_back(certificateJson(view, filter.now));
    }
    sendJson(res, {{"total", page.total}, {"total_exact", page.total_exact}, {"items", items}});
}

void CertificateResource::show(const Principal&, const http::Request& req, http::Response& res) {
    const CertificateRecord record = find(req);
    CertificateView view{record, "", ""};
    if (record.request_id != 0) {
        if (const auto request = store_.findRequest(record.request_id)) {
            const json details = requestToJson(*request);
            view.model = details["model"];
            view.mac = details["mac"];
        }
    }
    json body = certificateJson(view, std::time(nullptr));
    body["pem"] = certificatePem(*certificateFromDer(record.der));
    sendJson(res, body);
}

void CertificateResource::pem(const Principal&, const http::Request& req, http::Response& res) {
    const CertificateRecord record = find(req);
    res.set_content(certificatePem(*certificateFromDer(record.der)), "application/x-pem-file");
    res.set_header("Content-Disposition", "attachment; filename=\"" + record.serial + ".pem\"");
}

void CertificateResource::revoke(const Principal& who, const http::Request& req,
                                 http::Response& res) {
    const int reason = parseRevocationReason(parseJsonBody(req.body));
    const std::string note =
        service_.administration().revoke(req.matches[1], reason, who.name, req.remote_addr);
    json body = {{"status", "revoked"}};
    if (!note.empty()) {
        body["note"] = note;
    }
    sendJson(res, body);
}

void CertificateResource::reasons(const Principal&, const http::Request&, http::Response& res) {
    json items = json::array();
    for (const RevocationReason& reason : revocationReasons()) {
        items.push_back({{"name", reason.name}, {"code", reason.code}});
    }
    sendJson(res, {{"items", items}});
}

}  // namespace scep
