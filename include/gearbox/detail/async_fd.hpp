// AsyncFd: an owned, non-blocking file descriptor and the loop operations on it (read,
// write, accept, connect, datagrams). The one implementation behind every socket and pipe
// type in gearbox/net and gearbox/os; those types add only what is their own (addresses,
// options, how they are made).
//
// Attaching: the descriptor is registered with a loop's reactor at its first operation,
// on the loop of the task that awaits it (so a listener can be bound in main() before the
// loop runs). From then on only that loop may use it (std::logic_error otherwise), or, on
// a Runtime, tasks on any of its workers: readiness arrives on the worker that attached
// it and wakes the waiting task wherever it runs.
//
// Readiness: a read or write is tried at once while the descriptor may be ready, and the
// task waits for the reactor's next edge only after EAGAIN, or after a short read or write
// (which means the kernel's buffer was drained or filled; edge-triggered epoll reports the
// next change, so nothing is missed). Every operation that finds the descriptor ready is
// counted against the task's resume budget, so a socket that is always ready cannot starve
// the loop. Every operation is a cancellation point (Cancelled).
//
// Completion (a loop with SocketIo::completion, see io_backend.hpp): a stream socket's
// read is a receive submitted to the ring of the loop the task runs on, which completes
// with the data; a write, accept or connect that cannot finish at once is submitted the
// same way. No FdWatch is made for those operations. close() while some are in flight
// shuts the socket down, which completes them, and the descriptor is closed when the
// last one has ended (so its number cannot be reused under them). On a standalone Loop a
// stream socket's receive is multishot (armed once, it completes for every arrival into
// the ring's provided buffers, and reads copy from there), and so is a listener's accept:
// release() drops what they had received or accepted and not yet handed out.
//
// Errors: IoError with errno and the operation's name ("read", "connect", ...). After
// close(), a task still waiting is resumed and gets IoError(EBADF).
//
// Thread-safety: on a Loop, the attached loop's thread only. On a Runtime, one task may
// read while another writes (or accepts, or closes), each on any worker; two tasks in the
// same direction at once are a std::logic_error. close() wakes the waiting tasks, which
// then get IoError(EBADF). Moving or destroying an AsyncFd while a task awaits one of its
// operations is undefined: close() it first and let the waiters end.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include <gearbox/detail/wait_lock.hpp>
#include <gearbox/task.hpp>

namespace gearbox {
class Loop;
}

namespace gearbox::detail {

class FdWatch;
class Ring;
class RecvStream;
class AcceptStream;

class AsyncFd {
public:
  AsyncFd() noexcept;
  // Takes ownership of `fd`, which must be non-blocking.
  explicit AsyncFd(int fd) noexcept;
  AsyncFd(AsyncFd&& other) noexcept;
  AsyncFd& operator=(AsyncFd&& other) noexcept;
  ~AsyncFd();

  int fd() const noexcept { return m_fd.load(std::memory_order_relaxed); }
  bool is_open() const noexcept { return fd() >= 0; }
  // Wakes any waiting task (it gets IoError(EBADF)), unregisters and closes. Idempotent.
  void close() noexcept;
  // Gives the descriptor up without closing it (unregistered first). Returns it. Not while
  // another task uses it (close() instead).
  int release() noexcept;

  // Bytes read into [data, data + size): 0 means end of stream (or size == 0).
  Task<std::size_t> read(void* data, std::size_t size);
  // Writes at least one byte (waiting until it can); returns how many.
  Task<std::size_t> write_some(const void* data, std::size_t size);
  // Writes all `size` bytes, across as many partial writes as it takes. If cancelled or
  // failed part-way, some prefix of the data was written.
  Task<void> write_all(const void* data, std::size_t size);
  // Writes every piece, in order, as one run of bytes: each system call takes as many
  // pieces as it can (writev; sendmsg for sockets), so nothing is copied into one buffer.
  // The pieces' bytes must stay alive until the task ends. Cancelled or failed part-way:
  // as write_all.
  Task<void> write_all_vectored(std::span<const std::string_view> pieces);
  // A connection from a listening socket: a non-blocking, close-on-exec descriptor.
  // Transient errors (ECONNABORTED, EINTR, EPROTO...) are retried. When the process is
  // out of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM) the connection stays
  // queued in the kernel and accept backs off (1 ms, doubling to 256 ms) and retries, so
  // the loop keeps serving the connections it has; `backoffs` counts those waits.
  Task<int> accept(sockaddr_storage* peer, socklen_t* peer_size, std::uint64_t* backoffs);
  // Connects this socket to `address`; throws IoError("connect") (ECONNREFUSED...).
  Task<void> connect(const sockaddr* address, socklen_t size);
  // One datagram into [data, data + size); returns its full length (more than `size` when
  // it was truncated) and the sender's address.
  Task<std::size_t> receive_from(void* data, std::size_t size, sockaddr_storage* from, socklen_t* from_size);
  // Sends one datagram (to `address`, or to the connected peer when address is null).
  Task<std::size_t> send_to(const void* data, std::size_t size, const sockaddr* address, socklen_t address_size);

