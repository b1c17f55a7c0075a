#include "ra/http/server.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <stdexcept>
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

#include "ra/ops/event_log.h"
#include "ra/http/admission.h"
#include "ra/http/parser.h"
#include "ra/http/worker_pool.h"

namespace scep::http {

namespace {

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

std::string addressOf(const tcp::socket& socket) {
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

std::string clipped(std::string text, std::size_t size) {
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

}  // namespace

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

namespace {

// One client connection: TLS handshake (HTTPS), then requests read under
// deadlines and limits, answered by a worker, written back, and either
// kept alive or closed. Lives on the listener's I/O thread; workers only
// post results back to it.
template <class Stream>
class Connection : public ConnectionBase, public std::enable_shared_from_this<Connection<Stream>> {
public:
    template <class... StreamArgs>
    Connection(Server::Impl& server, Admission::Id id, std::string peer, StreamArgs&&... args)
        : server_(server),
          id_(id),
          peer_(std::move(peer)),
          stream_(std::forward<StreamArgs>(args)...),
          buffer_(server.parser_limits.header_bytes + kReadChunk) {}

    // `handshake_deadline` only for HTTPS: counted from accept.
    void start(Clock::time_point handshake_deadline = {}) {
        if constexpr (std::is_same_v<Stream, TlsStream>) {
            lowest().expires_at(handshake_deadline);
            stream_.async_handshake(net::ssl::stream_base::server,
                                    [self = this->shared_from_this()](beast::error_code ec) {
                                        self->onHandshake(ec);
                                    });
        } else {
            awaitRequest();
        }
    }

    void close() override {
        if (closed_) {
            return;
        }
        closed_ = true;
        lowest().close();
        server_.forget(id_);
    }

private:
    beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }
    const ListenerLimits& limits() const { return server_.options.limits; }

    void onHandshake(const beast::error_code& ec) {
        if (closed_) {
            return;
        }
        if (ec) {
            return close();
        }
        if constexpr (std::is_same_v<Stream, TlsStream>) {
            SSL* ssl = stream_.native_handle();
            auto peer = std::make_shared<TlsPeer>();
            peer->certificate.reset(SSL_get1_peer_certificate(ssl));
            if (STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl)) {
                peer->chain.reset(X509_chain_up_ref(chain));
            }
            tls_peer_ = std::move(peer);
        }
        awaitRequest();
    }

    // From accept, the handshake or the end of the previous response.
    void awaitRequest() {
        if (server_.stopping) {
            return close();
        }
        started_ = Clock::now();
        parser_.emplace(server_.parser_limits);
        got_bytes_ = buffer_.size() > 0;  // pipelined
        header_seen_ = false;
        server_.admission.setWaiting(id_, true);
        if (got_bytes_ && parseBuffered()) {
            return;
        }
        read();
    }

    void read() {
        const Clock::time_point deadline =
            header_seen_ ? body_deadline_
            : got_bytes_ ? started_ + limits().header_timeout
                         : started_ + std::min(limits().idle_timeout, limits().header_timeout);
        lowest().expires_at(deadline);
        const std::size_t room = buffer_.max_size() - buffer_.size();
        if (room == 0) {
            return refuse(parser_->refusalFor(beast::http::error::header_limit));
        }
        // Small reads until a request shows up: idle connections stay cheap.
        const std::size_t chunk = got_bytes_ ? kReadChunk : kFirstReadChunk;
        stream_.async_read_some(buffer_.prepare(std::min(room, chunk)),
                                [self = this->shared_from_this()](beast::error_code ec,
                                                                  std::size_t bytes) {
                                    self->onRead(ec, bytes);
                                });
    }

    void onRead(const beast::error_code& ec, std::size_t bytes) {
        if (closed_) {
            return;
        }
        if (ec == beast::error::timeout && got_bytes_) {
            // A trickler or a stalled upload: cut off, audited within budget.
            close();
            return auditOnly({408, header_seen_ ? "body not complete within body-timeout"
                                                : "header not complete within header-timeout"});
        }
        if (ec) {
            return close();  // idle timeout, end of stream, reset
        }
        buffer_.commit(bytes);
        got_bytes_ = got_bytes_ || bytes > 0;
        if (!parseBuffered()) {
            read();
        }
    }

    // Feeds what was read to the parser; true when it took over (dispatched,
    // refused or answering 100-continue), false to read more.
    bool parseBuffered() {
        for (;;) {
            const auto pending = buffer_.data();
            const FeedResult fed = parser_->feed(
                std::string_view(static_cast<const char*>(pending.data()), pending.size()));
            buffer_.consume(fed.used);
            switch (fed.stop) {
            case FeedStop::need_more:
                return false;
            case FeedStop::refused:
                refuse(fed.refusal);
                return true;
            case FeedStop::done:  // always after FeedStop::header
                dispatch();
                return true;
            case FeedStop::header:
                if (afterHeader()) {
                    return true;
                }
                break;
            }
        }
    }

    // The header passed its checks; true when it took over (100-continue).
    bool afterHeader() {
        header_seen_ = true;
        body_deadline_ = Clock::now() + limits().body_timeout;
        if (!parser_->is_done() && parser_->expectsContinue() && buffer_.size() == 0 &&
            parser_->request().version == 11) {
            out_ = "HTTP/1.1 100 Continue\r\n\r\n";
            lowest().expires_after(limits().write_timeout);
            net::async_write(stream_, net::buffer(out_),
                             [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                                 if (!self->closed_) {
                                     ec ? self->close() : self->read();
                                 }
                             });
            return true;
        }
        return false;
    }

    void dispatch() {
        server_.admission.setWaiting(id_, false);
        Request& parsed = parser_->request();
        splitTarget(parsed.target, parsed.path, parsed.params);
        if (parsed.path.size() > server_.options.max_path) {
            return refuse(
                {414, "path over " + std::to_string(server_.options.max_path) + " bytes"});
        }
        Request request = std::move(parsed);
        request.remote_addr = peer_;
        request.tls = tls_peer_;
        version_ = request.version;
        const bool keep_alive = parser_->keep_alive();
        const bool head = request.method == "HEAD";
        auto task = [self = this->shared_from_this(), request = std::move(request), keep_alive,
                     head, guard = net::make_work_guard(server_.io)]() mutable {
            Response response;
            self->server_.handle(request, response);
            const bool keep = keep_alive && response.get_header_value("Connection") != "close";
            net::post(self->server_.io,
                      [self, response = std::move(response), keep, head] {
                          self->send(response, keep, head);
                      });
        };
        if (!server_.workers.trySubmit(std::move(task))) {
            Response busy = server_.fallbackResponse(503, "server busy, try again shortly");
            busy.set_header("Retry-After", "5");
            send(busy, false, head);
        }
    }

    // What is known of the request so far, for the refusal hook.
    Request requestSoFar() {
        Request request;
        if (parser_) {
            request = parser_->request();
            request.body.clear();
        }
        if (request.method.empty()) {
            const auto data = buffer_.data();
            const std::string line = describeRequestLine(
                std::string_view(static_cast<const char*>(data.data()), data.size()));
            const auto space = line.find(' ');
            request.method = line.substr(0, std::min<std::size_t>(space, 16));
            request.target = space == std::string::npos ? "" : line.substr(space + 1);
        }
        splitTarget(request.target, request.path, request.params);
        request.method = clipped(request.method, 16);
        request.path = clipped(request.path, 200);
        request.remote_addr = peer_;
        request.tls = tls_peer_;
        return request;
    }

    void refuse(const Refusal& refusal) {
        server_.admission.setWaiting(id_, false);
        Request request = requestSoFar();
        version_ = request.version;
        std::string note;
        const bool audit = server_.takeAuditToken(note);
        auto task = [self = this->shared_from_this(), request = std::move(request), refusal, audit,
                     note, guard = net::make_work_guard(server_.io)]() mutable {
            Response response;
            response.status = refusal.status;
            try {
                if (self->server_.hooks.refused) {
                    self->server_.hooks.refused(request, response, refusal.reason + note, audit);
                }
            } catch (const std::exception& e) {
                self->server_.log.error("cannot record an HTTP refusal",
                                        {{"listener", self->server_.options.name},
                                         {"error", e.what()}});
            }
            if (response.body.empty()) {
                response = self->server_.fallbackResponse(refusal.status, refusal.reason);
            } else if (self->server_.hooks.finish) {
                self->server_.hooks.finish(response);
            }
            net::post(self->server_.io, [self, response = std::move(response)]() mutable {
                self->send(response, false, false);
            });
        };
        if (!server_.workers.trySubmit(std::move(task))) {
            send(server_.fallbackResponse(refusal.status, refusal.reason), false, false);
        }
    }

    // A refusal nobody is waiting for an answer to (the connection is gone).
    void auditOnly(const Refusal& refusal) {
        std::string note;
        if (!server_.takeAuditToken(note)) {
            return;
        }
        Request request = requestSoFar();
        Server::Impl* server = &server_;
        server_.workers.trySubmit([server, request = std::move(request), refusal, note]() {
            Response ignored;
            ignored.status = refusal.status;
            try {
                if (server->hooks.refused) {
                    server->hooks.refused(request, ignored, refusal.reason + note, true);
                }
            } catch (const std::exception& e) {
                server->log.error("cannot record an HTTP refusal",
                                  {{"listener", server->options.name}, {"error", e.what()}});
            }
        });
    }

    void send(const Response& response, bool keep_alive, bool head) {
        if (closed_) {
            return;
        }
        keep_alive = keep_alive && !server_.stopping;
        out_ = serialize(response, version_, keep_alive, head);
        lowest().expires_after(limits().write_timeout);
        net::async_write(stream_, net::buffer(out_),
                         [self = this->shared_from_this(), keep_alive](beast::error_code ec,
                                                                       std::size_t) {
                             self->onSent(ec, keep_alive);
                         });
    }

    void onSent(const beast::error_code& ec, bool keep_alive) {
        if (closed_) {
            return;
        }
        out_.clear();
        out_.shrink_to_fit();
        if (ec) {
            return close();
        }
        if (keep_alive) {
            if (buffer_.size() == 0) {
                buffer_.shrink_to_fit();  // an idle connection keeps little memory
            }
            return awaitRequest();
        }
        linger();
    }

    void linger() {
        beast::error_code ignored;
        lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
        if (server_.stopping) {
            return close();
        }
        buffer_.consume(buffer_.size());
        lowest().expires_after(kLingerTime);
        drain();
    }

    void drain() {
        lowest().async_read_some(buffer_.prepare(kReadChunk),
                                 [self = this->shared_from_this()](beast::error_code ec,
                                                                   std::size_t bytes) {
                                     if (self->closed_) {
                                         return;
                                     }
                                     self->drained_ += bytes;
                                     if (ec || self->drained_ > kLingerBytes) {
                                         return self->close();
                                     }
                                     self->drain();
                                 });
    }

    Server::Impl& server_;
    const Admission::Id id_;
    const std::string peer_;
    Stream stream_;
    beast::flat_buffer buffer_;
    std::optional<RequestParser> parser_;
    std::shared_ptr<const TlsPeer> tls_peer_;
    Clock::time_point started_;
    Clock::time_point body_deadline_;
    bool got_bytes_ = false;
    bool header_seen_ = false;
    bool closed_ = false;
    int version_ = 11;
    std::string out_;
    std::size_t drained_ = 0;
};

// An accepted HTTPS connection until its client sends the first byte: a
// TLS stream costs ~90 KiB (OpenSSL and Asio record buffers), a bare socket
// and a timer almost nothing, and idle sockets are the cheapest attack.
class TlsGreeter : public ConnectionBase, public std::enable_shared_from_this<TlsGreeter> {
public:
    TlsGreeter(Server::Impl& server, Admission::Id id, std::string peer, tcp::socket socket)
        : server_(server),
          id_(id),
          peer_(std::move(peer)),
          socket_(std::move(socket)),
          timer_(server.io),
          deadline_(Clock::now() + server.options.limits.tls_handshake_timeout) {}

