// A small HTTP/1.x server for both listeners (SCEP over plain HTTP, the
// admin API over HTTPS), on Boost.Asio/Beast. Debian 12's cpp-httplib 0.11
// gives every open socket a worker thread and resets its read timeout per
// recv(), so idle or trickling clients starve it, and it bounds neither
// header size nor count. Here one I/O thread per listener reads every
// connection asynchronously under deadlines and size limits; only complete
// requests reach the bounded worker pool (README: "HTTP listeners").
#pragma once

#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <string>

#include <openssl/types.h>

#include "ra/config.h"
#include "ra/http/message.h"
#include "ra/http/router.h"

namespace scep {
class EventLog;
}

namespace scep::http {

struct ServerOptions {
    std::string name;  // "scep" or "admin", in log lines
    std::string host;
    std::uint16_t port = 0;  // 0: any free port
    ListenerLimits limits;
    std::size_t max_body = 64 * 1024;
    std::size_t max_path = 2048;  // longer paths get 414 (routes are regexes)
    // Set for HTTPS: configures the listener's SSL_CTX; false refuses start-up.
    std::function<bool(SSL_CTX&)> tls;
};

struct ServerHooks {
    // A refusal the server makes before any handler (400, 408, 411, 413, 414,
    // 431), on a worker: fill in the response (its status is set) and audit
    // when `audit` is true. It is false once the listener's budget for
    // auditing refusals is spent, so a flood cannot fill the disk.
    std::function<void(const Request&, Response&, const std::string& reason, bool audit)> refused;
    // Responses written without a worker (503 when the queue is full):
    // cheap and without I/O.
    std::function<void(Response&, const std::string& reason)> fallback;
    // The last touch of every response, on any thread: cheap, without I/O.
    std::function<void(Response&)> finish;
    // A handler threw; the response is a fresh 500 to fill in.
    std::function<void(const Request&, Response&, std::exception_ptr)> failed;
    // No route matched (default: 404 "not found").
    Handler not_found;
};

class Server {
public:
    Server(ServerOptions options, Router router, ServerHooks hooks, EventLog& log);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Binds and listens; throws std::runtime_error naming the address.
    void listen();
    std::uint16_t port() const;  // after listen()
    // Starts the I/O thread (the workers run from construction).
    void start();
    // Graceful, from any thread: stops accepting, closes connections waiting
    // for a request; requests being answered finish (for at most 10 s).
    void stop();
    // Returns when stopped and every answer is written.
    void wait();

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace scep::http
