#include "ra/admin/token_resource.h"

#include "ra/admin/input.h"
#include "ra/admin/tokens.h"
#include "ra/scep/responder.h"

namespace scep {

using nlohmann::json;

void TokenResource::list(const Principal&, const http::Request&, http::Response& res) {
    json items = json::array();
    for (const auto& token : store_.listTokens()) {
        items.push_back({{"name", token.name},
                         {"role", token.role},
                         {"created_at", token.created_at},
                         {"created_by", token.created_by}});
    }
    sendJson(res, {{"items", items}});
}

void TokenResource::create(const Principal& who, const http::Request& req, http::Response& res) {
    const auto [name, role] = parseNewToken(parseJsonBody(req.body));
    const NewToken token = makeToken(name, role, who.name);
    AuditEvent event;
    event.actor = who.name;
    event.action = "token-create";
    event.outcome = "success";
    event.identity = name;
    event.reason = std::string("role ") + roleName(role);
    event.peer = req.remote_addr;
    try {
        store_.addToken(token.record, event);
    } catch (const DuplicateToken&) {
        throw AdminError(AdminError::Kind::conflict, "a token named '" + name + "' exists");
    }
    log_.audit(event);
    sendJson(res, {{"name", name}, {"role", roleName(role)}, {"token", token.text}}, 201);
}

void TokenResource::remove(const Principal& who, const http::Request& req, http::Response& res) {
    AuditEvent event;
    event.actor = who.name;
    event.action = "token-delete";
    event.outcome = "success";
    event.identity = req.matches[1];
    event.peer = req.remote_addr;
    if (!store_.deleteToken(req.matches[1], event)) {
        throw AdminError(AdminError::Kind::not_found, "no token named '" + req.matches[1] + "'");
    }
    log_.audit(event);
    sendJson(res, {{"status", "deleted"}});
}

}  // namespace scep