    void start() {
        timer_.expires_at(deadline_);
        timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
            if (!ec) {
                self->close();
            }
        });
        socket_.async_wait(tcp::socket::wait_read,
                           [self = shared_from_this()](beast::error_code ec) {
                               self->onReadable(ec);
                           });
    }

    void close() override {
        if (done_) {
            return;
        }
        done_ = true;
        beast::error_code ignored;
        timer_.cancel();
        socket_.close(ignored);
        server_.forget(id_);
    }

private:
    void onReadable(const beast::error_code& ec) {
        if (done_) {
            return;
        }
        if (ec) {
            return close();
        }
        done_ = true;
        timer_.cancel();
        auto connection = std::make_shared<Connection<TlsStream>>(server_, id_, peer_,
                                                                  std::move(socket_), *server_.tls);
        server_.live[id_] = connection;  // the same admission entry, now a TLS connection
        connection->start(deadline_);
    }

    Server::Impl& server_;
    const Admission::Id id_;
    const std::string peer_;
    tcp::socket socket_;
    net::steady_timer timer_;
    const Clock::time_point deadline_;
    bool done_ = false;
};

}  // namespace

void Server::Impl::listen() {
    beast::error_code ec;
    tcp::resolver resolver(io);
    const auto endpoints = resolver.resolve(options.host, std::to_string(options.port),
                                            tcp::resolver::passive, ec);
    const std::string where = options.host + ":" + std::to_string(options.port);
    if (ec || endpoints.empty()) {
        throw std::runtime_error("cannot resolve " + where + ": " + ec.message());
    }
    const tcp::endpoint endpoint = endpoints.begin()->endpoint();
    acceptor.emplace(io);
    acceptor->open(endpoint.protocol(), ec);
    if (!ec) {
        acceptor->set_option(net::socket_base::reuse_address(true), ec);
    }
    if (!ec) {
        acceptor->bind(endpoint, ec);
    }
    if (!ec) {
        acceptor->listen(net::socket_base::max_listen_connections, ec);
    }
    if (ec) {
        acceptor.reset();
        throw std::runtime_error("cannot listen on " + where + ": " + ec.message());
    }
    retry_timer.emplace(io);
    grace_timer.emplace(io);
    accept();
}

