// /api/requests: list, show, approve, reject.
#pragma once

#include <nlohmann/json.hpp>

#include "ra/admin/handler.h"
#include "ra/services.h"
#include "ra/store/store.h"

namespace scep {

// A request as the API (and the webhook) show it.
nlohmann::json requestToJson(const RequestRecord& request);

class RequestResource {
public:
    RequestResource(RaServices& service, Store& store) : service_(service), store_(store) {}

    void list(const Principal& who, const http::Request& req, http::Response& res);
    void show(const Principal& who, const http::Request& req, http::Response& res);
    void approve(const Principal& who, const http::Request& req, http::Response& res);
    void reject(const Principal& who, const http::Request& req, http::Response& res);

private:
    RaServices& service_;
    Store& store_;
};

}  // namespace scep
