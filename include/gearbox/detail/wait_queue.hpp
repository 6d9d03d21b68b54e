// WaitQueue and Waiter: the one waiting mechanism shared by the loop's synchronisation
// primitives (Event, Mutex, Semaphore, Channel). A Waiter is embedded in an awaiter, so a
// wait allocates nothing; a WaitQueue is an intrusive FIFO of them, owned by the primitive.
//
// An awaiter derives from Waiter and implements await_suspend with suspend_unless_ready(),
// which runs the protocol every suspension point of a task follows (see task_core.hpp):
//   1. a task whose cancellation was requested does not wait: the outcome is `cancelled`;
//   2. an operation that can complete at once does so (`try_now`), then the task goes on,
//      or, when its resume budget is spent, yields to the loop first (the operation has
//      already happened: the yield only delays the caller, nothing is redone or lost);
//   3. otherwise the waiter joins the queue and the task suspends with the waiter as its
//      CancelSlot.
// Whoever ends the wait (set, unlock, release, send, receive, close) stores the result in
// the awaiter and calls complete(), which unlinks the waiter and wakes its task. A cancel
// that arrives while the waiter is queued unlinks it and records `cancelled`; a cancel
// that arrives after complete() finds no slot (wake() cleared it), so a completed wait
// always delivers its result and the task throws Cancelled at its next suspension point.
//
// Cancellation only ever removes a waiter from a queue. Each primitive keeps invariants
// that stay true under removal (for example "waiters exist only while the mutex is
// locked"), so no primitive needs to react when one of its waiters is cancelled.
//
// Thread-safety: none. A queue, its waiters and their tasks belong to one loop's thread.
// Memory ordering: single-threaded; a woken task sees everything its waker did before
// complete().
// Destruction: a Waiter unlinks itself. A WaitQueue destroyed while waiters are linked
// unlinks them; their tasks then stay suspended until they are cancelled (a bug in the
// program that owns the primitive, which must outlive every wait on it).
#pragma once

#include <coroutine>
#include <cstdint>

#include <gearbox/detail/intrusive_list.hpp>
#include <gearbox/detail/task_core.hpp>
#include <gearbox/error.hpp>

namespace gearbox::detail {

class WaitQueue;

// How a wait ended. `pending` while it has not ended (or has not begun).
enum class WaitOutcome : std::uint8_t { pending, completed, closed, cancelled };

class Waiter : private ListNode, private CancelSlot {
public:
  Waiter() noexcept : CancelSlot(&Waiter::on_cancel) {}
  // Awaiters may be moved before they are awaited (timeout() moves one into a child
  // task). A move carries no state: a waiter that is linked must never be moved.
  Waiter(Waiter&&) noexcept : Waiter() {}
  Waiter& operator=(Waiter&&) = delete;
  ~Waiter() { ListNode::unlink(); }

  WaitOutcome outcome() const noexcept { return m_outcome; }

  // The body of await_suspend (see the header comment). `try_now()` returns `pending` if
  // the operation must wait, else the outcome it has already brought about. Returns what
  // await_suspend returns: false to go on at once, true if the task suspended or yielded.
  // Throws std::logic_error when not called from a task on a Loop.
  template <class TryNow>
  bool suspend_unless_ready(std::coroutine_handle<> awaiter, WaitQueue& queue, TryNow&& try_now);

  // For await_resume: a wait that was abandoned because of cancellation throws.
  void throw_if_cancelled() const {
    if (m_outcome == WaitOutcome::cancelled) throw Cancelled{};
  }

  // Ends the wait of a queued waiter: unlinks it, records `outcome` and schedules its
  // task (it resumes in a later turn of the loop, never inside this call).
  void complete(WaitOutcome outcome) noexcept {
    ListNode::unlink();
    m_outcome = outcome;
    m_core->wake();
  }

private:
  friend class WaitQueue;

  // Called by the core (slot already cleared) when the task is cancelled while queued.
  static void on_cancel(CancelSlot* slot) noexcept {
    auto* self = static_cast<Waiter*>(slot);
    self->ListNode::unlink();  // no effect if the queue was destroyed under the waiter
    self->m_outcome = WaitOutcome::cancelled;
    self->m_core->wake();
  }

  TaskCore* m_core = nullptr;
  WaitOutcome m_outcome = WaitOutcome::pending;
};

class WaitQueue {
public:
  WaitQueue() noexcept = default;
  WaitQueue(const WaitQueue&) = delete;
  WaitQueue& operator=(const WaitQueue&) = delete;

  // `on`: what a task waiting here waits on, as the trace names it.
  explicit WaitQueue(WaitOn on = WaitOn::other) noexcept : m_on(on) {}

  bool empty() const noexcept { return m_waiters.empty(); }
  WaitOn waits_on() const noexcept { return m_on; }

  // The longest-waiting waiter, as the awaiter type `W` the primitive queued (null if none).
  template <class W = Waiter>
  W* front() const noexcept {
    ListNode* node = m_waiters.front();
    return node ? static_cast<W*>(static_cast<Waiter*>(node)) : nullptr;
  }

  void push_back(Waiter& waiter) noexcept { m_waiters.push_back(&waiter); }

  // Completes every waiter with `outcome`, in FIFO order (so their tasks run in that order).
  void complete_all(WaitOutcome outcome) noexcept {
    while (Waiter* waiter = front()) waiter->complete(outcome);
  }

private:
  List m_waiters;
  WaitOn m_on;
};

template <class TryNow>
bool Waiter::suspend_unless_ready(std::coroutine_handle<> awaiter, WaitQueue& queue, TryNow&& try_now) {
  TaskCore& core = current_core_or_throw();
  require_single_thread("waiting on an Event, Mutex, Semaphore or Channel");
  m_core = &core;
  if (core.cancel_requested()) {
    m_outcome = WaitOutcome::cancelled;
    return false;
  }
  if (const WaitOutcome outcome = try_now(); outcome != WaitOutcome::pending) {
    m_outcome = outcome;
    if (core.take_budget()) return false;
    core.yield(awaiter);  // fairness: the operation is done, the task just resumes later
    return true;
  }
  queue.push_back(*this);
  core.suspend(awaiter, this, queue.waits_on());
  return true;
}

}  // namespace gearbox::detail
