#include <gearbox/detail/async_fd.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <utility>

#include <gearbox/detail/fd_watch.hpp>
#include <gearbox/error.hpp>
#include <gearbox/loop.hpp>
#include <gearbox/time.hpp>

namespace gearbox::detail {

namespace {

// accept() could not get a descriptor or memory: the connection waits in the backlog.
bool out_of_resources(int error) {
  return error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM;
}

// accept() failed for this one connection (it was reset while queued...): try the next.
bool transient_accept_error(int error) {
  return error == EINTR || error == ECONNABORTED || error == EPROTO || error == EPERM || error == ENETDOWN ||
         error == ENOPROTOOPT || error == EHOSTDOWN || error == ENONET || error == EHOSTUNREACH ||
         error == EOPNOTSUPP || error == ENETUNREACH;
}

constexpr auto k_first_backoff = std::chrono::milliseconds{1};
constexpr auto k_max_backoff = std::chrono::milliseconds{256};

}  // namespace

AsyncFd::AsyncFd() noexcept = default;
AsyncFd::AsyncFd(int fd) noexcept : m_fd(fd) {}

AsyncFd::AsyncFd(AsyncFd&& other) noexcept
    : m_fd(std::exchange(other.m_fd, -1)), m_is_socket(other.m_is_socket), m_watch(std::move(other.m_watch)) {}

AsyncFd& AsyncFd::operator=(AsyncFd&& other) noexcept {
  if (this != &other) {
    close();
    m_fd = std::exchange(other.m_fd, -1);
    m_is_socket = other.m_is_socket;
    m_watch = std::move(other.m_watch);
  }
  return *this;
}

AsyncFd::~AsyncFd() { close(); }

void AsyncFd::close() noexcept {
  if (m_fd < 0) return;
  ::close(release());
}

int AsyncFd::release() noexcept {
  if (m_watch) {
    m_watch->wake_waiters();  // they resume later, find m_fd < 0 and throw EBADF
    m_watch.reset();
  }
  return std::exchange(m_fd, -1);
}

void AsyncFd::check_open(const char* operation) const {
  if (m_fd < 0) throw IoError(EBADF, operation);
}

FdWatch& AsyncFd::watch(const char* operation) {
  check_open(operation);
  Loop& loop = Loop::current_or_throw();
  if (!m_watch || m_watch->detached()) {
    // First use, or its loop was destroyed: attach to this one (readiness unknown: try).
    m_watch = std::make_unique<FdWatch>(loop, m_fd, /*assume_ready=*/true);
  } else if (m_watch->loop() != &loop) {
    throw std::logic_error(std::string("gearbox: ") + operation + ": the descriptor belongs to another loop");
  }
  return *m_watch;
}

Task<std::size_t> AsyncFd::read(void* data, std::size_t size) {
  for (;;) {
    co_await watch("read").readable();
    check_open("read");
    const ssize_t n = ::read(m_fd, data, size);
    if (n >= 0) {
      // A short read emptied the kernel's buffer: wait for the next edge before trying again.
      // Not after a hang-up: the end of stream that follows the data sends no further edge.
      if (n > 0 && static_cast<std::size_t>(n) < size && !m_watch->hung_up()) m_watch->clear_readable();
      co_return static_cast<std::size_t>(n);
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      m_watch->clear_readable();
    } else if (errno != EINTR) {
      throw IoError(errno, "read");
    }
  }
}

// One non-blocking write. Returns the bytes written, or nothing when the descriptor was not
// ready after all (EAGAIN: readiness cleared; EINTR); throws IoError on other errors.
std::optional<std::size_t> AsyncFd::try_write(const void* data, std::size_t size) {
  const ssize_t n = m_is_socket ? ::send(m_fd, data, size, MSG_NOSIGNAL) : ::write(m_fd, data, size);
  if (n >= 0) {
    // A short write filled the kernel's buffer: the next one waits for room.
    if (static_cast<std::size_t>(n) < size) m_watch->clear_writable();
    return static_cast<std::size_t>(n);
  }
  if (errno == EAGAIN || errno == EWOULDBLOCK) {
    m_watch->clear_writable();
  } else if (errno != EINTR) {
    throw IoError(errno, "write");
  }
  return std::nullopt;
}

Task<std::size_t> AsyncFd::write_some(const void* data, std::size_t size) {
  for (;;) {
    co_await watch("write").writable();
    check_open("write");
    if (const auto n = try_write(data, size)) co_return *n;
  }
}

// The loop of write_some, inline: one coroutine frame per write_all, not one per piece.
Task<void> AsyncFd::write_all(const void* data, std::size_t size) {
  const auto* bytes = static_cast<const std::byte*>(data);
  while (size > 0) {
    co_await watch("write").writable();
    check_open("write");
    if (const auto n = try_write(bytes, size)) {
      bytes += *n;
      size -= *n;
    }
  }
}

Task<void> AsyncFd::wait_readable() {
  FdWatch& w = watch("wait");
  w.clear_readable();
  co_await w.readable();
  check_open("wait");
}

Task<int> AsyncFd::accept(sockaddr_storage* peer, socklen_t* peer_size, std::uint64_t* backoffs) {
  auto backoff = std::chrono::milliseconds{0};
  for (;;) {
    co_await watch("accept").readable();
    check_open("accept");
    socklen_t size = sizeof(sockaddr_storage);
    const int fd = ::accept4(m_fd, reinterpret_cast<sockaddr*>(peer), &size, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      if (peer_size) *peer_size = size;
      co_return fd;
    }
    const int error = errno;
    if (error == EAGAIN || error == EWOULDBLOCK) {
      m_watch->clear_readable();
      backoff = std::chrono::milliseconds{0};
    } else if (out_of_resources(error)) {
      // The connection stays queued and the descriptor stays marked readable: sleep, then
      // try again, while the loop serves everyone else (and perhaps frees descriptors).
      backoff = std::clamp(backoff * 2, k_first_backoff, k_max_backoff);
      if (backoffs) ++*backoffs;
      co_await sleep_for(backoff);
    } else if (!transient_accept_error(error)) {
      throw IoError(error, "accept");
    }
  }
}

Task<void> AsyncFd::connect(const sockaddr* address, socklen_t size) {
  check_open("connect");
  if (::connect(m_fd, address, size) == 0) co_return;
  if (errno != EINPROGRESS && errno != EINTR) throw IoError(errno, "connect");
  FdWatch& w = watch("connect");
  for (;;) {
    w.clear_writable();  // only the edge that ends the handshake counts
    co_await w.writable();
    check_open("connect");
    int error = 0;
    socklen_t length = sizeof error;
    if (::getsockopt(m_fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0) throw IoError(errno, "connect");
    if (error != 0) throw IoError(error, "connect");
    sockaddr_storage peer{};
    socklen_t peer_size = sizeof peer;
    if (::getpeername(m_fd, reinterpret_cast<sockaddr*>(&peer), &peer_size) == 0) break;
    if (errno != ENOTCONN) throw IoError(errno, "connect");
  }
}

Task<std::size_t> AsyncFd::receive_from(void* data, std::size_t size, sockaddr_storage* from, socklen_t* from_size) {
  for (;;) {
    co_await watch("receive").readable();
    check_open("receive");
    socklen_t length = sizeof(sockaddr_storage);
    const ssize_t n =
        ::recvfrom(m_fd, data, size, MSG_TRUNC, from ? reinterpret_cast<sockaddr*>(from) : nullptr, from ? &length : nullptr);
    if (n >= 0) {
      if (from_size) *from_size = from ? length : 0;
      co_return static_cast<std::size_t>(n);
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      m_watch->clear_readable();
    } else if (errno != EINTR) {
      throw IoError(errno, "receive");
    }
  }
}

Task<std::size_t> AsyncFd::send_to(const void* data, std::size_t size, const sockaddr* address,
                                   socklen_t address_size) {
  for (;;) {
    co_await watch("send").writable();
    check_open("send");
    const ssize_t n = ::sendto(m_fd, data, size, MSG_NOSIGNAL, address, address ? address_size : 0);
    if (n >= 0) co_return static_cast<std::size_t>(n);
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      m_watch->clear_writable();
    } else if (errno != EINTR) {
      throw IoError(errno, "send");
    }
  }
}

}  // namespace gearbox::detail
