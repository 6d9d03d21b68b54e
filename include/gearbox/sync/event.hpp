// Event: a flag that tasks can wait for (asyncio.Event, tokio::sync::Notify's broadcast).
//
//   gb::Event ready;
//   // in one task:             // in others:
//   load_config();              co_await ready.wait();   // returns once set()
//   ready.set();                use_config();
//
// set() wakes every waiting task, in the order they began to wait, and lets later waits
// return at once until clear(). A waiter woken by set() returns normally even if the
// event is cleared again before it runs.
//
// Thread-safety: on a Loop, call every member on the loop's thread (to signal a loop from
// another thread, post() a function that calls set()). On a Runtime, tasks on any worker
// may wait and set, and set() may also be called from any other thread. A task may end
// the event's life as soon as its wait returns, even while the setter is still in set().
// Destruction: no task may be waiting on the event.
//
// Memory ordering: a waiter sees everything the thread that called set() did before
// set() (release by the setter's lock, acquire by the waiter's wake-up); is_set() is a
// snapshot taken under the lock.
#pragma once

#include <coroutine>

#include <gearbox/detail/wait_queue.hpp>

namespace gearbox {

class Event;

namespace detail {

class EventWaitAwaiter : public Waiter {
public:
  explicit EventWaitAwaiter(Event& event) noexcept : m_event(&event) {}

  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> awaiter);
  void await_resume() const { throw_if_cancelled(); }

private:
  Event* m_event;
};

}  // namespace detail

class Event {
public:
  explicit Event(bool initially_set = false) noexcept : m_set(initially_set) {}
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  // Sets the flag and wakes every waiting task, in FIFO order; they resume in a later
  // turn (of their loop, or of the runtime). No effect on an event that is already set.
  void set() noexcept {
    detail::WakeList wakes;  // wakes once the lock is released
    std::lock_guard guard{m_lock};
    m_set = true;
    m_waiters.complete_all(detail::WaitOutcome::completed, wakes);
  }

  // Clears the flag: later waits suspend until the next set(). Tasks already woken by a
  // set() are not affected.
  void clear() noexcept {
    std::lock_guard guard{m_lock};
    m_set = false;
  }

  bool is_set() const noexcept {
    std::lock_guard guard{m_lock};
    return m_set;
  }

  // co_await event.wait(): returns at once if the event is set, else suspends until
  // set(). Throws Cancelled if the task is cancelled before or while it waits (a wait
  // that set() already ended returns normally). Must be awaited from a task on a Loop or
  // a Runtime (std::logic_error otherwise).
  [[nodiscard]] detail::EventWaitAwaiter wait() noexcept { return detail::EventWaitAwaiter{*this}; }

private:
  friend class detail::EventWaitAwaiter;

  mutable detail::WaitLock m_lock;                      // guards everything below
  detail::WaitQueue m_waiters{detail::WaitOn::event};  // non-empty only while the flag is clear
  bool m_set;
};

inline bool detail::EventWaitAwaiter::await_suspend(std::coroutine_handle<> awaiter) {
  return suspend_unless_ready(awaiter, m_event->m_lock, m_event->m_waiters, [this](WakeList&) {
    return m_event->m_set ? WaitOutcome::completed : WaitOutcome::pending;
  });
}

}  // namespace gearbox
