#include "ra/admin/input.h"

#include <cctype>

#include "common/text.h"
#include "ra/admin/admin_error.h"
#include "ra/admin/revocation.h"
#include "ra/admin/tokens.h"

namespace scep {

namespace {

using nlohmann::json;

std::string param(const http::Params& params, const char* name) {
    const auto it = params.find(name);
    return it == params.end() ? std::string() : it->second;
}

}  // namespace

std::optional<std::string> normalizeMac(const std::string& text) {
    std::string hex;
    for (char c : text) {
        if (c == ':' || c == '-' || c == '.') {
            continue;
        }
        if (!std::isxdigit(static_cast<unsigned char>(c))) {
            return std::nullopt;
        }
        hex += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    if (hex.size() != 12) {
        return std::nullopt;
    }
    return macText(hex);
}

std::int64_t integerParam(const http::Params& params, const char* name, std::int64_t fallback,
                          std::int64_t min, std::int64_t max) {
    if (params.count(name) == 0) {
        return fallback;
    }
    const std::string text = param(params, name);
    if (text.empty() || text.size() > 18 ||
        text.find_first_not_of("0123456789") != std::string::npos) {
        throw BadInput(std::string("parameter '") + name + "' must be a whole number");
    }
    const std::int64_t value = std::stoll(text);
    if (value < min || value > max) {
        throw BadInput(std::string("parameter '") + name + "' must be from " + std::to_string(min) +
                       " to " + std::to_string(max));
    }
    return value;
}

RequestFilter parseRequestFilter(const http::Params& params) {
    RequestFilter filter;
    if (const std::string status = param(params, "status"); !status.empty()) {
        filter.status = requestStatusFromName(status);
        if (!filter.status) {
            throw BadInput("status must be pending, issued or rejected");
        }
    }
    filter.model = param(params, "model");
    if (const std::string mac = param(params, "mac"); !mac.empty()) {
        const auto normalized = normalizeMac(mac);
        if (!normalized) {
            throw BadInput("mac must be 12 hex digits, separators optional");
        }
        filter.mac = *normalized;
    }
    filter.text = param(params, "q");
    filter.since = integerParam(params, "since", 0, 0, INT64_MAX / 2);
    filter.until = integerParam(params, "until", 0, 0, INT64_MAX / 2);
    filter.limit = static_cast<std::size_t>(integerParam(params, "limit", 50, 1, 500));
    filter.offset = static_cast<std::size_t>(integerParam(params, "offset", 0, 0, INT64_MAX / 2));
    return filter;
}

CertificateFilter parseCertificateFilter(const http::Params& params, std::int64_t now) {
    CertificateFilter filter;
    filter.now = now;
    const std::string q = param(params, "q");
    const bool separated = q.find_first_of(":-.") != std::string::npos;
    const auto mac = separated ? normalizeMac(q) : std::nullopt;
    filter.text = mac ? *mac : q;
    const std::string status = param(params, "status");
    if (status == "valid") {
        filter.state = CertificateState::valid;
    } else if (status == "revoked") {
        filter.state = CertificateState::revoked;
    } else if (status == "expired") {
        filter.state = CertificateState::expired;
    } else if (!status.empty() && status != "all") {
        throw BadInput("status must be valid, revoked or expired");
    }
    const std::int64_t days = integerParam(params, "expiring_within_days", 0, 0, 36500);
    if (days > 0) {
        filter.expiring_before = filter.now + days * 86400;
    }
    filter.limit = static_cast<std::size_t>(integerParam(params, "limit", 50, 1, 500));
    filter.offset = static_cast<std::size_t>(integerParam(params, "offset", 0, 0, INT64_MAX / 2));
    return filter;
}

AuditPage parseAuditPage(const http::Params& params) {
    AuditPage page;
    page.limit = static_cast<std::size_t>(integerParam(params, "limit", 100, 1, 500));
    page.before = integerParam(params, "before", 0, 0, INT64_MAX / 2);
    return page;
}

std::int64_t parseRequestId(const std::string& digits) {
    if (digits.empty() || digits.size() > 18 ||
        digits.find_first_not_of("0123456789") != std::string::npos) {
        throw AdminError(AdminError::Kind::not_found, "no request " + digits.substr(0, 40));
    }
    return std::stoll(digits);
}

json parseJsonBody(const std::string& body) {
    if (body.empty()) {
        return json::object();
    }
    json parsed = json::parse(body, nullptr, false);
    if (parsed.is_discarded() || !parsed.is_object()) {
        throw BadInput("the body must be a JSON object");
    }
    return parsed;
}

int parseRevocationReason(const json& body) {
    if (!body.contains("reason")) {
        return 0;
    }
    const json& value = body["reason"];
    if (value.is_number_integer()) {
        // Range-checked before narrowing: 2^32 + 1 must not become 1.
        const auto number = value.get<std::int64_t>();
        return number >= 0 && number <= 10 ? static_cast<int>(number) : -1;
    }
    if (value.is_string()) {
        if (const auto code = revocationReasonCode(value.get<std::string>())) {
            return *code;
        }
    }
    throw BadInput("reason must be an RFC 5280 CRLReason name or number");
}

std::string parseRejectReason(const json& body) {
    const auto it = body.find("reason");
    if (it == body.end() || !it->is_string() || it->get<std::string>().empty() ||
        it->get<std::string>().size() > 500) {
        throw BadInput("a rejection needs a \"reason\" of 1-500 characters");
    }
    return it->get<std::string>();
}

NewTokenInput parseNewToken(const json& body) {
    NewTokenInput input;
    const auto text = [&body](const char* key) {
        const auto it = body.find(key);
        if (it != body.end() && !it->is_string()) {
            throw BadInput(std::string("\"") + key + "\" must be a string");
        }
        return it == body.end() ? std::string() : it->get<std::string>();
    };
    input.name = text("name");
    const auto role = roleFromName(text("role"));
    if (!isValidTokenName(input.name)) {
        throw BadInput("name must be 1-64 of letters, digits, '.', '_', '@', '-'");
    }
    if (!role) {
        throw BadInput("role must be viewer or approver");
    }
    input.role = *role;
    return input;
}

}  // namespace scep
