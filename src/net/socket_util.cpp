#include "net/socket_util.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include <gearbox/error.hpp>

namespace gearbox::net::sys {

int open_socket(int family, int type) {
  const int fd = ::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw IoError(errno, "socket");
  return fd;
}

void set_option(int fd, int level, int name, int value, const char* operation) {
  if (::setsockopt(fd, level, name, &value, sizeof value) != 0) throw IoError(errno, operation);
}

SocketAddress local_address_of(int fd) {
  sockaddr_storage storage{};
  socklen_t size = sizeof storage;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &size) != 0) throw IoError(errno, "getsockname");
  return SocketAddress::from_native(reinterpret_cast<sockaddr*>(&storage), size);
}

SocketAddress peer_address_of(int fd) {
  sockaddr_storage storage{};
  socklen_t size = sizeof storage;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&storage), &size) != 0) throw IoError(errno, "getpeername");
  return SocketAddress::from_native(reinterpret_cast<sockaddr*>(&storage), size);
}

void bind_socket(int fd, const SocketAddress& address, int backlog_or_negative) {
  if (::bind(fd, address.native(), address.native_size()) != 0) {
    const int error = errno;
    ::close(fd);
    throw IoError(error, "bind " + address.to_string());
  }
  if (backlog_or_negative >= 0 && ::listen(fd, backlog_or_negative) != 0) {
    const int error = errno;
    ::close(fd);
    throw IoError(error, "listen");
  }
}

}  // namespace gearbox::net::sys
