// Tests of JoinHandle (include/gearbox/join_handle.hpp) on one loop: results and
// exceptions, cancel (before the first run, at a pending sleep, after the end), dropping a
// handle, detach, and the unhandled failures reported to on_unhandled_exception. Every
// test runs on a ManualClock with auto_advance and checks times exactly.
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

namespace gb = gearbox;
using namespace std::chrono_literals;
using namespace gearbox_test;

// =====================================================================================
// JoinHandle
// =====================================================================================

TEST(JoinHandle, awaiting_a_handle_gives_the_result_of_its_task) {
  gb::ManualClock clock;
  gb::Loop loop{{.clock = &clock, .auto_advance = true}};
  const TimePoint t0 = clock.now();
  const int result = loop.run([]() -> gb::Task<int> {
    auto number = gb::spawn(value_after(2s, 40));
    auto box = gb::spawn(box_after(1s, 2));
    bool flag = false;
    auto nothing = gb::spawn(set_flag(flag));
    std::unique_ptr<int> b = co_await box;
    const int n = co_await number;
    co_await nothing;
    co_return n + (b ? *b : -100) + (flag ? 0 : -1000);
  }());
  EXPECT_EQ(result, 42);
  EXPECT_EQ(ms(clock.now() - t0), "2000ms");
}

