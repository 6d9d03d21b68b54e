#include <gearbox/net/udp.hpp>

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

#include <gearbox/error.hpp>

#include "net/socket_util.hpp"

namespace gearbox::net {

UdpSocket UdpSocket::bind(const SocketAddress& address, UdpOptions options) {
  gearbox::detail::AsyncFd owner{sys::open_socket(address.family(), SOCK_DGRAM)};
  const int fd = owner.fd();
  if (options.reuse_address) sys::set_option(fd, SOL_SOCKET, SO_REUSEADDR, 1, "setsockopt SO_REUSEADDR");
  if (options.reuse_port) sys::set_option(fd, SOL_SOCKET, SO_REUSEPORT, 1, "setsockopt SO_REUSEPORT");
  if (options.broadcast) sys::set_option(fd, SOL_SOCKET, SO_BROADCAST, 1, "setsockopt SO_BROADCAST");
  sys::bind_socket(owner.release(), address, -1);
  UdpSocket socket;
  socket.m_fd = gearbox::detail::AsyncFd{fd};
  socket.m_fd.set_socket(true);
  return socket;
}

void UdpSocket::connect(const SocketAddress& peer) {
  if (!m_fd.is_open()) throw IoError(EBADF, "connect");
  if (::connect(m_fd.fd(), peer.native(), peer.native_size()) != 0) throw IoError(errno, "connect");
}

Task<std::size_t> UdpSocket::send_to(std::string_view data, const SocketAddress& to) {
  return m_fd.send_to(data.data(), data.size(), to.native(), to.native_size());
}

Task<Datagram> UdpSocket::receive_from(std::span<char> buffer) {
  sockaddr_storage from{};
  socklen_t from_size = 0;
  const std::size_t length = co_await m_fd.receive_from(buffer.data(), buffer.size(), &from, &from_size);
  Datagram datagram;
  datagram.size = std::min(length, buffer.size());
  datagram.truncated = length > buffer.size();
  if (from_size > 0) datagram.from = SocketAddress::from_native(reinterpret_cast<sockaddr*>(&from), from_size);
  co_return datagram;
}

Task<std::size_t> UdpSocket::send(std::string_view data) { return m_fd.send_to(data.data(), data.size(), nullptr, 0); }

Task<std::size_t> UdpSocket::receive(std::span<char> buffer) {
  const std::size_t length = co_await m_fd.receive_from(buffer.data(), buffer.size(), nullptr, nullptr);
  co_return std::min(length, buffer.size());
}

SocketAddress UdpSocket::local_address() const { return sys::local_address_of(m_fd.fd()); }

}  // namespace gearbox::net
