// Shared by the tests of the async core on one thread (loop_test, join_handle_test,
// sleep_test, timeout_test): readable times on the loop's clock, and small tasks that
// several of them spawn (free functions: a coroutine lambda with captures must not outlive
// its closure, so spawned tasks never capture).
//
// Lifetimes, logs and clocks are declared before the Loop that uses them: ~Loop cancels and
// drains the tasks still alive, and their destructors write to those objects.
#pragma once

#include <gearbox/error.hpp>
#include <gearbox/join_handle.hpp>
#include <gearbox/loop.hpp>
#include <gearbox/spawn.hpp>
#include <gearbox/task.hpp>
#include <gearbox/time.hpp>

#include <chrono>
#include <coroutine>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/describe.hpp"
#include "support/lifetimes.hpp"

namespace gearbox_test {

namespace gb = gearbox;
using namespace std::chrono_literals;

using Duration = gb::Clock::duration;
using TimePoint = gb::Clock::time_point;
using Log = std::vector<std::string>;

struct TestError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// An exact, readable duration: "1500ms", or "1300500ns" when not a whole millisecond.
inline std::string ms(Duration d) {
  if (d % 1ms == Duration::zero()) return std::to_string(d / 1ms) + "ms";
  return std::to_string(std::chrono::nanoseconds(d).count()) + "ns";
}

// The time since t0 on the clock of the loop the caller runs on.
inline std::string now_since(TimePoint t0) { return ms(gb::Loop::current_or_throw().now() - t0); }

// ---- tasks used by several tests (free functions: coroutine lambdas with captures must
// not outlive their closure, so spawned tasks never capture) ----

inline gb::Task<int> answer() { co_return 42; }

inline gb::Task<void> set_flag(bool& flag) {
  flag = true;
  co_return;
}

inline gb::Task<int> value_after(Duration delay, int value) {
  co_await gb::sleep_for(delay);
  co_return value;
}

inline gb::Task<std::unique_ptr<int>> box_after(Duration delay, int value) {
  co_await gb::sleep_for(delay);
  co_return std::make_unique<int>(value);
}

inline gb::Task<int> fail_after(Duration delay, std::string message) {
  co_await gb::sleep_for(delay);
  throw TestError(message);
}

inline gb::Task<void> throw_cancelled_after(Duration delay) {
  co_await gb::sleep_for(delay);
  throw gb::Cancelled{};
}

// Holds a counted local across a long sleep; logs if the sleep throws Cancelled.
inline gb::Task<int> sleeper_with_local(Lifetimes& lifetimes, Log& log, Duration delay = 10s) {
  Tracked local{lifetimes};
  try {
    co_await gb::sleep_for(delay);
  } catch (const gb::Cancelled&) {
    log.push_back("sleeper: Cancelled at its sleep");
    throw;
  }
  log.push_back("sleeper: woke");
  co_return 1;
}

// Logs `name` with the time at each step, sleeping `sleeps` in between.
inline gb::Task<void> stepper(std::string name, std::vector<Duration> sleeps, Log& log, TimePoint t0) {
  for (std::size_t i = 0; i < sleeps.size(); ++i) {
    log.push_back(name + std::to_string(i) + "@" + now_since(t0));
    co_await gb::sleep_for(sleeps[i]);
  }
  log.push_back(name + " done@" + now_since(t0));
}

// Logs `name + i` then yields, `rounds` times.
inline gb::Task<void> yielder(std::string name, int rounds, Log& log) {
  for (int i = 0; i < rounds; ++i) {
    log.push_back(name + std::to_string(i));
    co_await gb::yield_now();
  }
}

// A wait that only cancellation ends (an Event that nobody sets), built the way the
// runtime's own primitives are: it registers a CancelSlot with the task's core.
class WaitForever : private gb::detail::CancelSlot {
public:
  WaitForever() noexcept : CancelSlot(&WaitForever::on_cancel) {}
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> awaiter) {
    m_core = &gb::detail::current_core_or_throw();
    if (m_core->cancel_requested()) return false;
    m_core->suspend(awaiter, this, gearbox::detail::WaitOn::other);
    return true;
  }
  void await_resume() const {
    if (m_core->cancel_requested()) throw gb::Cancelled{};
  }

private:
  static void on_cancel(CancelSlot* slot) noexcept { static_cast<WaitForever*>(slot)->m_core->wake(); }
  gb::detail::TaskCore* m_core = nullptr;
};

inline gb::Task<void> wait_forever(Lifetimes& lifetimes, Log& log) {
  Tracked local{lifetimes};
  try {
    co_await WaitForever{};
  } catch (const gb::Cancelled&) {
    log.push_back("waiter: Cancelled");
    throw;
  }
}

}  // namespace gearbox_test
