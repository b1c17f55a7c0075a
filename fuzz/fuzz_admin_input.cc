// What the admin API reads from a client (ra/admin/input.h): the query
// string of its GET routes and the JSON body of its POSTs. Input: the query,
// a newline, the body. Only the refusals the API answers with 400/404 may
// escape the parsers (the guard in ra/admin/api.cc); anything else would be a
// 500. Parsed values keep their documented ranges.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "fuzz/fuzz_support.h"
#include "ra/admin/admin_error.h"
#include "ra/admin/input.h"
#include "ra/http/message.h"

using namespace scep;
using nlohmann::json;

namespace {

std::string dumpSafely(const json& value) {
    return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

template <typename Parse>
void refusedOr(Parse parse) {
    try {
        parse();
    } catch (const AdminError&) {
    } catch (const BadInput&) {
    } catch (const json::exception&) {
    }
}

void checkMac(const std::string& text) {
    const auto mac = normalizeMac(text);
    fuzz::require(!mac || (mac->size() == 17 && normalizeMac(*mac) == mac),
                  "a normalised MAC is 17 characters and normalises to itself");
}

void query(std::string_view text) {
    const http::Params params = http::parseQuery(text);
    for (const auto& [name, value] : params) {
        checkMac(value);
    }
    refusedOr([&] {
        const RequestFilter filter = parseRequestFilter(params);
        fuzz::require(filter.limit >= 1 && filter.limit <= 500, "request page size 1-500");
    });
    refusedOr([&] {
        const CertificateFilter filter = parseCertificateFilter(params, 1700000000);
        fuzz::require(filter.limit >= 1 && filter.limit <= 500, "certificate page size 1-500");
    });
    refusedOr([&] {
        const AuditPage page = parseAuditPage(params);
        fuzz::require(page.limit >= 1 && page.limit <= 500, "audit page size 1-500");
    });
    // The route's pattern (\d+) hands over only digits.
    const std::string digits(text.substr(0, text.find_first_not_of("0123456789")));
    if (!digits.empty()) {
        refusedOr([&] { parseRequestId(digits); });
    }
}

void body(const std::string& text) {
    refusedOr([&] {
        const json parsed = parseJsonBody(text);
        fuzz::require(parsed.is_object(), "a body is a JSON object");
        refusedOr([&] {
            const int reason = parseRevocationReason(parsed);
            fuzz::require(reason >= -1 && reason <= 10, "revocation reason -1..10");
        });
        refusedOr([&] {
            const std::string reason = parseRejectReason(parsed);
            fuzz::require(!reason.empty() && reason.size() <= 500, "reject reason 1-500");
        });
        refusedOr([&] {
            const NewTokenInput token = parseNewToken(parsed);
            fuzz::require(token.role == Role::viewer || token.role == Role::approver,
                          "a known role");
            fuzz::require(!token.name.empty() && token.name.size() <= 64, "name of 1-64");
        });
        dumpSafely(parsed);
    });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    const std::size_t newline = input.find('\n');
    query(input.substr(0, newline));
    body(newline == std::string_view::npos ? std::string()
                                           : std::string(input.substr(newline + 1)));
    return 0;
}
