#include "ra/http/message.h"

#include <strings.h>

#include <cctype>

namespace scep::http {

namespace {

int hexValue(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

template <typename Map>
std::string firstValue(const Map& map, const std::string& key) {
    const auto it = map.find(key);
    return it == map.end() ? std::string() : it->second;
}

// Header names and values never carry line breaks into the response.
void appendClean(std::string& out, const std::string& text) {
    for (char c : text) {
        if (c != '\r' && c != '\n') {
            out += c;
        }
    }
}

}  // namespace

bool CaseInsensitiveLess::operator()(const std::string& a, const std::string& b) const {
    return ::strcasecmp(a.c_str(), b.c_str()) < 0;
}

std::string Request::get_header_value(const std::string& name) const {
    return firstValue(headers, name);
}

std::string Request::get_param_value(const std::string& name) const {
    return firstValue(params, name);
}

void Response::set_content(std::string content, const std::string& content_type) {
    body = std::move(content);
    set_header("Content-Type", content_type);
}

void Response::set_content(const char* data, std::size_t size, const std::string& content_type) {
    set_content(std::string(data, size), content_type);
}

void Response::set_header(const std::string& name, const std::string& value) {
    headers.erase(name);
    headers.emplace(name, value);
}

std::string Response::get_header_value(const std::string& name) const {
    return firstValue(headers, name);
}

std::string percentDecode(std::string_view text, bool plus_is_space) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        const bool escape = c == '%' && i + 2 < text.size() && hexValue(text[i + 1]) >= 0 &&
                            hexValue(text[i + 2]) >= 0;
        if (escape) {
            out += static_cast<char>(hexValue(text[i + 1]) * 16 + hexValue(text[i + 2]));
            i += 2;
        } else if (c == '+' && plus_is_space) {
            out += ' ';
        } else {
            out += c;
        }
    }
    return out;
}

Params parseQuery(std::string_view query) {
    Params params;
    std::size_t start = 0;
    while (start < query.size()) {
        const std::size_t end = std::min(query.find('&', start), query.size());
        const std::string_view pair = query.substr(start, end - start);
        if (!pair.empty()) {
            const std::size_t equals = pair.find('=');
            const std::string_view name = pair.substr(0, equals);
            const std::string_view value =
                equals == std::string_view::npos ? std::string_view() : pair.substr(equals + 1);
            params.emplace(percentDecode(name, true), percentDecode(value, true));
        }
        start = end + 1;
    }
    return params;
}

void splitTarget(std::string_view target, std::string& path, Params& params) {
    const std::size_t query = target.find('?');
    path = percentDecode(target.substr(0, query), false);
    params = query == std::string_view::npos ? Params() : parseQuery(target.substr(query + 1));
}

const char* statusText(int status) {
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 411:
        return "Length Required";
    case 413:
        return "Payload Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    default:
        return "";
    }
}

std::string serialize(const Response& response, int version, bool keep_alive, bool head) {
    std::string out;
    out.reserve(256 + (head ? 0 : response.body.size()));
    out += version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
    out += std::to_string(response.status);
    out += ' ';
    out += statusText(response.status);
    out += "\r\n";
    for (const auto& [name, value] : response.headers) {
        if (::strcasecmp(name.c_str(), "Connection") == 0 ||
            ::strcasecmp(name.c_str(), "Content-Length") == 0) {
            continue;  // ours to set
        }
        appendClean(out, name);
        out += ": ";
        appendClean(out, value);
        out += "\r\n";
    }
    if (!keep_alive && version != 10) {
        out += "Connection: close\r\n";
    } else if (keep_alive && version == 10) {
        out += "Connection: keep-alive\r\n";
    }
    const bool bodiless = response.status == 204 || response.status == 304;  // RFC 9110 8.6
    if (!bodiless) {
        out += "Content-Length: " + std::to_string(response.body.size()) + "\r\n";
    }
    out += "\r\n";
    if (!head && !bodiless) {
        out += response.body;
    }
    return out;
}

}  // namespace scep::http
