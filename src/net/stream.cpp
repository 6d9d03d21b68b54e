#include <gearbox/net/stream.hpp>

#include <sys/socket.h>
#include <sys/stat.h>

#include <cerrno>

#include <gearbox/error.hpp>

namespace gearbox::net {

namespace {

Task<void> read_exactly(detail::AsyncFd& fd, std::byte* data, std::size_t size) {
  while (size > 0) {
    const std::size_t n = co_await fd.read(data, size);
    if (n == 0) throw UnexpectedEof("read_exact");
    data += n;
    size -= n;
  }
}

}  // namespace

Task<void> ByteStream::read_exact(std::span<char> buffer) {
  return read_exactly(m_fd, reinterpret_cast<std::byte*>(buffer.data()), buffer.size());
}

Task<void> ByteStream::read_exact(std::span<std::byte> buffer) {
  return read_exactly(m_fd, buffer.data(), buffer.size());
}

void ByteStream::shutdown_write() {
  if (!m_fd.is_open()) throw IoError(EBADF, "shutdown");
  if (::shutdown(m_fd.fd(), SHUT_WR) == 0) return;
  if (errno != ENOTSOCK) throw IoError(errno, "shutdown");
  m_fd.close();  // a pipe's write end: closing it is its end of stream
}

void ByteStream::shutdown() {
  if (!m_fd.is_open()) throw IoError(EBADF, "shutdown");
  if (::shutdown(m_fd.fd(), SHUT_RDWR) == 0 || errno == ENOTCONN) return;
  throw IoError(errno, "shutdown");
}

}  // namespace gearbox::net
