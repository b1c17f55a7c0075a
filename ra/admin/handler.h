// What the admin API's resource handlers share: who is asking, the shape of
// a handler that runs once authentication and the role check have passed
// (AdminApi::guard), and the JSON answer.
#pragma once

#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "ra/admin/tokens.h"
#include "ra/http/message.h"

namespace scep {

// How a principal signed in.
enum class PrincipalKind { token, client_certificate };
const char* principalKindName(PrincipalKind kind);  // "token" | "client-certificate"

struct Principal {
    std::string name;  // token name, or "cert:<CN>"
    Role role;
    PrincipalKind via;
};

using AdminHandler = std::function<void(const Principal&, const http::Request&, http::Response&)>;

// A resource's member function as a handler; the resource outlives the router.
template <class Resource>
AdminHandler handler(Resource& resource,
                     void (Resource::*method)(const Principal&, const http::Request&,
                                              http::Response&)) {
    return [&resource, method](const Principal& who, const http::Request& req,
                               http::Response& res) { (resource.*method)(who, req, res); };
}

// `body` as compact JSON; invalid UTF-8 in stored text is replaced, not thrown.
void sendJson(http::Response& res, const nlohmann::json& body, int status = 200);

}  // namespace scep
