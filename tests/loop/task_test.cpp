#include <gearbox/task.hpp>
#include <gearbox/loop.hpp>
#include <gearbox/spawn.hpp>
#include <gearbox/time.hpp>

#include <gtest/gtest.h>

namespace gb = gearbox;
using namespace std::chrono_literals;

namespace {
gb::Task<int> answer() { co_return 42; }
gb::Task<int> twice() { co_return 2 * co_await answer(); }
}  // namespace

TEST(Task, a_task_returns_its_value_to_the_awaiter) { EXPECT_EQ(gb::run(twice()), 84); }

TEST(Task, sleep_on_manual_clock) {
  gb::ManualClock clock;
  gb::Loop loop{{.clock = &clock, .auto_advance = true}};
  auto start = clock.now();
  loop.run([]() -> gb::Task<void> { co_await gb::sleep_for(5s); }());
  EXPECT_EQ(clock.now() - start, 5s);
}
