#include "ra/admin/audit_resource.h"

#include "ra/admin/input.h"

namespace scep {

namespace {

using nlohmann::json;

json auditJson(const AuditEvent& e) {
    return {{"id", e.id},
            {"at", e.at},
            {"actor", e.actor},
            {"action", e.action},
            {"outcome", e.outcome},
            {"method", e.method},
            {"identity", e.identity},
            {"reason", e.reason},
            {"request_id", e.request_id ? json(*e.request_id) : json(nullptr)},
            {"serial", e.serial},
            {"peer", e.peer},
            {"transaction_id", e.transaction_id}};
}

}  // namespace

void AuditResource::list(const Principal&, const http::Request& req, http::Response& res) {
    const AuditPage page = parseAuditPage(req.params);
    const std::size_t limit = page.limit;
    const auto events = store_.listAudit(limit, page.before);
    json items = json::array();
    for (const auto& event : events) {
        items.push_back(auditJson(event));
    }
    const json next = events.size() == limit ? json(events.back().id) : json(nullptr);
    sendJson(res, {{"items", items}, {"next_before", next}});
}

}  // namespace scep
