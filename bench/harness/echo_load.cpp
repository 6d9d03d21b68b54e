// The tcp_echo load generator. See echo_load.hpp for the contract.
//
// One epoll instance, level-triggered, every connection registered for EPOLLIN from the
// start (and EPOLLOUT only while a write is partial, which 64-byte messages never are),
// so a request costs one send, one recv and one clock read (the time a round trip ends is
// the time the next one on that connection starts). All memory (the connections, their
// message buffers, the latency histogram) is allocated before the clock starts.
#include "echo_load.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "child_process.hpp"  // detail::Fd

namespace gearbox::bench {
namespace {

using Clock = std::chrono::steady_clock;
using detail::Fd;

constexpr int k_max_connections = 1'000'000;
constexpr std::size_t k_max_message_bytes = std::size_t{16} << 20;
constexpr std::size_t k_max_buffer_bytes = std::size_t{1} << 30;  // all connections' buffers together
constexpr int k_events_per_wait = 512;

// Round-trip latencies in nanoseconds, log-linear: values below 128 ns exactly, above
// that 128 buckets per power of two, so a bucket is at most 1/128 of its values wide
// and its midpoint is within 0.4% of any value in it. Fixed size (58 x 128 counters),
// allocated once.
class LatencyHistogram {
 public:
  LatencyHistogram() : m_counts(k_buckets, 0) {}

  void record(std::uint64_t ns) {
    ++m_counts[index(ns)];
    ++m_total;
  }

  // The value at quantile q (0 < q <= 1), in nanoseconds; 0 if nothing was recorded.
  double quantile(double q) const {
    if (m_total == 0) return 0;
    const auto wanted = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(m_total)));
    const std::uint64_t rank = std::max<std::uint64_t>(1, wanted);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < m_counts.size(); ++i) {
      seen += m_counts[i];
      if (seen >= rank) return midpoint(i);
    }
    return midpoint(m_counts.size() - 1);
  }

 private:
  static constexpr int k_sub_bits = 7;
  static constexpr std::uint64_t k_sub = std::uint64_t{1} << k_sub_bits;
  static constexpr std::size_t k_buckets = (64 - k_sub_bits + 1) * k_sub;

  static std::size_t index(std::uint64_t v) {
    if (v < k_sub) return static_cast<std::size_t>(v);
    const int shift = (63 - std::countl_zero(v)) - k_sub_bits;  // >= 0; v >> shift is in [k_sub, 2 k_sub)
    return static_cast<std::size_t>(shift + 1) * k_sub + static_cast<std::size_t>((v >> shift) - k_sub);
  }
  static double midpoint(std::size_t i) {
    if (i < k_sub) return static_cast<double>(i);
    const auto shift = static_cast<int>(i / k_sub) - 1;
    const double low = std::ldexp(static_cast<double>(k_sub + i % k_sub), shift);
    return low + (std::ldexp(1.0, shift) - 1) / 2;
  }

  std::vector<std::uint64_t> m_counts;
  std::uint64_t m_total = 0;
};

struct Connection {
  int fd = -1;                 // owned by the runner's `sockets`
  unsigned char* out;          // the message being sent: message_bytes
  unsigned char* in;           // what came back: message_bytes + 1 (room to see an extra byte)
  std::size_t sent = 0;        // of the current request
  std::size_t received = 0;    // of the current request
  bool busy = false;           // a request is in flight
  bool want_write = false;     // registered for EPOLLOUT: the current message is partly sent
  bool connected = false;
  Clock::time_point started;   // of the current request
};

std::string open_file_limit_hint() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return "raise it with `ulimit -n`";
  return fmt::format("the limit is {} descriptors; raise it with `ulimit -n` (each connection takes one here, "
                     "and one in the server)",
                     limit.rlim_cur);
}

class LoadRun {
 public:
  explicit LoadRun(const EchoLoadOptions& options) : m_options(options) {}

