#include <gearbox/detail/async_fd.hpp>

#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <chrono>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <utility>
#include <vector>

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

// What a write of `size` bytes that returned `n` (errno set when negative) means: bytes
// written, or nullopt to wait for the next writable edge (EAGAIN) or retry (EINTR).
std::optional<std::size_t> write_outcome(FdWatch& w, std::uint32_t tick, ssize_t n, std::size_t size) {
  if (n >= 0) {
    // A short write filled the kernel's buffer: the next one waits for room.
    if (static_cast<std::size_t>(n) < size) w.clear_writable(tick);
    return static_cast<std::size_t>(n);
  }
  if (errno == EAGAIN || errno == EWOULDBLOCK) {
    w.clear_writable(tick);
  } else if (errno != EINTR) {
    throw IoError(errno, "write");
  }
  return std::nullopt;
}

}  // namespace

AsyncFd::AsyncFd() noexcept = default;
AsyncFd::AsyncFd(int fd) noexcept : m_fd(fd) {}

AsyncFd::AsyncFd(AsyncFd&& other) noexcept
    : m_fd(std::exchange(other.m_fd, -1)), m_is_socket(other.m_is_socket),
      m_watch(other.m_watch.exchange(nullptr, std::memory_order_acq_rel)) {}

AsyncFd& AsyncFd::operator=(AsyncFd&& other) noexcept {
  if (this != &other) {
    close();
    drop_watch();
    m_fd = std::exchange(other.m_fd, -1);
    m_is_socket = other.m_is_socket;
    m_watch.store(other.m_watch.exchange(nullptr, std::memory_order_acq_rel), std::memory_order_release);
  }
  return *this;
}

AsyncFd::~AsyncFd() {
  close();
  drop_watch();
}

void AsyncFd::close() noexcept {
  if (m_fd < 0) return;
  ::close(release());
}

int AsyncFd::release() noexcept {
  // The descriptor is marked closed before the waiters are woken: on a Runtime they may
  // run at once, and must find it closed (EBADF), not wait again.
  const int fd = std::exchange(m_fd, -1);
  if (FdWatch* watch = m_watch.load(std::memory_order_acquire)) {
    watch->unregister();     // before the descriptor is closed (or reused)
    watch->wake_waiters();   // they resume later and throw EBADF
  }
  return fd;
}

// The watch stays until the AsyncFd goes or is reassigned, not just closed: a waiter woken
// by close() may still be leaving its wait (a cancel in flight takes the watch's lock).
void AsyncFd::drop_watch() noexcept {
  if (FdWatch* watch = m_watch.exchange(nullptr, std::memory_order_acq_rel)) FdWatch::retire(watch);
}

void AsyncFd::check_open(const char* operation) const {
  if (m_fd < 0) throw IoError(EBADF, operation);
}

namespace {

// `watch`, if it is attached to a live loop that `loop` may use (the same loop, or a worker
// of the same Runtime); null if it is missing or detached (its loop is gone).
FdWatch* usable_watch(FdWatch* watch, Loop& loop, const char* operation) {
  if (!watch || watch->detached()) return nullptr;
  Loop* attached = watch->loop();
  if (attached != &loop && !(attached && LoopAccess::same_runtime(*attached, loop)))
    throw std::logic_error(std::string("gearbox: ") + operation + ": the descriptor belongs to another loop");
  return watch;
}

}  // namespace

FdWatch& AsyncFd::watch(const char* operation) {
  check_open(operation);
  Loop& loop = Loop::current_or_throw();
  if (FdWatch* ready = usable_watch(m_watch.load(std::memory_order_acquire), loop, operation)) return *ready;
  // First use, or its loop was destroyed: attach, one attacher at a time. On a Runtime two
  // tasks may attach at once from two workers, and both could be given the same home
  // reactor, which takes a descriptor once (EEXIST).
  std::lock_guard guard{m_attach_lock};
  FdWatch* current = m_watch.load(std::memory_order_acquire);
  if (FdWatch* ready = usable_watch(current, loop, operation)) return *ready;  // attached meanwhile
  auto* fresh = new FdWatch(LoopAccess::home_for_new_descriptor(loop), m_fd, /*assume_ready=*/true);
  m_watch.store(fresh, std::memory_order_release);
  if (current) FdWatch::retire(current);  // detached: its loop is gone (a single-thread Loop)
  return *fresh;
}

