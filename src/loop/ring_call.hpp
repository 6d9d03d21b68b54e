// ring_call: one io_uring operation awaited by the calling task.
//
//   const int n = co_await ring_call(ring, [&](io_uring_sqe* sqe) { io_uring_prep_read(sqe, fd, buf, size, -1); });
//   if (n < 0) throw IoError(-n, "read");
//
// `prepare` fills the submission entry; the await returns the completion's result (a
// count, a descriptor, or -errno). The task is resumed only after the completion, so
// whatever the operation reads or writes (the buffer, the path) need only outlive the
// co_await, as a local does.
//
// Cancellation: a cancel request asks the kernel to cancel the operation and the task
// keeps waiting for its completion (the kernel may still be writing into its buffer).
// -ECANCELED then throws Cancelled; an operation that had finished anyway returns its
// result (an opened descriptor is not lost), and the task's next await throws.
// A task already cancelled throws Cancelled before anything is submitted.
#pragma once

#include <cerrno>
#include <coroutine>
#include <utility>

#include <gearbox/detail/task_core.hpp>
#include <gearbox/error.hpp>

#include "loop/ring.hpp"

namespace gearbox::detail {

template <class Prepare>
class RingCall : private RingOp, private CancelSlot {
public:
  RingCall(Ring& ring, Prepare prepare)
      : RingOp(&RingCall::on_complete), CancelSlot(&RingCall::on_cancel), m_ring(&ring),
        m_prepare(std::move(prepare)) {}

  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> awaiter) {
    m_core = &current_core_or_throw();
    if (m_core->cancel_requested()) {
      m_result = -ECANCELED;
      m_cancel_asked = true;
      return false;
    }
    m_prepare(m_ring->prepare(this));
    // On a Runtime nothing can complete before this slice ends: the entry is submitted at
    // this worker's next poll.
    m_core->suspend(awaiter, this, WaitOn::io);
    return true;
  }
  int await_resume() const {
    if (m_result == -ECANCELED && m_cancel_asked) throw Cancelled{};
    return m_result;
  }

private:
  static void on_complete(RingOp* op, int result, std::uint32_t) noexcept {
    auto* self = static_cast<RingCall*>(op);
    self->m_result = result;
    self->m_core->wake();
  }
  // On the thread of the loop whose ring has the operation (TaskCore delivers it there).
  static void on_cancel(CancelSlot* slot) noexcept {
    auto* self = static_cast<RingCall*>(slot);
    self->m_cancel_asked = true;
    self->m_ring->cancel(self);
  }

  Ring* m_ring;
  Prepare m_prepare;
  TaskCore* m_core = nullptr;
  int m_result = 0;
  bool m_cancel_asked = false;
};

template <class Prepare>
RingCall<Prepare> ring_call(Ring& ring, Prepare prepare) {
  return RingCall<Prepare>(ring, std::move(prepare));
}

// co_await SpendBudget{}: counts an operation that finished at once (a send the kernel
// took without a submission) against the task's resume budget, and yields to the loop
// when it is spent, as a wait on an always-ready descriptor does (FdWatch).
struct SpendBudget {
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> awaiter) {
    TaskCore& core = current_core_or_throw();
    if (core.take_budget()) return false;
    core.yield(awaiter);
    return true;
  }
  void await_resume() const noexcept {}
};

}  // namespace gearbox::detail
