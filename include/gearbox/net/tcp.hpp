// TCP on the loop: TcpListener accepts connections, TcpStream is one connection.
//
//   auto listener = gb::net::TcpListener::bind(gb::net::SocketAddress::loopback(0));
//   for (;;) {
//     gb::net::TcpStream client = co_await listener.accept();
//     gb::spawn(serve(std::move(client)), gb::Start::eager);
//   }
//
//   auto stream = co_await gb::net::TcpStream::connect("localhost", 8080, {.timeout = 2s});
//
// Streams read and write as ByteStream says. New streams (connected or accepted) have
// TCP_NODELAY set, as Go does: request/response traffic should not wait for Nagle's
// algorithm; turn it off with set_nodelay(false) for bulk transfers of small writes.
//
// Thread-safety: as ByteStream: a socket is attached to the loop that first awaits it.
// bind() and the address queries are plain calls and may run before any loop does.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include <gearbox/detail/async_fd.hpp>
#include <gearbox/net/address.hpp>
#include <gearbox/net/stream.hpp>
#include <gearbox/task.hpp>

namespace gearbox::net {

struct ConnectOptions {
  // 0: no limit of its own (the caller may still wrap the connect in timeout()). When it
  // runs out, connect throws TimeoutError.
  std::chrono::milliseconds timeout{0};
  bool nodelay = true;
};

class TcpStream : public ByteStream {
public:
  TcpStream() noexcept = default;
  // Adopts a connected, non-blocking TCP socket.
  explicit TcpStream(detail::AsyncFd fd) noexcept;

  // Connects to `address`. IoError("connect") when refused or unreachable.
  [[nodiscard]] static Task<TcpStream> connect(SocketAddress address, ConnectOptions options = {});
  // Resolves `host` (see resolve()) and tries its addresses in order until one connects;
  // the last address's error if none does. The timeout covers the whole attempt.
  [[nodiscard]] static Task<TcpStream> connect(std::string host, std::uint16_t port, ConnectOptions options = {});

  void set_nodelay(bool on);
  SocketAddress local_address() const;
  SocketAddress peer_address() const;
};

struct ListenOptions {
  int backlog = 1024;          // the kernel caps it at net.core.somaxconn
  bool reuse_address = true;   // SO_REUSEADDR: rebind at once after a restart
  bool reuse_port = false;     // SO_REUSEPORT: several listeners (loops) share the port
  bool nodelay = true;         // TCP_NODELAY on accepted streams
};

class TcpListener {
public:
  TcpListener() noexcept = default;

  // Binds and listens (port 0: the kernel picks one; see local_address()). IoError
  // ("bind": EADDRINUSE, EACCES...). A plain call: no loop needed yet.
  [[nodiscard]] static TcpListener bind(const SocketAddress& address, ListenOptions options = {});

  // The next connection. When the process runs out of descriptors (EMFILE) the
  // connection waits in the kernel's queue and accept backs off and retries (see
  // accept_backoffs()), so the loop keeps serving its other clients meanwhile.
  [[nodiscard]] Task<TcpStream> accept();

  SocketAddress local_address() const;
  // How many times accept() had to back off for lack of descriptors or memory.
  std::uint64_t accept_backoffs() const noexcept { return m_backoffs; }
  // Resumes a task waiting in accept() (IoError EBADF) and closes. Idempotent.
  void close() noexcept { m_fd.close(); }
  bool is_open() const noexcept { return m_fd.is_open(); }
  int native_handle() const noexcept { return m_fd.fd(); }

private:
  detail::AsyncFd m_fd;
  std::uint64_t m_backoffs = 0;
  bool m_nodelay = true;
};

}  // namespace gearbox::net
