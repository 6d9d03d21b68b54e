#include "loop/ring.hpp"

#include "loop/provided_buffers.hpp"

#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include <gearbox/error.hpp>

namespace gearbox::detail {

Ring::Ring(Wait wait, unsigned entries) {
  // Wait::in_epoll: default flags, deliberately not COOP_TASKRUN: the loop sleeps in
  // epoll_wait, and a completion's task work must interrupt that sleep (the default
  // notification does) so that the completion is posted and the ring's descriptor turns
  // readable. Wait::in_ring: the loop asks for completions itself (GETEVENTS), so their
  // task work waits for it instead of interrupting it; kernels before 6.1 refuse the flags
  // and get the default.
  io_uring_params params{};
  if (wait == Wait::in_ring) params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED;
  int rc = io_uring_queue_init_params(entries, &m_ring, &params);
  if (rc == -EINVAL && params.flags != 0) {
    params = {};
    rc = io_uring_queue_init_params(entries, &m_ring, &params);
  }
  if (rc < 0) throw IoError(-rc, "io_uring_setup");
  m_disabled = (params.flags & IORING_SETUP_R_DISABLED) != 0;
  m_single_issuer = (params.flags & IORING_SETUP_SINGLE_ISSUER) != 0;
}

void Ring::enable_here() {
  if (!m_disabled) return;
  // The system call itself: Debian's liburing 2.3 declares io_uring_enable_rings but does
  // not export it.
  if (::syscall(__NR_io_uring_register, m_ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0) < 0)
    throw IoError(errno, "io_uring_register(ENABLE_RINGS)");
  m_disabled = false;
  m_issuer = std::this_thread::get_id();
}

void Ring::submit_and_wait(int timeout_ms) {
  enable_here();
  int rc;
  if (timeout_ms == 0) {
    rc = io_uring_submit_and_get_events(&m_ring);
  } else if (timeout_ms < 0) {
    rc = io_uring_submit_and_wait(&m_ring, 1);
  } else {
    io_uring_cqe* cqe = nullptr;
    __kernel_timespec ts{.tv_sec = timeout_ms / 1000, .tv_nsec = (timeout_ms % 1000) * 1'000'000LL};
    rc = io_uring_submit_and_wait_timeout(&m_ring, &cqe, 1, &ts, nullptr);
  }
  if (rc < 0 && rc != -EINTR && rc != -ETIME && rc != -EAGAIN && rc != -EBUSY) throw IoError(-rc, "io_uring_enter");
}

Ring::~Ring() {
  m_residents.for_each([](ListNode* node) {
    auto* resident = static_cast<RingResident*>(node);
    resident->m_on_ring_exit(resident);  // it unlinks itself
  });
  io_uring_queue_exit(&m_ring);  // ends every operation: the buffers are the program's again
  m_buffers.reset();
}

ProvidedBuffers* Ring::provided_buffers() noexcept {
  if (!m_buffers && !m_buffers_refused) {
    try {
      m_buffers = std::make_unique<ProvidedBuffers>(m_ring);
    } catch (const std::exception&) {
      m_buffers_refused = true;  // EINVAL before Linux 5.19; ENOMEM: no memory for the pool
    }
  }
  return m_buffers.get();
}

io_uring_sqe* Ring::next_entry() {
  io_uring_sqe* sqe = io_uring_get_sqe(&m_ring);
  if (!sqe) {
    ++m_counters.full_flushes;
    submit();
    sqe = io_uring_get_sqe(&m_ring);
    if (!sqe) throw IoError(EBUSY, "io_uring_get_sqe");
  }
  return sqe;
}

io_uring_sqe* Ring::prepare(RingOp* op) {
  io_uring_sqe* sqe = next_entry();
  io_uring_sqe_set_data(sqe, op);
  ++m_in_flight;
  ++m_counters.submitted;
  return sqe;
}

void Ring::cancel(RingOp* op) {
  io_uring_sqe* sqe;
  try {
    sqe = next_entry();
  } catch (const IoError&) {
    return;  // the op completes on its own; the task then sees its cancel flag
  }
  io_uring_prep_cancel(sqe, op, 0);
  // The cancel request's own completion is of no interest unless it failed (ENOENT: the
  // op had finished; EALREADY: it is running and will finish), and then neither.
  io_uring_sqe_set_data(sqe, nullptr);
  sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
}

void Ring::cancel_all_on(int fd) {
  io_uring_sqe* sqe = next_entry();
  io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
  io_uring_sqe_set_data(sqe, nullptr);
  sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
  submit();  // the kernel looks `fd` up now, while it is open
}

void Ring::submit() {
  enable_here();
  for (;;) {
    const int rc = io_uring_submit(&m_ring);
    if (rc >= 0) return;
    if (rc == -EINTR) continue;
    // EAGAIN/EBUSY: the completion queue is backed up; empty it and try again.
    if ((rc == -EAGAIN || rc == -EBUSY) && complete_ready() > 0) continue;
    throw IoError(-rc, "io_uring_submit");
  }
}

int Ring::complete_ready() {
  // Copied out and consumed before any handler runs: a handler may prepare (and, with a
  // full queue, submit) more, and must not see this batch again.
  struct Completion {
    RingOp* op;
    int result;
    std::uint32_t flags;
  };
  constexpr unsigned k_batch = 64;
  int total = 0;
  for (;;) {
    io_uring_cqe* cqes[k_batch];
    const unsigned n = io_uring_peek_batch_cqe(&m_ring, cqes, k_batch);
    if (n == 0) return total;
    Completion batch[k_batch];
    unsigned count = 0;
    for (unsigned i = 0; i < n; ++i) {
      auto* op = static_cast<RingOp*>(io_uring_cqe_get_data(cqes[i]));
      if (op) batch[count++] = {op, cqes[i]->res, cqes[i]->flags};
    }
    io_uring_cq_advance(&m_ring, n);
    for (unsigned i = 0; i < count; ++i) {
      if (!(batch[i].flags & IORING_CQE_F_MORE)) --m_in_flight;
      ++m_counters.completed;
      batch[i].op->m_on_complete(batch[i].op, batch[i].result, batch[i].flags);
    }
    total += static_cast<int>(count);
    if (n < k_batch) return total;
  }
}

}  // namespace gearbox::detail
