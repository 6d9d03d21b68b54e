// White-box tests of detail::TimerWheel (src/loop/timer_wheel.hpp): expiry at exactly the
// armed tick on every level, never early (alone, together, stepping tick by tick, in one
// large advance, clamped to k_max_tick); and next_deadline(). remove(), rearming, callbacks
// that arm and cancel during fire_due(), and a randomized differential test against a
// std::multimap model are in timer_wheel_cancel_test; the helpers they share are in
// timer_wheel_test_support.hpp.
//
// Timers must outlive the wheel that holds them (the wheel's lists unlink them when it is
// destroyed), so each test declares its timers before its wheel.
#include "loop/timer_wheel.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "timer_wheel_test_support.hpp"

namespace {

using gearbox::detail::TimerNode;
using gearbox::detail::TimerWheel;

using gearbox_test::advance_and_fire;
using gearbox_test::k_max;
using gearbox_test::LoggingTimer;

// The ticks named in the contract: both sides of every level boundary that matters, a large
// deadline, and the largest representable one.
const std::vector<std::uint64_t> k_boundary_ticks = {
    1, 63, 64, 65, 4095, 4096, 4097, 262143, 262144, std::uint64_t{1} << 30, (std::uint64_t{1} << 36) + 5, k_max};

}  // namespace

TEST(TimerWheel, a_new_wheel_is_empty_and_has_no_deadline) {
  TimerWheel wheel;
  EXPECT_TRUE(wheel.empty());
  EXPECT_EQ(wheel.armed(), 0u);
  EXPECT_EQ(wheel.elapsed(), 0u);
  EXPECT_EQ(wheel.next_deadline(), std::nullopt);
  EXPECT_EQ(wheel.fire_due(), 0u);
}

TEST(TimerWheel, timers_on_every_level_fire_in_deadline_order_each_exactly_at_its_tick) {
  std::vector<int> log;
  std::deque<LoggingTimer> timers;
  TimerWheel wheel;
  // Arm in reverse so that insertion order cannot explain the firing order.
  for (int i = static_cast<int>(k_boundary_ticks.size()) - 1; i >= 0; --i) {
    timers.emplace_back(i, log);
    wheel.insert(&timers.back(), k_boundary_ticks[static_cast<std::size_t>(i)]);
  }
  EXPECT_EQ(wheel.armed(), k_boundary_ticks.size());

  for (std::size_t i = 0; i < k_boundary_ticks.size(); ++i) {
    const std::uint64_t tick = k_boundary_ticks[i];
    SCOPED_TRACE("tick " + std::to_string(tick));
    EXPECT_EQ(advance_and_fire(wheel, log, tick - 1), std::vector<int>{}) << "fired early";
    EXPECT_EQ(advance_and_fire(wheel, log, tick), std::vector<int>{static_cast<int>(i)});
    EXPECT_EQ(wheel.elapsed(), tick);
    EXPECT_EQ(wheel.armed(), k_boundary_ticks.size() - i - 1);
  }
  EXPECT_TRUE(wheel.empty());
}

TEST(TimerWheel, a_timer_alone_on_any_level_fires_at_its_tick_and_not_one_tick_before) {
  for (const std::uint64_t tick : k_boundary_ticks) {
    SCOPED_TRACE("tick " + std::to_string(tick));
    std::vector<int> log;
    LoggingTimer timer{1, log};
    TimerWheel wheel;
    wheel.insert(&timer, tick);
    EXPECT_EQ(advance_and_fire(wheel, log, tick - 1), std::vector<int>{});
    EXPECT_EQ(advance_and_fire(wheel, log, tick), std::vector<int>{1});
    EXPECT_TRUE(wheel.empty());
  }
}

TEST(TimerWheel, a_wheel_that_already_moved_on_still_fires_each_level_exactly_on_time) {
  // Same as above, but armed relative to a wheel whose time is not a multiple of any level,
  // so the deadline and the current time differ in every 6-bit group.
  const std::uint64_t start = 0b101010'010101'111111'000001'100000ULL;
  for (const std::uint64_t delta : k_boundary_ticks) {
    if (delta > k_max - start) continue;
    SCOPED_TRACE("delta " + std::to_string(delta));
    std::vector<int> log;
    LoggingTimer timer{1, log};
    TimerWheel wheel;
    wheel.advance(start);
    wheel.insert(&timer, start + delta);
    EXPECT_EQ(advance_and_fire(wheel, log, start + delta - 1), std::vector<int>{});
    EXPECT_EQ(advance_and_fire(wheel, log, start + delta), std::vector<int>{1});
  }
}

