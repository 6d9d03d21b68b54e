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

#include "net/accept_policy.hpp"
#include "net/accept_stream.hpp"
#include "net/async_fd_use.hpp"
#include "net/piece_cursor.hpp"
#include "net/recv_stream.hpp"

namespace gearbox::detail {

namespace {

// What a write of `size` bytes that returned `n` (`error` when negative) means: bytes
// written, or nullopt to wait for the next writable edge (EAGAIN) or retry (EINTR).
std::optional<std::size_t> write_outcome(FdWatch& w, std::uint32_t tick, ssize_t n, int error, std::size_t size) {
  if (n >= 0) {
    // A short write filled the kernel's buffer: the next one waits for room.
    if (static_cast<std::size_t>(n) < size) w.clear_writable(tick);
    return static_cast<std::size_t>(n);
  }
  if (error == EAGAIN || error == EWOULDBLOCK) {
    w.clear_writable(tick);
  } else if (error != EINTR) {
    throw IoError(error, "write");
  }
  return std::nullopt;
}

}  // namespace

template <class Call>
AsyncFd::SysResult AsyncFd::use_fd(const char* operation, Call call) {
  Use use{*this, operation};
  const ssize_t value = call(use.fd());
  return {value, value < 0 ? errno : 0};
}

void AsyncFd::close_when_idle(int fd) noexcept {
  // No use counted after the descriptor was taken (release(), seq_cst): any that comes
  // later reads -1 and never touches it.
  if ((m_uses.load(std::memory_order_seq_cst) & k_fd_use_mask) == 0) {
    ::close(fd);
    return;
  }
  // Some are in flight with this descriptor (a system call on another worker, or ring
  // operations): the last one closes it, so its number is not reused under them. Ring
  // operations may wait long: the socket is shut down (a receive then completes with 0,
  // a send with EPIPE) and they are cancelled (an accept on a Unix listener ends neither way).
  if (m_ring_busy[0].load(std::memory_order_seq_cst) || m_ring_busy[1].load(std::memory_order_seq_cst)) {
    ::shutdown(fd, SHUT_RDWR);
    cancel_ring_operations(fd);
  }
  m_deferred_close = fd;
  // Memory ordering: seq_cst (release enough for m_deferred_close, which the closer reads
  // after its own RMW sees k_fd_closing).
  const std::uint32_t before = m_uses.fetch_or(k_fd_closing, std::memory_order_seq_cst);
  if ((before & k_fd_use_mask) == 0) finish_deferred_close();  // they all ended meanwhile
}

void AsyncFd::finish_deferred_close() noexcept {
  // Whoever takes k_fd_closing away closes: the last use, or close() itself.
  std::uint32_t expected = k_fd_closing;
  if (m_uses.compare_exchange_strong(expected, 0, std::memory_order_seq_cst)) ::close(m_deferred_close);
}

AsyncFd::AsyncFd() noexcept = default;
AsyncFd::AsyncFd(int fd) noexcept : m_fd(fd) {}

// Moves happen with no operation in flight (the contract), so the completion state is not
// carried over: it is all zero.
AsyncFd::AsyncFd(AsyncFd&& other) noexcept
    : m_fd(other.m_fd.exchange(-1, std::memory_order_relaxed)), m_is_socket(other.m_is_socket),
      m_watch(other.m_watch.exchange(nullptr, std::memory_order_acq_rel)), m_recv(std::exchange(other.m_recv, nullptr)),
      m_accept(std::exchange(other.m_accept, nullptr)),
      m_single_shot(other.m_single_shot) {}

AsyncFd& AsyncFd::operator=(AsyncFd&& other) noexcept {
  if (this != &other) {
    close();
    drop_watch();
    m_fd.store(other.m_fd.exchange(-1, std::memory_order_relaxed), std::memory_order_relaxed);
    m_is_socket = other.m_is_socket;
    m_watch.store(other.m_watch.exchange(nullptr, std::memory_order_acq_rel), std::memory_order_release);
    m_recv = std::exchange(other.m_recv, nullptr);
    m_accept = std::exchange(other.m_accept, nullptr);
    m_single_shot = other.m_single_shot;
  }
  return *this;
}

AsyncFd::~AsyncFd() {
  close();
  drop_watch();
}

void AsyncFd::close() noexcept {
  if (fd() < 0) return;
  close_when_idle(release());
}

int AsyncFd::release() noexcept {
  // The descriptor is marked closed before the waiters are woken: on a Runtime they may
  // run at once, and must find it closed (EBADF), not wait again. Memory ordering: seq_cst,
  // before close_when_idle reads the count of completion operations (RingScope).
  const int fd = m_fd.exchange(-1, std::memory_order_seq_cst);
  // Before the descriptor is closed: the receive holds the socket open until it is cancelled.
  if (m_recv) std::exchange(m_recv, nullptr)->detach();
  if (m_accept) std::exchange(m_accept, nullptr)->detach();
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
  if (fd() < 0) throw IoError(EBADF, operation);
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
  const Use use{*this, operation};  // registered while open (another worker may close it)
  auto* fresh = new FdWatch(LoopAccess::home_for_new_descriptor(loop), use.fd(), /*assume_ready=*/true);
  m_watch.store(fresh, std::memory_order_release);
  if (current) FdWatch::retire(current);  // detached: its loop is gone (a single-thread Loop)
  return *fresh;
}

Task<std::size_t> AsyncFd::read(void* data, std::size_t size) {
  if (socket_ring()) co_return co_await ring_read(data, size);
  for (;;) {
    FdWatch& w = watch("read");
    co_await w.readable();
    check_open("read");
    const std::uint32_t tick = w.read_tick();
    const auto [n, error] = use_fd("read", [&](int fd) { return ::read(fd, data, size); });
    if (n >= 0) {
      // A short read emptied the kernel's buffer: wait for the next edge before trying again.
      // Not after a hang-up: the end of stream that follows the data sends no further edge.
      if (n > 0 && static_cast<std::size_t>(n) < size && !w.hung_up()) w.clear_readable(tick);
      co_return static_cast<std::size_t>(n);
    }
    if (error == EAGAIN || error == EWOULDBLOCK) {
      w.clear_readable(tick);
    } else if (error != EINTR) {
      throw IoError(error, "read");
    }
  }
}

// One non-blocking write. Returns the bytes written, or nothing when the descriptor was not
// ready after all (EAGAIN: readiness cleared; EINTR); throws IoError on other errors.
std::optional<std::size_t> AsyncFd::try_writev(FdWatch& w, const iovec* pieces, int count, std::size_t size) {
  const std::uint32_t tick = w.write_tick();
  const auto [n, error] = use_fd("write", [&](int fd) {
    if (!m_is_socket) return ::writev(fd, pieces, count);
    msghdr message{};
    message.msg_iov = const_cast<iovec*>(pieces);
    message.msg_iovlen = static_cast<std::size_t>(count);
    return ::sendmsg(fd, &message, MSG_NOSIGNAL);
  });
  return write_outcome(w, tick, n, error, size);
}

std::optional<std::size_t> AsyncFd::try_write(FdWatch& w, const void* data, std::size_t size) {
  const std::uint32_t tick = w.write_tick();
  const auto [n, error] = use_fd("write", [&](int fd) {
    return m_is_socket ? ::send(fd, data, size, MSG_NOSIGNAL) : ::write(fd, data, size);
  });
  return write_outcome(w, tick, n, error, size);
}

Task<std::size_t> AsyncFd::write_some(const void* data, std::size_t size) {
  if (socket_ring()) co_return co_await ring_write_some(data, size);
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
  if (socket_ring()) {
    while (size > 0) {
      const std::size_t n = co_await ring_write_some(bytes, size);
      bytes += n;
      size -= n;
    }
    co_return;
  }
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
  if (socket_ring()) {
    co_await ring_write_all_vectored(pieces);
    co_return;
  }
  PieceCursor cursor{pieces};
  while (!cursor.done()) {
    FdWatch& w = watch("write");
    co_await w.writable();
    check_open("write");
    const std::size_t size = cursor.fill();
    if (const auto n = try_writev(w, cursor.window(), cursor.window_size(), size)) cursor.advance(*n);
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
  if (socket_ring()) co_return co_await ring_accept(peer, peer_size, backoffs);
  auto backoff = std::chrono::milliseconds{0};
  for (;;) {
    FdWatch& w = watch("accept");
    co_await w.readable();
    check_open("accept");
    const std::uint32_t tick = w.read_tick();
    socklen_t size = sizeof(sockaddr_storage);
    const auto [fd, error] = use_fd("accept", [&](int listener) {
      return ::accept4(listener, reinterpret_cast<sockaddr*>(peer), &size, SOCK_NONBLOCK | SOCK_CLOEXEC);
    });
    if (fd >= 0) {
      if (peer_size) *peer_size = size;
      co_return static_cast<int>(fd);
    }
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
  if (socket_ring()) {
    co_await ring_connect(address, size);
    co_return;
  }
  const auto [started, start_error] = use_fd("connect", [&](int fd) { return ::connect(fd, address, size); });
  if (started == 0) co_return;
  if (start_error != EINPROGRESS && start_error != EINTR) throw IoError(start_error, "connect");
  FdWatch& w = watch("connect");
  for (;;) {
    // The tick before the check, as for every operation here: the handshake's writable
    // edge, if it comes after the check, is then kept by clear_writable. On a Runtime the
    // watch's reactor may be another worker's, which can report that edge as soon as the
    // descriptor is registered: a tick read after it (the first design cleared with a fresh
    // tick before its first wait) threw the edge away, and the connect waited forever.
    const std::uint32_t tick = w.write_tick();
    int pending = 0;
    const auto [checked, check_error] = use_fd("connect", [&](int fd) -> ssize_t {
      socklen_t length = sizeof pending;
      if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &pending, &length) != 0) return -1;
      if (pending != 0) return 0;
      sockaddr_storage peer{};
      socklen_t peer_size = sizeof peer;
      return ::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_size) == 0 ? 1 : -1;
    });
    if (checked < 0 && check_error != ENOTCONN) throw IoError(check_error, "connect");
    if (pending != 0) throw IoError(pending, "connect");
    if (checked == 1) break;
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
    const auto [n, error] = use_fd("receive", [&](int fd) {
      return ::recvfrom(fd, data, size, MSG_TRUNC, from ? reinterpret_cast<sockaddr*>(from) : nullptr, from ? &length : nullptr);
    });
    if (n >= 0) {
      if (from_size) *from_size = from ? length : 0;
      co_return static_cast<std::size_t>(n);
    }
    if (error == EAGAIN || error == EWOULDBLOCK) {
      w.clear_readable(tick);
    } else if (error != EINTR) {
      throw IoError(error, "receive");
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
    const auto [n, error] = use_fd("send", [&](int fd) {
      return ::sendto(fd, data, size, MSG_NOSIGNAL, address, address ? address_size : 0);
    });
    if (n >= 0) co_return static_cast<std::size_t>(n);
    if (error == EAGAIN || error == EWOULDBLOCK) {
      w.clear_writable(tick);
    } else if (error != EINTR) {
      throw IoError(error, "send");
    }
  }
}

}  // namespace gearbox::detail
