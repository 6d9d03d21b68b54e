// Tests of timeout() (include/gearbox/time.hpp): a value in time, a child cancelled at its
// limit with TimeoutError, exceptions passed through, join handles and sleeps given a
// limit, nested limits, and cancellation of the awaiting task. The outcomes (the value,
// the exception, which limit fired, the child's locals destroyed) are asserted on both
// flavors (TimeoutOnEveryFlavor: the manual-clock test loop, and a Runtime of 2 workers);
// wherever a limit must not fire it is far longer than anything the test waits for, and
// wherever it must fire the child would sleep for an hour, so that no outcome depends on
// how late a timer fires on the runtime. When each scenario ends, to the exact virtual
// millisecond, is checked on the loop only (Timeout), with virtual_time_of.
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

class TimeoutOnEveryFlavor : public CoreOnEveryFlavor {};

// A limit that an honest run never reaches.
constexpr auto k_far = 10s;

gb::Task<int> value_in_time() { co_return co_await gb::timeout(k_far, value_after(20ms, 7)); }

// A child that would sleep for an hour, limited to 15 ms.
gb::Task<void> outlive_the_limit(Lifetimes& lifetimes, Log& log) {
  try {
    (void)co_await gb::timeout(15ms, sleeper_with_local(lifetimes, log, 1h));
    log.push_back("no timeout");
  } catch (const gb::TimeoutError&) {
    log.push_back("TimeoutError, child locals alive: " + std::to_string(lifetimes.alive()));
  }
}

// The what() of what a child that fails at 10 ms throws through its limit.
gb::Task<std::string> failure_through_the_limit() {
  try {
    (void)co_await gb::timeout(k_far, fail_after(10ms, "child error"));
  } catch (const TestError& e) {
    co_return e.what();
  }
  co_return "no exception";
}

// A handle whose task ends at 10 ms, then one whose task would sleep for an hour, each
// awaited with a limit.
gb::Task<void> limit_two_handles(Lifetimes& lifetimes, Log& log) {
  auto quick = gb::spawn(value_after(10ms, 3));
  const int v = co_await gb::timeout(k_far, std::move(quick));
  log.push_back("value " + std::to_string(v));
  auto slow = gb::spawn(sleeper_with_local(lifetimes, log, 1h));
  try {
    (void)co_await gb::timeout(10ms, std::move(slow));
  } catch (const gb::TimeoutError&) {
    log.push_back("TimeoutError, locals alive: " + std::to_string(lifetimes.alive()));
  }
}

// A sleep of an hour limited to 10 ms, then a sleep of 10 ms with a far limit.
gb::Task<void> limit_two_sleeps(Log& log) {
  try {
    co_await gb::timeout(10ms, gb::sleep_for(1h));
    log.push_back("long sleep finished");
  } catch (const gb::TimeoutError&) {
    log.push_back("TimeoutError");
  }
  co_await gb::timeout(k_far, gb::sleep_for(10ms));
  log.push_back("short sleep finished");
}