  // For descriptors that are not read (a pidfd becomes readable when its process exits):
  // take readable_tick(), make a non-blocking check, and if it says "not yet", wait for
  // the next readable edge since that tick (one that came during the check is not lost):
  //   for (;;) { auto tick = fd.readable_tick(); if (check()) break; co_await fd.wait_readable(tick); }
  std::uint32_t readable_tick();
  Task<void> wait_readable(std::uint32_t since);

  // Whether the descriptor is a socket (writes then use send(MSG_NOSIGNAL), so a closed
  // peer is EPIPE rather than SIGPIPE). Set by the socket types; pipes leave it false.
  void set_socket(bool is_socket) noexcept { m_is_socket = is_socket; }

private:
  class Use;        // a system call or ring operation on the descriptor (src/net/async_fd_use.hpp)
  class RingScope;  // a completion operation (src/net/async_fd_ring.cpp)
  // A system call's result, and errno when it failed (read before the use ended: the
  // closing a use may do could change errno).
  struct SysResult {
    ssize_t value;
    int error;
  };
  // Runs call(fd) as a Use of the descriptor. Throws IoError(EBADF) when it is closed.
  template <class Call>
  SysResult use_fd(const char* operation, Call call);
  // The ring this stream socket's operations complete on, here and now, or null.
  Ring* socket_ring() const noexcept;
  Task<std::size_t> ring_read(void* data, std::size_t size);
  // The socket's multishot receive on `ring` (made at the first read), or null where reads
  // stay single-shot (a Runtime's worker; no provided buffers; not a stream socket).
  RecvStream* multishot_stream(Ring& ring, int fd);
  // The listener's multishot accept on `ring` (made at the first accept), or null (a
  // Runtime's worker; no memory).
  AcceptStream* multishot_accept(Ring& ring);
  Task<void> ring_connect(const sockaddr* address, socklen_t size);
  Task<std::size_t> ring_write_some(const void* data, std::size_t size);
  Task<void> ring_write_all_vectored(std::span<const std::string_view> pieces);
  Task<int> ring_accept(sockaddr_storage* peer, socklen_t* peer_size, std::uint64_t* backoffs);
  // Closes `fd` now, or leaves it to the last use in flight (shutting the socket down and
  // cancelling the ring operations first, so that they end).
  void close_when_idle(int fd) noexcept;
  void finish_deferred_close() noexcept;
  // Cancels the completion operations on `fd` on the rings that have them.
  void cancel_ring_operations(int fd) noexcept;

  FdWatch& watch(const char* operation);
  std::optional<std::size_t> try_write(FdWatch& w, const void* data, std::size_t size);
  std::optional<std::size_t> try_writev(FdWatch& w, const iovec* pieces, int count, std::size_t size);
  void check_open(const char* operation) const;

  // Drops the watch (retires it), after close() has unregistered it.
  void drop_watch() noexcept;

  // Memory ordering: seq_cst where a Use and close() meet (async_fd_use.hpp); relaxed
  // elsewhere (is_open(), check_open()), where a waiter woken by close() is ordered after
  // it by the FdWatch's lock or the wake-up.
  std::atomic<int> m_fd{-1};
  bool m_is_socket = false;
  // Uses in flight (low bits), and k_fd_closing once close() left the descriptor to the
  // last of them (async_fd_use.hpp). Written by the uses' tasks and close(), on any worker.
  std::atomic<std::uint32_t> m_uses{0};
  int m_deferred_close = -1;  // written before k_fd_closing is set, read after it is seen
  std::atomic<bool> m_ring_busy[2] = {false, false};  // a task is reading / writing
  // The loop whose ring has the reading / writing task's operation, or null; seq_cst, read
  // by close() to cancel them there.
  std::atomic<Loop*> m_ring_loop[2] = {nullptr, nullptr};
  // Made at the first operation, registered with the reactor LoopAccess::home_for_new_
  // descriptor picks. Memory ordering: acquire/release (read without the lock by every
  // operation); written under m_attach_lock, so that two tasks attaching it at once from
  // two workers make one watch.
  std::atomic<FdWatch*> m_watch{nullptr};
  WaitLock m_attach_lock;
  // The multishot receive of a stream socket read by completion on a standalone Loop, and
  // the multishot accept of a listener (src/net/recv_stream.hpp, accept_stream.hpp); that
  // loop's thread only. Detached by release() and close().
  RecvStream* m_recv = nullptr;
  AcceptStream* m_accept = nullptr;
  bool m_single_shot = false;  // no multishot receive for this socket (a datagram socket...)
};

}  // namespace gearbox::detail