void Server::Impl::accept() {
    acceptor->async_accept(io, [this](beast::error_code ec, tcp::socket socket) {
        onAccept(ec, std::move(socket));
    });
}

void Server::Impl::onAccept(const beast::error_code& ec, tcp::socket socket) {
    if (stopping || ec == net::error::operation_aborted) {
        return;
    }
    if (ec) {
        // Out of file descriptors, most likely: pause instead of spinning.
        log.error("cannot accept a connection",
                  {{"listener", options.name}, {"error", ec.message()}});
        retry_timer->expires_after(std::chrono::milliseconds(100));
        retry_timer->async_wait([this](beast::error_code wait_error) {
            if (!wait_error && !stopping) {
                accept();
            }
        });
        return;
    }
    const std::string peer = addressOf(socket);
    const std::string key = admissionKey(peer);
    const Admission::Decision decision = admission.decide(key);
    if (decision.verdict == Admission::Verdict::refuse_address ||
        decision.verdict == Admission::Verdict::refuse_full) {
        ++(decision.verdict == Admission::Verdict::refuse_address ? refused_address : refused_full);
        beast::error_code ignored;
        socket.close(ignored);
    } else {
        if (decision.verdict == Admission::Verdict::evict_then_admit) {
            ++evicted;
            const auto it = live.find(decision.evict);
            const auto victim = it == live.end() ? nullptr : it->second.lock();
            victim ? victim->close() : forget(decision.evict);
        }
        beast::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        const Admission::Id id = next_id++;
        admission.add(id, key);
        if (tls) {
            auto greeter = std::make_shared<TlsGreeter>(*this, id, peer, std::move(socket));
            live[id] = greeter;
            greeter->start();
        } else {
            auto connection = std::make_shared<Connection<PlainStream>>(*this, id, peer,
                                                                        std::move(socket));
            live[id] = connection;
            connection->start();
        }
    }
    noteRefusals(false);
    accept();
}

