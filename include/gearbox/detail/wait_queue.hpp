// WaitQueue and Waiter: the one waiting mechanism shared by the synchronisation primitives
// (Event, Mutex, Semaphore, Channel, and select over channels). A Waiter is embedded in an
// awaiter, so a wait allocates nothing; a WaitQueue is an intrusive FIFO of them, owned by
// the primitive and guarded by the primitive's WaitLock.
//
// An awaiter derives from Waiter and implements await_suspend with suspend_unless_ready(),
// which runs the protocol every suspension point of a task follows (see task_core.hpp):
//   1. a task whose cancellation was requested does not wait: the outcome is `cancelled`;
//   2. under the primitive's lock, an operation that can complete at once does so
//      (`try_now`), then the task goes on, or, when its resume budget is spent, yields
//      first (the operation has already happened: the yield only delays the caller);
//   3. otherwise, still under the lock, the waiter joins the queue and the task suspends
//      with the waiter as its CancelSlot.
// Whoever ends the wait (set, unlock, release, send, receive, close) does so under the
// lock: it claims the waiter (claim_front), stores the result in the awaiter and calls
// complete(), which unlinks the waiter, records the outcome and hands the waiter to a
// WakeList. The WakeList wakes the tasks once the lock is released: on a Runtime a woken
// task may run at once on another worker, and may end the primitive's life (an Event on
// its frame), so nothing of the primitive is touched after a wake-up.
//
// A cancel that arrives while the waiter is queued (on_cancel, under the lock) unlinks it
// and records `cancelled`; a cancel that finds the outcome already recorded does nothing,
// so a completed wait always delivers its result (the task throws Cancelled at its next
// suspension point). Cancellation only ever removes a waiter from a queue. Each primitive
// keeps invariants that stay true under removal (for example "waiters exist only while the
// mutex is locked"), so no primitive needs to react when one of its waiters is cancelled.
//
// A select (select.hpp) queues one waiter per case, on several channels; they share a
// SelectGroup, and the first to claim the group wins. A waiter whose group another case
// already won is dead: claim_front unlinks it and passes over it, and the select's task
// unlinks the rest of its cases when it resumes.
//
// Thread-safety: a queue and its waiters are guarded by the primitive's lock; a waiter's
// outcome and result belong to its task again once it has been woken.
// Memory ordering: the lock orders everything between wakers, cancellers and the waiting
// task until it is woken; the wake-up (TaskCore::wake) publishes the outcome and result to
// the task, which sees everything its waker did before it released the lock.
// Destruction: a Waiter unlinks itself. A WaitQueue destroyed while waiters are linked
// unlinks them; their tasks then stay suspended until they are cancelled (a bug in the
// program that owns the primitive, which must outlive every wait on it).
#pragma once

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <mutex>

#include <gearbox/detail/intrusive_list.hpp>
#include <gearbox/detail/task_core.hpp>
#include <gearbox/detail/wait_lock.hpp>
#include <gearbox/error.hpp>

namespace gearbox::detail {

class WaitQueue;
class WakeList;

// How a wait ended. `pending` while it has not ended (or has not begun).
enum class WaitOutcome : std::uint8_t { pending, completed, closed, cancelled };

// The cases of one select: whichever claims it first ends the select. The select's
// awaiter is its task's CancelSlot while it waits.
struct SelectGroup : CancelSlot {
  static constexpr int k_undecided = -1;
  static constexpr int k_cancelled = -2;

  using CancelSlot::CancelSlot;

  // True if `winner` (a case index, or k_cancelled) is the first to claim the group.
  // Memory ordering: acq_rel. Claims race between wakers holding different channels'
  // locks and a canceller holding none; the CAS alone decides, and the winner's result
  // reaches the task through its wake-up, so the ordering is not what carries data.
  bool claim(int winner) noexcept {
    int expected = k_undecided;
    return m_winner.compare_exchange_strong(expected, winner, std::memory_order_acq_rel, std::memory_order_relaxed);
  }
  // Memory ordering: relaxed; read by the select's own task after its wake-up, or under
  // all its channels' locks (where no waker can change it).
  int winner() const noexcept { return m_winner.load(std::memory_order_relaxed); }

