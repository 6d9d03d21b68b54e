// Server: HTTP/1.1 on a TcpListener, every connection a task on one loop.
//
//   gb::http::Router router;
//   router.get("/health", health);
//   gb::http::Server server(std::move(router), {.max_body_bytes = 64 * 1024});
//   auto listener = gb::net::TcpListener::bind(gb::net::SocketAddress::loopback(8080));
//   co_await server.serve(listener);           // until server.stop(), e.g. on SIGINT
//
// What it does for the handlers:
// - keep-alive (HTTP/1.1 by default, HTTP/1.0 when asked) and pipelined requests, answered
//   in order; chunked request bodies are de-chunked; "Expect: 100-continue" is answered
//   with 100 Continue before the body is read (or with 413 at once if it is too large);
// - limits, each answered and then the connection closed: 431 when the request line and
//   headers pass max_head_bytes, 413 when the body passes max_body_bytes, 400 for a
//   malformed request (with the parser's reason in the body; "malformed" is what RFC 9112
//   says a server must refuse: a bad request-line or field, an HTTP/1.1 request without
//   exactly one Host, conflicting Content-Length / Transfer-Encoding, obs-fold; see
//   docs/http_conformance.md), 505 for a version other than HTTP/1.x, 408 when a request has not
//   fully arrived request_timeout after its first byte (a slow or stalled client), 501
//   for CONNECT and protocol upgrades, 417 for an Expect it does not understand;
// - a connection idle between requests for idle_timeout is closed without a word;
// - Content-Length, Date and Connection on every response (a handler's own are replaced);
//   HEAD gets the GET handler's head only; 204 and 304 go without a body;
// - a handler that throws, or answers a status outside 200-599, gets a 500 (the reason
//   goes to the log, not to the client);
// - when the server closes a connection after a response, it closes its sending side and
//   reads what the client still sends for up to 2 s (a lingering close, as nginx does),
//   so the kernel does not answer that input with a reset that could destroy the
//   response (a 413 sent while the client is still sending its body).
//
// stop() is graceful: the listener closes at once, idle connections are closed, requests
// already arriving or being handled are finished and answered with "Connection: close";
// serve() returns when every connection has ended. Cancelling serve() instead cancels
// every connection (handlers included) at its next suspension point.
//
// On one loop or on a gb::Runtime: every connection is a task, so on a Runtime the
// connections spread over the workers (and a handler may resume on another worker after
// each co_await). Handlers that share state must then guard it (gb::Mutex, atomics).
//
// Thread-safety: stop(), stopping() and stats() may be called from any thread or task;
// serve() once. Destruction: serve() must have returned (or never been called).
// Memory ordering: the figures are relaxed atomics (each a count, read as a snapshot
// that need not be consistent across figures); the set of connections, the listener and
// each connection's idle state are under m_mutex, so stop() closes only a connection
// that is waiting for a request, never one that has begun to read one.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string_view>
#include <unordered_set>

#include <gearbox/http/message.hpp>
#include <gearbox/http/router.hpp>
#include <gearbox/net/tcp.hpp>
#include <gearbox/task.hpp>

namespace gearbox::http {

struct ServerOptions {
  std::size_t max_head_bytes = 8 * 1024;     // request line + headers; beyond: 431
  std::size_t max_body_bytes = 1024 * 1024;  // beyond: 413
  // From a request's first byte to its last; beyond: 408 and the connection closed.
  std::chrono::milliseconds request_timeout{10'000};
  // Between requests on a kept-alive connection (and before the first); beyond: closed.
  std::chrono::milliseconds idle_timeout{5'000};
  std::size_t read_size = 16 * 1024;  // bytes asked of the socket per read
  // Where the server says what went wrong (handler exceptions, bad requests); null: silent.
  std::function<void(std::string_view)> log = {};
};

struct ServerStats {
  std::uint64_t accepted = 0;        // connections accepted
  std::uint64_t active = 0;          // connections open now
  std::uint64_t requests = 0;        // complete requests handed to the router
  std::uint64_t rejected = 0;        // requests refused before a handler (400, 408, 413, 417, 431, 501, 505)
  std::uint64_t handler_errors = 0;  // handlers that threw or gave a bad status (answered 500)
  std::uint64_t idle_closed = 0;     // connections closed after idle_timeout
};

class Server {
public:
  explicit Server(Router router, ServerOptions options = {});
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Accepts and serves connections until stop(); then waits for the connections to end.
  // Throws what accept() throws other than after stop() (IoError), or Cancelled.
  [[nodiscard]] Task<void> serve(net::TcpListener& listener);
  // Stops gracefully (see above). Idempotent; before serve(), serve() returns at once.
  void stop();
  bool stopping() const noexcept { return m_stopping.load(std::memory_order_acquire); }

  // A snapshot of the figures.
  ServerStats stats() const noexcept;

private:
  struct Connection;
  enum class Ending { close, linger };  // linger: see lingering_close in server.cpp
  Task<void> serve_connection(net::TcpStream stream);
  Task<Ending> serve_requests(Connection& connection);
  Task<Response> respond(Request& request);
  void log(std::string_view message) const;

  // A figure of ServerStats, bumped by the connections' tasks on any worker.
  struct Figure {
    std::atomic<std::uint64_t> value{0};
    void add(std::int64_t by = 1) noexcept { value.fetch_add(static_cast<std::uint64_t>(by), std::memory_order_relaxed); }
    std::uint64_t get() const noexcept { return value.load(std::memory_order_relaxed); }
  };
  // Marks `connection` waiting for a request (true) unless stop() has begun; false: stop.
  bool enter_idle(Connection& connection);
  // Marks `connection` busy with a request (after its first byte); false: stop() closed it.
  bool leave_idle(Connection& connection);

  Router m_router;
  ServerOptions m_options;
  Figure m_accepted, m_active, m_requests, m_rejected, m_handler_errors, m_idle_closed;
  std::atomic<bool> m_stopping{false};  // release by stop(); acquire by stopping()
  mutable std::mutex m_mutex;
  net::TcpListener* m_listener = nullptr;         // under m_mutex
  std::unordered_set<Connection*> m_connections;  // open now, under m_mutex
};

}  // namespace gearbox::http
