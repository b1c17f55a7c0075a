#include "ra/admin/handler.h"

namespace scep {

const char* principalKindName(PrincipalKind kind) {
    return kind == PrincipalKind::token ? "token" : "client-certificate";
}

void sendJson(http::Response& res, const nlohmann::json& body, int status) {
    res.status = status;
    res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                    "application/json");
}

}  // namespace scep
