#include "ra/admin/request_resource.h"

#include "ra/admin/input.h"

namespace scep {

using nlohmann::json;

json requestToJson(const RequestRecord& r) {
    json details = json::parse(r.details, nullptr, false);
    if (!details.is_object()) {
        details = json::object();
    }
    return {{"id", r.id},
            {"transaction_id", r.transaction_id},
            {"status", requestStatusName(r.status)},
            {"method", r.method},
            {"message_type", r.message_type},
            {"common_name", r.common_name},
            {"identity", r.identity},
            {"model", details.value("model", "")},
            {"mac", details.value("mac", "")},
            {"pid", details.value("pid", "")},
            {"sn", details.value("sn", "")},
            {"manufacturer_issuer", details.value("manufacturer_issuer", "")},
            {"sans", details.value("sans", json::array())},
            {"renews", details.value("renews", "")},
            {"identity_clash", details.value("identity_clash", "")},
            {"peer", r.peer},
            {"reason", r.reason},
            {"serial", r.cert_serial},
            {"created_at", r.created_at},
            {"updated_at", r.updated_at}};
}

void RequestResource::list(const Principal&, const http::Request& req, http::Response& res) {
    const RequestFilter filter = parseRequestFilter(req.params);
    const auto page = store_.findRequests(filter);
    json items = json::array();
    for (const auto& request : page.items) {
        items.push_back(requestToJson(request));
    }
    sendJson(res, {{"total", page.total}, {"items", items}});
}

void RequestResource::show(const Principal&, const http::Request& req, http::Response& res) {
    const auto request = store_.findRequest(parseRequestId(req.matches[1]));
    if (!request) {
        throw AdminError(AdminError::Kind::not_found, "no request " + req.matches[1]);
    }
    sendJson(res, requestToJson(*request));
}

void RequestResource::approve(const Principal& who, const http::Request& req, http::Response& res) {
    const std::int64_t id = parseRequestId(req.matches[1]);
    sendJson(res,
             {{"serial", service_.administration().approve(id, who.name, req.remote_addr).serial}});
}

void RequestResource::reject(const Principal& who, const http::Request& req, http::Response& res) {
    const std::string reason = parseRejectReason(parseJsonBody(req.body));
    const std::int64_t id = parseRequestId(req.matches[1]);
    service_.administration().reject(id, reason, who.name, req.remote_addr);
    sendJson(res, {{"status", "rejected"}});
}

}  // namespace scep
