#include <gearbox/net/address.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <charconv>
#include <cstddef>
#include <cstring>
#include <stdexcept>

namespace gearbox::net {

SocketAddress SocketAddress::ip(std::string_view ip, std::uint16_t port) {
  const std::string text(ip);
  SocketAddress address;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&address.m_storage);
  if (::inet_pton(AF_INET, text.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    address.m_size = sizeof(sockaddr_in);
    return address;
  }
  address.m_storage = {};
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&address.m_storage);
  if (::inet_pton(AF_INET6, text.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    address.m_size = sizeof(sockaddr_in6);
    return address;
  }
  throw std::invalid_argument("gearbox: not a numeric IP address: '" + text + "'");
}

SocketAddress SocketAddress::parse(std::string_view text) {
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos) throw std::invalid_argument("gearbox: no port in address '" + std::string(text) + "'");
  std::string_view host = text.substr(0, colon);
  const std::string_view port_text = text.substr(colon + 1);
  unsigned port = 0;
  const auto [end, error] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (error != std::errc{} || end != port_text.data() + port_text.size() || port > 65535 || port_text.empty())
    throw std::invalid_argument("gearbox: bad port in address '" + std::string(text) + "'");
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return ip(host, static_cast<std::uint16_t>(port));
}

SocketAddress SocketAddress::loopback(std::uint16_t port) { return ip("127.0.0.1", port); }
SocketAddress SocketAddress::any(std::uint16_t port) { return ip("0.0.0.0", port); }

SocketAddress SocketAddress::unix_path(std::string_view path) {
  SocketAddress address;
  auto* un = reinterpret_cast<sockaddr_un*>(&address.m_storage);
  if (path.empty() || path.size() >= sizeof un->sun_path)
    throw std::invalid_argument("gearbox: Unix socket path empty or longer than " +
                                std::to_string(sizeof un->sun_path - 1) + " bytes: '" + std::string(path) + "'");
  un->sun_family = AF_UNIX;
  std::memcpy(un->sun_path, path.data(), path.size());
  if (path.front() == '@') {
    un->sun_path[0] = '\0';  // abstract: the name is the bytes after the NUL, no terminator
    address.m_size = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());
  } else {
    address.m_size = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  }
  return address;
}

SocketAddress SocketAddress::from_native(const sockaddr* native, socklen_t size) {
  SocketAddress address;
  if (size > sizeof address.m_storage) throw std::invalid_argument("gearbox: socket address too long");
  std::memcpy(&address.m_storage, native, size);
  address.m_size = size;
  return address;
}

std::uint16_t SocketAddress::port() const noexcept {
  switch (family()) {
  case AF_INET: return ntohs(reinterpret_cast<const sockaddr_in*>(&m_storage)->sin_port);
  case AF_INET6: return ntohs(reinterpret_cast<const sockaddr_in6*>(&m_storage)->sin6_port);
  default: return 0;
  }
}

std::string SocketAddress::to_string() const {
  char text[INET6_ADDRSTRLEN] = {};
  switch (family()) {
  case AF_INET:
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&m_storage)->sin_addr, text, sizeof text);
    return std::string(text) + ":" + std::to_string(port());
  case AF_INET6:
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&m_storage)->sin6_addr, text, sizeof text);
    return "[" + std::string(text) + "]:" + std::to_string(port());
  case AF_UNIX: {
    const auto* un = reinterpret_cast<const sockaddr_un*>(&m_storage);
    const std::size_t offset = offsetof(sockaddr_un, sun_path);
    if (m_size <= offset) return "(unnamed)";
    if (un->sun_path[0] == '\0') return "@" + std::string(un->sun_path + 1, m_size - offset - 1);
    return std::string(un->sun_path);
  }
  default: return "(unspecified)";
  }
}

bool operator==(const SocketAddress& a, const SocketAddress& b) noexcept {
  return a.m_size == b.m_size && std::memcmp(&a.m_storage, &b.m_storage, a.m_size) == 0;
}

}  // namespace gearbox::net
