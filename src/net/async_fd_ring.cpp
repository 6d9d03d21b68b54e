// AsyncFd's completion path (SocketIo::completion, see async_fd.hpp): a stream socket's
// receives always, and its sends, accepts and connects when they cannot finish at once,
// are submitted to the ring of the loop the task runs on at that await.
#include <gearbox/detail/async_fd.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <stdexcept>
#include <string>

#include <gearbox/error.hpp>
#include <gearbox/loop.hpp>
#include <gearbox/time.hpp>

#include "loop/ring.hpp"
#include "loop/ring_call.hpp"
#include "net/accept_policy.hpp"
#include "net/accept_stream.hpp"
#include "net/async_fd_use.hpp"
#include "net/piece_cursor.hpp"
#include "net/recv_stream.hpp"

namespace gearbox::detail {
namespace {

constexpr int k_read = 0;
constexpr int k_write = 1;

// Cancels, on `loop`'s ring, every operation on the socket `fd` (close() with operations
// in flight there). On another worker's loop it is posted with a duplicate of the
// descriptor, which keeps the same socket open (and its number unused) until it has run.
struct CancelOnRing final : Runnable {
  explicit CancelOnRing(int copy) : Runnable(&CancelOnRing::run), m_copy(copy) {}
  static void run(Runnable* self) noexcept {
    auto* cancel = static_cast<CancelOnRing*>(self);
    Ring* ring = LoopAccess::socket_ring(Loop::current_or_throw());
    if (ring && ring->may_submit_here()) {
      try {
        ring->cancel_all_on(cancel->m_copy);
      } catch (...) {
        // The ring could not take it: the operations end by the socket's shutdown alone.
      }
    }
    ::close(cancel->m_copy);
    delete cancel;
  }
  int m_copy;
};

void cancel_operations_on(Loop& loop, int fd) noexcept {
  if (Loop::current() == &loop) {
    try {
      Ring* ring = LoopAccess::socket_ring(loop);
      if (ring && ring->may_submit_here()) ring->cancel_all_on(fd);
    } catch (...) {
      // The ring could not take it: the operations end by the socket's shutdown alone.
    }
    return;
  }
  const int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy >= 0) LoopAccess::post(loop, new CancelOnRing(copy));
}

}  // namespace

// One completion operation: the only one in its direction meanwhile, and a Use of the
// descriptor from before its submission until after its last completion.
class AsyncFd::RingScope {
public:
  RingScope(AsyncFd& owner, int direction, const char* operation)
      : m_owner(owner), m_direction(direction), m_claim(owner, direction, operation), m_use(owner, operation) {}
  RingScope(const RingScope&) = delete;
  RingScope& operator=(const RingScope&) = delete;
  ~RingScope() { m_owner.m_ring_loop[m_direction].store(nullptr, std::memory_order_seq_cst); }

  // The descriptor, open until this scope ends (close() leaves it to the last use).
  int fd() const noexcept { return m_use.fd(); }

  // The ring of the loop the task runs on now (on a Runtime, the worker it resumed on),
  // recorded for close(): seq_cst, against close()'s exchange of the descriptor, then its
  // read of the loops (see closed()).
  Ring& ring() {
    Loop& loop = Loop::current_or_throw();
    m_owner.m_ring_loop[m_direction].store(&loop, std::memory_order_seq_cst);
    return *LoopAccess::socket_ring(loop);
  }
  // Whether close() has taken the descriptor. Read when preparing, after ring(): if close()
  // did not see this operation's loop, this sees the descriptor taken, and the entry is
  // made a no-op instead (the task then finds the descriptor closed).
  bool closed() const noexcept { return m_owner.m_fd.load(std::memory_order_seq_cst) < 0; }

  // The operation `prepare(sqe, fd)` fills in, awaitable (ring_call); a no-op instead
  // when the descriptor was closed meanwhile (see closed()).
  template <class Prepare>
  auto call(Prepare prepare) {
    return ring_call(ring(), [this, prepare](io_uring_sqe* sqe) {
      if (closed())
        io_uring_prep_nop(sqe);
      else
        prepare(sqe, fd());
    });
  }

  // Waits until the socket polls for `events` (a kernel that answers a non-blocking
  // socket's operation with EAGAIN instead of waiting for it).
  Task<void> poll(unsigned events) {
    auto waiting = call([events](io_uring_sqe* sqe, int fd) { io_uring_prep_poll_add(sqe, fd, events); });
    (void)co_await waiting;
  }

private:
  // The direction, taken for the scope: close() shuts the socket down and cancels on the
  // rings while one is taken.
  class Claim {
  public:
    Claim(AsyncFd& owner, int direction, const char* operation) : m_flag(owner.m_ring_busy[direction]) {
      // Memory ordering: seq_cst (close() reads the flags); acquire at least, pairing with
      // the release of the previous operation in this direction.
      if (m_flag.exchange(true, std::memory_order_seq_cst))
        throw std::logic_error(std::string("gearbox: ") + operation +
                               ": another task already waits on this descriptor in this direction");
    }
    Claim(const Claim&) = delete;
    Claim& operator=(const Claim&) = delete;
    ~Claim() { m_flag.store(false, std::memory_order_release); }

