// SocketAddress: where a socket binds or connects, for IPv4, IPv6 and Unix domain sockets.
//
//   auto a = gb::net::SocketAddress::loopback(8080);           // 127.0.0.1:8080
//   auto b = gb::net::SocketAddress::parse("[::1]:8080");
//   auto c = gb::net::SocketAddress::unix_path("/run/app.sock");  // "@name": abstract
//
// A value type (a sockaddr_storage and its length); cheap to copy. Parsing never looks
// names up: use resolve() for host names. Thread-safe as any value.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace gearbox::net {

class SocketAddress {
public:
  SocketAddress() noexcept = default;  // empty: family() == AF_UNSPEC

  // A numeric IPv4 or IPv6 address ("10.0.0.1", "::1") and a port; std::invalid_argument
  // if `ip` is neither.
  static SocketAddress ip(std::string_view ip, std::uint16_t port);
  // "host:port" with a numeric host, IPv6 in brackets ("[::1]:80"); std::invalid_argument.
  static SocketAddress parse(std::string_view text);
  static SocketAddress loopback(std::uint16_t port);  // 127.0.0.1
  static SocketAddress any(std::uint16_t port);       // 0.0.0.0
  // A Unix domain socket path; a leading '@' names the Linux abstract namespace (nothing
  // in the file system). std::invalid_argument if longer than sun_path allows.
  static SocketAddress unix_path(std::string_view path);
  static SocketAddress from_native(const sockaddr* address, socklen_t size);

  int family() const noexcept { return m_storage.ss_family; }
  bool empty() const noexcept { return m_size == 0; }
  // The port of an IP address; 0 for other families.
  std::uint16_t port() const noexcept;
  // "127.0.0.1:80", "[::1]:80", "/run/app.sock", "@abstract".
  std::string to_string() const;

  const sockaddr* native() const noexcept { return reinterpret_cast<const sockaddr*>(&m_storage); }
  socklen_t native_size() const noexcept { return m_size; }

  friend bool operator==(const SocketAddress& a, const SocketAddress& b) noexcept;

private:
  sockaddr_storage m_storage{};
  socklen_t m_size = 0;
};

}  // namespace gearbox::net
