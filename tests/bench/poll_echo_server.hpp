// A small echo server for the tests of the bench harness, written with plain blocking
// sockets and poll() so that the tests depend on no optional peer. It binds 127.0.0.1 on
// a port of the kernel's choosing and serves until a stop descriptor is readable (or at
// end of file on it). On purpose it can misbehave, counting bytes across all connections:
// corrupt one byte, fall silent, close every connection, or echo everything twice.
//
// Used on a thread of the test (echo_load_test) and as the child process
// bench_test_echo_server (server_peer_test). Not fast: each connection's echo is written
// with a blocking send, which is fine for a client that reads while it writes.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace gearbox_test {

struct EchoMisbehaviour {
  long corrupt_byte = -1;   // flip the bits of the byte with this index (all connections' bytes counted in order)
  long silent_after = -1;   // after echoing this many bytes, read and write nothing more (connections stay open)
  long close_after = -1;    // after echoing this many bytes, close every connection
  bool echo_twice = false;  // write everything back twice
};

class PollEchoServer {
 public:
  explicit PollEchoServer(EchoMisbehaviour misbehaviour = {}) : m_misbehaviour(misbehaviour) {
    m_listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (m_listener < 0) throw std::runtime_error("socket failed");
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);  // never anything but loopback
    socklen_t length = sizeof address;
    if (::bind(m_listener, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(m_listener, 1024) != 0 ||
        ::getsockname(m_listener, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      ::close(m_listener);
      throw std::runtime_error("bind/listen failed");
    }
    m_port = ntohs(address.sin_port);
  }
  PollEchoServer(const PollEchoServer&) = delete;
  PollEchoServer& operator=(const PollEchoServer&) = delete;
  ~PollEchoServer() {
    for (int fd : m_connections) ::close(fd);
    ::close(m_listener);
  }

  int port() const { return m_port; }

  // Bytes echoed so far, all connections together. Written by the serving thread only;
  // relaxed is enough: readers want the final count after joining that thread (the join
  // orders it) or an approximate one.
  long bytes_echoed() const { return m_bytes_echoed.load(std::memory_order_relaxed); }

  // Serves on the calling thread until `stop_fd` (or `other_stop_fd`, if >= 0) is
  // readable or hung up.
  void serve(int stop_fd, int other_stop_fd = -1) {
    std::vector<pollfd> fds;
    for (;;) {
      fds.clear();
      fds.push_back({stop_fd, POLLIN, 0});
      fds.push_back({other_stop_fd, POLLIN, 0});  // poll ignores negative descriptors
      fds.push_back({m_listener, POLLIN, 0});
      if (!m_silent) {
        for (int fd : m_connections) fds.push_back({fd, POLLIN, 0});
      }
      if (::poll(fds.data(), fds.size(), -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (fds[0].revents != 0 || fds[1].revents != 0) return;
      if (fds[2].revents != 0) {
        const int fd = ::accept4(m_listener, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0) m_connections.push_back(fd);
      }
      for (std::size_t i = 3; i < fds.size(); ++i) {
        if (fds[i].revents != 0 && !echo(fds[i].fd)) close_connection(fds[i].fd);
      }
    }
  }

 private:
  // Echoes what one read brings; false when the connection is done (EOF or error).
  bool echo(int fd) {
    if (m_silent || !is_open(fd)) return true;
    char buffer[16384];
    const ssize_t got = ::recv(fd, buffer, sizeof buffer, 0);
    if (got <= 0) return got < 0 && errno == EINTR;
    const long before = m_bytes_echoed.load(std::memory_order_relaxed);
    long count = got;
    const auto& m = m_misbehaviour;
    if (m.corrupt_byte >= before && m.corrupt_byte < before + count) buffer[m.corrupt_byte - before] ^= 0xff;
    const long limit = m.silent_after >= 0 ? m.silent_after : m.close_after;
    if (limit >= 0 && before + count >= limit) count = limit - before;
    if (!send_all(fd, buffer, count) || (m.echo_twice && !send_all(fd, buffer, count))) return false;
    m_bytes_echoed.store(before + count, std::memory_order_relaxed);
    if (limit >= 0 && before + count >= limit) {
      if (m.silent_after >= 0) {
        m_silent = true;
      } else {
        for (int open : m_connections) ::close(open);
        m_connections.clear();
      }
    }
    return true;
  }

  static bool send_all(int fd, const char* data, long count) {
    while (count > 0) {
      const ssize_t wrote = ::send(fd, data, static_cast<std::size_t>(count), MSG_NOSIGNAL);
      if (wrote < 0 && errno == EINTR) continue;
      if (wrote <= 0) return false;
      data += wrote;
      count -= wrote;
    }
    return true;
  }

  bool is_open(int fd) const {
    for (int open : m_connections) {
      if (open == fd) return true;
    }
    return false;
  }

  void close_connection(int fd) {
    for (std::size_t i = 0; i < m_connections.size(); ++i) {
      if (m_connections[i] == fd) {
        ::close(fd);
        m_connections[i] = m_connections.back();
        m_connections.pop_back();
        return;
      }
    }
  }

  EchoMisbehaviour m_misbehaviour;
  int m_listener = -1;
  int m_port = 0;
  std::vector<int> m_connections;
  bool m_silent = false;
  std::atomic<long> m_bytes_echoed{0};
};

}  // namespace gearbox_test