  private:
    std::atomic<bool>& m_flag;
  };

  AsyncFd& m_owner;
  int m_direction;
  Claim m_claim;
  Use m_use;  // after the claim: it ends first, and may close the descriptor
};

Ring* AsyncFd::socket_ring() const noexcept {
  if (!m_is_socket) return nullptr;
  Loop* loop = Loop::current();
  return loop ? LoopAccess::socket_ring(*loop) : nullptr;
}

void AsyncFd::cancel_ring_operations(int fd) noexcept {
  for (auto& loop : m_ring_loop)
    if (Loop* where = loop.load(std::memory_order_seq_cst)) cancel_operations_on(*where, fd);
}

RecvStream* AsyncFd::multishot_stream(Ring& ring, int fd) {
  Loop& loop = Loop::current_or_throw();
  if (m_recv && m_recv->loop() && m_recv->loop() != &loop)
    throw std::logic_error("gearbox: read: the descriptor belongs to another loop");
  if (LoopAccess::runtime(loop)) return nullptr;
  if (!m_recv) {
    if (m_single_shot) return nullptr;
    m_recv = RecvStream::make(loop, ring, fd);
    m_single_shot = m_recv == nullptr;  // asked once: the socket's type and the kernel stay
    return m_recv;
  }
  if (m_recv->loop() == &loop) return m_recv;
  // Its loop is gone (what it had received is kept): it moves to this one.
  return m_recv->rebind(loop, ring) ? m_recv : nullptr;
}

Task<std::size_t> AsyncFd::ring_read(void* data, std::size_t size) {
  RingScope scope{*this, k_read, "read"};
  const unsigned length = static_cast<unsigned>(std::min(size, Ring::k_max_transfer));
  // By multishot receive where it can: what was received is taken first, then the receive
  // is armed (if it is not) and the read waits for what comes. Without buffers for it (the
  // pool ran out), one plain receive below.
  while (length > 0) {
    RecvStream* stream = multishot_stream(scope.ring(), scope.fd());
    // What was received comes first: the stream's, or what a loop that is gone had received.
    if (m_recv) {
      if (const std::size_t n = m_recv->take(data, length)) {
        co_await SpendBudget{};
        co_return n;
      }
    }
    if (!stream) break;
    if (stream->ended()) {
      if (stream->error() != 0) throw IoError(stream->error(), "read");
      co_return 0;
    }
    if (!stream->armed() && !stream->arm(scope.fd())) break;
    auto arrival = stream->next();
    co_await arrival;
    check_open("read");  // closed meanwhile: the stream was detached
  }
  for (;;) {
    auto call = scope.call([&](io_uring_sqe* sqe, int fd) { io_uring_prep_recv(sqe, fd, data, length, 0); });
    const int n = co_await call;
    check_open("read");  // closed meanwhile: its shutdown completed the receive
    if (n >= 0) co_return static_cast<std::size_t>(n);
    if (n == -EAGAIN) {
      co_await scope.poll(POLLIN);
      check_open("read");
    } else if (n != -EINTR) {
      throw IoError(-n, "read");
    }
  }
}

Task<std::size_t> AsyncFd::ring_write_some(const void* data, std::size_t size) {
  RingScope scope{*this, k_write, "write"};
  const unsigned length = static_cast<unsigned>(std::min(size, Ring::k_max_transfer));
  for (;;) {
    // Tried at once: a socket's send buffer usually has room, and then no submission is
    // needed at all.
    const ssize_t sent = ::send(scope.fd(), data, length, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent >= 0) {
      co_await SpendBudget{};
      co_return static_cast<std::size_t>(sent);
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) throw IoError(errno, "write");
    auto call = scope.call([&](io_uring_sqe* sqe, int fd) { io_uring_prep_send(sqe, fd, data, length, MSG_NOSIGNAL); });
    const int n = co_await call;
    check_open("write");
    if (n >= 0) co_return static_cast<std::size_t>(n);
    if (n == -EAGAIN) {
      co_await scope.poll(POLLOUT);
      check_open("write");
    } else if (n != -EINTR) {
      throw IoError(-n, "write");
    }
  }
}