// One log line per interval at most, whatever a flood does.
void Server::Impl::noteRefusals(bool force) {
    const auto now = Clock::now();
    if (refused_address + refused_full + evicted == 0 ||
        (!force && now - refusals_logged < kRefusalLogInterval)) {
        return;
    }
    refusals_logged = now;
    log.warn("connections refused or evicted",
             {{"listener", options.name},
              {"refused_per_address_cap", refused_address},
              {"refused_total_cap", refused_full},
              {"evicted_waiting", evicted},
              {"open", admission.total()}});
    refused_address = refused_full = evicted = 0;
}

void Server::Impl::beginStop() {
    if (stopping) {
        return;
    }
    stopping = true;
    beast::error_code ignored;
    if (acceptor) {
        acceptor->close(ignored);
    }
    if (retry_timer) {
        retry_timer->cancel();
    }
    noteRefusals(true);
    for (const Admission::Id id : admission.waiting()) {
        if (const auto it = live.find(id); it != live.end()) {
            if (auto connection = it->second.lock()) {
                connection->close();
            }
        }
    }
    if (!live.empty() && grace_timer) {
        grace_timer->expires_after(kStopGrace);
        grace_timer->async_wait([this](beast::error_code ec) {
            if (ec) {
                return;
            }
            log.warn("closing connections still open after the grace period",
                     {{"listener", options.name}, {"open", live.size()}});
            for (auto& [id, weak] : std::unordered_map(live)) {
                if (auto connection = weak.lock()) {
                    connection->close();
                }
            }
        });
    }
}

