// What the RA is and how it is doing: /healthz (public), /metrics, /api/ca,
// and /api/whoami (who the credential says the caller is).
#pragma once

#include "ra/admin/handler.h"
#include "ra/ops/metrics.h"
#include "ra/services.h"
#include "ra/store/store.h"

namespace scep {

class StatusResource {
public:
    StatusResource(RaServices& service, Store& store, Metrics& metrics)
        : service_(service), store_(store), metrics_(metrics) {}

    // Unauthenticated: load balancers and monitors probe it.
    void health(const http::Request& req, http::Response& res);
    void metrics(const Principal& who, const http::Request& req, http::Response& res);
    void whoami(const Principal& who, const http::Request& req, http::Response& res);
    void ca(const Principal& who, const http::Request& req, http::Response& res);

private:
    RaServices& service_;
    Store& store_;
    Metrics& metrics_;
};

}  // namespace scep