TEST(TimerWheel, stepping_one_tick_at_a_time_fires_every_timer_at_its_own_tick) {
  // Timers every 7 ticks up to past the level-2 boundary, advanced tick by tick: each tick
  // fires exactly the timer armed for it, through every cascade on the way.
  std::vector<int> log;
  std::deque<LoggingTimer> timers;
  TimerWheel wheel;
  const int last = 9000;
  for (int tick = 7; tick <= last; tick += 7) {
    timers.emplace_back(tick, log);
    wheel.insert(&timers.back(), static_cast<std::uint64_t>(tick));
  }
  for (int now = 1; now <= last; ++now) {
    const auto fired = advance_and_fire(wheel, log, static_cast<std::uint64_t>(now));
    if (now % 7 == 0)
      ASSERT_EQ(fired, std::vector<int>{now}) << "at tick " << now;
    else
      ASSERT_EQ(fired, std::vector<int>{}) << "at tick " << now;
  }
  EXPECT_TRUE(wheel.empty());
}

TEST(TimerWheel, a_tick_beyond_k_max_tick_is_clamped_to_it) {
  std::vector<int> log;
  LoggingTimer beyond{1, log};
  LoggingTimer far_beyond{2, log};
  LoggingTimer at_max{3, log};
  TimerWheel wheel;
  wheel.insert(&beyond, k_max + 1);
  wheel.insert(&far_beyond, std::numeric_limits<std::uint64_t>::max());
  wheel.insert(&at_max, k_max);
  EXPECT_EQ(beyond.m_tick, k_max);
  EXPECT_EQ(far_beyond.m_tick, k_max);
  EXPECT_EQ(wheel.armed(), 3u);
  EXPECT_EQ(advance_and_fire(wheel, log, k_max - 1), std::vector<int>{});
  auto fired = advance_and_fire(wheel, log, k_max);
  std::sort(fired.begin(), fired.end());
  EXPECT_EQ(fired, (std::vector<int>{1, 2, 3}));
  EXPECT_TRUE(wheel.empty());
}

TEST(TimerWheel, advancing_past_k_max_tick_fires_everything_and_later_timers_are_due_at_once) {
  std::vector<int> log;
  LoggingTimer a{1, log};
  LoggingTimer b{2, log};
  TimerWheel wheel;
  wheel.insert(&a, 5000);
  EXPECT_EQ(advance_and_fire(wheel, log, std::numeric_limits<std::uint64_t>::max()), std::vector<int>{1});
  EXPECT_EQ(wheel.elapsed(), std::numeric_limits<std::uint64_t>::max());
  wheel.insert(&b, k_max);  // in the past of the wheel now
  EXPECT_EQ(wheel.next_deadline(), wheel.elapsed());
  EXPECT_EQ(wheel.fire_due(), 1u);
  EXPECT_EQ(log, (std::vector<int>{1, 2}));
}

