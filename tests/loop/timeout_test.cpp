// Tests of timeout() (include/gearbox/time.hpp) on one loop: a value in time, a child
// cancelled at its limit with TimeoutError, exceptions passed through, join handles and
// sleeps given a limit, nested limits, and cancellation of the awaiting task. Every test
// runs on a ManualClock with auto_advance and checks times exactly.
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
// timeout
// =====================================================================================

TEST(Timeout, a_task_that_finishes_in_time_gives_its_value_when_it_finishes) {
  gb::ManualClock clock;
  gb::Loop loop{{.clock = &clock, .auto_advance = true}};
  const TimePoint t0 = clock.now();
  const int value = loop.run([]() -> gb::Task<int> { co_return co_await gb::timeout(5s, value_after(2s, 7)); }());
  EXPECT_EQ(value, 7);
  EXPECT_EQ(ms(clock.now() - t0), "2000ms");
  EXPECT_EQ(loop.live_tasks(), 0u);
}

TEST(Timeout, a_task_that_outlives_its_limit_is_cancelled_and_TimeoutError_is_thrown_exactly_at_the_limit) {
  Lifetimes lifetimes;
  Log log;
  gb::ManualClock clock;
  gb::Loop loop{{.clock = &clock, .auto_advance = true}};
  const TimePoint t0 = clock.now();
  loop.run([](Lifetimes& lifetimes, Log& log, TimePoint t0) -> gb::Task<void> {
    try {
      (void)co_await gb::timeout(1500ms, sleeper_with_local(lifetimes, log));
      log.push_back("no timeout");
    } catch (const gb::TimeoutError&) {
      log.push_back("TimeoutError@" + now_since(t0) + ", child locals alive: " + std::to_string(lifetimes.alive()));
    }
  }(lifetimes, log, t0));
  EXPECT_EQ(log, (Log{"sleeper: Cancelled at its sleep", "TimeoutError@1500ms, child locals alive: 0"}));
  EXPECT_EQ(lifetimes.alive(), 0);
  EXPECT_EQ(loop.live_tasks(), 0u);
}

TEST(Timeout, the_exception_of_the_child_passes_through_unchanged) {
  gb::ManualClock clock;
  gb::Loop loop{{.clock = &clock, .auto_advance = true}};
  const TimePoint t0 = clock.now();
  try {
    loop.run([]() -> gb::Task<int> { co_return co_await gb::timeout(5s, fail_after(1s, "child error")); }());
    ADD_FAILURE() << "no exception";
  } catch (const TestError& e) {
    EXPECT_STREQ(e.what(), "child error");
  }
  EXPECT_EQ(ms(clock.now() - t0), "1000ms");
  // A child that throws Cancelled on its own, before the limit, is not a timeout.
  EXPECT_THROW(loop.run([]() -> gb::Task<void> { co_await gb::timeout(5s, throw_cancelled_after(1s)); }()),
               gb::Cancelled);
}

// timeout() on a JoinHandle. Note: timeout(1s, handle) with an lvalue handle does not
// compile (as_task takes its awaitable by value and JoinHandle is move-only); the handle
// must be moved in.
TEST(Timeout, a_join_handle_can_be_awaited_with_a_time_limit) {
  Lifetimes lifetimes;
  Log log;
  gb::ManualClock clock;
  gb::Loop loop{{.clock = &clock, .auto_advance = true}};
  const TimePoint t0 = clock.now();
  loop.run([](Lifetimes& lifetimes, Log& log, TimePoint t0) -> gb::Task<void> {
    auto quick = gb::spawn(value_after(1s, 3));
    const int v = co_await gb::timeout(2s, std::move(quick));
    log.push_back("value " + std::to_string(v) + "@" + now_since(t0));
    auto slow = gb::spawn(sleeper_with_local(lifetimes, log));
    try {
      (void)co_await gb::timeout(1s, std::move(slow));
    } catch (const gb::TimeoutError&) {
      log.push_back("TimeoutError@" + now_since(t0) + ", locals alive: " + std::to_string(lifetimes.alive()));
    }
  }(lifetimes, log, t0));
  EXPECT_EQ(log, (Log{"value 3@1000ms", "sleeper: Cancelled at its sleep", "TimeoutError@2000ms, locals alive: 0"}));
}

