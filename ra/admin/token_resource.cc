#include "ra/admin/token_resource.h"

#include "ra/admin/input.h"
#include "ra/admin/tokens.h"

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
    const NewToken token = administration_.createToken(name, role, who.name, req.remote_addr);
    sendJson(res, {{"name", name}, {"role", roleName(role)}, {"token", token.text}}, 201);
}

void TokenResource::remove(const Principal& who, const http::Request& req, http::Response& res) {
    administration_.deleteToken(req.matches[1], who.name, req.remote_addr);
    sendJson(res, {{"status", "deleted"}});
}

}  // namespace scep
