#include "ra/admin/request_resource.h"

#include "ra/admin/input.h"

namespace scep {

using nlohmann::json;

namespace {

// Who a pending request waits for: an administrator here, or the upstream
// CA it was sent to ("" once decided).
const char* waitingFor(const RequestRecord& r) {
    if (r.status != RequestStatus::pending) {
        return "";
    }
    return r.ca.state == CaState::none ? "administrator" : "upstream";
}

json caProgressToJson(const RequestRecord& r) {
    json ca = {{"state", caStateName(r.ca.state)},
               {"reference", r.ca.reference},
               {"since", r.ca.since},
               {"last_error", r.ca.last_error}};
    ca["fail_info"] = r.ca.fail_info ? json(*r.ca.fail_info) : json(nullptr);
    return ca;
}

}  // namespace

json requestToJson(const RequestRecord& r) {
    json details = json::parse(r.details, nullptr, false);
    if (!details.is_object()) {
        details = json::object();
    }
    return {{"id", r.id},
            {"waiting_for", waitingFor(r)},
            {"ca", caProgressToJson(r)},
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
    sendJson(res, {{"total", page.total}, {"total_exact", page.total_exact}, {"items", items}});
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
    const ApprovalResult result = service_.administration().approve(id, who.name, req.remote_addr);
    json body = {{"serial", result.serial}};
    if (result.serial.empty()) {
        // Sent to the upstream CA, which has not issued yet.
        body["waiting_for"] = "upstream";
        body["reference"] = result.reference;
    }
    sendJson(res, body);
}

void RequestResource::reject(const Principal& who, const http::Request& req, http::Response& res) {
    const std::string reason = parseRejectReason(parseJsonBody(req.body));
    const std::int64_t id = parseRequestId(req.matches[1]);
    service_.administration().reject(id, reason, who.name, req.remote_addr);
    sendJson(res, {{"status", "rejected"}});
}

}  // namespace scep