Task<void> AsyncFd::ring_write_all_vectored(std::span<const std::string_view> pieces) {
  RingScope scope{*this, k_write, "write"};
  PieceCursor cursor{pieces};
  while (!cursor.done()) {
    cursor.fill();
    msghdr message{};
    message.msg_iov = cursor.window();
    message.msg_iovlen = static_cast<std::size_t>(cursor.window_size());
    const ssize_t sent = ::sendmsg(scope.fd(), &message, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent >= 0) {
      cursor.advance(static_cast<std::size_t>(sent));
      co_await SpendBudget{};
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) throw IoError(errno, "write");
    auto call = scope.call([&](io_uring_sqe* sqe, int fd) { io_uring_prep_sendmsg(sqe, fd, &message, MSG_NOSIGNAL); });
    const int n = co_await call;
    check_open("write");
    if (n >= 0) {
      cursor.advance(static_cast<std::size_t>(n));
    } else if (n == -EAGAIN) {
      co_await scope.poll(POLLOUT);
      check_open("write");
    } else if (n != -EINTR) {
      throw IoError(-n, "write");
    }
  }
}

AcceptStream* AsyncFd::multishot_accept(Ring& ring) {
  Loop& loop = Loop::current_or_throw();
  if (m_accept && m_accept->loop() && m_accept->loop() != &loop)
    throw std::logic_error("gearbox: accept: the descriptor belongs to another loop");
  if (LoopAccess::runtime(loop)) return nullptr;
  if (!m_accept) return m_accept = AcceptStream::make(loop, ring);
  if (m_accept->loop() == &loop) return m_accept;
  m_accept->rebind(loop, ring);  // its loop is gone (what it had accepted is kept)
  return m_accept;
}

Task<int> AsyncFd::ring_accept(sockaddr_storage* peer, socklen_t* peer_size, std::uint64_t* backoffs) {
  RingScope scope{*this, k_read, "accept"};
  auto backoff = std::chrono::milliseconds{0};
  for (;;) {
    int fd = -1;
    int error = 0;
    AcceptStream* stream = multishot_accept(scope.ring());
    // A connection accepted ahead comes first: the stream's, or one that a loop that is
    // gone had accepted.
    if (m_accept) fd = m_accept->take();
    if (stream || fd >= 0) {
      // By multishot accept: a connection it accepted, else the error that ended it, else
      // (armed now if it was not) wait for what comes.
      if (fd < 0) error = stream->take_failure();
      if (fd < 0 && error == 0) {
        if (!stream->armed()) stream->arm(scope.fd());
        auto arrival = stream->next();
        co_await arrival;
        check_open("accept");  // closed meanwhile: the stream was detached
        continue;
      }
      if (fd >= 0 && peer) {
        socklen_t size = sizeof(sockaddr_storage);
        if (::getpeername(fd, reinterpret_cast<sockaddr*>(peer), &size) != 0) size = 0;  // reset meanwhile
        if (peer_size) *peer_size = size;
      }
    } else {
      // Tried at once: under load a connection is usually queued already.
      socklen_t size = sizeof(sockaddr_storage);
      fd = ::accept4(scope.fd(), reinterpret_cast<sockaddr*>(peer), &size, SOCK_NONBLOCK | SOCK_CLOEXEC);
      error = fd >= 0 ? 0 : errno;
      if (error == EAGAIN || error == EWOULDBLOCK) {
        // Waits for a connection by a poll on the ring, then accepts it at once, rather than
        // by IORING_OP_ACCEPT: a worker's ring is its own, and a listener is shared by all.
        co_await scope.poll(POLLIN);
        check_open("accept");
        continue;
      }
      if (fd >= 0 && peer_size) *peer_size = size;
    }
    if (fd >= 0) {
      co_await SpendBudget{};
      co_return fd;
    }
    if (out_of_resources(error)) {
      // The connection stays queued: sleep, then try again, while the loop serves the
      // others (and perhaps frees descriptors).
      backoff = std::clamp(backoff * 2, k_first_backoff, k_max_backoff);
      if (backoffs) ++*backoffs;
      co_await sleep_for(backoff);
      check_open("accept");
    } else if (!transient_accept_error(error)) {
      throw IoError(error, "accept");
    }
  }
}

Task<void> AsyncFd::ring_connect(const sockaddr* address, socklen_t size) {
  RingScope scope{*this, k_write, "connect"};
  auto call = scope.call([&](io_uring_sqe* sqe, int fd) { io_uring_prep_connect(sqe, fd, address, size); });
  int n = co_await call;
  check_open("connect");
  if (n == -EINPROGRESS || n == -EAGAIN) {  // a kernel that does not wait for the handshake
    co_await scope.poll(POLLOUT);
    check_open("connect");
    int error = 0;
    socklen_t length = sizeof error;
    if (::getsockopt(scope.fd(), SOL_SOCKET, SO_ERROR, &error, &length) != 0) error = errno;
    n = -error;
  }
  if (n < 0) throw IoError(-n, "connect");
}

}  // namespace gearbox::detail