  EchoLoadResult run() {
    if (!validate() || !set_up() || !connect_all()) return finish();
    m_start = Clock::now();
    m_last_done = m_start;
    for (auto& connection : m_connections) {
      if (m_issued == m_options.requests) break;
      if (!begin_request(connection, m_start)) return finish();
    }
    run_requests();
    return finish();
  }

 private:
  bool fail(std::string message) {
    if (m_result.error.empty()) m_result.error = std::move(message);
    return false;
  }

  bool validate() {
    const auto& o = m_options;
    if (o.port < 1 || o.port > 65535) return fail(fmt::format("bad port {}: expected 1..65535", o.port));
    if (o.connections < 1 || o.connections > k_max_connections) {
      return fail(fmt::format("bad connection count {}: expected 1..{}", o.connections, k_max_connections));
    }
    if (o.requests < 1) return fail(fmt::format("bad request count {}: expected at least 1", o.requests));
    if (o.message_bytes < 1 || o.message_bytes > k_max_message_bytes) {
      return fail(fmt::format("bad message size {} bytes: expected 1..{}", o.message_bytes, k_max_message_bytes));
    }
    if (2 * (o.message_bytes + 1) * static_cast<std::size_t>(o.connections) > k_max_buffer_bytes) {
      return fail(fmt::format("{} connections of {}-byte messages need more than {} MiB of buffers",
                              o.connections, o.message_bytes, k_max_buffer_bytes >> 20));
    }
    if (o.time_limit <= std::chrono::milliseconds::zero()) return fail("the time limit must be positive");
    return true;
  }

  bool set_up() {
    m_deadline = Clock::now() + m_options.time_limit;
    m_epoll = Fd(::epoll_create1(EPOLL_CLOEXEC));
    if (!m_epoll.valid()) return fail(fmt::format("epoll_create1 failed: {}", std::strerror(errno)));
    const std::size_t n = m_options.message_bytes;
    const auto count = static_cast<std::size_t>(m_options.connections);
    m_buffers.assign(count * (2 * n + 1), 0);
    m_connections.resize(count);
    m_sockets.reserve(count);
    m_events.resize(k_events_per_wait);
    for (std::size_t i = 0; i < count; ++i) {
      Connection& c = m_connections[i];
      c.out = m_buffers.data() + i * (2 * n + 1);
      c.in = c.out + n;
      // A pattern that differs between connections, so that a server that mixes them up
      // is caught; the first bytes are overwritten with the request number per request.
      for (std::size_t b = 0; b < n; ++b) c.out[b] = static_cast<unsigned char>(i * 131 + b * 7 + 1);
    }
    return true;
  }

  bool watch(std::size_t index, std::uint32_t events, int op) {
    epoll_event event{};
    event.events = events;
    event.data.u64 = index;
    if (::epoll_ctl(m_epoll.get(), op, m_connections[index].fd, &event) == 0) return true;
    return fail(fmt::format("epoll_ctl failed on connection {}: {}", index, std::strerror(errno)));
  }

  std::string where(std::size_t index) const {
    return fmt::format("connection {} of {} to 127.0.0.1:{}", index + 1, m_options.connections, m_options.port);
  }