TEST(Timeout, a_sleep_awaitable_can_be_given_a_time_limit) {
  Log log;
  gb::ManualClock clock;
  gb::Loop loop{{.clock = &clock, .auto_advance = true}};
  const TimePoint t0 = clock.now();
  loop.run([](Log& log, TimePoint t0) -> gb::Task<void> {
    try {
      co_await gb::timeout(1s, gb::sleep_for(5s));
      log.push_back("long sleep finished");
    } catch (const gb::TimeoutError&) {
      log.push_back("TimeoutError@" + now_since(t0));
    }
    co_await gb::timeout(5s, gb::sleep_for(1s));
    log.push_back("short sleep finished@" + now_since(t0));
  }(log, t0));
  EXPECT_EQ(log, (Log{"TimeoutError@1000ms", "short sleep finished@2000ms"}));
}

namespace {
// An inner timeout whose TimeoutError is turned into -1, so that the result tells which
// of two nested timeouts fired.
gb::Task<int> inner_limited(Duration inner_limit) {
  try {
    co_return co_await gb::timeout(inner_limit, value_after(5s, 1));
  } catch (const gb::TimeoutError&) {
    co_return -1;
  }
}

gb::Task<int> outer_limited(Duration outer_limit, Duration inner_limit) {
  try {
    co_return co_await gb::timeout(outer_limit, inner_limited(inner_limit));
  } catch (const gb::TimeoutError&) {
    co_return -2;
  }
}
}  // namespace

TEST(Timeout, nested_timeouts_where_the_inner_limit_is_shorter_end_by_the_inner_one) {
  gb::ManualClock clock;
  gb::Loop loop{{.clock = &clock, .auto_advance = true}};
  const TimePoint t0 = clock.now();
  EXPECT_EQ(loop.run(outer_limited(2s, 1s)), -1);
  EXPECT_EQ(ms(clock.now() - t0), "1000ms");
  EXPECT_EQ(loop.live_tasks(), 0u);
}

TEST(Timeout, nested_timeouts_where_the_outer_limit_is_shorter_end_by_the_outer_one) {
  gb::ManualClock clock;
  gb::Loop loop{{.clock = &clock, .auto_advance = true}};
  const TimePoint t0 = clock.now();
  EXPECT_EQ(loop.run(outer_limited(1s, 2s)), -2);
  EXPECT_EQ(ms(clock.now() - t0), "1000ms");
  EXPECT_EQ(loop.live_tasks(), 0u);
}

TEST(Timeout, cancelling_the_task_that_awaits_a_timeout_cancels_the_child_and_throws_Cancelled_not_TimeoutError) {
  Lifetimes lifetimes;
  Log log;
  gb::ManualClock clock;
  gb::Loop loop{{.clock = &clock, .auto_advance = true}};
  const TimePoint t0 = clock.now();
  loop.run([](Lifetimes& lifetimes, Log& log) -> gb::Task<void> {
    auto waiting = gb::spawn([](Lifetimes& lifetimes, Log& log) -> gb::Task<void> {
      try {
        (void)co_await gb::timeout(10s, sleeper_with_local(lifetimes, log));
      } catch (const gb::TimeoutError&) {
        log.push_back("waiting: TimeoutError");
        throw;
      } catch (const gb::Cancelled&) {
        log.push_back("waiting: Cancelled, child locals alive: " + std::to_string(lifetimes.alive()));
        throw;
      }
    }(lifetimes, log));
    co_await gb::sleep_for(1s);
    waiting.cancel();
    try {
      co_await waiting;
    } catch (const gb::Cancelled&) {
      log.push_back("main: Cancelled");
    }
  }(lifetimes, log));
  EXPECT_EQ(log, (Log{"sleeper: Cancelled at its sleep", "waiting: Cancelled, child locals alive: 0", "main: Cancelled"}));
  EXPECT_EQ(ms(clock.now() - t0), "1000ms");
  EXPECT_EQ(loop.live_tasks(), 0u);
}