Task<std::size_t> AsyncFd::read(void* data, std::size_t size) {
  for (;;) {
    FdWatch& w = watch("read");
    co_await w.readable();
    check_open("read");
    const std::uint32_t tick = w.read_tick();
    const ssize_t n = ::read(m_fd, data, size);
    if (n >= 0) {
      // A short read emptied the kernel's buffer: wait for the next edge before trying again.
      // Not after a hang-up: the end of stream that follows the data sends no further edge.
      if (n > 0 && static_cast<std::size_t>(n) < size && !w.hung_up()) w.clear_readable(tick);
      co_return static_cast<std::size_t>(n);
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      w.clear_readable(tick);
    } else if (errno != EINTR) {
      throw IoError(errno, "read");
    }
  }
}

// One non-blocking write. Returns the bytes written, or nothing when the descriptor was not
// ready after all (EAGAIN: readiness cleared; EINTR); throws IoError on other errors.
std::optional<std::size_t> AsyncFd::try_writev(FdWatch& w, const iovec* pieces, int count, std::size_t size) {
  const std::uint32_t tick = w.write_tick();
  ssize_t n;
  if (m_is_socket) {
    msghdr message{};
    message.msg_iov = const_cast<iovec*>(pieces);
    message.msg_iovlen = static_cast<std::size_t>(count);
    n = ::sendmsg(m_fd, &message, MSG_NOSIGNAL);
  } else {
    n = ::writev(m_fd, pieces, count);
  }
  return write_outcome(w, tick, n, size);
}

std::optional<std::size_t> AsyncFd::try_write(FdWatch& w, const void* data, std::size_t size) {
  const std::uint32_t tick = w.write_tick();
  const ssize_t n = m_is_socket ? ::send(m_fd, data, size, MSG_NOSIGNAL) : ::write(m_fd, data, size);
  return write_outcome(w, tick, n, size);
}

Task<std::size_t> AsyncFd::write_some(const void* data, std::size_t size) {
  for (;;) {
    FdWatch& w = watch("write");
    co_await w.writable();
    check_open("write");
    if (const auto n = try_write(w, data, size)) co_return *n;
  }
}

// The loop of write_some, inline: one coroutine frame per write_all, not one per piece.
Task<void> AsyncFd::write_all(const void* data, std::size_t size) {
  const auto* bytes = static_cast<const std::byte*>(data);
  while (size > 0) {
    FdWatch& w = watch("write");
    co_await w.writable();
    check_open("write");
    if (const auto n = try_write(w, bytes, size)) {
      bytes += *n;
      size -= *n;
    }
  }
}

Task<void> AsyncFd::write_all_vectored(std::span<const std::string_view> pieces) {
  // A window of at most IOV_MAX iovecs over what is left: pieces[next..], the first of
  // them from `offset` on. Empty pieces are skipped, so a window is never all empty.
  std::vector<iovec> window;
  window.reserve(std::min<std::size_t>(pieces.size(), IOV_MAX));
  std::size_t next = 0;
  std::size_t offset = 0;
  for (;;) {
    while (next < pieces.size() && offset == pieces[next].size()) {
      ++next;
      offset = 0;
    }
    if (next == pieces.size()) co_return;
    FdWatch& w = watch("write");
    co_await w.writable();
    check_open("write");
    window.clear();
    std::size_t size = 0;
    for (std::size_t i = next; i < pieces.size() && window.size() < IOV_MAX; ++i) {
      const std::size_t skip = i == next ? offset : 0;
      if (pieces[i].size() == skip) continue;
      window.push_back({const_cast<char*>(pieces[i].data() + skip), pieces[i].size() - skip});
      size += pieces[i].size() - skip;
    }
    const auto n = try_writev(w, window.data(), static_cast<int>(window.size()), size);
    if (!n) continue;
    // Advance past the bytes written.
    for (std::size_t left = *n; left > 0;) {
      const std::size_t take = std::min(left, pieces[next].size() - offset);
      left -= take;
      offset += take;
      if (offset == pieces[next].size()) {
        ++next;
        offset = 0;
      }
    }
  }
}

