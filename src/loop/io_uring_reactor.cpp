// The io_uring back end of Reactor: a Ring for completions (files; sockets in completion
// mode), and readiness (sockets, pipes, the loop's eventfd) from an epoll reactor, which
// also watches the ring's own descriptor. The loop waits in epoll_wait, as on the epoll
// back end: a completion makes the ring's descriptor readable and ends the wait, and each
// poll takes whatever completions there are (a look at shared memory, no system call).
// What tasks prepared for the ring is submitted just before the wait.
//
// Why epoll waits, not io_uring_enter (with the epoll descriptor polled through the ring):
// that was the first design, and it cost every readiness wake-up a second system call
// (io_uring_enter returns the poll's completion, then epoll_wait takes the events):
// tcp_echo at 100 connections ran at 0.90x the epoll back end's rate. This way a program
// whose only I/O is sockets by readiness pays nothing for the ring, and one that uses the
// ring pays one io_submit-like call per turn that prepared something.
//
// With sockets by completion (SocketIo::completion) nearly every wake-up is a completion,
// so there it is the other way round (Ring::Wait::in_ring): the loop submits and waits in
// one io_uring_enter, the ring's task work runs only then (DEFER_TASKRUN: no interrupt per
// completion), and the epoll descriptor, polled through the ring by a multishot poll, is
// looked at only when it has something (the loop's eventfd, pipes, datagrams).
#include <poll.h>

#include <gearbox/error.hpp>

#include "loop/reactor.hpp"
#include "loop/ring.hpp"

namespace gearbox::detail {
namespace {

class IoUringReactor final : public Reactor, private IoWatcher, private RingOp {
public:
  explicit IoUringReactor(Ring::Wait wait)
      : IoWatcher(&IoUringReactor::on_ring_readable), RingOp(&IoUringReactor::on_epoll_ready), m_wait(wait), m_ring(wait),
        m_readiness(make_epoll_reactor()) {
    if (m_wait == Ring::Wait::in_epoll) m_readiness->add(m_ring.fd(), this, io_events::readable);
  }
  ~IoUringReactor() override {
    if (m_wait == Ring::Wait::in_epoll) m_readiness->remove(m_ring.fd());
  }

  void add(int fd, IoWatcher* watcher, std::uint32_t events) override { m_readiness->add(fd, watcher, events); }
  void modify(int fd, IoWatcher* watcher, std::uint32_t events) override { m_readiness->modify(fd, watcher, events); }
  void remove(int fd) noexcept override { m_readiness->remove(fd); }
  // Descriptors watched (not the ring's own) and ring operations in flight (not the poll
  // of the epoll descriptor): each of them may still wake the loop.
  std::size_t watched() const noexcept override {
    if (m_wait == Ring::Wait::in_ring) return m_readiness->watched() + m_ring.in_flight() - (m_epoll_armed ? 1 : 0);
    return m_readiness->watched() - 1 + m_ring.in_flight();
  }

  int poll(int timeout_ms) override { return m_wait == Ring::Wait::in_ring ? poll_in_ring(timeout_ms) : poll_in_epoll(timeout_ms); }

  Ring* ring() noexcept override { return &m_ring; }
  bool has_unsubmitted() const noexcept override { return m_ring.has_unsubmitted(); }
  IoBackend backend() const noexcept override { return IoBackend::io_uring; }
  bool socket_completion() const noexcept override { return m_wait == Ring::Wait::in_ring; }

private:
  int poll_in_epoll(int timeout_ms) {
    // Completions already there (or whose task work is pending) mean no wait.
    if (m_ring.has_unsubmitted()) m_ring.submit();
    if (timeout_ms != 0 && m_ring.has_completions()) timeout_ms = 0;
    m_ring_reports = 0;
    int found = m_readiness->poll(timeout_ms) - m_ring_reports;
    found += m_ring.complete_ready();
    return found;
  }

  int poll_in_ring(int timeout_ms) {
    // Another thread than the loop's (a Runtime's destructor running what was posted to a
    // worker's loop after the worker ended): the ring is not its to drive, and no
    // operation of a task is in flight any more; readiness and posts still reach it.
    if (!m_ring.may_submit_here()) return m_readiness->poll(timeout_ms);
    if (!m_epoll_armed) {
      io_uring_sqe* sqe = m_ring.prepare(this);
      io_uring_prep_poll_multishot(sqe, m_readiness->descriptor(), POLLIN);
      m_epoll_armed = true;
    }
    m_epoll_reports = 0;
    m_ring.submit_and_wait(timeout_ms);
    int found = m_ring.complete_ready();
    if (m_epoll_reports > 0) {
      found -= m_epoll_reports;  // the poll's completions are not reports of their own
      // Edge-triggered: epoll's descriptor signals once for what became ready, so take all.
      int n;
      do {
        n = m_readiness->poll(0);
        found += n;
      } while (n >= k_max_reports);
    }
    return found;
  }

  // The ring's descriptor became readable: its completions are taken after the wait.
  static void on_ring_readable(IoWatcher* self, std::uint32_t) noexcept { ++static_cast<IoUringReactor*>(self)->m_ring_reports; }

  static void on_epoll_ready(RingOp* op, int result, std::uint32_t flags) noexcept {
    auto* self = static_cast<IoUringReactor*>(op);
    ++self->m_epoll_reports;
    // The kernel ends a multishot poll now and then (an overflowing completion queue, an
    // error); it is armed again before the next wait.
    if (!(flags & IORING_CQE_F_MORE) || result < 0) self->m_epoll_armed = false;
  }

  const Ring::Wait m_wait;
  Ring m_ring;
  std::unique_ptr<Reactor> m_readiness;
  int m_ring_reports = 0;   // in_epoll: the ring descriptor's reports in this poll
  bool m_epoll_armed = false;  // in_ring: the multishot poll of the epoll descriptor is on
  int m_epoll_reports = 0;     // in_ring: its completions in this poll
};

}  // namespace

std::unique_ptr<Reactor> make_io_uring_reactor(bool socket_completion) {
  return std::make_unique<IoUringReactor>(socket_completion ? Ring::Wait::in_ring : Ring::Wait::in_epoll);
}

std::unique_ptr<Reactor> make_reactor(IoBackend backend, SocketIo socket_io) {
  if (backend == IoBackend::automatic) backend = default_io_backend();
  if (backend == IoBackend::epoll) return make_epoll_reactor();
  if (!io_uring_support().available)
    throw std::runtime_error("gearbox: the io_uring back end was asked for, but " + io_uring_support().why_not);
  if (socket_io == SocketIo::automatic) socket_io = default_socket_io();
  if (socket_io == SocketIo::completion && !io_uring_support().socket_completion)
    throw std::runtime_error("gearbox: SocketIo::completion needs Linux 5.19 (cancellation by descriptor)");
  return make_io_uring_reactor(socket_io == SocketIo::completion);
}

}  // namespace gearbox::detail
