#include <gearbox/http/server.hpp>

#include <sys/socket.h>
#include <time.h>

#include <cerrno>
#include <string>

#include <gearbox/detail/wait_lock.hpp>
#include <gearbox/error.hpp>
#include <gearbox/loop.hpp>
#include <gearbox/task_group.hpp>
#include <gearbox/time.hpp>

#include "http/request_parser.hpp"

namespace gearbox::http {
namespace {

// The Date header's value ("Tue, 01 Dec 2026 13:00:00 GMT"), formatted once a second per thread.
const std::string& http_date() {
  thread_local time_t formatted_at = -1;
  thread_local std::string value;
  const time_t now = ::time(nullptr);
  if (now != formatted_at) {
    tm parts;
    ::gmtime_r(&now, &parts);
    char text[64];
    const std::size_t length = ::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &parts);
    value.assign(text, length);
    formatted_at = now;
  }
  return value;
}

bool has_no_body(int status) { return (status >= 100 && status < 200) || status == 204 || status == 304; }

// The status line and headers of `response`, with the server's own Content-Length, Date and
// Connection; followed by the body unless `head_only`.
std::string serialize(Response& response, int version_minor, bool keep_alive, bool head_only) {
  response.headers.remove("Content-Length");
  response.headers.remove("Date");
  response.headers.remove("Connection");
  response.headers.remove("Transfer-Encoding");
  const bool bodiless = has_no_body(response.status);
  std::string out;
  out.reserve(128 + response.headers.size() * 32 + (head_only || bodiless ? 0 : response.body.size()));
  out += version_minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ";
  out += std::to_string(response.status);
  out += ' ';
  out += reason_phrase(response.status);
  out += "\r\nDate: ";
  out += http_date();
  if (!bodiless) {
    out += "\r\nContent-Length: ";
    out += std::to_string(response.body.size());
  }
  // HTTP/1.1 keeps the connection unless told; HTTP/1.0 closes it unless told.
  if (!keep_alive) out += "\r\nConnection: close";
  else if (version_minor == 0) out += "\r\nConnection: keep-alive";
  for (const auto& [name, value] : response.headers.fields()) {
    out += "\r\n";
    out += name;
    out += ": ";
    out += value;
  }
  out += "\r\n\r\n";
  if (!head_only && !bodiless) out += response.body;
  return out;
}

// A refusal before any handler ran: the reason as a plain-text body.
Response refusal(const detail::ParseError& error) {
  return Response::text(std::string(reason_phrase(error.status)) + ": " + error.reason + "\n", error.status);
}

constexpr std::string_view k_continue = "HTTP/1.1 100 Continue\r\n\r\n";

// How long, and how much, a closing connection keeps reading what the client still sends.
constexpr auto k_linger_time = std::chrono::seconds(2);
constexpr std::size_t k_linger_bytes = 1024 * 1024;

// Closing a socket with unread input makes the kernel send a reset, which can destroy the
// response still on its way (a 413 while the client is still sending its body). So the
// server closes its sending side first and reads, and throws away, what the client still
// sends, until the client closes too, for a bounded time and amount (as nginx's lingering
// close does).
Task<void> drain(net::TcpStream& stream) {
  char sink[4096];
  std::size_t drained = 0;
  while (drained < k_linger_bytes) {
    const std::size_t n = co_await stream.read(std::span<char>(sink));
    if (n == 0) co_return;
    drained += n;
  }
}

Task<void> lingering_close(net::TcpStream& stream) {
  try {
    stream.shutdown_write();
    co_await timeout(k_linger_time, drain(stream));
  } catch (const Cancelled&) {
    throw;
  } catch (const std::exception&) {
    // a reset, a timeout: closing is all that is left
  }
}

}  // namespace

struct Server::Connection {
  explicit Connection(net::TcpStream s) : stream(std::move(s)) {}
  net::TcpStream stream;
  gearbox::detail::WaitLock lock;  // guards the two flags (stop() runs on any worker)
  bool idle = false;      // waiting for the first byte of a request: stop() may shut it
  bool shut = false;      // stop() shut it down while it was idle
};

