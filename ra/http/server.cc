#include "ra/http/server.h"

#include <chrono>
#include <stdexcept>
#include <string>

#include "ra/http/connection.h"
#include "ra/http/server_impl.h"

namespace scep::http {

void Server::Impl::listen() {
    beast::error_code ec;
    tcp::resolver resolver(io);
    const auto endpoints =
        resolver.resolve(options.host, std::to_string(options.port), tcp::resolver::passive, ec);
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
    acceptor->async_accept(
        io, [this](beast::error_code ec, tcp::socket socket) { onAccept(ec, std::move(socket)); });
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
            auto connection =
                std::make_shared<Connection<PlainStream>>(*this, id, peer, std::move(socket));
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
    log.warn("connections refused or evicted", {{"listener", options.name},
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
                impl->log.error("HTTP listener error",
                                {{"listener", impl->options.name}, {"error", e.what()}});
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