std::uint32_t AsyncFd::readable_tick() { return watch("wait").read_tick(); }

Task<void> AsyncFd::wait_readable(std::uint32_t since) {
  FdWatch& w = watch("wait");
  w.clear_readable(since);  // keeps an edge that came after `since` (during the caller's check)
  co_await w.readable();
  check_open("wait");
}

Task<int> AsyncFd::accept(sockaddr_storage* peer, socklen_t* peer_size, std::uint64_t* backoffs) {
  auto backoff = std::chrono::milliseconds{0};
  for (;;) {
    FdWatch& w = watch("accept");
    co_await w.readable();
    check_open("accept");
    const std::uint32_t tick = w.read_tick();
    socklen_t size = sizeof(sockaddr_storage);
    const int fd = ::accept4(m_fd, reinterpret_cast<sockaddr*>(peer), &size, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      if (peer_size) *peer_size = size;
      co_return fd;
    }
    const int error = errno;
    if (error == EAGAIN || error == EWOULDBLOCK) {
      w.clear_readable(tick);
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
    // The tick before the check, as for every operation here: the handshake's writable
    // edge, if it comes after the check, is then kept by clear_writable. On a Runtime the
    // watch's reactor may be another worker's, which can report that edge as soon as the
    // descriptor is registered: a tick read after it (the first design cleared with a fresh
    // tick before its first wait) threw the edge away, and the connect waited forever.
    const std::uint32_t tick = w.write_tick();
    check_open("connect");
    int error = 0;
    socklen_t length = sizeof error;
    if (::getsockopt(m_fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0) throw IoError(errno, "connect");
    if (error != 0) throw IoError(error, "connect");
    sockaddr_storage peer{};
    socklen_t peer_size = sizeof peer;
    if (::getpeername(m_fd, reinterpret_cast<sockaddr*>(&peer), &peer_size) == 0) break;
    if (errno != ENOTCONN) throw IoError(errno, "connect");
    w.clear_writable(tick);  // still in progress: wait for the next edge
    co_await w.writable();
  }
}

Task<std::size_t> AsyncFd::receive_from(void* data, std::size_t size, sockaddr_storage* from, socklen_t* from_size) {
  for (;;) {
    FdWatch& w = watch("receive");
    co_await w.readable();
    check_open("receive");
    const std::uint32_t tick = w.read_tick();
    socklen_t length = sizeof(sockaddr_storage);
    const ssize_t n =
        ::recvfrom(m_fd, data, size, MSG_TRUNC, from ? reinterpret_cast<sockaddr*>(from) : nullptr, from ? &length : nullptr);
    if (n >= 0) {
      if (from_size) *from_size = from ? length : 0;
      co_return static_cast<std::size_t>(n);
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      w.clear_readable(tick);
    } else if (errno != EINTR) {
      throw IoError(errno, "receive");
    }
  }
}

Task<std::size_t> AsyncFd::send_to(const void* data, std::size_t size, const sockaddr* address,
                                   socklen_t address_size) {
  for (;;) {
    FdWatch& w = watch("send");
    co_await w.writable();
    check_open("send");
    const std::uint32_t tick = w.write_tick();
    const ssize_t n = ::sendto(m_fd, data, size, MSG_NOSIGNAL, address, address ? address_size : 0);
    if (n >= 0) co_return static_cast<std::size_t>(n);
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      w.clear_writable(tick);
    } else if (errno != EINTR) {
      throw IoError(errno, "send");
    }
  }
}

}  // namespace gearbox::detail
