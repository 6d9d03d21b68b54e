#include <gearbox/net/tcp.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <exception>
#include <utility>

#include <gearbox/error.hpp>
#include <gearbox/net/resolve.hpp>
#include <gearbox/time.hpp>

#include "net/socket_util.hpp"

namespace gearbox::net {

namespace {

Task<TcpStream> connect_to(SocketAddress address, bool nodelay) {
  gearbox::detail::AsyncFd fd{sys::open_socket(address.family(), SOCK_STREAM)};
  fd.set_socket(true);
  co_await fd.connect(address.native(), address.native_size());
  TcpStream stream{std::move(fd)};
  if (nodelay) stream.set_nodelay(true);
  co_return stream;
}

Task<TcpStream> connect_to_host(std::string host, std::uint16_t port, bool nodelay) {
  const std::vector<SocketAddress> addresses = co_await resolve(host, port);
  std::exception_ptr last_error;
  for (const SocketAddress& address : addresses) {
    try {
      co_return co_await connect_to(address, nodelay);
    } catch (const IoError&) {
      last_error = std::current_exception();  // try the next address
    }
  }
  std::rethrow_exception(last_error);
}

}  // namespace

TcpStream::TcpStream(gearbox::detail::AsyncFd fd) noexcept : ByteStream(std::move(fd)) { m_fd.set_socket(true); }

Task<TcpStream> TcpStream::connect(SocketAddress address, ConnectOptions options) {
  if (options.timeout.count() > 0) return timeout(options.timeout, connect_to(address, options.nodelay));
  return connect_to(address, options.nodelay);
}

Task<TcpStream> TcpStream::connect(std::string host, std::uint16_t port, ConnectOptions options) {
  if (options.timeout.count() > 0) return timeout(options.timeout, connect_to_host(std::move(host), port, options.nodelay));
  return connect_to_host(std::move(host), port, options.nodelay);
}

void TcpStream::set_nodelay(bool on) { sys::set_option(m_fd.fd(), IPPROTO_TCP, TCP_NODELAY, on ? 1 : 0, "setsockopt TCP_NODELAY"); }

SocketAddress TcpStream::local_address() const { return sys::local_address_of(m_fd.fd()); }
SocketAddress TcpStream::peer_address() const { return sys::peer_address_of(m_fd.fd()); }

TcpListener TcpListener::bind(const SocketAddress& address, ListenOptions options) {
  const int fd = sys::open_socket(address.family(), SOCK_STREAM);
  gearbox::detail::AsyncFd owner{fd};
  if (options.reuse_address) sys::set_option(fd, SOL_SOCKET, SO_REUSEADDR, 1, "setsockopt SO_REUSEADDR");
  if (options.reuse_port) sys::set_option(fd, SOL_SOCKET, SO_REUSEPORT, 1, "setsockopt SO_REUSEPORT");
  sys::bind_socket(owner.release(), address, options.backlog);
  TcpListener listener;
  listener.m_fd = gearbox::detail::AsyncFd{fd};
  listener.m_fd.set_socket(true);
  listener.m_nodelay = options.nodelay;
  return listener;
}

Task<TcpStream> TcpListener::accept() {
  const int fd = co_await m_fd.accept(nullptr, nullptr, &m_backoffs);
  TcpStream stream{gearbox::detail::AsyncFd{fd}};
  if (m_nodelay) stream.set_nodelay(true);
  co_return stream;
}

SocketAddress TcpListener::local_address() const { return sys::local_address_of(m_fd.fd()); }

}  // namespace gearbox::net