// An inner timeout whose TimeoutError is turned into -1, so that the result tells which
// of two nested timeouts fired.
gb::Task<int> inner_limited(Duration inner_limit) {
  try {
    co_return co_await gb::timeout(inner_limit, value_after(1h, 1));
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

// A task waiting in timeout() for a child that would sleep on is cancelled after 10 ms.
gb::Task<void> cancel_a_task_waiting_in_timeout(Lifetimes& lifetimes, Log& log) {
  auto waiting = gb::spawn([](Lifetimes& lifetimes, Log& log) -> gb::Task<void> {
    try {
      (void)co_await gb::timeout(k_far, sleeper_with_local(lifetimes, log, 1h));
    } catch (const gb::TimeoutError&) {
      log.push_back("waiting: TimeoutError");
      throw;
    } catch (const gb::Cancelled&) {
      log.push_back("waiting: Cancelled, child locals alive: " + std::to_string(lifetimes.alive()));
      throw;
    }
  }(lifetimes, log));
  co_await cancel_10ms_later(std::move(waiting), log);
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(Timeout, TimeoutOnEveryFlavor, gearbox_test::every_flavor(), gearbox_test::flavor_name);

// =====================================================================================
// timeout
// =====================================================================================

TEST_P(TimeoutOnEveryFlavor, a_task_that_finishes_in_time_gives_its_value) { EXPECT_EQ(run(value_in_time()), 7); }

TEST(Timeout, a_task_that_finishes_in_time_gives_its_value_when_it_finishes) {
  EXPECT_EQ(ms(virtual_time_of(value_in_time())), "20ms");
}

TEST_P(TimeoutOnEveryFlavor, a_task_that_outlives_its_limit_is_cancelled_and_TimeoutError_is_thrown) {
  EXPECT_EQ(log_of(outlive_the_limit), (Log{"sleeper: Cancelled at its sleep", "TimeoutError, child locals alive: 0"}));
}

TEST(Timeout, TimeoutError_is_thrown_exactly_at_the_limit) {
  EXPECT_EQ(ms(virtual_time_of_scenario(outlive_the_limit)), "15ms");
}

TEST_P(TimeoutOnEveryFlavor, the_exception_of_the_child_passes_through_unchanged) {
  EXPECT_EQ(run(failure_through_the_limit()), "child error");
  // A child that throws Cancelled on its own, before the limit, is not a timeout.
  EXPECT_THROW(run([]() -> gb::Task<void> { co_await gb::timeout(k_far, throw_cancelled_after(10ms)); }()),
               gb::Cancelled);
}

TEST(Timeout, the_exception_of_the_child_passes_through_when_it_is_thrown) {
  EXPECT_EQ(ms(virtual_time_of(failure_through_the_limit())), "10ms");
}

// timeout() on a JoinHandle. Note: timeout(1s, handle) with an lvalue handle does not
// compile (as_task takes its awaitable by value and JoinHandle is move-only); the handle
// must be moved in.
TEST_P(TimeoutOnEveryFlavor, a_join_handle_can_be_awaited_with_a_time_limit) {
  EXPECT_EQ(log_of(limit_two_handles),
            (Log{"value 3", "sleeper: Cancelled at its sleep", "TimeoutError, locals alive: 0"}));
}

TEST(Timeout, a_join_handle_awaited_with_a_time_limit_gives_its_value_when_it_ends_or_times_out_at_the_limit) {
  EXPECT_EQ(ms(virtual_time_of_scenario(limit_two_handles)), "20ms");  // 10 ms each
}

TEST_P(TimeoutOnEveryFlavor, a_sleep_awaitable_can_be_given_a_time_limit) {
  EXPECT_EQ(log_of(limit_two_sleeps), (Log{"TimeoutError", "short sleep finished"}));
}

TEST(Timeout, a_sleep_awaitable_given_a_time_limit_ends_at_the_earlier_of_the_two) {
  EXPECT_EQ(ms(virtual_time_of_scenario(limit_two_sleeps)), "20ms");  // 10 ms each
}

TEST_P(TimeoutOnEveryFlavor, nested_timeouts_where_the_inner_limit_is_shorter_end_by_the_inner_one) {
  EXPECT_EQ(run(outer_limited(k_far, 10ms)), -1);
}

TEST_P(TimeoutOnEveryFlavor, nested_timeouts_where_the_outer_limit_is_shorter_end_by_the_outer_one) {
  EXPECT_EQ(run(outer_limited(10ms, k_far)), -2);
}

TEST(Timeout, nested_timeouts_end_at_the_shorter_limit) {
  EXPECT_EQ(ms(virtual_time_of(outer_limited(2s, 1s))), "1000ms");
  EXPECT_EQ(ms(virtual_time_of(outer_limited(1s, 2s))), "1000ms");
}

TEST_P(TimeoutOnEveryFlavor, cancelling_the_task_that_awaits_a_timeout_cancels_the_child_and_throws_Cancelled_not_TimeoutError) {
  EXPECT_EQ(log_of(cancel_a_task_waiting_in_timeout),
            (Log{"sleeper: Cancelled at its sleep", "waiting: Cancelled, child locals alive: 0", "main: Cancelled"}));
}

TEST(Timeout, a_task_waiting_in_timeout_ends_when_it_is_cancelled) {
  EXPECT_EQ(ms(virtual_time_of_scenario(cancel_a_task_waiting_in_timeout)), "10ms");
}
