// White-box tests of detail::TimerWheel (src/loop/timer_wheel.hpp): expiry at exactly the
// armed tick on every level, never early; remove() wherever a timer is (filed, due,
// cascaded); callbacks that arm and cancel during fire_due(); next_deadline(); and a
// randomized differential test against a std::multimap model of the same timers.
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

namespace {

using gearbox::detail::TimerNode;
using gearbox::detail::TimerWheel;

constexpr std::uint64_t k_max = TimerWheel::k_max_tick;

// A timer that appends its id to a log when it fires, then runs an optional action.
struct LoggingTimer : TimerNode {
  LoggingTimer(int id, std::vector<int>& log) : TimerNode(&LoggingTimer::on_fire), id(id), log(&log) {}
  static void on_fire(TimerNode* node) noexcept {
    auto* self = static_cast<LoggingTimer*>(node);
    self->log->push_back(self->id);
    if (self->action) self->action();
  }
  int id;
  std::vector<int>* log;
  std::function<void()> action;
};

// Advances to `now`, fires what is due, and returns the ids fired (in order).
std::vector<int> advance_and_fire(TimerWheel& wheel, std::vector<int>& log, std::uint64_t now) {
  log.clear();
  wheel.advance(now);
  const std::size_t fired = wheel.fire_due();
  EXPECT_EQ(fired, log.size());
  return log;
}

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

TEST(TimerWheel, remove_of_a_filed_timer_keeps_it_from_firing) {
  std::vector<int> log;
  LoggingTimer kept{1, log};
  LoggingTimer same_slot{2, log};
  LoggingTimer higher_level{3, log};
  TimerWheel wheel;
  wheel.insert(&kept, 10);
  wheel.insert(&same_slot, 10);
  wheel.insert(&higher_level, 5000);
  wheel.remove(&same_slot);
  wheel.remove(&higher_level);
  EXPECT_FALSE(same_slot.linked());
  EXPECT_FALSE(higher_level.linked());
  EXPECT_EQ(wheel.armed(), 1u);
  EXPECT_EQ(advance_and_fire(wheel, log, 100000), std::vector<int>{1});
  EXPECT_TRUE(wheel.empty());
  EXPECT_EQ(wheel.next_deadline(), std::nullopt);
}

TEST(TimerWheel, remove_of_a_due_timer_before_fire_due_keeps_it_from_firing) {
  std::vector<int> log;
  LoggingTimer removed{1, log};
  LoggingTimer kept{2, log};
  TimerWheel wheel;
  wheel.insert(&removed, 10);
  wheel.insert(&kept, 10);
  wheel.advance(10);
  EXPECT_EQ(wheel.next_deadline(), 10u);
  wheel.remove(&removed);
  EXPECT_EQ(wheel.fire_due(), 1u);
  EXPECT_EQ(log, std::vector<int>{2});
  EXPECT_TRUE(wheel.empty());
  EXPECT_EQ(wheel.armed(), 0u);
}

TEST(TimerWheel, remove_of_a_timer_already_cascaded_to_a_lower_level_keeps_it_from_firing) {
  std::vector<int> log;
  LoggingTimer cascaded{1, log};
  LoggingTimer witness{2, log};
  TimerWheel wheel;
  wheel.insert(&cascaded, 5000);  // level 2 from tick 0
  wheel.insert(&witness, 5001);
  wheel.advance(4096);            // the level-2 slot [4096, 8192) cascades
  EXPECT_EQ(wheel.fire_due(), 0u);
  EXPECT_TRUE(cascaded.linked());
  wheel.remove(&cascaded);
  EXPECT_EQ(wheel.armed(), 1u);
  EXPECT_EQ(advance_and_fire(wheel, log, 5000), std::vector<int>{});
  EXPECT_EQ(advance_and_fire(wheel, log, 5001), std::vector<int>{2});
  EXPECT_TRUE(wheel.empty());
}

TEST(TimerWheel, remove_of_an_unarmed_or_already_removed_timer_changes_nothing) {
  std::vector<int> log;
  LoggingTimer never_armed{1, log};
  LoggingTimer twice{2, log};
  LoggingTimer other{3, log};
  TimerWheel wheel;
  wheel.insert(&twice, 20);
  wheel.insert(&other, 30);
  wheel.remove(&never_armed);
  wheel.remove(&twice);
  wheel.remove(&twice);
  EXPECT_EQ(wheel.armed(), 1u);
  EXPECT_EQ(advance_and_fire(wheel, log, 30), std::vector<int>{3});
  wheel.remove(&other);  // after it fired
  EXPECT_TRUE(wheel.empty());
  EXPECT_EQ(wheel.armed(), 0u);
}

// Regression: re-arming an armed timer used to count it twice in armed().
TEST(TimerWheel, rearming_an_armed_timer_moves_it_and_counts_it_once) {
  std::vector<int> log;
  LoggingTimer timer{1, log};
  TimerWheel wheel;
  wheel.insert(&timer, 10);
  wheel.insert(&timer, 20);
  EXPECT_EQ(wheel.armed(), 1u);
  EXPECT_EQ(advance_and_fire(wheel, log, 19), std::vector<int>{}) << "the old deadline must be forgotten";
  EXPECT_EQ(advance_and_fire(wheel, log, 20), std::vector<int>{1});
  EXPECT_TRUE(wheel.empty()) << "armed() = " << wheel.armed() << " with no timer left";
}

TEST(TimerWheel, rearming_a_due_timer_for_the_future_takes_it_off_the_due_list) {
  std::vector<int> log;
  LoggingTimer timer{1, log};
  TimerWheel wheel;
  wheel.insert(&timer, 10);
  wheel.advance(10);
  wheel.insert(&timer, 50);
  EXPECT_EQ(wheel.fire_due(), 0u);
  EXPECT_EQ(wheel.armed(), 1u);
  EXPECT_EQ(advance_and_fire(wheel, log, 49), std::vector<int>{});
  EXPECT_EQ(advance_and_fire(wheel, log, 50), std::vector<int>{1});
  EXPECT_TRUE(wheel.empty());
}

TEST(TimerWheel, a_callback_may_cancel_a_timer_due_in_the_same_batch_and_arm_new_ones) {
  std::vector<int> log;
  LoggingTimer first{1, log};
  LoggingTimer cancelled{2, log};
  LoggingTimer armed_due{3, log};
  LoggingTimer armed_later{4, log};
  LoggingTimer armed_far{5, log};
  TimerWheel wheel;
  wheel.insert(&first, 10);
  wheel.insert(&cancelled, 10);
  first.action = [&] {
    wheel.remove(&cancelled);
    wheel.insert(&armed_due, 10);      // already due: fires at the next fire_due, not this one
    wheel.insert(&armed_later, 15);
    wheel.insert(&armed_far, 100000);
  };
  wheel.advance(10);
  EXPECT_EQ(wheel.fire_due(), 1u);
  EXPECT_EQ(log, std::vector<int>{1});
  EXPECT_EQ(wheel.armed(), 2u);
  EXPECT_EQ(wheel.next_deadline(), 10u) << "armed_due waits for the next fire_due";
  log.clear();
  EXPECT_EQ(wheel.fire_due(), 1u);
  EXPECT_EQ(log, std::vector<int>{3});
  EXPECT_EQ(advance_and_fire(wheel, log, 14), std::vector<int>{});
  EXPECT_EQ(advance_and_fire(wheel, log, 15), std::vector<int>{4});
  EXPECT_EQ(advance_and_fire(wheel, log, 99999), std::vector<int>{});
  EXPECT_EQ(advance_and_fire(wheel, log, 100000), std::vector<int>{5});
  EXPECT_TRUE(wheel.empty());
}

TEST(TimerWheel, a_callback_that_rearms_itself_as_due_fires_once_per_fire_due) {
  std::vector<int> log;
  LoggingTimer timer{1, log};
  TimerWheel wheel;
  int rearms = 0;
  timer.action = [&] {
    if (++rearms <= 3) wheel.insert(&timer, 0);  // in the past: due at once
  };
  wheel.insert(&timer, 1);
  wheel.advance(1);
  EXPECT_EQ(wheel.fire_due(), 1u);
  EXPECT_EQ(wheel.fire_due(), 1u);
  EXPECT_EQ(wheel.fire_due(), 1u);
  EXPECT_EQ(wheel.fire_due(), 1u);
  EXPECT_EQ(wheel.fire_due(), 0u);
  EXPECT_EQ(log.size(), 4u);
  EXPECT_TRUE(wheel.empty());
}

TEST(TimerWheel, a_callback_may_cancel_a_filed_timer_and_the_timer_that_fires_is_unlinked_first) {
  std::vector<int> log;
  LoggingTimer first{1, log};
  LoggingTimer filed{2, log};
  TimerWheel wheel;
  bool first_was_linked = true;
  first.action = [&] {
    first_was_linked = first.linked();
    wheel.remove(&first);  // no effect: it is no longer armed
    wheel.remove(&filed);
  };
  wheel.insert(&first, 5);
  wheel.insert(&filed, 70000);
  EXPECT_EQ(advance_and_fire(wheel, log, 5), std::vector<int>{1});
  EXPECT_FALSE(first_was_linked);
  EXPECT_EQ(wheel.armed(), 0u);
  EXPECT_TRUE(wheel.empty());
  EXPECT_EQ(advance_and_fire(wheel, log, 70000), std::vector<int>{});
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

// Differential test: the wheel against a model (a multimap from effective deadline to timer)
// over random inserts, removes, advances (forwards, backwards, small and huge) and removes of
// due timers between advance() and fire_due(). After each advance the set fired must be
// exactly the model's timers at or before the new time, in non-decreasing deadline order.
class TimerWheelDifferential : public ::testing::TestWithParam<std::uint64_t> {};

TEST_P(TimerWheelDifferential, fires_exactly_the_set_a_sorted_model_predicts_at_every_advance) {
  const std::uint64_t seed = GetParam();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng{seed};
  auto uniform = [&](std::uint64_t lo, std::uint64_t hi) { return std::uniform_int_distribution<std::uint64_t>{lo, hi}(rng); };

  constexpr int k_timers = 400;
  constexpr int k_steps = 25000;
  struct ModelTimer : TimerNode {
    ModelTimer() : TimerNode(&ModelTimer::on_fire) {}
    static void on_fire(TimerNode* node) noexcept {
      auto* self = static_cast<ModelTimer*>(node);
      self->fired_log->push_back(self->id);
    }
    int id = 0;
    std::vector<int>* fired_log = nullptr;
    bool armed = false;
    std::uint64_t effective = 0;  // when it is due: max(clamped tick, wheel time at insert)
    std::multimap<std::uint64_t, int>::iterator entry;
  };

  std::vector<int> fired;
  std::vector<ModelTimer> timers(k_timers);
  std::multimap<std::uint64_t, int> model;
  TimerWheel wheel;
  for (int i = 0; i < k_timers; ++i) {
    timers[static_cast<std::size_t>(i)].id = i;
    timers[static_cast<std::size_t>(i)].fired_log = &fired;
  }

  auto random_offset = [&]() -> std::uint64_t {
    switch (uniform(0, 9)) {
      case 0: case 1: case 2: return uniform(0, 70);
      case 3: case 4: return uniform(0, 5000);
      case 5: case 6: return uniform(0, 300000);
      case 7: return uniform(0, std::uint64_t{1} << 26);
      case 8: return uniform(0, std::uint64_t{1} << 40);
      default: return std::uint64_t{1} << uniform(0, 45);
    }
  };
  auto disarm_in_model = [&](ModelTimer& t) {
    model.erase(t.entry);
    t.armed = false;
  };
  auto random_armed = [&]() -> ModelTimer* {
    if (model.empty()) return nullptr;
    auto it = model.begin();
    std::advance(it, static_cast<long>(uniform(0, model.size() - 1)));
    return &timers[static_cast<std::size_t>(it->second)];
  };

  for (int step = 0; step < k_steps; ++step) {
    const std::uint64_t op = uniform(0, 99);
    const std::uint64_t elapsed = wheel.elapsed();
    if (op < 45) {  // insert (a timer that is armed is removed first, in both)
      ModelTimer& t = timers[static_cast<std::size_t>(uniform(0, k_timers - 1))];
      if (t.armed) {
        wheel.remove(&t);
        disarm_in_model(t);
      }
      std::uint64_t tick;
      const std::uint64_t kind = uniform(0, 19);
      if (kind == 0)
        tick = elapsed > 0 ? uniform(0, elapsed) : 0;  // in the past: due at once
      else if (kind == 1)
        tick = k_max - uniform(0, 3) + uniform(0, 6);  // around and beyond the clamp
      else
        tick = elapsed + random_offset();
      wheel.insert(&t, tick);
      t.armed = true;
      t.effective = std::max(std::min(tick, k_max), elapsed);
      t.entry = model.emplace(t.effective, t.id);
    } else if (op < 65) {  // remove
      if (ModelTimer* t = random_armed()) {
        wheel.remove(t);
        disarm_in_model(*t);
      }
    } else {  // advance, maybe remove some due timers, then fire
      std::uint64_t now;
      if (uniform(0, 19) == 0)
        now = elapsed > 0 ? uniform(0, elapsed) : 0;  // backwards: nothing moves
      else if (!model.empty() && uniform(0, 3) == 0) {
        now = std::max(elapsed, model.begin()->first) + uniform(0, 2);  // around the next deadline
        if (now > 0) --now;
      }
      else
        now = elapsed + random_offset();
      wheel.advance(now);
      const std::uint64_t new_elapsed = std::max(elapsed, now);
      ASSERT_EQ(wheel.elapsed(), new_elapsed) << "step " << step;

      const std::size_t due_count = static_cast<std::size_t>(std::distance(model.begin(), model.upper_bound(new_elapsed)));
      if (due_count > 0 && uniform(0, 4) == 0) {
        ModelTimer& t = timers[static_cast<std::size_t>(model.begin()->second)];
        wheel.remove(&t);
        disarm_in_model(t);
      }
      std::vector<int> expected;
      for (auto it = model.begin(); it != model.end() && it->first <= new_elapsed;) {
        expected.push_back(it->second);
        timers[static_cast<std::size_t>(it->second)].armed = false;
        it = model.erase(it);
      }
      fired.clear();
      const std::size_t count = wheel.fire_due();
      ASSERT_EQ(count, fired.size()) << "step " << step;
      // The firing order must be by deadline (ties in any order).
      for (std::size_t i = 1; i < fired.size(); ++i)
        ASSERT_LE(timers[static_cast<std::size_t>(fired[i - 1])].effective,
                  timers[static_cast<std::size_t>(fired[i])].effective)
            << "step " << step << ": fired out of deadline order";
      std::vector<int> got = fired;
      std::sort(got.begin(), got.end());
      std::sort(expected.begin(), expected.end());
      ASSERT_EQ(got, expected) << "step " << step << ": advance to " << now << " from " << elapsed;
    }

    // Invariants after every step.
    std::size_t filed = 0;
    for (const auto& [tick, id] : model)
      if (tick > wheel.elapsed()) ++filed;
    ASSERT_EQ(wheel.armed(), filed) << "step " << step;
    ASSERT_EQ(wheel.empty(), model.empty()) << "step " << step;
    const auto next = wheel.next_deadline();
    if (model.empty()) {
      ASSERT_EQ(next, std::nullopt) << "step " << step;
    } else {
      ASSERT_TRUE(next.has_value()) << "step " << step;
      const std::uint64_t earliest = model.begin()->first;
      if (earliest <= wheel.elapsed())
        ASSERT_EQ(*next, wheel.elapsed()) << "step " << step;
      else {
        ASSERT_GT(*next, wheel.elapsed()) << "step " << step;
        ASSERT_LE(*next, earliest) << "step " << step;
      }
    }
  }
  // Drain: everything left fires by k_max, each at its tick or not at all.
  for (ModelTimer& t : timers) {
    if (t.armed) continue;
    ASSERT_FALSE(t.linked()) << "timer " << t.id << " is linked but not armed in the model";
  }
  fired.clear();
  wheel.advance(k_max);
  wheel.fire_due();
  std::vector<int> expected;
  for (const auto& [tick, id] : model) expected.push_back(id);
  std::sort(fired.begin(), fired.end());
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(fired, expected);
  EXPECT_TRUE(wheel.empty());
}

INSTANTIATE_TEST_SUITE_P(Seeds, TimerWheelDifferential, ::testing::Values(1u, 20261121u, 0xC0FFEEu, 987654321u));
