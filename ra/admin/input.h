// What the admin API reads from clients, as pure functions of the query
// parameters or the JSON body: testable and fuzzable without a server.
// Each throws BadInput (answered 400) with a reason for the client.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "ra/admin/tokens.h"
#include "ra/http/message.h"
#include "ra/store/store.h"

namespace scep {

class BadInput : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// "00:1A:2B:3C:4D:5E" from any usual notation, or nullopt.
std::optional<std::string> normalizeMac(const std::string& text);

// `name` as a whole number in [min, max], `fallback` when absent.
std::int64_t integerParam(const http::Params& params, const char* name, std::int64_t fallback,
                          std::int64_t min, std::int64_t max);

// GET /api/requests: status, model, mac, q, since, until, limit, offset.
RequestFilter parseRequestFilter(const http::Params& params);
// GET /api/certificates: q (text, serial or MAC), status, expiring_within_days,
// limit, offset; `now` in unix seconds.
CertificateFilter parseCertificateFilter(const http::Params& params, std::int64_t now);

struct AuditPage {
    std::size_t limit = 100;
    std::int64_t before = 0;  // 0: from the newest
};
AuditPage parseAuditPage(const http::Params& params);

// The path id of /api/requests/<id>; AdminError not_found when too long.
std::int64_t parseRequestId(const std::string& digits);

// A POST body: empty, or a JSON object.
nlohmann::json parseJsonBody(const std::string& body);
// {"reason": name or 0-10}: the RFC 5280 code, 0 when absent, -1 when a
// number is out of range (the service refuses it).
int parseRevocationReason(const nlohmann::json& body);
// {"reason": "..."} of 1-500 characters.
std::string parseRejectReason(const nlohmann::json& body);

struct NewTokenInput {
    std::string name;
    Role role = Role::viewer;
};
// {"name": ..., "role": "viewer" | "approver"}.
NewTokenInput parseNewToken(const nlohmann::json& body);

}  // namespace scep
