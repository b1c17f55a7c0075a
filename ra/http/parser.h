// One HTTP/1.x request read with bounds: Beast's parser does the syntax,
// this class stores into our Request and adds what Beast lacks (a header
// field count, a refusal per limit). Bytes in, Request or Refusal out: no
// I/O, so tests and fuzzers can drive it.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <boost/beast/http/basic_parser.hpp>

#include "ra/http/message.h"

namespace scep::http {

struct ParserLimits {
    std::size_t header_bytes = 16 * 1024;  // request line and fields
    std::size_t header_fields = 100;
    std::size_t body_bytes = 64 * 1024;
};

// Why a request is refused before any handler sees it.
struct Refusal {
    int status = 0;      // 0: none
    std::string reason;  // short, for the client and the audit trail
};

// Where RequestParser::feed() stopped.
enum class FeedStop {
    need_more,  // everything it could take is taken: read more
    header,     // the header just completed and passed refusalAfterHeader() (once)
    done,       // the request is complete
    refused,    // a parse error or refusalAfterHeader(): answer FeedResult::refusal
};

struct FeedResult {
    FeedStop stop = FeedStop::need_more;
    std::size_t used = 0;  // bytes taken from the front of the input: drop them
    Refusal refusal;       // when refused
};

class RequestParser : public boost::beast::http::basic_parser<true> {
public:
    explicit RequestParser(const ParserLimits& limits);

    Request& request() { return request_; }
    // After put() failed: the refusal that error means.
    Refusal refusalFor(const boost::beast::error_code& error) const;
    // After the header: a refusal before the body is read, if any.
    Refusal refusalAfterHeader() const;
    bool expectsContinue() const { return expect_continue_; }

    // Puts `bytes` (what has arrived and was not taken yet) until the parser
    // needs more, the header completes, the request is complete, or it is
    // refused. The one loop the server, the fuzzer and the tests drive it with;
    // after FeedStop::header, call again with what is left.
    FeedResult feed(std::string_view bytes);

private:
    using string_view = boost::beast::string_view;
    using error_code = boost::beast::error_code;
    using field = boost::beast::http::field;
    using verb = boost::beast::http::verb;

    void on_request_impl(verb method, string_view method_text, string_view target, int version,
                         error_code& ec) override;
    void on_response_impl(int, string_view, int, error_code& ec) override;
    void on_field_impl(field name, string_view name_text, string_view value,
                       error_code& ec) override;
    void on_header_impl(error_code& ec) override;
    void on_body_init_impl(const boost::optional<std::uint64_t>& content_length,
                           error_code& ec) override;
    std::size_t on_body_impl(string_view body, error_code& ec) override;
    void on_chunk_header_impl(std::uint64_t, string_view, error_code& ec) override;
    std::size_t on_chunk_body_impl(std::uint64_t, string_view, error_code& ec) override;
    void on_finish_impl(error_code& ec) override;

    ParserLimits limits_;
    Request request_;
    std::size_t fields_ = 0;
    bool too_many_fields_ = false;
    bool transfer_encoding_ = false;
    bool expect_continue_ = false;
    bool header_reported_ = false;
};

// "GET /scep" from the start of a raw request, for audit records of
// requests refused before they parsed (printable, at most ~120 bytes).
std::string describeRequestLine(std::string_view raw);

}  // namespace scep::http
