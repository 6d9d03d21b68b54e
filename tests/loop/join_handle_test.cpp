// Tests of JoinHandle (include/gearbox/join_handle.hpp): results and exceptions, cancel
// (before the first run, at a pending sleep, after the end), dropping a handle, detach,
// and the unhandled failures reported to on_unhandled_exception.
//
// The outcomes (what an await gives or throws, what a cancelled or dropped task logs,
// locals destroyed, nothing reported) are asserted on both flavors
// (JoinHandleOnEveryFlavor: the manual-clock test loop, and a Runtime of 2 workers whose
// unhandled failures fail the test). The same scenarios' exact virtual times are checked
// on the loop only (JoinHandle), with virtual_time_of; so are the cases whose outcome
// depends on when a timer fires relative to another task (a detached task that finishes
// before the run ends, a failure that lands before its handle is dropped or the engine
// shuts down) and result() before the task ran, which needs Loop::spawn from outside.
#include <gearbox/error.hpp>
#include <gearbox/join_handle.hpp>
#include <gearbox/loop.hpp>
#include <gearbox/spawn.hpp>
#include <gearbox/task.hpp>
#include <gearbox/time.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "loop_test_support.hpp"
#include "support/flavors.hpp"

namespace gb = gearbox;
using namespace std::chrono_literals;
using namespace gearbox_test;

