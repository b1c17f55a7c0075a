#include "ra/http/parser.h"

#include <strings.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>

namespace scep::http {

namespace beast_http = boost::beast::http;

RequestParser::RequestParser(const ParserLimits& limits) : limits_(limits) {
    header_limit(static_cast<std::uint32_t>(limits.header_bytes));
    body_limit(limits.body_bytes);
}

Refusal RequestParser::refusalFor(const boost::beast::error_code& error) const {
    if (too_many_fields_) {
        return {431, "more than " + std::to_string(limits_.header_fields) + " header fields"};
    }
    if (error == beast_http::error::header_limit) {
        return {431, "request line and header fields over " + std::to_string(limits_.header_bytes) +
                         " bytes"};
    }
    if (error == beast_http::error::body_limit) {
        return {413, "body over " + std::to_string(limits_.body_bytes) + " bytes"};
    }
    return {400, "malformed request (" + error.message() + ")"};
}

Refusal RequestParser::refusalAfterHeader() const {
    // Chunked bodies are refused unread: SCEP clients and the console always
    // send a Content-Length, and a body of unknown length is what floods use.
    if (transfer_encoding_) {
        return {411, "request bodies need a Content-Length (Transfer-Encoding refused)"};
    }
    return {};
}

FeedResult RequestParser::feed(std::string_view bytes) {
    FeedResult result;
    while (result.used < bytes.size() && !is_done()) {
        boost::beast::error_code ec;
        const std::size_t used =
            put(boost::asio::buffer(bytes.data() + result.used, bytes.size() - result.used), ec);
        result.used += used;
        if (ec == beast_http::error::need_more) {
            return result;
        }
        if (ec) {
            result.stop = FeedStop::refused;
            result.refusal = refusalFor(ec);
            return result;
        }
        if (is_header_done() && !header_reported_) {
            header_reported_ = true;
            result.refusal = refusalAfterHeader();
            result.stop = result.refusal.status != 0 ? FeedStop::refused : FeedStop::header;
            return result;
        }
        if (used == 0) {
            break;
        }
    }
    result.stop = is_done() ? FeedStop::done : FeedStop::need_more;
    return result;
}

void RequestParser::on_request_impl(verb, string_view method_text, string_view target, int version,
                                    error_code&) {
    request_.method = std::string(method_text);
    request_.target = std::string(target);
    request_.version = version == 10 ? 10 : 11;
}

void RequestParser::on_response_impl(int, string_view, int, error_code& ec) {
    ec = beast_http::error::bad_method;  // never a response
}

void RequestParser::on_field_impl(field name, string_view name_text, string_view value,
                                  error_code& ec) {
    if (++fields_ > limits_.header_fields) {
        too_many_fields_ = true;
        ec = beast_http::error::header_limit;
        return;
    }
    if (name == field::transfer_encoding) {
        transfer_encoding_ = true;
    } else if (name == field::expect && value.size() == 12 &&
               ::strncasecmp(value.data(), "100-continue", 12) == 0) {
        expect_continue_ = true;
    }
    request_.headers.emplace(std::string(name_text), std::string(value));
}

void RequestParser::on_header_impl(error_code&) {}

void RequestParser::on_body_init_impl(const boost::optional<std::uint64_t>& content_length,
                                      error_code&) {
    if (content_length) {
        request_.body.reserve(
            static_cast<std::size_t>(std::min<std::uint64_t>(*content_length, limits_.body_bytes)));
    }
}

std::size_t RequestParser::on_body_impl(string_view body, error_code&) {
    request_.body.append(body.data(), body.size());
    return body.size();
}

void RequestParser::on_chunk_header_impl(std::uint64_t, string_view, error_code& ec) {
    ec = beast_http::error::bad_transfer_encoding;  // refused after the header
}

std::size_t RequestParser::on_chunk_body_impl(std::uint64_t, string_view, error_code& ec) {
    ec = beast_http::error::bad_transfer_encoding;
    return 0;
}

void RequestParser::on_finish_impl(error_code&) {}

std::string describeRequestLine(std::string_view raw) {
    const std::size_t end = std::min({raw.find('\r'), raw.find('\n'), raw.find('?'), raw.size()});
    std::string out;
    for (char c : raw.substr(0, std::min<std::size_t>(end, 120))) {
        out += c >= 0x20 && c < 0x7f ? c : '?';
    }
    // Drop the version: what remains is "METHOD /path".
    if (const auto space = out.find(" HTTP/"); space != std::string::npos) {
        out.resize(space);
    }
    return out;
}

}  // namespace scep::http
