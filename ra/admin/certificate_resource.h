// /api/certificates: list, show, download, revoke; and the revocation
// reasons revoke takes (/api/revocation-reasons).
#pragma once

#include "ra/admin/handler.h"
#include "ra/services.h"
#include "ra/store/store.h"

namespace scep {

class CertificateResource {
public:
    CertificateResource(RaServices& service, Store& store) : service_(service), store_(store) {}

    void list(const Principal& who, const http::Request& req, http::Response& res);
    void show(const Principal& who, const http::Request& req, http::Response& res);
    void pem(const Principal& who, const http::Request& req, http::Response& res);
    void revoke(const Principal& who, const http::Request& req, http::Response& res);
    void reasons(const Principal& who, const http::Request& req, http::Response& res);

private:
    // The path's serial, or AdminError not_found.
    CertificateRecord find(const http::Request& req);

    RaServices& service_;
    Store& store_;
};

}  // namespace scep