  // Opens every connection (non-blocking connects, all in flight at once) and waits until
  // all are established.
  bool connect_all() {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(m_options.port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    std::size_t pending = 0;
    for (std::size_t i = 0; i < m_connections.size(); ++i) {
      Connection& c = m_connections[i];
      Fd socket(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
      if (!socket.valid()) {
        const int error = errno;
        if (error == EMFILE || error == ENFILE) {
          return fail(fmt::format("cannot open {}: {} ({}); {}", where(i), std::strerror(error),
                                  error == EMFILE ? "EMFILE" : "ENFILE", open_file_limit_hint()));
        }
        return fail(fmt::format("cannot open {}: {}", where(i), std::strerror(error)));
      }
      c.fd = socket.get();
      m_sockets.push_back(std::move(socket));
      // Ping-pong writes one small message and waits: Nagle would hold nothing back here
      // (nothing is ever unacknowledged when a request is written), but say so explicitly.
      const int one = 1;
      ::setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      if (::connect(c.fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0) {
        c.connected = true;
        if (!watch(i, EPOLLIN, EPOLL_CTL_ADD)) return false;
        continue;
      }
      if (errno != EINPROGRESS) {
        return fail(fmt::format("cannot connect {}: {}", where(i), std::strerror(errno)));
      }
      if (!watch(i, EPOLLOUT, EPOLL_CTL_ADD)) return false;
      ++pending;
    }

    while (pending > 0) {
      const Clock::duration remaining = m_deadline - Clock::now();
      if (remaining <= Clock::duration::zero()) {
        return fail(fmt::format("time limit of {} ms reached while connecting: {} of {} connections established",
                                m_options.time_limit.count(), m_connections.size() - pending,
                                m_connections.size()));
      }
      const int ready = ::epoll_wait(m_epoll.get(), m_events.data(), k_events_per_wait, timeout_ms(remaining));
      if (ready < 0 && errno != EINTR) return fail(fmt::format("epoll_wait failed: {}", std::strerror(errno)));
      for (int e = 0; e < ready; ++e) {
        const auto index = static_cast<std::size_t>(m_events[e].data.u64);
        Connection& c = m_connections[index];
        if (c.connected) continue;
        int error = 0;
        socklen_t length = sizeof error;
        if (::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0) error = errno;
        if (error != 0) return fail(fmt::format("cannot connect {}: {}", where(index), std::strerror(error)));
        c.connected = true;
        --pending;
        if (!watch(index, EPOLLIN, EPOLL_CTL_MOD)) return false;
      }
    }
    return true;
  }

  static int timeout_ms(Clock::duration remaining) {
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(remaining).count();
    return static_cast<int>(std::clamp<long long>(ms, 0, 60'000));
  }

  bool begin_request(Connection& c, Clock::time_point now) {
    // A number no other request of this run has, in the first bytes of the message.
    const std::uint64_t number = ++m_issued;
    std::memcpy(c.out, &number, std::min(sizeof number, m_options.message_bytes));
    c.sent = 0;
    c.received = 0;
    c.busy = true;
    c.started = now;
    return send_more(c);
  }

  // Writes as much of the current message as the socket takes; registers for EPOLLOUT
  // while some is left, and unregisters when it is all sent.
  bool send_more(Connection& c) {
    const std::size_t n = m_options.message_bytes;
    while (c.sent < n) {
      const ssize_t wrote = ::send(c.fd, c.out + c.sent, n - c.sent, MSG_NOSIGNAL);
      if (wrote > 0) {
        c.sent += static_cast<std::size_t>(wrote);
        continue;
      }
      if (wrote < 0 && errno == EINTR) continue;
      if (wrote < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        if (c.want_write) return true;
        c.want_write = true;
        return watch(index_of(c), EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
      }
      return fail(fmt::format("cannot write on {}: {}", where(index_of(c)), std::strerror(errno)));
    }
    if (!c.want_write) return true;
    c.want_write = false;
    return watch(index_of(c), EPOLLIN, EPOLL_CTL_MOD);
  }

  std::size_t index_of(const Connection& c) const { return static_cast<std::size_t>(&c - m_connections.data()); }

  // Reads what the server echoed; at most one byte more than is outstanding, so that a
  // server that sends more than it was sent is seen.
  bool receive(Connection& c) {
    const std::size_t outstanding = c.sent - c.received;
    const ssize_t got = ::recv(c.fd, c.in + c.received, outstanding + 1, 0);
    if (got < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return true;
      return fail(fmt::format("cannot read on {}: {} ({} of {} requests done)", where(index_of(c)),
                              std::strerror(errno), m_result.requests_done, m_options.requests));
    }
    if (got == 0) {
      return fail(fmt::format("the server closed {} {} ({} of {} requests done)", where(index_of(c)),
                              c.busy ? fmt::format("with {} of {} bytes of a request not echoed",
                                                   m_options.message_bytes - c.received, m_options.message_bytes)
                                     : std::string("between requests"),
                              m_result.requests_done, m_options.requests));
    }
    if (static_cast<std::size_t>(got) > outstanding) {
      return fail(fmt::format("the server sent more bytes on {} than it was sent ({} requests done)",
                              where(index_of(c)), m_result.requests_done));
    }
    c.received += static_cast<std::size_t>(got);
    if (c.received < m_options.message_bytes) return true;

    const Clock::time_point now = Clock::now();
    if (std::memcmp(c.in, c.out, m_options.message_bytes) != 0) {
      const auto diff = std::mismatch(c.in, c.in + m_options.message_bytes, c.out).first - c.in;
      return fail(fmt::format("corrupt echo on {}: byte {} of a {}-byte message came back as {:#04x}, "
                              "sent {:#04x} ({} requests done)",
                              where(index_of(c)), diff, m_options.message_bytes, c.in[diff], c.out[diff],
                              m_result.requests_done));
    }
    const auto latency = std::chrono::duration_cast<std::chrono::nanoseconds>(now - c.started);
    m_histogram.record(static_cast<std::uint64_t>(latency.count()));
    ++m_result.requests_done;
    m_last_done = now;
    c.busy = false;
    if (m_issued < m_options.requests) return begin_request(c, now);
    return true;
  }

  void run_requests() {
    while (m_result.requests_done < m_options.requests) {
      const Clock::duration remaining = m_deadline - Clock::now();
      if (remaining <= Clock::duration::zero()) {
        const auto waiting = std::count_if(m_connections.begin(), m_connections.end(),
                                           [](const Connection& c) { return c.busy; });
        fail(fmt::format("time limit of {} ms reached: {} of {} requests done, {} connections waiting for "
                         "their echo (has the server stopped answering?)",
                         m_options.time_limit.count(), m_result.requests_done, m_options.requests, waiting));
        return;
      }
      const int ready = ::epoll_wait(m_epoll.get(), m_events.data(), k_events_per_wait, timeout_ms(remaining));
      if (ready < 0) {
        if (errno == EINTR) continue;
        fail(fmt::format("epoll_wait failed: {}", std::strerror(errno)));
        return;
      }
      for (int e = 0; e < ready; ++e) {
        Connection& c = m_connections[static_cast<std::size_t>(m_events[e].data.u64)];
        const std::uint32_t events = m_events[e].events;
        if ((events & EPOLLOUT) != 0 && c.want_write && !send_more(c)) return;
        if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0 && !receive(c)) return;
      }
    }
  }

  EchoLoadResult finish() {
    m_sockets.clear();  // closes every connection
    m_result.ok = m_result.error.empty();
    if (m_result.requests_done > 0) {
      m_result.seconds = std::chrono::duration<double>(m_last_done - m_start).count();
      if (m_result.seconds > 0) {
        m_result.requests_per_sec = static_cast<double>(m_result.requests_done) / m_result.seconds;
      }
      m_result.p50_us = m_histogram.quantile(0.50) / 1e3;
      m_result.p99_us = m_histogram.quantile(0.99) / 1e3;
    }
    return std::move(m_result);
  }

  const EchoLoadOptions& m_options;
  EchoLoadResult m_result;
  Fd m_epoll;
  std::vector<Fd> m_sockets;
  std::vector<Connection> m_connections;
  std::vector<unsigned char> m_buffers;
  std::vector<epoll_event> m_events;
  LatencyHistogram m_histogram;
  long m_issued = 0;
  Clock::time_point m_deadline;
  Clock::time_point m_start;
  Clock::time_point m_last_done;
};

}  // namespace

EchoLoadResult run_echo_load(const EchoLoadOptions& options) {
  try {
    return LoadRun(options).run();
  } catch (const std::exception& error) {
    EchoLoadResult result;
    result.error = fmt::format("internal error in the load generator: {}", error.what());
    return result;
  } catch (...) {
    EchoLoadResult result;
    result.error = "internal error in the load generator";
    return result;
  }
}

}  // namespace gearbox::bench
