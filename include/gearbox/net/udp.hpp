// UDP on the loop: datagrams to and from any address, or to one connected peer.
//
//   auto socket = gb::net::UdpSocket::bind(gb::net::SocketAddress::loopback(0));
//   co_await socket.send_to("ping", peer);
//   char buffer[1500];
//   gb::net::Datagram d = co_await socket.receive_from(buffer);   // d.size, d.from
//
// A datagram longer than the buffer is cut to fit and says so (Datagram::truncated).
// Sends never split a datagram: one too large for the network is IoError(EMSGSIZE).
// Every operation is a cancellation point. Thread-safety as TcpStream.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>

#include <gearbox/detail/async_fd.hpp>
#include <gearbox/net/address.hpp>
#include <gearbox/task.hpp>

namespace gearbox::net {

struct Datagram {
  std::size_t size = 0;    // bytes stored in the buffer
  bool truncated = false;  // the datagram was longer than the buffer; the rest is lost
  SocketAddress from;
};

struct UdpOptions {
  bool reuse_address = false;
  bool reuse_port = false;
  bool broadcast = false;
};

class UdpSocket {
public:
  UdpSocket() noexcept = default;

  // IoError("bind ..."). Port 0: the kernel picks one (see local_address()).
  [[nodiscard]] static UdpSocket bind(const SocketAddress& address, UdpOptions options = {});
  // Sets the default peer: send() goes there and only its datagrams are received.
  void connect(const SocketAddress& peer);

  [[nodiscard]] Task<std::size_t> send_to(std::string_view data, const SocketAddress& to);
  [[nodiscard]] Task<Datagram> receive_from(std::span<char> buffer);
  // On a connected socket. A peer with no listener shows up as IoError(ECONNREFUSED) on
  // a later receive or send. receive() cuts a datagram longer than the buffer without
  // saying so; receive_from() reports it (Datagram::truncated).
  [[nodiscard]] Task<std::size_t> send(std::string_view data);
  [[nodiscard]] Task<std::size_t> receive(std::span<char> buffer);

  SocketAddress local_address() const;
  void close() noexcept { m_fd.close(); }
  bool is_open() const noexcept { return m_fd.is_open(); }
  int native_handle() const noexcept { return m_fd.fd(); }

private:
  detail::AsyncFd m_fd;
};

}  // namespace gearbox::net
