#include <gearbox/net/unix.hpp>

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include <gearbox/error.hpp>

#include "net/socket_util.hpp"

namespace gearbox::net {

namespace {

// Whether the socket file at `address` is stale: no socket listens there any more (its
// server crashed). A live listener's file must not be removed: the new listener would take
// its path, and the old one's close() would later unlink the new one's file. A probe
// connect is refused exactly when nobody listens; it succeeds (or finds the backlog full,
// EAGAIN) when someone does, and that listener then accepts a connection that is closed
// at once.
bool is_stale_socket(const SocketAddress& address) {
  const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (probe < 0) return false;
  const bool refused = ::connect(probe, address.native(), address.native_size()) != 0 && errno == ECONNREFUSED;
  ::close(probe);
  return refused;
}

}  // namespace

UnixStream::UnixStream(gearbox::detail::AsyncFd fd) noexcept : ByteStream(std::move(fd)) { m_fd.set_socket(true); }

Task<UnixStream> UnixStream::connect(std::string path) {
  const SocketAddress address = SocketAddress::unix_path(path);
  gearbox::detail::AsyncFd fd{sys::open_socket(AF_UNIX, SOCK_STREAM)};
  fd.set_socket(true);
  co_await fd.connect(address.native(), address.native_size());
  co_return UnixStream{std::move(fd)};
}

std::pair<UnixStream, UnixStream> UnixStream::pair() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) throw IoError(errno, "socketpair");
  return {UnixStream{gearbox::detail::AsyncFd{fds[0]}}, UnixStream{gearbox::detail::AsyncFd{fds[1]}}};
}

UnixListener::UnixListener(UnixListener&& other) noexcept
    : m_fd(std::move(other.m_fd)), m_path(std::move(other.m_path)), m_backoffs(other.m_backoffs),
      m_file_id(other.m_file_id), m_owns_file(std::exchange(other.m_owns_file, false)) {
  other.m_path.clear();
}

UnixListener& UnixListener::operator=(UnixListener&& other) noexcept {
  if (this != &other) {
    close();
    m_fd = std::move(other.m_fd);
    m_path = std::move(other.m_path);
    m_backoffs = other.m_backoffs;
    m_file_id = other.m_file_id;
    m_owns_file = std::exchange(other.m_owns_file, false);
    other.m_path.clear();
  }
  return *this;
}

UnixListener UnixListener::bind(std::string path, UnixListenOptions options) {
  const SocketAddress address = SocketAddress::unix_path(path);
  const bool in_file_system = path.front() != '@';
  if (options.remove_stale && in_file_system) {
    struct stat info{};
    if (::lstat(path.c_str(), &info) == 0 && S_ISSOCK(info.st_mode) && is_stale_socket(address)) ::unlink(path.c_str());
  }
  const int fd = sys::open_socket(AF_UNIX, SOCK_STREAM);
  sys::bind_socket(fd, address, options.backlog);
  UnixListener listener;
  listener.m_fd = gearbox::detail::AsyncFd{fd};
  listener.m_fd.set_socket(true);
  struct stat info{};
  if (in_file_system && ::lstat(path.c_str(), &info) == 0) {
    listener.m_file_id = {info.st_dev, info.st_ino};
    listener.m_owns_file = true;
  }
  listener.m_path = std::move(path);
  return listener;
}

Task<UnixStream> UnixListener::accept() {
  const int fd = co_await m_fd.accept(nullptr, nullptr, &m_backoffs);
  co_return UnixStream{gearbox::detail::AsyncFd{fd}};
}

void UnixListener::close() noexcept {
  if (!m_fd.is_open()) return;
  m_fd.close();
  // Only our own socket file: another server may have taken the path since (remove_stale).
  struct stat info{};
  if (m_owns_file && ::lstat(m_path.c_str(), &info) == 0 && info.st_dev == m_file_id.first &&
      info.st_ino == m_file_id.second)
    ::unlink(m_path.c_str());
  m_owns_file = false;
}

}  // namespace gearbox::net