  std::atomic<int> m_winner{k_undecided};
};

class Waiter : private ListNode, private CancelSlot {
public:
  Waiter() noexcept : CancelSlot(&Waiter::on_cancel) {}
  // Awaiters may be moved before they are awaited (timeout() moves one into a child task,
  // select() moves its cases into itself). A move carries no state: a waiter that is
  // linked must never be moved.
  Waiter(Waiter&&) noexcept : Waiter() {}
  Waiter& operator=(Waiter&&) = delete;
  ~Waiter() {
    if (ListNode::linked() && m_lock) {
      std::lock_guard guard{*m_lock};
      ListNode::unlink();
    }
  }

  // Read by the waiting task once it has been woken (or before it waited).
  WaitOutcome outcome() const noexcept { return m_outcome; }

  // The body of await_suspend (see the header comment). Under `lock`, `try_now(wakes)`
  // returns `pending` if the operation must wait, else the outcome it has already brought
  // about (waking whoever it completed through `wakes`). Returns what await_suspend
  // returns: false to go on at once, true if the task suspended or yielded. Throws
  // std::logic_error when not called from a task.
  template <class TryNow>
  bool suspend_unless_ready(std::coroutine_handle<> awaiter, WaitLock& lock, WaitQueue& queue, TryNow&& try_now);

  // For await_resume: a wait that was abandoned because of cancellation throws.
  void throw_if_cancelled() const {
    if (m_outcome == WaitOutcome::cancelled) throw Cancelled{};
  }

  // Ends the wait of a queued, claimed waiter (the caller holds the primitive's lock):
  // unlinks it, records `outcome`, and hands it to `wakes`, which schedules its task once
  // the lock is released (it resumes later, never inside this call).
  void complete(WaitOutcome outcome, WakeList& wakes) noexcept;

  // Select cases: `group` decides which case of the select wins; `index` is this case's.
  void join_select(SelectGroup& group, int index) noexcept {
    m_group = &group;
    m_case = static_cast<std::uint8_t>(index);
  }
  // Records an outcome the waiting task brought about itself (not queued, no wake-up).
  void set_outcome(WaitOutcome outcome) noexcept { m_outcome = outcome; }
  // Queues this waiter for `core` (the caller holds `lock`, the queue's primitive's lock).
  void enqueue(WaitQueue& queue, WaitLock& lock, TaskCore& core) noexcept;
  // Leaves whatever queue holds it (a select's task, cleaning up after it won or lost).
  // Takes the lock whatever it finds: a waker may be unlinking it as a dead case.
  void leave() noexcept {
    if (!m_lock) return;
    std::lock_guard guard{*m_lock};
    ListNode::unlink();
  }

private:
  friend class WaitQueue;
  friend class WakeList;

  static Waiter* from_node(ListNode* node) noexcept { return static_cast<Waiter*>(node); }

  // A waiter that may be completed: a plain one always; a select case only if it wins
  // its group now.
  bool try_claim() noexcept { return !m_group || m_group->claim(m_case); }

  // Called by the core (slot already cleared) when the task is cancelled while queued.
  static void on_cancel(CancelSlot* slot) noexcept {
    auto* self = static_cast<Waiter*>(slot);
    if (self->m_lock) {
      std::lock_guard guard{*self->m_lock};
      if (self->m_outcome != WaitOutcome::pending) return;  // completed first: it keeps its result
      self->ListNode::unlink();
      self->m_outcome = WaitOutcome::cancelled;
    } else {
      self->m_outcome = WaitOutcome::cancelled;  // its queue was destroyed under it
    }
    self->m_core->wake();
  }

  TaskCore* m_core = nullptr;
  WaitLock* m_lock = nullptr;      // the lock of the queue it joined (null: not queued)
  SelectGroup* m_group = nullptr;  // set for a case of a select
  WaitOutcome m_outcome = WaitOutcome::pending;
  std::uint8_t m_case = 0;  // this case's index in its select
};

// Waiters whose wait has ended, woken when the list goes out of scope. Declare it before
// the lock guard, so that the wake-ups happen after the lock is released. A FIFO chained
// through the waiters themselves (the m_prev of their ListNode, unused once a waiter has
// left its queue; m_next stays null, so it does not count as linked): nothing is
// allocated, and the common case, one waiter, costs a few stores.
class WakeList {
public:
  WakeList() noexcept = default;
  WakeList(const WakeList&) = delete;
  WakeList& operator=(const WakeList&) = delete;
  ~WakeList() {
    for (Waiter* waiter = m_head; waiter;) {
      // Read before the wake-up: from then on the waiter may be gone.
      Waiter* const next = next_of(waiter);
      TaskCore* const core = waiter->m_core;
      core->wake();
      waiter = next;
    }
  }

