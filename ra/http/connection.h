// One client connection of ra/http/server.cc, and the cheap wait for an
// HTTPS client's first byte. Included only by server.cc.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "ra/http/server_impl.h"

namespace scep::http {

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
            stream_.async_handshake(
                net::ssl::stream_base::server,
                [self = this->shared_from_this()](beast::error_code ec) { self->onHandshake(ec); });
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
        stream_.async_read_some(
            buffer_.prepare(std::min(room, chunk)),
            [self = this->shared_from_this()](beast::error_code ec, std::size_t bytes) {
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
            net::post(self->server_.io, [self, response = std::move(response), keep, head] {
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
                self->server_.log.error(
                    "cannot record an HTTP refusal",
                    {{"listener", self->server_.options.name}, {"error", e.what()}});
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
                         [self = this->shared_from_this(), keep_alive](
                             beast::error_code ec, std::size_t) { self->onSent(ec, keep_alive); });
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
        lowest().async_read_some(
            buffer_.prepare(kReadChunk),
            [self = this->shared_from_this()](beast::error_code ec, std::size_t bytes) {
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
        socket_.async_wait(
            tcp::socket::wait_read,
            [self = shared_from_this()](beast::error_code ec) { self->onReadable(ec); });
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

}  // namespace scep::http