namespace {

class JoinHandleOnEveryFlavor : public CoreOnEveryFlavor {};

// Awaits three handles: a value (20 ms), a box (10 ms) and a void task; 42 if all came.
gb::Task<int> await_three_handles() {
  auto number = gb::spawn(value_after(20ms, 40));
  auto box = gb::spawn(box_after(10ms, 2));
  bool flag = false;
  auto nothing = gb::spawn(set_flag(flag));
  std::unique_ptr<int> b = co_await box;
  const int n = co_await number;
  co_await nothing;
  co_return n + (b ? *b : -100) + (flag ? 0 : -1000);
}

// Spawns a sleeper, cancels it 10 ms later and awaits it; logs how that ended.
gb::Task<void> cancel_a_sleeper(Lifetimes& lifetimes, Log& log) {
  auto h = gb::spawn(sleeper_with_local(lifetimes, log));
  co_await gb::sleep_for(10ms);
  h.cancel();
  try {
    (void)co_await h;
    log.push_back("main: no exception");
  } catch (const gb::Cancelled&) {
    log.push_back("main: Cancelled, locals alive: " + std::to_string(lifetimes.alive()));
  }
}

// Spawns a child and cancels it at once (on the loop, before it ever ran).
gb::Task<void> cancel_at_once(Log& log) {
  auto h = gb::spawn([](Log& log) -> gb::Task<void> {
    log.push_back("child: started");
    try {
      co_await gb::sleep_for(10s);
    } catch (const gb::Cancelled&) {
      log.push_back("child: Cancelled at its first await");
      throw;
    }
    log.push_back("child: slept");
  }(log));
  h.cancel();
  try {
    co_await h;
  } catch (const gb::Cancelled&) {
    log.push_back("main: Cancelled");
  }
}

// Drops the handle of a sleeper once it runs, then yields once. (It writes nothing the
// sleeper reads or writes: a cancel carries no data, so on the runtime it orders nothing.)
gb::Task<void> drop_a_handle(Lifetimes& lifetimes, Log& log) {
  {
    auto h = gb::spawn(sleeper_with_local(lifetimes, log));
    co_await gb::yield_now();  // on the loop, the child starts and sleeps
  }
  co_await gb::yield_now();  // on the loop, the child runs once more and ends
}

// A parent awaiting a sleeper is cancelled 10 ms after it was spawned.
gb::Task<void> cancel_a_parent_awaiting_a_child(Lifetimes& lifetimes, Log& log) {
  auto parent = gb::spawn([](Lifetimes& lifetimes, Log& log) -> gb::Task<void> {
    auto child = gb::spawn(sleeper_with_local(lifetimes, log));
    try {
      (void)co_await child;
    } catch (const gb::Cancelled&) {
      log.push_back("parent: Cancelled, child done: " + std::string(child.done() ? "yes" : "no") +
                    ", child locals alive: " + std::to_string(lifetimes.alive()));
      throw;
    }
  }(lifetimes, log));
  co_await cancel_10ms_later(std::move(parent), log);
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(JoinHandle, JoinHandleOnEveryFlavor, gearbox_test::every_flavor(), gearbox_test::flavor_name);

// =====================================================================================
// JoinHandle
// =====================================================================================

TEST_P(JoinHandleOnEveryFlavor, awaiting_a_handle_gives_the_result_of_its_task) {
  EXPECT_EQ(run(await_three_handles()), 42);
}

TEST(JoinHandle, spawned_tasks_run_at_once_so_awaiting_three_takes_as_long_as_the_longest) {
  EXPECT_EQ(ms(virtual_time_of(await_three_handles())), "20ms");
}

TEST_P(JoinHandleOnEveryFlavor, awaiting_a_handle_rethrows_the_exception_of_its_task_and_it_is_not_reported) {
  // Not reported: a failure reported to on_unhandled_exception fails the test.
  std::string caught;
  run([](std::string& out) -> gb::Task<void> {
    auto h = gb::spawn(fail_after(10ms, "child failed"));
    try {
      (void)co_await h;
    } catch (const TestError& e) {
      out = e.what();
    }
  }(caught));
  EXPECT_EQ(caught, "child failed");
}

TEST(JoinHandle, result_throws_logic_error_before_the_task_finished_and_gives_the_value_after) {
  gb::ManualClock clock;
  gb::Loop loop{{.clock = &clock, .auto_advance = true}};
  gb::JoinHandle<int> handle = loop.spawn(value_after(1s, 5));
  EXPECT_TRUE(handle.valid());
  EXPECT_FALSE(handle.done());
  EXPECT_THROW((void)handle.result(), std::logic_error);
  loop.run(value_after(2s, 0));
  EXPECT_TRUE(handle.done());
  EXPECT_EQ(handle.result(), 5);
}

TEST_P(JoinHandleOnEveryFlavor, cancel_makes_the_pending_sleep_throw_Cancelled_and_destroys_the_task_locals) {
  EXPECT_EQ(log_of(cancel_a_sleeper), (Log{"sleeper: Cancelled at its sleep", "main: Cancelled, locals alive: 0"}));
}

TEST(JoinHandle, a_cancelled_sleep_ends_at_the_cancel_not_at_its_deadline) {
  EXPECT_EQ(ms(virtual_time_of_scenario(cancel_a_sleeper)), "10ms");
}

TEST_P(JoinHandleOnEveryFlavor, a_task_cancelled_before_it_first_runs_throws_Cancelled_at_its_first_await) {
  // On the runtime the child may start before the cancel: it then throws at the same await.
  EXPECT_EQ(log_of(cancel_at_once), (Log{"child: started", "child: Cancelled at its first await", "main: Cancelled"}));
}

TEST(JoinHandle, a_task_cancelled_before_it_first_runs_never_sleeps) {
  EXPECT_EQ(ms(virtual_time_of_scenario(cancel_at_once)), "0ms");
}

TEST_P(JoinHandleOnEveryFlavor, dropping_a_handle_cancels_its_task) {
  // Not reported: a Cancelled end is not a failure (a report fails the test).
  EXPECT_EQ(log_of(drop_a_handle), Log{"sleeper: Cancelled at its sleep"});
}

TEST(JoinHandle, a_task_whose_handle_was_dropped_ends_in_the_next_turn) {
  Lifetimes lifetimes;
  Log log;
  std::size_t live_after = 0;
  const Duration took = virtual_time_of([](Lifetimes& lifetimes, Log& log, std::size_t& live) -> gb::Task<void> {
    co_await drop_a_handle(lifetimes, log);
    live = gb::Loop::current_or_throw().live_tasks();
  }(lifetimes, log, live_after));
  EXPECT_EQ(live_after, 1u) << "only the main task should be left";
  EXPECT_EQ(ms(took), "0ms");
}

TEST(JoinHandle, detach_lets_the_task_run_to_completion) {
  Log log;
  gb::ManualClock clock;
  gb::Loop loop{{.clock = &clock, .auto_advance = true}};
  const TimePoint t0 = clock.now();
  loop.run([](Log& log, TimePoint t0) -> gb::Task<void> {
    auto h = gb::spawn(stepper("detached", {2s}, log, t0));
    h.detach();
    log.push_back(h.valid() ? "handle still valid" : "handle empty");
    co_await gb::sleep_for(3s);
  }(log, t0));
  EXPECT_EQ(log, (Log{"handle empty", "detached0@0ms", "detached done@2000ms"}));
  EXPECT_EQ(loop.live_tasks(), 0u);
}

TEST(JoinHandle, an_exception_in_a_detached_task_is_reported_to_on_unhandled_exception_exactly_once) {
  std::vector<std::string> reported;
  gb::ManualClock clock;
  {
    gb::Loop loop{{.clock = &clock,
                   .auto_advance = true,
                   .on_unhandled_exception = [&](std::exception_ptr e) { reported.push_back(describe(e)); }}};
    loop.run([]() -> gb::Task<void> {
      gb::spawn(fail_after(1s, "detached failure")).detach();
      co_await gb::sleep_for(2s);
    }());
    EXPECT_EQ(reported, std::vector<std::string>{"detached failure"});
  }
  EXPECT_EQ(reported, std::vector<std::string>{"detached failure"}) << "reported again at shutdown";
}

TEST_P(JoinHandleOnEveryFlavor, a_detached_task_that_ends_in_Cancelled_is_not_reported) {
  // Not reported: a report fails the test. The sleeper is cancelled when the engine ends.
  Lifetimes lifetimes;
  Log log;
  run([](Lifetimes& lifetimes, Log& log) -> gb::Task<void> {
    gb::spawn(throw_cancelled_after(10ms)).detach();            // throws Cancelled itself (or is cancelled)
    gb::spawn(sleeper_with_local(lifetimes, log, 1h)).detach();  // cancelled by the engine's end
    co_await gb::sleep_for(20ms);
  }(lifetimes, log));
  EXPECT_EQ(log, Log{"sleeper: Cancelled at its sleep"});
  EXPECT_EQ(lifetimes.alive(), 0);
}

TEST(JoinHandle, dropping_the_handle_of_a_failed_task_unobserved_reports_the_failure_once) {
  std::vector<std::string> reported;
  gb::ManualClock clock;
  {
    gb::Loop loop{{.clock = &clock,
                   .auto_advance = true,
                   .on_unhandled_exception = [&](std::exception_ptr e) { reported.push_back(describe(e)); }}};
    const std::size_t reported_before_drop = loop.run([](std::vector<std::string>& r) -> gb::Task<std::size_t> {
      std::size_t before = 0;
      {
        auto h = gb::spawn(fail_after(1s, "nobody looked"));
        co_await gb::sleep_for(2s);
        before = r.size();
      }
      co_return before;
    }(reported));
    EXPECT_EQ(reported_before_drop, 0u) << "an owned failure is reported only when the owner lets go";
    EXPECT_EQ(reported, std::vector<std::string>{"nobody looked"});
  }
  EXPECT_EQ(reported, std::vector<std::string>{"nobody looked"});
}

TEST_P(JoinHandleOnEveryFlavor, a_task_awaiting_a_handle_when_cancelled_cancels_the_child_waits_for_it_then_throws_Cancelled) {
  EXPECT_EQ(log_of(cancel_a_parent_awaiting_a_child),
            (Log{"sleeper: Cancelled at its sleep", "parent: Cancelled, child done: yes, child locals alive: 0",
                 "main: Cancelled"}));
}

TEST(JoinHandle, a_parent_cancelled_while_awaiting_a_child_ends_at_the_cancel) {
  EXPECT_EQ(ms(virtual_time_of_scenario(cancel_a_parent_awaiting_a_child)), "10ms");
}

TEST_P(JoinHandleOnEveryFlavor, cancel_after_the_task_finished_changes_nothing) {
  const int result = run([]() -> gb::Task<int> {
    auto h = gb::spawn(answer());
    while (!h.done()) co_await gb::yield_now();  // on the loop, one turn
    h.cancel();
    h.cancel();
    co_return co_await h;
  }());
  EXPECT_EQ(result, 42);
}

TEST_P(JoinHandleOnEveryFlavor, co_await_on_an_empty_handle_throws_logic_error) {
  EXPECT_THROW(run([]() -> gb::Task<int> {
    gb::JoinHandle<int> empty;
    co_return co_await empty;
  }()), std::logic_error);
}
