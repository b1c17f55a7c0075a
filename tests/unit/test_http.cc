// ra/http: request parsing with limits, routing, connection admission, the
// worker pool, and a real server on the loopback interface.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include <boost/beast/http/error.hpp>

#include "ra/http/admission.h"
#include "ra/http/message.h"
#include "ra/http/parser.h"
#include "ra/http/router.h"
#include "ra/http/server.h"
#include "ra/http/worker_pool.h"
#include "ra/ops/event_log.h"

using namespace scep;
using namespace scep::http;

namespace {

struct Parsed {
    bool done = false;
    Refusal refusal;  // from a parse error, or refusalAfterHeader()
    Request request;
    bool expects_continue = false;
};

// Feeds `raw` in pieces of `step` bytes, the way reads arrive.
Parsed parse(const std::string& raw, ParserLimits limits = {}, std::size_t step = 7) {
    RequestParser parser(limits);
    Parsed out;
    std::string pending;
    for (std::size_t at = 0; at < raw.size() && !parser.is_done(); at += step) {
        pending += raw.substr(at, step);
        for (FeedStop stop = FeedStop::header; stop == FeedStop::header;) {
            const FeedResult fed = parser.feed(pending);
            pending.erase(0, fed.used);
            stop = fed.stop;
            if (stop == FeedStop::refused) {
                out.refusal = fed.refusal;
                return out;
            }
            if (stop == FeedStop::header) {
                out.expects_continue = parser.expectsContinue();
            }
        }
    }
    out.done = parser.is_done();
    out.request = parser.request();
    return out;
}

// A client socket on the loopback, connected to `port`.
class Client {
public:
    explicit Client(std::uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_port = htons(port);
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
        timeval timeout{10, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    }
    ~Client() { ::close(fd_); }
    bool send(const std::string& data) {
        const ssize_t sent = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
        return sent == static_cast<ssize_t>(data.size());
    }
    // Everything until the peer closes (or 10 s pass).
    std::string readAll() {
        std::string out;
        char buf[4096];
        ssize_t n;
        while ((n = ::recv(fd_, buf, sizeof(buf), 0)) > 0) {
            out.append(buf, static_cast<std::size_t>(n));
        }
        return out;
    }
    // One response with a Content-Length body.
    std::string readResponse() {
        std::string out;
        char buf[4096];
        for (;;) {
            const auto end = out.find("\r\n\r\n");
            if (end != std::string::npos) {
                const auto length = out.find("Content-Length: ");
                const std::size_t body =
                    length == std::string::npos ? 0 : std::stoul(out.substr(length + 16));
                if (out.size() >= end + 4 + body) {
                    return out;
                }
            }
            const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
            if (n <= 0) {
                return out;
            }
            out.append(buf, static_cast<std::size_t>(n));
        }
    }

private:
    int fd_;
};

}  // namespace

TEST_CASE("query text and paths are percent-decoded; pairs split at the first '='") {
    CHECK(percentDecode("a%20b+c%2Bd", true) == "a b c+d");
    CHECK(percentDecode("a%20b+c", false) == "a b+c");
    CHECK(percentDecode("%zz%4", true) == "%zz%4");  // malformed escapes stay
    CHECK(percentDecode("%", false) == "%");
    const Params params = parseQuery("operation=PKIOperation&message=AB==&empty&x=1&x=2&&=v");
    CHECK(params.find("message")->second == "AB==");
    CHECK(params.find("empty")->second.empty());
    CHECK(params.count("x") == 2);
    CHECK(params.find("x")->second == "1");
    CHECK(params.find("")->second == "v");
    std::string path;
    Params split;
    splitTarget("/cgi-bin/pkiclient%2Eexe?operation=GetCACaps", path, split);
    CHECK(path == "/cgi-bin/pkiclient.exe");
    CHECK(split.find("operation")->second == "GetCACaps");
}

TEST_CASE("responses: status line of the request's version, our own framing headers") {
    Response response;
    response.set_content("hi", "text/plain");
    response.set_header("X-Evil", "a\r\nSet-Cookie: x");
    response.set_header("Content-Length", "999");
    const std::string http10 = serialize(response, 10, false, false);
    CHECK(http10.rfind("HTTP/1.0 200 OK\r\n", 0) == 0);
    CHECK(http10.find("Connection:") == std::string::npos);
    CHECK(http10.find("X-Evil: aSet-Cookie: x\r\n") != std::string::npos);
    CHECK(http10.find("Content-Length: 2\r\n\r\nhi") != std::string::npos);
    CHECK(http10.find("999") == std::string::npos);
    CHECK(serialize(response, 10, true, false).find("Connection: keep-alive\r\n") !=
          std::string::npos);
    CHECK(serialize(response, 11, false, false).find("Connection: close\r\n") != std::string::npos);
    const std::string head = serialize(response, 11, true, true);
    CHECK(head.find("Content-Length: 2\r\n\r\n") == head.size() - 21);
    Response empty;
    empty.status = 204;
    CHECK(serialize(empty, 11, true, false) == "HTTP/1.1 204 No Content\r\n\r\n");
    response.status = 431;
    CHECK(serialize(response, 11, false, false)
              .rfind("HTTP/1.1 431 Request Header Fields Too Large", 0) == 0);
}

TEST_CASE("routes: exact paths, regex patterns with captures, HEAD as GET") {
    Router router;
    int hit = 0;
    router.Get("/cgi-bin/pkiclient.exe", [&](const Request&, Response&) { hit = 1; });
    router.Post(R"(/api/requests/(\d+)/approve)", [&](const Request&, Response&) { hit = 2; });
    router.Get(R"(/api/.*)", [&](const Request&, Response&) { hit = 3; });
    const auto route = [&](const std::string& method, const std::string& path) {
        Request request;
        request.method = method;
        request.path = path;
        hit = 0;
        const Handler* handler = router.find(request);
        if (handler) {
            Response response;
            (*handler)(request, response);
        }
        return std::make_pair(hit, request.matches);
    };
    CHECK(route("GET", "/cgi-bin/pkiclient.exe").first == 1);
    CHECK(route("HEAD", "/cgi-bin/pkiclient.exe").first == 1);
    CHECK(route("GET", "/cgi-bin/pkiclientXexe").first == 0);  // '.' is literal in exact paths
    CHECK(route("POST", "/cgi-bin/pkiclient.exe").first == 0);
    const auto approve = route("POST", "/api/requests/42/approve");
    CHECK(approve.first == 2);
    CHECK(approve.second == std::vector<std::string>{"/api/requests/42/approve", "42"});
    CHECK(route("POST", "/api/requests/x/approve").first == 0);
    CHECK(route("GET", "/api/anything").first == 3);
}

TEST_CASE("a request parses into method, target, version, headers and body") {
    const Parsed parsed = parse(
        "POST /scep?operation=PKIOperation HTTP/1.1\r\nHost: x\r\ncontent-type: a/b\r\n"
        "Content-Length: 5\r\n\r\nhello");
    REQUIRE(parsed.done);
    CHECK(parsed.request.method == "POST");
    CHECK(parsed.request.target == "/scep?operation=PKIOperation");
    CHECK(parsed.request.version == 11);
    CHECK(parsed.request.get_header_value("Content-Type") == "a/b");
    CHECK(parsed.request.body == "hello");
    const Parsed old = parse("GET /scep?operation=GetCACaps HTTP/1.0\r\n\r\n");
    REQUIRE(old.done);
    CHECK(old.request.version == 10);
    CHECK_FALSE(old.request.has_header("Host"));
}

TEST_CASE("header size and count, body size and chunked bodies are refused") {
    ParserLimits limits;
    limits.header_bytes = 1024;
    limits.header_fields = 10;
    limits.body_bytes = 100;
    const std::string start = "GET /scep HTTP/1.1\r\n";
    std::string flood = start;
    while (flood.size() < 4096) {
        flood += "X-H: " + std::string(100, 'A') + "\r\n";
    }
    CHECK(parse(flood, limits, 512).refusal.status == 431);
    std::string many = start;
    for (int i = 0; i < 11; ++i) {
        many += "X-" + std::to_string(i) + ": 1\r\n";
    }
    const Parsed too_many = parse(many + "\r\n", limits);
    CHECK(too_many.refusal.status == 431);
    CHECK(too_many.refusal.reason.find("more than 10 header fields") != std::string::npos);
    CHECK(parse(start + "X: 1\r\n\r\n", limits).done);
    const Parsed big = parse("POST /scep HTTP/1.1\r\nContent-Length: 101\r\n\r\n", limits);
    CHECK(big.refusal.status == 413);
    const Parsed chunked = parse(
        "POST /scep HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", limits);
    CHECK(chunked.refusal.status == 411);
    CHECK(chunked.refusal.reason.find("Transfer-Encoding") != std::string::npos);
    CHECK(parse("NOT HTTP AT ALL\r\n\r\n", limits).refusal.status == 400);
    CHECK(parse("POST /scep HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n", limits)
              .expects_continue);
}

TEST_CASE("feed stops once at the header, then at the end, and leaves pipelined bytes") {
    RequestParser parser(ParserLimits{});
    const std::string first = "POST /scep HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
    const std::string next = "GET / HTTP/1.1\r\n\r\n";
    std::string pending = first + next;

    FeedResult fed = parser.feed(pending);
    CHECK(fed.stop == FeedStop::header);
    pending.erase(0, fed.used);
    fed = parser.feed(pending);
    CHECK(fed.stop == FeedStop::done);
    pending.erase(0, fed.used);
    CHECK(pending == next);
    CHECK(parser.request().body == "abc");
    CHECK(parser.feed(pending).stop == FeedStop::done);  // takes nothing once done

    RequestParser partial(ParserLimits{});
    fed = partial.feed("GET /scep HT");
    CHECK(fed.stop == FeedStop::need_more);

    RequestParser chunked(ParserLimits{});
    fed = chunked.feed("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    CHECK(fed.stop == FeedStop::refused);
    CHECK(fed.refusal.status == 411);
}

TEST_CASE("request lines for the audit trail are short and printable") {
    CHECK(describeRequestLine("GET /scep?operation=x HTTP/1.1\r\nHost: y") == "GET /scep");
    CHECK(describeRequestLine("POST /a\x01\xff HTTP/1.1\r\n") == "POST /a??");
    CHECK(describeRequestLine(std::string(5000, 'A')).size() == 120);
    CHECK(describeRequestLine("").empty());
}

TEST_CASE("admission: per-address cap, then the longest-waiting connection makes room") {
    Admission admission(3, 2);
    CHECK(admission.decide("10.0.0.1").verdict == Admission::Verdict::admit);
    admission.add(1, "10.0.0.1");
    admission.add(2, "10.0.0.1");
    CHECK(admission.decide("10.0.0.1").verdict == Admission::Verdict::refuse_address);
    admission.add(3, "10.0.0.2");
    // Full: the oldest waiting one goes, unless it is busy being answered.
    Admission::Decision full = admission.decide("10.0.0.3");
    CHECK(full.verdict == Admission::Verdict::evict_then_admit);
    CHECK(full.evict == 1);
    admission.setWaiting(1, false);
    CHECK(admission.decide("10.0.0.3").evict == 2);
    admission.setWaiting(1, true);  // waits for its next request: now the youngest
    CHECK(admission.decide("10.0.0.3").evict == 2);
    admission.setWaiting(1, false);
    admission.setWaiting(2, false);
    admission.setWaiting(3, false);
    CHECK(admission.decide("10.0.0.3").verdict == Admission::Verdict::refuse_full);
    admission.remove(1);
    CHECK(admission.total() == 2);
    CHECK(admission.fromAddress("10.0.0.1") == 1);
    CHECK(admission.decide("10.0.0.1").verdict == Admission::Verdict::admit);
    admission.remove(1);  // twice: harmless
    CHECK(admission.total() == 2);
}

TEST_CASE("the per-address cap counts IPv4 addresses and IPv6 /64 prefixes") {
    CHECK(admissionKey("192.0.2.7") == "192.0.2.7");
    CHECK(admissionKey("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64");
    CHECK(admissionKey("2001:db8:1:2:bbbb:cccc:dddd:eeee") == "2001:db8:1:2::/64");
    CHECK(admissionKey("2001:db8:1:3::1") == "2001:db8:1:3::/64");
    CHECK(admissionKey("::1") == "::/64");
    CHECK(admissionKey("not an address") == "not an address");
}

TEST_CASE("the worker pool refuses work beyond its queue instead of piling it up") {
    std::mutex mutex;
    std::condition_variable release;
    bool open = false;
    std::atomic<int> ran{0};
    {
        WorkerPool pool(1, 2);
        const auto blocked = [&] {
            std::unique_lock<std::mutex> lock(mutex);
            release.wait(lock, [&] { return open; });
            ++ran;
        };
        CHECK(pool.trySubmit(blocked));
        // The worker may not have taken the first task yet: 2 or 3 fit.
        int accepted = 1;
        while (accepted < 4 && pool.trySubmit(blocked)) {
            ++accepted;
        }
        CHECK(accepted <= 3);
        CHECK_FALSE(pool.trySubmit(blocked));
        {
            const std::lock_guard<std::mutex> lock(mutex);
            open = true;
        }
        release.notify_all();
        pool.stop();  // runs what was queued
        CHECK(ran == accepted);
        CHECK_FALSE(pool.trySubmit(blocked));
    }
}

TEST_CASE("the server answers, keeps alive, refuses floods and stays responsive") {
    EventLog log;
    ServerOptions options;
    options.name = "test";
    options.host = "127.0.0.1";
    options.limits.max_header_size = 4096;
    options.limits.max_connections_per_address = 64;
    options.limits.workers = 1;
    options.limits.max_queue = 1;
    options.max_body = 1024;
    Router router;
    std::mutex mutex;
    std::condition_variable release;
    bool open = true;
    router.Get("/hello", [](const Request& req, Response& res) {
        res.set_content("hello " + req.get_param_value("name"), "text/plain");
    });
    router.Get("/slow", [&](const Request&, Response& res) {
        std::unique_lock<std::mutex> lock(mutex);
        release.wait(lock, [&] { return open; });
        res.set_content("slow", "text/plain");
    });
    std::atomic<int> refusals{0};
    ServerHooks hooks;
    hooks.refused = [&](const Request& req, Response& res, const std::string& reason, bool) {
        ++refusals;
        res.set_content("refused " + req.method + " " + req.path + ": " + reason, "text/plain");
    };
    Server server(options, std::move(router), std::move(hooks), log);
    server.listen();
    server.start();
    const std::uint16_t port = server.port();
    {
        // A second listener on the same port is refused (no SO_REUSEPORT
        // sharing: another process must not take a share of the clients).
        ServerOptions same = options;
        same.port = port;
        Server second(same, Router(), ServerHooks(), log);
        CHECK_THROWS_WITH_AS(second.listen(), doctest::Contains("Address already in use"),
                             std::runtime_error);
    }

    SUBCASE("keep-alive over HTTP/1.1, one answer per request, then HTTP/1.0 closes") {
        Client client(port);
        REQUIRE(client.send("GET /hello?name=a%20b HTTP/1.1\r\nHost: x\r\n\r\n"));
        const std::string first = client.readResponse();
        CHECK(first.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
        CHECK(first.find("\r\n\r\nhello a b") != std::string::npos);
        REQUIRE(client.send("GET /hello?name=c HTTP/1.0\r\n\r\n"));
        const std::string second = client.readAll();
        CHECK(second.rfind("HTTP/1.0 200 OK\r\n", 0) == 0);
        CHECK(second.find("hello c") != std::string::npos);
    }
    SUBCASE("unknown paths are 404; a header flood is 431 and closed") {
        Client client(port);
        REQUIRE(client.send("GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"));
        CHECK(client.readResponse().rfind("HTTP/1.1 404 Not Found\r\n", 0) == 0);
        Client flood(port);
        flood.send("GET /hello HTTP/1.1\r\n");
        for (int i = 0; i < 200; ++i) {
            if (!flood.send("X-H: " + std::string(1000, 'A') + "\r\n")) {
                break;
            }
        }
        const std::string answer = flood.readAll();
        CHECK(answer.rfind("HTTP/1.1 431 ", 0) == 0);
        CHECK(answer.find("refused GET /hello: request line and header fields over 4096 bytes") !=
              std::string::npos);
        CHECK(answer.find("Connection: close") != std::string::npos);
        CHECK(refusals == 1);
    }
    SUBCASE("a full queue answers 503 with Retry-After at once") {
        {
            const std::lock_guard<std::mutex> lock(mutex);
            open = false;
        }
        Client busy(port);
        Client queued(port);
        Client refused(port);
        REQUIRE(busy.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"));
        std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the worker holds it
        REQUIRE(queued.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"));
        std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the queue holds it
        REQUIRE(refused.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
        const std::string answer = refused.readAll();
        CHECK(answer.rfind("HTTP/1.1 503 ", 0) == 0);
        CHECK(answer.find("Retry-After: 5\r\n") != std::string::npos);
        {
            const std::lock_guard<std::mutex> lock(mutex);
            open = true;
        }
        release.notify_all();
        CHECK(busy.readResponse().find("\r\n\r\nslow") != std::string::npos);
        CHECK(queued.readResponse().find("\r\n\r\nslow") != std::string::npos);
    }
    SUBCASE("stop: no new connections, idle ones closed, the request being answered finishes") {
        {
            const std::lock_guard<std::mutex> lock(mutex);
            open = false;
        }
        Client idle(port);
        Client busy(port);
        REQUIRE(busy.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"));
        std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the worker holds it
        server.stop();
        CHECK(idle.readAll().empty());  // closed without an answer
        {
            const std::lock_guard<std::mutex> lock(mutex);
            open = true;
        }
        release.notify_all();
        const std::string answer = busy.readAll();  // answered, then closed
        CHECK(answer.find("\r\n\r\nslow") != std::string::npos);
        CHECK(answer.find("Connection: close") != std::string::npos);
        server.wait();
        const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_port = htons(port);
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        CHECK(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0);
        ::close(fd);
    }
    server.stop();
    server.wait();
}
