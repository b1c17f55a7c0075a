// What the admin API reads from a client: the query string of its GET
// routes and the JSON body of its POSTs. Input: the query, a newline, the
// body. Only the refusals the API answers with 400/404 may escape the
// parsers (the guard in admin_api.cc); anything else would be a 500.
//
// Once ra/admin_input.h (the admin API's pure input parsers) is in the tree,
// this target fuzzes those; until then it fuzzes the pure pieces the handlers
// share (normalizeMac, the body's JSON parse, requestToJson's details).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "fuzz/fuzz_support.h"
#include "ra/enrollment.h"

#if __has_include("ra/admin_input.h")
#include "ra/admin_input.h"
#include "ra/http/message.h"
#define FUZZ_ADMIN_INPUT 1
#else
#include "ra/admin_api.h"
#define FUZZ_ADMIN_INPUT 0
#endif

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
    } catch (const json::exception&) {
#if FUZZ_ADMIN_INPUT
    } catch (const BadInput&) {
#endif
    }
}

void checkMac(const std::string& text) {
    const auto mac = normalizeMac(text);
    fuzz::require(!mac || (mac->size() == 17 && normalizeMac(*mac) == mac),
                  "a normalised MAC is 17 characters and normalises to itself");
}

#if FUZZ_ADMIN_INPUT

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
        refusedOr([&] { parseNewToken(parsed); });
        dumpSafely(parsed);
    });
}

#else

void query(std::string_view text) {
    httplib::Params params;
    httplib::detail::parse_query_text(std::string(text), params);
    for (const auto& [name, value] : params) {
        checkMac(value);
    }
}

void body(const std::string& text) {
    refusedOr([&] {
        const json parsed = json::parse(text, nullptr, false);
        dumpSafely(parsed);
        RequestRecord record;
        record.details = text;  // what the authenticator stored, read back for the API
        dumpSafely(requestToJson(record));
    });
}

#endif

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    const std::size_t newline = input.find('\n');
    query(input.substr(0, newline));
    body(newline == std::string_view::npos ? std::string() : std::string(input.substr(newline + 1)));
    return 0;
}
