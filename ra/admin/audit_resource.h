// /api/audit: the audit trail, newest first, in pages.
#pragma once

#include "ra/admin/handler.h"
#include "ra/store/store.h"

namespace scep {

class AuditResource {
public:
    explicit AuditResource(Store& store) : store_(store) {}

    void list(const Principal& who, const http::Request& req, http::Response& res);

private:
    Store& store_;
};

}  // namespace scep
