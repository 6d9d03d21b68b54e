// Time on the loop: sleep_for, sleep_until, yield_now and timeout.
//
//   co_await gb::sleep_for(2s);                                 // asyncio.sleep
//   auto page = co_await gb::timeout(500ms, fetch("host"));     // asyncio.timeout / wait_for
//
// Every one of these is a suspension point that honours cancellation: a cancelled task
// throws Cancelled there. They must be awaited from a task on a Loop (std::logic_error
// otherwise), and resume on that loop's thread. Deadlines are measured with the loop's
// clock (a ManualClock in tests), with 1 ms resolution; a timer never fires early.
#pragma once

#include <chrono>
#include <coroutine>

#include <gearbox/detail/awaitable_traits.hpp>
#include <gearbox/detail/shared_deadline.hpp>
#include <gearbox/detail/task_core.hpp>
#include <gearbox/detail/timer_node.hpp>
#include <gearbox/error.hpp>
#include <gearbox/join_handle.hpp>
#include <gearbox/loop.hpp>
#include <gearbox/task.hpp>

namespace gearbox {

namespace detail {

class SleepAwaiter : private CancelSlot, private TimerNode {
public:
  // Either an absolute deadline, or a delay measured from the moment of the co_await.
  explicit SleepAwaiter(Clock::time_point deadline) noexcept
      : CancelSlot(&SleepAwaiter::on_cancel), TimerNode(&SleepAwaiter::on_fire), m_deadline(deadline) {}
  explicit SleepAwaiter(Clock::duration delay) noexcept
      : CancelSlot(&SleepAwaiter::on_cancel), TimerNode(&SleepAwaiter::on_fire), m_delay(delay), m_relative(true) {}
  SleepAwaiter(SleepAwaiter&& other) noexcept
      : CancelSlot(&SleepAwaiter::on_cancel), TimerNode(&SleepAwaiter::on_fire),
        m_deadline(other.m_deadline), m_delay(other.m_delay), m_relative(other.m_relative) {}
  ~SleepAwaiter() {
    if (linked()) detail::LoopAccess::cancel_timer(m_core->loop(), this);
  }

  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> awaiter) {
    m_core = &current_core_or_throw();
    if (m_core->cancel_requested()) return false;
    Loop& loop = m_core->loop();
    const Clock::time_point now = loop.now();
    if (m_relative) m_deadline = now + m_delay;
    if (m_deadline <= now) {
      m_core->yield(awaiter);  // a sleep that is already over still lets others run
      return true;
    }
    detail::LoopAccess::add_timer(loop, this, m_deadline);
    m_core->suspend(awaiter, this, detail::WaitOn::timer);
    return true;
  }
  void await_resume() const {
    if (m_core->cancel_requested()) throw Cancelled{};
  }

private:
  static void on_fire(TimerNode* timer) noexcept { static_cast<SleepAwaiter*>(timer)->m_core->wake(); }
  static void on_cancel(CancelSlot* slot) noexcept {
    auto* self = static_cast<SleepAwaiter*>(slot);
    detail::LoopAccess::cancel_timer(self->m_core->loop(), self);
    self->m_core->wake();
  }

  TaskCore* m_core = nullptr;
  Clock::time_point m_deadline{};
  Clock::duration m_delay{};
  bool m_relative = false;
};

class YieldAwaiter {
public:
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> awaiter) {
    m_core = &current_core_or_throw();
    if (m_core->cancel_requested()) return false;
    m_core->yield(awaiter);
    return true;
  }
  void await_resume() const {
    if (m_core->cancel_requested()) throw Cancelled{};
  }

private:
  TaskCore* m_core = nullptr;
};

// A timer that cancels a task when it fires (the heart of timeout()).
class Deadline : private TimerNode {
public:
  Deadline(Loop& loop, TaskCore& target, Clock::time_point deadline) noexcept
      : TimerNode(&Deadline::on_fire), m_loop(&loop), m_target(&target) {
    detail::LoopAccess::add_timer(loop, this, deadline);
  }
  Deadline(const Deadline&) = delete;
  Deadline& operator=(const Deadline&) = delete;
  ~Deadline() { detail::LoopAccess::cancel_timer(*m_loop, this); }
  bool expired() const noexcept { return m_expired; }

private:
  static void on_fire(TimerNode* timer) noexcept {
    auto* self = static_cast<Deadline*>(timer);
    self->m_expired = true;
    self->m_target->request_cancel();
  }
  Loop* m_loop;
  TaskCore* m_target;
  bool m_expired = false;
};

}  // namespace detail

// Suspends the calling task until `deadline` on the loop's clock.
[[nodiscard]] inline detail::SleepAwaiter sleep_until(Clock::time_point deadline) noexcept {
  return detail::SleepAwaiter{deadline};
}

// Suspends the calling task for `delay`, counted from the co_await. A zero or negative
// delay yields to the other ready tasks (like asyncio.sleep(0)).
template <class Rep, class Period>
[[nodiscard]] detail::SleepAwaiter sleep_for(std::chrono::duration<Rep, Period> delay) noexcept {
  return detail::SleepAwaiter{std::chrono::ceil<Clock::duration>(delay)};
}

// Lets every other ready task run once before the caller continues.
[[nodiscard]] inline detail::YieldAwaiter yield_now() noexcept { return {}; }

// Runs `task` as a child task with a time limit. If the limit passes first, the child is
// cancelled, awaited until it has ended, and TimeoutError is thrown. If the child ends
// first, its result or exception is returned. Cancelling the caller cancels the child.
// On a Loop the limit is a timer; on a Runtime, a timer that may be disarmed from another
// worker (detail::SharedDeadline), disarmed before timeout() returns, and the child starts
// at once on the caller's worker (no queueing, no wake-up of another worker).
template <class T, class Rep, class Period>
Task<T> timeout(std::chrono::duration<Rep, Period> limit, Task<T> task) {
  Loop& loop = Loop::current_or_throw();
  const Clock::time_point deadline_at = loop.now() + std::chrono::ceil<Clock::duration>(limit);
  if (detail::current_core_or_throw().shared()) {
    JoinHandle<T> child = loop.spawn(std::move(task), Start::eager);
    detail::SharedDeadline::Scope limit{loop, *child.core(), deadline_at};
    const bool cancelled = co_await detail::JoinWait{*child.core()};
    const bool expired = limit.finish();
    if (cancelled) throw Cancelled{};
    if (expired && detail::is_cancellation(child.core()->exception())) throw TimeoutError{};
    co_return child.result();
  }
  JoinHandle<T> child = loop.spawn(std::move(task));
  detail::Deadline deadline{loop, *child.core(), deadline_at};
  if (co_await detail::JoinWait{*child.core()}) throw Cancelled{};
  if (deadline.expired() && detail::is_cancellation(child.core()->exception())) throw TimeoutError{};
  co_return child.result();
}

// timeout() for any awaitable (a JoinHandle, a channel receive, a sleep...).
template <class A, class Rep, class Period>
  requires(!detail::is_task<std::remove_cvref_t<A>>::value && detail::Awaitable<A>)
auto timeout(std::chrono::duration<Rep, Period> limit, A&& awaitable) {
  return timeout(limit, detail::to_task(std::forward<A>(awaitable)));
}

}  // namespace gearbox