  // `waiter` has left its queue (unlinked).
  void add(Waiter& waiter) noexcept {
    ListNode& node = waiter;
    node.m_prev = nullptr;
    if (m_tail)
      static_cast<ListNode&>(*m_tail).m_prev = &node;
    else
      m_head = &waiter;
    m_tail = &waiter;
  }

private:
  static Waiter* next_of(Waiter* waiter) noexcept {
    ListNode* next = static_cast<ListNode*>(waiter)->m_prev;
    return next ? Waiter::from_node(next) : nullptr;
  }

  Waiter* m_head = nullptr;
  Waiter* m_tail = nullptr;
};

inline void Waiter::complete(WaitOutcome outcome, WakeList& wakes) noexcept {
  ListNode::unlink();
  m_outcome = outcome;
  wakes.add(*this);
}

class WaitQueue {
public:
  WaitQueue(const WaitQueue&) = delete;
  WaitQueue& operator=(const WaitQueue&) = delete;
  // `on`: what a task waiting here waits on, as the trace names it.
  explicit WaitQueue(WaitOn on = WaitOn::other) noexcept : m_on(on) {}
  ~WaitQueue() {
    while (ListNode* node = m_waiters.pop_front()) Waiter::from_node(node)->m_lock = nullptr;
  }

  // The caller holds the primitive's lock for every member below.
  bool empty() const noexcept { return m_waiters.empty(); }
  WaitOn waits_on() const noexcept { return m_on; }

  // The longest-waiting waiter that can still be completed, as the awaiter type `W` the
  // primitive queued (null if none). Dead select cases met on the way are unlinked; a
  // select case returned has been claimed for its select, so the caller must complete it.
  template <class W = Waiter>
  W* claim_front() noexcept {
    while (ListNode* node = m_waiters.front()) {
      Waiter* waiter = Waiter::from_node(node);
      if (waiter->try_claim()) return static_cast<W*>(waiter);
      node->unlink();  // its select was won by another case, or cancelled
    }
    return nullptr;
  }

  void push_back(Waiter& waiter) noexcept { m_waiters.push_back(&waiter); }

  // Completes every waiter that can be claimed with `outcome`, in FIFO order (so their
  // tasks run in that order).
  void complete_all(WaitOutcome outcome, WakeList& wakes) noexcept {
    while (Waiter* waiter = claim_front()) waiter->complete(outcome, wakes);
  }

private:
  List m_waiters;
  WaitOn m_on;
};

inline void Waiter::enqueue(WaitQueue& queue, WaitLock& lock, TaskCore& core) noexcept {
  m_core = &core;
  m_lock = &lock;
  queue.push_back(*this);
}

template <class TryNow>
bool Waiter::suspend_unless_ready(std::coroutine_handle<> awaiter, WaitLock& lock, WaitQueue& queue,
                                  TryNow&& try_now) {
  TaskCore& core = current_core_or_throw();
  m_core = &core;
  if (core.cancel_requested()) {
    m_outcome = WaitOutcome::cancelled;
    return false;
  }
  WaitOutcome outcome;
  {
    WakeList wakes;  // after the guard: it wakes once the lock is released
    std::lock_guard guard{lock};
    outcome = try_now(wakes);
    if (outcome == WaitOutcome::pending) {
      enqueue(queue, lock, core);
      // Under the lock, so that a waker sees a task that has suspended (on a Runtime the
      // task stays `running` until its slice returns, and a wake-up meanwhile reschedules
      // it then).
      core.suspend(awaiter, this, queue.waits_on());
      return true;
    }
  }
  m_outcome = outcome;
  if (core.take_budget()) return false;
  core.yield(awaiter);  // fairness: the operation is done, the task just resumes later
  return true;
}

}  // namespace gearbox::detail