TEST(TimerWheel, timers_armed_for_the_same_tick_fire_in_the_same_advance) {
  std::vector<int> log;
  std::deque<LoggingTimer> timers;
  TimerWheel wheel;
  for (int i = 0; i < 5; ++i) {
    timers.emplace_back(i, log);
    wheel.insert(&timers.back(), 300);
  }
  EXPECT_EQ(advance_and_fire(wheel, log, 299), std::vector<int>{});
  auto fired = advance_and_fire(wheel, log, 300);
  std::sort(fired.begin(), fired.end());
  EXPECT_EQ(fired, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST(TimerWheel, one_large_advance_fires_everything_due_in_deadline_order) {
  std::vector<int> log;
  std::deque<LoggingTimer> timers;
  TimerWheel wheel;
  const std::vector<std::uint64_t> ticks = {900000, 3, 70000, 64, 5000, 63, 262144, 1};
  for (std::size_t i = 0; i < ticks.size(); ++i) {
    timers.emplace_back(static_cast<int>(ticks[i]), log);
    wheel.insert(&timers.back(), ticks[i]);
  }
  EXPECT_EQ(advance_and_fire(wheel, log, 300000), (std::vector<int>{1, 3, 63, 64, 5000, 70000, 262144}));
  EXPECT_EQ(wheel.elapsed(), 300000u);
  EXPECT_EQ(wheel.armed(), 1u);
  EXPECT_EQ(advance_and_fire(wheel, log, 900000), std::vector<int>{900000});
}

TEST(TimerWheel, advance_never_moves_time_backwards) {
  std::vector<int> log;
  LoggingTimer timer{1, log};
  TimerWheel wheel;
  wheel.advance(1000);
  wheel.insert(&timer, 1010);
  EXPECT_EQ(advance_and_fire(wheel, log, 10), std::vector<int>{});
  EXPECT_EQ(wheel.elapsed(), 1000u);
  EXPECT_EQ(advance_and_fire(wheel, log, 1009), std::vector<int>{});
  EXPECT_EQ(advance_and_fire(wheel, log, 1010), std::vector<int>{1});
}

TEST(TimerWheel, a_timer_armed_at_or_before_the_current_tick_is_due_at_the_next_fire_due) {
  std::vector<int> log;
  LoggingTimer now_timer{1, log};
  LoggingTimer past{2, log};
  LoggingTimer zero{3, log};
  TimerWheel wheel;
  wheel.advance(100);
  wheel.insert(&now_timer, 100);
  wheel.insert(&past, 5);
  wheel.insert(&zero, 0);
  EXPECT_EQ(wheel.armed(), 0u) << "due timers are not counted as filed";
  EXPECT_FALSE(wheel.empty());
  EXPECT_EQ(wheel.next_deadline(), 100u);
  EXPECT_EQ(wheel.fire_due(), 3u);
  EXPECT_EQ(log, (std::vector<int>{1, 2, 3}));
  EXPECT_TRUE(wheel.empty());
  EXPECT_EQ(wheel.fire_due(), 0u);
}

TEST(TimerWheel, next_deadline_is_exact_within_the_first_level) {
  std::vector<int> log;
  LoggingTimer a{1, log};
  LoggingTimer b{2, log};
  TimerWheel wheel;
  wheel.insert(&b, 40);
  wheel.insert(&a, 17);
  EXPECT_EQ(wheel.next_deadline(), 17u);
  wheel.remove(&a);
  EXPECT_EQ(wheel.next_deadline(), 40u) << "a removed timer's slot must not be reported";
  wheel.remove(&b);
  EXPECT_EQ(wheel.next_deadline(), std::nullopt);
}

TEST(TimerWheel, next_deadline_never_passes_the_earliest_timer_and_following_it_reaches_that_timer_exactly) {
  for (const std::uint64_t tick : k_boundary_ticks) {
    SCOPED_TRACE("tick " + std::to_string(tick));
    std::vector<int> log;
    LoggingTimer earliest{1, log};
    LoggingTimer later{2, log};
    TimerWheel wheel;
    if (tick < k_max) wheel.insert(&later, k_max);
    wheel.insert(&earliest, tick);
    // What the loop does with auto_advance: jump to next_deadline(), fire, repeat.
    int jumps = 0;
    while (log.empty()) {
      ASSERT_LE(++jumps, TimerWheel::k_levels + 1) << "next_deadline() does not converge";
      const auto next = wheel.next_deadline();
      ASSERT_TRUE(next.has_value());
      ASSERT_GT(*next, wheel.elapsed());
      ASSERT_LE(*next, tick) << "next_deadline() is after the earliest timer";
      advance_and_fire(wheel, log, *next);
    }
    EXPECT_EQ(log, std::vector<int>{1});
    EXPECT_EQ(wheel.elapsed(), tick);
  }
}

TEST(TimerWheel, next_deadline_is_the_current_tick_while_timers_are_due) {
  std::vector<int> log;
  LoggingTimer due{1, log};
  LoggingTimer later{2, log};
  TimerWheel wheel;
  wheel.insert(&due, 30);
  wheel.insert(&later, 31);
  wheel.advance(30);
  EXPECT_EQ(wheel.next_deadline(), 30u);
  wheel.fire_due();
  EXPECT_EQ(wheel.next_deadline(), 31u);
}
