// The HTTP/1.x request parser both listeners run on every byte a client
// sends (ra/http/parser.h), fed in pieces the way reads arrive, then what
// the handlers do with a parsed request: split the target into path and
// parameters, and decode a GET message= value. The trailing input bytes
// choose the piece size and whether tight limits apply.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz/fuzz_support.h"
#include "ra/http/message.h"
#include "ra/http/parser.h"
#include "ra/scep/routes.h"

using namespace scep;

namespace {

void checkRefusal(const http::Refusal& refusal) {
    fuzz::require(refusal.status == 400 || refusal.status == 411 || refusal.status == 413 ||
                      refusal.status == 431,
                  "a refusal is 400, 411, 413 or 431");
    fuzz::require(!refusal.reason.empty(), "a refusal says why");
}

void handle(const http::Request& request, const http::ParserLimits& limits) {
    fuzz::require(request.body.size() <= limits.body_bytes, "the body stays within its limit");
    fuzz::require(request.headers.size() <= limits.header_fields, "at most header_fields fields");
    std::string path;
    http::Params params;
    http::splitTarget(request.target, path, params);
    for (const auto& [name, value] : params) {
        if (const auto message = decodeMessageParameter(value)) {
            fuzz::require(message->size() <= value.size(), "decoding never grows");
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider input(data, size);
    http::ParserLimits limits;
    if (input.ConsumeBool()) {
        limits = {256, 4, 512};
    }
    const auto step = input.ConsumeIntegralInRange<std::size_t>(1, 512);
    const std::string raw = input.ConsumeRemainingBytesAsString();

    const std::string line = http::describeRequestLine(raw);
    fuzz::require(line.size() <= 160, "an audited request line is short");
    for (unsigned char c : line) {
        fuzz::require(c >= 0x20 && c <= 0x7e, "an audited request line is printable");
    }

    // As ra/http/server.cc does: feed what has arrived, read more on
    // need_more, stop at a refusal.
    http::RequestParser parser(limits);
    std::string pending;
    for (std::size_t at = 0; at < raw.size() && !parser.is_done(); at += step) {
        pending += raw.substr(at, step);
        for (auto stop = http::FeedStop::header; stop == http::FeedStop::header;) {
            const http::FeedResult fed = parser.feed(pending);
            pending.erase(0, fed.used);
            stop = fed.stop;
            if (stop == http::FeedStop::refused) {
                checkRefusal(fed.refusal);
                return 0;
            }
        }
    }
    if (parser.is_done()) {
        handle(parser.request(), limits);
    }
    return 0;
}