Server::Server(Router router, ServerOptions options) : m_router(std::move(router)), m_options(std::move(options)) {}

Server::~Server() = default;

void Server::log(std::string_view message) const {
  if (m_options.log) m_options.log(message);
}

ServerStats Server::stats() const noexcept {
  return {.accepted = m_accepted.get(),
          .active = m_active.get(),
          .requests = m_requests.get(),
          .rejected = m_rejected.get(),
          .handler_errors = m_handler_errors.get(),
          .idle_closed = m_idle_closed.get()};
}

Task<void> Server::serve(net::TcpListener& listener) {
  bool stopped_already;
  {
    std::lock_guard lock(m_mutex);  // stop() sets m_stopping before it takes the mutex
    stopped_already = stopping();
    if (!stopped_already) m_listener = &listener;
  }
  if (stopped_already) {
    listener.close();
    co_return;
  }
  TaskGroup connections;
  std::exception_ptr failure;
  bool cancelled = false;
  try {
    while (!stopping()) {
      net::TcpStream stream = co_await listener.accept();
      if (stopping()) break;  // closes the stream
      m_accepted.add();
      connections.spawn(serve_connection(std::move(stream)));
    }
  } catch (const Cancelled&) {
    cancelled = true;
  } catch (const IoError&) {
    if (!stopping()) failure = std::current_exception();  // else: stop() shut the listener down
  }
  if (failure || cancelled) stop();
  {
    std::lock_guard lock(m_mutex);  // stop() no longer touches it
    m_listener = nullptr;
  }
  listener.close();
  // Cancelled, join() cancels every connection, waits for them and rethrows Cancelled.
  co_await connections.join();
  if (failure) std::rethrow_exception(failure);
}

void Server::stop() {
  if (m_stopping.exchange(true, std::memory_order_acq_rel)) return;
  // Shut down, not closed: the listener and the streams belong to tasks that may be using
  // their descriptors on another worker right now, and a descriptor closed under them
  // could be reused by the next open. A shut-down listener fails its accept (serve() then
  // closes it); an idle connection reads end of stream and ends. Busy ones end after
  // their response (which says Connection: close).
  std::lock_guard lock(m_mutex);
  if (m_listener) ::shutdown(m_listener->native_handle(), SHUT_RD);
  for (Connection* connection : m_connections) {
    std::lock_guard guard(connection->lock);
    if (connection->idle && !connection->shut) {
      connection->shut = true;
      ::shutdown(connection->stream.native_handle(), SHUT_RDWR);
    }
  }
}

bool Server::enter_idle(Connection& connection) {
  std::lock_guard guard(connection.lock);
  // Memory ordering: stop() sets m_stopping before it takes this lock, so either it finds
  // the connection idle, or the connection finds it stopping here.
  if (stopping()) return false;
  connection.idle = true;
  return true;
}

bool Server::leave_idle(Connection& connection) {
  std::lock_guard guard(connection.lock);
  connection.idle = false;
  return !connection.shut;
}

Task<void> Server::serve_connection(net::TcpStream stream) {
  Connection connection(std::move(stream));
  {
    std::lock_guard lock(m_mutex);
    m_connections.insert(&connection);
  }
  m_active.add();
  // Out of the set before the stream closes: stop() never shuts a closed descriptor.
  const auto forget = [&] {
    {
      std::lock_guard lock(m_mutex);
      m_connections.erase(&connection);
    }
    m_active.add(-1);
  };
  try {
    if (co_await serve_requests(connection) == Ending::linger) co_await lingering_close(connection.stream);
  } catch (const Cancelled&) {
    forget();
    throw;
  } catch (const IoError&) {
    // The peer reset the connection or vanished, or stop() shut an idle one: nothing to answer.
  } catch (const TimeoutError&) {
    m_idle_closed.add();
  }
  forget();
  connection.stream.close();
}

