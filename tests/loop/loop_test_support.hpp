// Shared by the tests of the async core (loop_test, join_handle_test, sleep_test,
// timeout_test): readable times on the loop's clock, the virtual time a task takes on a
// manual clock, and small tasks that several of them spawn (free functions: a coroutine
// lambda with captures must not outlive its closure, so spawned tasks never capture).
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
#include <type_traits>
#include <vector>

#include <gtest/gtest.h>

#include "support/describe.hpp"
#include "support/flavors.hpp"
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

// How long `task` takes on a loop whose manual clock jumps to the next timer whenever every
// task waits: the exact virtual time from its start to its end, for the deterministic half
// of a test whose outcome runs on both flavors. Its result is dropped; no task may be left.
template <class T>
Duration virtual_time_of(gb::Task<T> task) {
  gb::ManualClock clock;
  gb::Loop loop{{.clock = &clock, .auto_advance = true}};
  const TimePoint t0 = clock.now();
  loop.run(std::move(task));
  EXPECT_EQ(loop.live_tasks(), 0u);
  return clock.now() - t0;
}

// A scenario is a function that makes the task to run from a Log& (and a Lifetimes& for
// the locals of the tasks it spawns, if it takes two arguments).
template <class Scenario>
auto make_scenario_task(Scenario scenario, Lifetimes& lifetimes, Log& log) {
  if constexpr (std::is_invocable_v<Scenario, Log&>)
    return scenario(log);
  else
    return scenario(lifetimes, log);
}

// virtual_time_of a scenario.
template <class Scenario>
Duration virtual_time_of_scenario(Scenario scenario) {
  Lifetimes lifetimes;
  Log log;
  return virtual_time_of(make_scenario_task(scenario, lifetimes, log));
}

// The fixture of the core's suites that run on both test engines (OnEveryTestEngine).
class CoreOnEveryFlavor : public OnEveryTestEngine {
protected:
  // What `scenario` logged, run on this test's engine; no local it counted is left alive.
  template <class Scenario>
  Log log_of(Scenario scenario) {
    Lifetimes lifetimes;
    Log log;
    run(make_scenario_task(scenario, lifetimes, log));
    EXPECT_EQ(lifetimes.alive(), 0);
    return log;
  }
};

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

// Cancels the task of `handle` 10 ms from now and awaits it; logs "main: Cancelled" if it
// ended so.
inline gb::Task<void> cancel_10ms_later(gb::JoinHandle<void> handle, Log& log) {
  co_await gb::sleep_for(10ms);
  handle.cancel();
  try {
    co_await handle;
  } catch (const gb::Cancelled&) {
    log.push_back("main: Cancelled");
  }
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
