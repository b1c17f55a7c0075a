// ra/http/server.cc's private parts, shared with connection.h: the
// listener's state (Server::Impl) and what connections need of it. Included
// only by server.cc.
#pragma once

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <unordered_map>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <openssl/ssl.h>

#include "ra/http/admission.h"
#include "ra/http/parser.h"
#include "ra/http/server.h"
#include "ra/http/worker_pool.h"
#include "ra/ops/event_log.h"

namespace scep::http {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

constexpr auto kStopGrace = std::chrono::seconds(10);
// After a response that closes the connection the client may still be
// sending (a flood, an unread body): read and drop that for a moment, so
// closing does not reset the connection before the client read the answer.
constexpr auto kLingerTime = std::chrono::seconds(2);
constexpr std::size_t kLingerBytes = 1024 * 1024;
// Refusals audited per listener: a burst, then one per second.
constexpr double kAuditBurst = 30;
constexpr double kAuditPerSecond = 1;
constexpr auto kRefusalLogInterval = std::chrono::seconds(10);
constexpr std::size_t kReadChunk = 16 * 1024;
constexpr std::size_t kFirstReadChunk = 1024;

inline std::string addressOf(const tcp::socket& socket) {
    beast::error_code ec;
    net::ip::address address = socket.remote_endpoint(ec).address();
    if (ec) {
        return "";
    }
    if (address.is_v6() && address.to_v6().is_v4_mapped()) {
        address = net::ip::make_address_v4(net::ip::v4_mapped, address.to_v6());
    }
    return address.to_string();
}

inline std::string clipped(std::string text, std::size_t size) {
    if (text.size() > size) {
        text.resize(size);
        text += "...";
    }
    return text;
}

class ConnectionBase {
public:
    virtual ~ConnectionBase() = default;
    virtual void close() = 0;
};

struct Server::Impl {
    Impl(ServerOptions options_in, Router router_in, ServerHooks hooks_in, EventLog& log_in)
        : options(std::move(options_in)),
          router(std::move(router_in)),
          hooks(std::move(hooks_in)),
          log(log_in),
          parser_limits{options.limits.max_header_size, options.limits.max_header_fields,
                        options.max_body},
          admission(options.limits.max_connections, options.limits.max_connections_per_address),
          workers(options.limits.workers, options.limits.max_queue) {
        if (options.tls) {
            tls = std::make_unique<net::ssl::context>(net::ssl::context::tls_server);
            if (!options.tls(*tls->native_handle())) {
                throw std::runtime_error("cannot set up TLS for the " + options.name + " listener");
            }
            // Idle TLS connections give their record buffers back.
            SSL_CTX_set_mode(tls->native_handle(), SSL_MODE_RELEASE_BUFFERS);
        }
    }

    void listen();
    void accept();
    void onAccept(const beast::error_code& ec, tcp::socket socket);
    void noteRefusals(bool force);
    void beginStop();
    void forget(Admission::Id id);
    void handle(Request& request, Response& response) const;
    bool takeAuditToken(std::string& note);
    Response fallbackResponse(int status, const std::string& reason) const;

    ServerOptions options;
    Router router;
    ServerHooks hooks;
    EventLog& log;
    ParserLimits parser_limits;
    std::unique_ptr<net::ssl::context> tls;
    Admission admission;
    std::unordered_map<Admission::Id, std::weak_ptr<ConnectionBase>> live;
    Admission::Id next_id = 1;
    bool stopping = false;
    double audit_tokens = kAuditBurst;
    Clock::time_point audit_refilled = Clock::now();
    std::size_t unaudited = 0;
    Clock::time_point refusals_logged{};
    std::size_t refused_address = 0;
    std::size_t refused_full = 0;
    std::size_t evicted = 0;
    std::thread io_thread;
    WorkerPool workers;
    // Destroyed first: pending handlers (and the connections they hold) go
    // before the bookkeeping above.
    net::io_context io{1};
    std::optional<tcp::acceptor> acceptor;
    std::optional<net::steady_timer> retry_timer;
    std::optional<net::steady_timer> grace_timer;
};

}  // namespace scep::http
