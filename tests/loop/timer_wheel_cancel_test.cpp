// White-box tests of detail::TimerWheel (src/loop/timer_wheel.hpp): remove() wherever a
// timer is (filed, due, cascaded), rearming, callbacks that arm and cancel during
// fire_due(); and a randomized differential test against a std::multimap model of the same
// timers. Expiry on every level and next_deadline() are in timer_wheel_test; the helpers
// they share are in timer_wheel_test_support.hpp.
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

}  // namespace

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
