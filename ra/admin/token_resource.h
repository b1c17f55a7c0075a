// /api/tokens: list (never the secrets), create (the secret shown once),
// delete.
#pragma once

#include "ra/admin/administration.h"
#include "ra/admin/handler.h"
#include "ra/store/store.h"

namespace scep {

class TokenResource {
public:
    TokenResource(Store& store, Administration& administration)
        : store_(store), administration_(administration) {}

    void list(const Principal& who, const http::Request& req, http::Response& res);
    void create(const Principal& who, const http::Request& req, http::Response& res);
    void remove(const Principal& who, const http::Request& req, http::Response& res);

private:
    Store& store_;
    Administration& administration_;
};

}  // namespace scep