// Reads, parses, answers, until the connection should close. Returns how it ends when it
// ends on purpose (end of stream, an error answered, not keep-alive, stop()); throws
// IoError when the peer went away, TimeoutError when the connection idled out.
Task<Server::Ending> Server::serve_requests(Connection& connection) {
  Loop& loop = Loop::current_or_throw();
  detail::RequestParser parser({.max_head_bytes = m_options.max_head_bytes, .max_body_bytes = m_options.max_body_bytes});
  std::string buffer(m_options.read_size, '\0');
  std::size_t begin = 0;  // unparsed bytes are buffer[begin, end)
  std::size_t end = 0;
  for (;;) {
    // 1. Gather one whole request (or a reason to refuse it).
    Clock::time_point deadline{};
    bool sent_continue = false;
    while (parser.state() != detail::RequestParser::State::complete &&
           parser.state() != detail::RequestParser::State::failed) {
      if (begin == end) {
        begin = end = 0;
        const bool idle = parser.state() == detail::RequestParser::State::idle;
        if (idle && !enter_idle(connection)) co_return Ending::close;  // stopping: nothing was sent that a reset could destroy
        std::size_t n = 0;
        if (idle) {
          n = co_await timeout(m_options.idle_timeout, connection.stream.read(std::span<char>(buffer)));
        } else {
          const auto left = deadline - loop.now();
          bool timed_out = left <= Clock::duration::zero();
          if (!timed_out) {
            try {
              n = co_await timeout(left, connection.stream.read(std::span<char>(buffer)));
            } catch (const TimeoutError&) {
              timed_out = true;
            }
          }
          if (timed_out) {
            m_rejected.add();
            Response response = Response::text("Request Timeout: the request did not arrive in time\n", 408);
            co_await connection.stream.write_all(serialize(response, 1, false, false));
            co_return Ending::linger;
          }
        }
        if (idle && !leave_idle(connection)) co_return Ending::close;  // stop() shut it while it waited
        if (n == 0) {  // end of stream: between requests a goodbye, inside one a cut-off
          parser.finish();
          co_return Ending::close;
        }
        end = n;
      }
      if (parser.state() == detail::RequestParser::State::idle) deadline = loop.now() + m_options.request_timeout;
      begin += parser.feed(std::string_view(buffer).substr(begin, end - begin));
      if (parser.expects_continue() && !sent_continue && parser.state() == detail::RequestParser::State::body) {
        sent_continue = true;
        co_await connection.stream.write_all(k_continue);
      }
    }
    if (parser.state() == detail::RequestParser::State::failed) {
      m_rejected.add();
      log("bad request: " + parser.error().reason);
      Response response = refusal(parser.error());
      co_await connection.stream.write_all(serialize(response, 1, false, false));
      co_return Ending::linger;  // the rest of the stream cannot be framed
    }

    // 2. Answer it.
    const bool keep_alive = parser.keep_alive();
    Request request = parser.take();
    m_requests.add();
    Response response = co_await respond(request);
    const bool again = keep_alive && !stopping();
    co_await connection.stream.write_all(serialize(response, request.version_minor, again, request.method == "HEAD"));
    if (!again) co_return Ending::linger;
  }
}

Task<Response> Server::respond(Request& request) {
  const Router::Match match = m_router.find(request.method, request.path);
  if (!match.handler) {
    Response response = Response::error(match.status);
    if (match.status == 405) response.headers.set("Allow", match.allow);
    co_return response;
  }
  try {
    Response response = co_await (*match.handler)(request);
    if (response.status >= 200 && response.status <= 599) co_return response;
    m_handler_errors.add();
    log("handler for " + request.method + " " + request.path + " answered status " + std::to_string(response.status) +
        " (a final status is 200 to 599)");
    co_return Response::error(500);
  } catch (const Cancelled&) {
    throw;
  } catch (const std::exception& e) {
    m_handler_errors.add();
    log("handler for " + request.method + " " + request.path + " threw: " + e.what());
  } catch (...) {
    m_handler_errors.add();
    log("handler for " + request.method + " " + request.path + " threw a non-std::exception");
  }
  co_return Response::error(500);
}

}  // namespace gearbox::http