void Server::Impl::forget(Admission::Id id) {
    admission.remove(id);
    live.erase(id);
    if (stopping && live.empty() && grace_timer) {
        grace_timer->cancel();
    }
}

void Server::Impl::handle(Request& request, Response& response) const {
    try {
        if (const Handler* handler = router.find(request)) {
            (*handler)(request, response);
        } else if (hooks.not_found) {
            hooks.not_found(request, response);
        } else {
            response.status = 404;
            response.set_content("not found\n", "text/plain");
        }
    } catch (...) {
        response = Response();
        response.status = 500;
        try {
            if (hooks.failed) {
                hooks.failed(request, response, std::current_exception());
            }
        } catch (...) {
        }
        if (response.body.empty()) {
            response.set_content("internal error\n", "text/plain");
        }
    }
    if (hooks.finish) {
        hooks.finish(response);
    }
}

bool Server::Impl::takeAuditToken(std::string& note) {
    const auto now = Clock::now();
    const std::chrono::duration<double> elapsed = now - audit_refilled;
    audit_refilled = now;
    audit_tokens = std::min(kAuditBurst, audit_tokens + elapsed.count() * kAuditPerSecond);
    if (audit_tokens < 1) {
        ++unaudited;
        return false;
    }
    audit_tokens -= 1;
    if (unaudited > 0) {
        note = " (and " + std::to_string(unaudited) + " earlier refusals not audited)";
        unaudited = 0;
    }
    return true;
}

Response Server::Impl::fallbackResponse(int status, const std::string& reason) const {
    Response response;
    response.status = status;
    if (hooks.fallback) {
        hooks.fallback(response, reason);
    }
    if (response.body.empty()) {
        response.set_content(reason + "\n", "text/plain");
    }
    if (hooks.finish) {
        hooks.finish(response);
    }
    return response;
}

Server::Server(ServerOptions options, Router router, ServerHooks hooks, EventLog& log)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(router), std::move(hooks), log)) {}

Server::~Server() {
    stop();
    wait();
}

void Server::listen() {
    impl_->listen();
}

std::uint16_t Server::port() const {
    beast::error_code ec;
    return impl_->acceptor ? impl_->acceptor->local_endpoint(ec).port() : 0;
}

void Server::start() {
    impl_->io_thread = std::thread([impl = impl_.get()] {
        for (;;) {
            try {
                impl->io.run();
                return;
            } catch (const std::exception& e) {
                impl->log.error("HTTP listener error", {{"listener", impl->options.name},
                                                        {"error", e.what()}});
            }
        }
    });
}

void Server::stop() {
    net::post(impl_->io, [impl = impl_.get()] { impl->beginStop(); });
}

void Server::wait() {
    if (impl_->io_thread.joinable()) {
        impl_->io_thread.join();
    }
    impl_->workers.stop();
}

}  // namespace scep::http
