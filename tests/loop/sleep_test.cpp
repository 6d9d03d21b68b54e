// Tests of sleep_for, sleep_until and yield_now (include/gearbox/time.hpp): exact
// deadlines on a ManualClock with auto_advance, deadlines between wheel ticks, zero and
// negative delays, misuse off a loop, Cancelled at every later suspension point, and a
// seeded stress test of ten thousand sleepers. What a sleep or a yield is for is when it
// ends and who runs meanwhile, which only the manual clock and one thread fix, so those
// cases stay on the loop; the one outcome (a cancelled task throws Cancelled at every
// later suspension point) is asserted on both flavors (SleepOnEveryFlavor: the test loop,
// and a Runtime of 2 workers), and its virtual time on the loop.
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

class SleepOnEveryFlavor : public CoreOnEveryFlavor {};

// Cancels, 10 ms after spawning it, a task that swallows the Cancelled of each of its
// suspension points and logs it.
gb::Task<void> cancel_a_stubborn_task(Log& log) {
  auto stubborn = gb::spawn([](Log& log) -> gb::Task<void> {
    try { co_await gb::sleep_for(10s); } catch (const gb::Cancelled&) { log.push_back("sleep"); }
    try { co_await gb::yield_now(); } catch (const gb::Cancelled&) { log.push_back("yield_now"); }
    try { co_await gb::sleep_for(0s); } catch (const gb::Cancelled&) { log.push_back("sleep_for(0)"); }
    try { co_await gb::sleep_for(1s); } catch (const gb::Cancelled&) { log.push_back("sleep again"); }
    try { (void)co_await gb::timeout(1s, answer()); } catch (const gb::Cancelled&) { log.push_back("timeout"); }
    log.push_back("stubborn ends normally");
  }(log));
  co_await gb::sleep_for(10ms);
  stubborn.cancel();
  co_await stubborn;  // it swallowed every Cancelled, so it ends with no exception
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(Sleep, SleepOnEveryFlavor, gearbox_test::every_flavor(), gearbox_test::flavor_name);

// =====================================================================================
// sleep_for, sleep_until, yield_now
// =====================================================================================

TEST(Sleep, sleep_for_ends_exactly_at_its_start_plus_the_delay_on_a_manual_clock) {
  std::vector<std::string> ends;
  gb::ManualClock clock;
  gb::Loop loop{{.clock = &clock, .auto_advance = true}};
  const TimePoint t0 = clock.now();
  loop.run([](std::vector<std::string>& ends, TimePoint t0) -> gb::Task<void> {
    for (Duration d : std::vector<Duration>{5s, 1ms, 1500ms, 63ms, 64ms, 4096ms, 3h, 2ms}) {
      co_await gb::sleep_for(d);
      ends.push_back(now_since(t0));
    }
  }(ends, t0));
  EXPECT_EQ(ends, (std::vector<std::string>{"5000ms", "5001ms", "6501ms", "6564ms", "6628ms", "10724ms", "10810724ms",
                                            "10810726ms"}));
}

TEST(Sleep, a_sleep_whose_deadline_falls_between_ticks_ends_at_the_next_whole_millisecond_never_earlier) {
  std::vector<std::string> ends;
  gb::ManualClock clock;
  gb::Loop loop{{.clock = &clock, .auto_advance = true}};
  const TimePoint t0 = clock.now();
  loop.run([](std::vector<std::string>& ends, gb::ManualClock& clock, TimePoint t0) -> gb::Task<void> {
    clock.advance(300us);
    co_await gb::sleep_for(1ms);  // deadline 1.3 ms: the 1 ms tick would be early
    ends.push_back(now_since(t0));
    co_await gb::sleep_for(1us);  // deadline 2.001 ms
    ends.push_back(now_since(t0));
    co_await gb::sleep_for(std::chrono::duration<double, std::milli>(0.5));  // fractional delays round up
    ends.push_back(now_since(t0));
  }(ends, clock, t0));
  EXPECT_EQ(ends, (std::vector<std::string>{"2ms", "3ms", "4ms"}));
}

TEST(Sleep, sleep_until_ends_exactly_at_its_deadline_and_a_past_deadline_only_yields) {
  Log log;
  gb::ManualClock clock;
  gb::Loop loop{{.clock = &clock, .auto_advance = true}};
  const TimePoint t0 = clock.now();
  loop.run([](Log& log, TimePoint t0) -> gb::Task<void> {
    co_await gb::sleep_until(t0 + 2500ms);
    log.push_back("until 2500@" + now_since(t0));
    auto other = gb::spawn([](Log& log) -> gb::Task<void> {
      log.push_back("other runs");
      co_return;
    }(log));
    co_await gb::sleep_until(t0 + 1s);  // already past: lets `other` run, takes no time
    log.push_back("until past@" + now_since(t0));
    co_await other;
  }(log, t0));
  EXPECT_EQ(log, (Log{"until 2500@2500ms", "other runs", "until past@2500ms"}));
}

TEST(Sleep, sleep_for_zero_or_a_negative_delay_yields_to_the_other_ready_tasks_without_moving_the_clock) {
  Log log;
  gb::ManualClock clock;
  gb::Loop loop{{.clock = &clock, .auto_advance = true}};
  const TimePoint t0 = clock.now();
  loop.run([](Log& log) -> gb::Task<void> {
    auto a = gb::spawn([](Log& log) -> gb::Task<void> {
      log.push_back("a1");
      co_await gb::sleep_for(0s);
      log.push_back("a2");
      co_await gb::sleep_for(-5ms);
      log.push_back("a3");
    }(log));
    auto b = gb::spawn(yielder("b", 3, log));
    co_await a;
    co_await b;
  }(log));
  EXPECT_EQ(log, (Log{"a1", "b0", "a2", "b1", "a3", "b2"}));
  EXPECT_EQ(ms(clock.now() - t0), "0ms");
}

TEST(Sleep, yield_now_lets_every_other_ready_task_run_once_before_the_caller_continues) {
  Log log;
  gb::ManualClock clock;
  gb::Loop loop{{.clock = &clock, .auto_advance = true}};
  const TimePoint t0 = clock.now();
  loop.run([](Log& log) -> gb::Task<void> {
    auto a = gb::spawn(yielder("a", 3, log));
    auto b = gb::spawn(yielder("b", 3, log));
    auto c = gb::spawn(yielder("c", 3, log));
    co_await a;
    co_await b;
    co_await c;
  }(log));
  EXPECT_EQ(log, (Log{"a0", "b0", "c0", "a1", "b1", "c1", "a2", "b2", "c2"}));
  EXPECT_EQ(ms(clock.now() - t0), "0ms");
}

TEST(Sleep, awaiting_a_sleep_or_a_yield_off_a_loop_throws_logic_error) {
  auto sleeper = []() -> gb::Task<void> { co_await gb::sleep_for(1s); }();
  sleeper.handle().resume();  // run it by hand, on no loop
  ASSERT_TRUE(sleeper.done());
  EXPECT_THROW(sleeper.handle().promise().result(), std::logic_error);

  auto until = []() -> gb::Task<void> { co_await gb::sleep_until(gb::Clock::time_point{}); }();
  until.handle().resume();
  ASSERT_TRUE(until.done());
  EXPECT_THROW(until.handle().promise().result(), std::logic_error);

  auto yielding = []() -> gb::Task<void> { co_await gb::yield_now(); }();
  yielding.handle().resume();
  ASSERT_TRUE(yielding.done());
  EXPECT_THROW(yielding.handle().promise().result(), std::logic_error);

  auto limited = []() -> gb::Task<int> { co_return co_await gb::timeout(1s, answer()); }();
  limited.handle().resume();
  ASSERT_TRUE(limited.done());
  EXPECT_THROW((void)limited.handle().promise().result(), std::logic_error);
}

TEST_P(SleepOnEveryFlavor, a_cancelled_task_throws_Cancelled_at_every_later_suspension_point) {
  EXPECT_EQ(log_of(cancel_a_stubborn_task),
            (Log{"sleep", "yield_now", "sleep_for(0)", "sleep again", "timeout", "stubborn ends normally"}));
}

TEST(Sleep, a_cancelled_task_goes_through_its_later_suspension_points_without_waiting) {
  EXPECT_EQ(ms(virtual_time_of_scenario(cancel_a_stubborn_task)), "10ms");
}

// =====================================================================================
// Stress: many sleeping tasks
// =====================================================================================

namespace {
struct Wake {
  int id;
  Duration at;
};

gb::Task<void> timed_sleeper(int id, Duration delay, std::vector<Wake>& wakes, TimePoint t0) {
  co_await gb::sleep_for(delay);
  wakes.push_back({id, gb::Loop::current_or_throw().now() - t0});
}
}  // namespace

TEST(Stress, ten_thousand_sleeping_tasks_each_wake_exactly_at_their_deadline_in_deadline_order) {
  constexpr int k_tasks = 10000;
  std::mt19937 rng{20261121};
  std::vector<Duration> delays;
  for (int i = 0; i < k_tasks; ++i) {
    // Mostly spread over every wheel level; some on a few shared deadlines; some zero.
    const int kind = std::uniform_int_distribution<int>{0, 9}(rng);
    if (kind == 0)
      delays.push_back(Duration::zero());
    else if (kind <= 2)
      delays.push_back(std::chrono::milliseconds(std::uniform_int_distribution<int>{1, 5}(rng) * 1000));
    else
      delays.push_back(std::chrono::milliseconds(std::uniform_int_distribution<int>{1, 20'000'000}(rng)));
  }
  std::vector<Wake> wakes;
  wakes.reserve(k_tasks);
  gb::ManualClock clock;
  gb::Loop loop{{.clock = &clock, .auto_advance = true}};
  const TimePoint t0 = clock.now();
  loop.run([](const std::vector<Duration>& delays, std::vector<Wake>& wakes, TimePoint t0) -> gb::Task<void> {
    std::vector<gb::JoinHandle<void>> handles;
    for (int i = 0; i < static_cast<int>(delays.size()); ++i)
      handles.push_back(gb::spawn(timed_sleeper(i, delays[static_cast<std::size_t>(i)], wakes, t0)));
    for (auto& h : handles) co_await h;
  }(delays, wakes, t0));

  ASSERT_EQ(wakes.size(), static_cast<std::size_t>(k_tasks));
  int wrong_time = 0;
  for (const Wake& w : wakes)
    if (w.at != delays[static_cast<std::size_t>(w.id)]) ++wrong_time;
  EXPECT_EQ(wrong_time, 0) << "tasks that did not wake exactly at their deadline";
  const bool ordered = std::is_sorted(wakes.begin(), wakes.end(), [](const Wake& a, const Wake& b) { return a.at < b.at; });
  EXPECT_TRUE(ordered) << "tasks woke out of deadline order";
  std::vector<int> ids;
  for (const Wake& w : wakes) ids.push_back(w.id);
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(std::adjacent_find(ids.begin(), ids.end()), ids.end()) << "a task woke twice";
  EXPECT_EQ(ms(clock.now() - t0), ms(*std::max_element(delays.begin(), delays.end())));
  EXPECT_EQ(loop.live_tasks(), 0u);
}