TEST(JoinHandle, awaiting_a_handle_rethrows_the_exception_of_its_task_and_it_is_not_reported) {
  std::vector<std::string> reported;
  std::string caught;
  gb::ManualClock clock;
  {
    gb::Loop loop{{.clock = &clock,
                   .auto_advance = true,
                   .on_unhandled_exception = [&](std::exception_ptr e) { reported.push_back(describe(e)); }}};
    loop.run([](std::string& out) -> gb::Task<void> {
      auto h = gb::spawn(fail_after(1s, "child failed"));
      try {
        (void)co_await h;
      } catch (const TestError& e) {
        out = e.what();
      }
    }(caught));
  }
  EXPECT_EQ(caught, "child failed");
  EXPECT_EQ(reported, std::vector<std::string>{});
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

TEST(JoinHandle, cancel_makes_the_pending_sleep_throw_Cancelled_and_destroys_the_task_locals) {
  Lifetimes lifetimes;
  Log log;
  gb::ManualClock clock;
  gb::Loop loop{{.clock = &clock, .auto_advance = true}};
  const TimePoint t0 = clock.now();
  loop.run([](Lifetimes& lifetimes, Log& log) -> gb::Task<void> {
    auto h = gb::spawn(sleeper_with_local(lifetimes, log));
    co_await gb::sleep_for(1s);
    log.push_back("main: locals alive before cancel: " + std::to_string(lifetimes.alive()));
    h.cancel();
    try {
      (void)co_await h;
      log.push_back("main: no exception");
    } catch (const gb::Cancelled&) {
      log.push_back("main: Cancelled, locals alive: " + std::to_string(lifetimes.alive()));
    }
  }(lifetimes, log));
  EXPECT_EQ(log, (Log{"main: locals alive before cancel: 1", "sleeper: Cancelled at its sleep",
                      "main: Cancelled, locals alive: 0"}));
  EXPECT_EQ(ms(clock.now() - t0), "1000ms") << "the cancelled sleep must not run to its deadline";
  EXPECT_EQ(lifetimes.alive(), 0);
}

TEST(JoinHandle, a_task_cancelled_before_it_first_runs_throws_Cancelled_at_its_first_await) {
  Log log;
  gb::ManualClock clock;
  gb::Loop loop{{.clock = &clock, .auto_advance = true}};
  const TimePoint t0 = clock.now();
  loop.run([](Log& log) -> gb::Task<void> {
    auto h = gb::spawn([](Log& log) -> gb::Task<void> {
      log.push_back("child: started");
      try {
        co_await gb::sleep_for(1s);
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
  }(log));
  EXPECT_EQ(log, (Log{"child: started", "child: Cancelled at its first await", "main: Cancelled"}));
  EXPECT_EQ(ms(clock.now() - t0), "0ms");
}

TEST(JoinHandle, dropping_a_handle_cancels_its_task) {
  Lifetimes lifetimes;
  Log log;
  std::vector<std::string> reported;
  gb::ManualClock clock;
  gb::Loop loop{{.clock = &clock,
                 .auto_advance = true,
                 .on_unhandled_exception = [&](std::exception_ptr e) { reported.push_back(describe(e)); }}};
  const TimePoint t0 = clock.now();
  const std::size_t live_after = loop.run([](Lifetimes& lifetimes, Log& log) -> gb::Task<std::size_t> {
    {
      auto h = gb::spawn(sleeper_with_local(lifetimes, log));
      co_await gb::yield_now();  // the child starts and sleeps
      log.push_back("main: dropping the handle");
    }
    co_await gb::yield_now();  // the child runs once more and ends
    co_return gb::Loop::current()->live_tasks();
  }(lifetimes, log));
  EXPECT_EQ(log, (Log{"main: dropping the handle", "sleeper: Cancelled at its sleep"}));
  EXPECT_EQ(live_after, 1u) << "only the main task should be left";
  EXPECT_EQ(lifetimes.alive(), 0);
  EXPECT_EQ(ms(clock.now() - t0), "0ms");
  EXPECT_EQ(reported, std::vector<std::string>{}) << "a Cancelled end is not a failure";
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

TEST(JoinHandle, a_detached_task_that_ends_in_Cancelled_is_not_reported) {
  std::vector<std::string> reported;
  Lifetimes lifetimes;
  Log log;
  gb::ManualClock clock;
  {
    gb::Loop loop{{.clock = &clock,
                   .auto_advance = true,
                   .on_unhandled_exception = [&](std::exception_ptr e) { reported.push_back(describe(e)); }}};
    loop.run([](Lifetimes& lifetimes, Log& log) -> gb::Task<void> {
      gb::spawn(throw_cancelled_after(1s)).detach();              // throws Cancelled itself
      gb::spawn(sleeper_with_local(lifetimes, log, 1h)).detach();  // cancelled by ~Loop
      co_await gb::sleep_for(2s);
    }(lifetimes, log));
  }
  EXPECT_EQ(reported, std::vector<std::string>{});
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

TEST(JoinHandle, a_task_awaiting_a_handle_when_cancelled_cancels_the_child_waits_for_it_then_throws_Cancelled) {
  Lifetimes lifetimes;
  Log log;
  gb::ManualClock clock;
  gb::Loop loop{{.clock = &clock, .auto_advance = true}};
  const TimePoint t0 = clock.now();
  loop.run([](Lifetimes& lifetimes, Log& log) -> gb::Task<void> {
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
    co_await gb::sleep_for(1s);
    parent.cancel();
    try {
      co_await parent;
    } catch (const gb::Cancelled&) {
      log.push_back("main: Cancelled");
    }
  }(lifetimes, log));
  EXPECT_EQ(log, (Log{"sleeper: Cancelled at its sleep", "parent: Cancelled, child done: yes, child locals alive: 0",
                      "main: Cancelled"}));
  EXPECT_EQ(ms(clock.now() - t0), "1000ms");
  EXPECT_EQ(loop.live_tasks(), 0u);
}

TEST(JoinHandle, cancel_after_the_task_finished_changes_nothing) {
  gb::ManualClock clock;
  gb::Loop loop{{.clock = &clock, .auto_advance = true}};
  const int result = loop.run([]() -> gb::Task<int> {
    auto h = gb::spawn(answer());
    co_await gb::yield_now();
    const bool done = h.done();
    h.cancel();
    h.cancel();
    co_return done ? co_await h : -1;
  }());
  EXPECT_EQ(result, 42);
}

TEST(JoinHandle, co_await_on_an_empty_handle_throws_logic_error) {
  gb::ManualClock clock;
  gb::Loop loop{{.clock = &clock, .auto_advance = true}};
  EXPECT_THROW(loop.run([]() -> gb::Task<int> {
    gb::JoinHandle<int> empty;
    co_return co_await empty;
  }()), std::logic_error);
}
