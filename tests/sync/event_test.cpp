// Tests of Event (include/gearbox/sync/event.hpp). The cases that assert outcomes (a wait
// returns only once the event is set, also after a clear; a cancelled task throws at a
// wait even on a set event) run on both flavors (EventOnEveryFlavor). Those that assert
// what only one thread guarantees stay on the test loop: a wait on a set event lets no
// other task run first, a woken task resumes in a later turn, waiters wake in FIFO order,
// a cancel or a clear() in the same turn as set(), and the resume budget of a task that
// never waits. The multi-thread stress tests are in tests/runtime/runtime_sync_test.cpp.
#include <gearbox/sync/event.hpp>

#include <atomic>
#include <chrono>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include <gearbox/loop.hpp>
#include <gearbox/spawn.hpp>
#include <gearbox/task.hpp>
#include <gearbox/time.hpp>

#include <gtest/gtest.h>

#include "support/flavors.hpp"
#include "support/test_loop.hpp"

namespace gb = gearbox;
using namespace std::chrono_literals;
using gearbox_test::describe;
using gearbox_test::note_when_run;
using gearbox_test::run_on_test_loop;

namespace {

class EventOnEveryFlavor : public gearbox_test::OnEveryTestEngine {};

// Sleeps `delay`, then waits on `event` and appends `id` to `order` once woken.
gb::Task<void> wait_then_log(gb::Event& event, std::chrono::milliseconds delay, int id, std::vector<int>& order) {
  co_await gb::sleep_for(delay);
  co_await event.wait();
  order.push_back(id);
}

// Waits on `event`; then says whether `set_called` was already true (false: the wait
// returned before anyone set the event).
gb::Task<bool> wait_then_check(gb::Event& event, const std::atomic<bool>& set_called) {
  co_await event.wait();
  co_return set_called.load();
}

// Has another task wait on the clear `event`, sets it a little later; true if that wait
// returned only after the set.
gb::Task<bool> a_waiter_returns_only_after_set(gb::Event& event) {
  std::atomic<bool> set_called{false};
  auto waiter = gb::spawn(wait_then_check(event, set_called));
  co_await gb::sleep_for(5ms);
  set_called = true;
  event.set();
  co_return co_await waiter;
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(Event, EventOnEveryFlavor, gearbox_test::every_flavor(), gearbox_test::flavor_name);

TEST(Event, starts_clear_unless_asked_and_reports_set_and_clear) {
  gb::Event event;
  EXPECT_FALSE(event.is_set());
  event.set();
  EXPECT_TRUE(event.is_set());
  event.set();
  EXPECT_TRUE(event.is_set());
  event.clear();
  EXPECT_FALSE(event.is_set());
  EXPECT_TRUE(gb::Event{true}.is_set());
}

TEST(Event, a_wait_on_a_set_event_returns_without_letting_other_tasks_run) {
  gb::Event event{true};
  bool other_ran = false;
  bool other_ran_before_wait_returned = true;
  run_on_test_loop([](gb::Event& event, bool& other_ran, bool& result) -> gb::Task<void> {
    auto other = gb::spawn(note_when_run(other_ran));  // runs at the next turn
    co_await event.wait();
    result = other_ran;
    co_await other;
  }(event, other_ran, other_ran_before_wait_returned));
  EXPECT_TRUE(other_ran);
  EXPECT_FALSE(other_ran_before_wait_returned);
}

TEST_P(EventOnEveryFlavor, a_wait_suspends_until_the_event_is_set) {
  gb::Event event;
  EXPECT_TRUE(run(a_waiter_returns_only_after_set(event)));
  EXPECT_TRUE(event.is_set());
}

TEST(Event, a_task_woken_by_set_resumes_in_a_later_turn) {
  gb::Event event;
  std::vector<int> order;
  run_on_test_loop([](gb::Event& event, std::vector<int>& order) -> gb::Task<void> {
    auto waiter = gb::spawn(wait_then_log(event, 0ms, 1, order));
    for (int i = 0; i < 5; ++i) co_await gb::yield_now();
    co_await gb::sleep_for(10ms);
    event.set();
    EXPECT_TRUE(order.empty()) << "a woken task resumes in a later turn, never inside set()";
    co_await waiter;
    EXPECT_EQ(order, std::vector<int>{1});
  }(event, order));
  EXPECT_EQ(order.size(), 1u);
}

TEST(Event, set_wakes_every_waiter_in_the_order_they_began_to_wait) {
  gb::Event event;
  std::vector<int> order;
  run_on_test_loop([](gb::Event& event, std::vector<int>& order) -> gb::Task<void> {
    // Spawned 0..4, but they begin to wait in the order 3, 1, 4, 0, 2.
    const std::chrono::milliseconds delays[] = {4ms, 2ms, 5ms, 1ms, 3ms};
    std::vector<gb::JoinHandle<void>> waiters;
    for (int id = 0; id < 5; ++id) waiters.push_back(gb::spawn(wait_then_log(event, delays[id], id, order)));
    co_await gb::sleep_for(10ms);
    EXPECT_TRUE(order.empty());
    event.set();
    for (auto& waiter : waiters) co_await waiter;
  }(event, order));
  EXPECT_EQ(order, (std::vector<int>{3, 1, 4, 0, 2}));
}

TEST_P(EventOnEveryFlavor, clear_makes_later_waits_suspend_until_the_next_set) {
  gb::Event event{true};
  EXPECT_TRUE(run([](gb::Event& event) -> gb::Task<bool> {
    co_await event.wait();
    event.clear();
    co_return co_await a_waiter_returns_only_after_set(event);
  }(event)));
}

TEST(Event, a_waiter_woken_by_set_returns_even_if_the_event_is_cleared_before_it_runs) {
  gb::Event event;
  std::vector<int> order;
  run_on_test_loop([](gb::Event& event, std::vector<int>& order) -> gb::Task<void> {
    auto waiter = gb::spawn(wait_then_log(event, 0ms, 1, order));
    co_await gb::sleep_for(1ms);
    event.set();
    event.clear();
    co_await waiter;
  }(event, order));
  EXPECT_EQ(order, std::vector<int>{1});
  EXPECT_FALSE(event.is_set());
}

TEST(Event, a_task_cancelled_while_waiting_throws_cancelled_and_the_other_waiters_still_wake) {
  gb::Event event;
  std::vector<int> order;
  run_on_test_loop([](gb::Event& event, std::vector<int>& order) -> gb::Task<void> {
    auto first = gb::spawn(wait_then_log(event, 1ms, 1, order));
    auto second = gb::spawn(wait_then_log(event, 2ms, 2, order));
    auto third = gb::spawn(wait_then_log(event, 3ms, 3, order));
    co_await gb::sleep_for(10ms);
    second.cancel();
    event.set();  // in the same turn: the cancelled waiter has already left the queue
    EXPECT_THROW(co_await second, gb::Cancelled);
    co_await first;
    co_await third;
  }(event, order));
  EXPECT_EQ(order, (std::vector<int>{1, 3}));
}

TEST(Event, a_cancel_that_arrives_after_set_woke_the_waiter_does_not_undo_the_wait) {
  gb::Event event;
  bool wait_returned = false;
  bool reached_end = false;
  run_on_test_loop([](gb::Event& event, bool& wait_returned, bool& reached_end) -> gb::Task<void> {
    auto waiter = gb::spawn([](gb::Event& event, bool& wait_returned, bool& reached_end) -> gb::Task<void> {
      co_await event.wait();
      wait_returned = true;
      co_await gb::yield_now();  // the next suspension point throws
      reached_end = true;
    }(event, wait_returned, reached_end));
    co_await gb::sleep_for(1ms);
    event.set();     // the waiter is woken: its wait is over
    waiter.cancel();  // ...before it has run again
    EXPECT_THROW(co_await waiter, gb::Cancelled);
  }(event, wait_returned, reached_end));
  EXPECT_TRUE(wait_returned);
  EXPECT_FALSE(reached_end);
}

TEST_P(EventOnEveryFlavor, a_cancelled_task_throws_at_a_wait_even_when_the_event_is_set) {
  gb::Event never;
  gb::Event already_set{true};
  bool first_cancel_seen = false;
  bool passed_set_event = false;
  run([](gb::Event& never, gb::Event& already_set, bool& first, bool& passed) -> gb::Task<void> {
    auto waiter = gb::spawn([](gb::Event& never, gb::Event& already_set, bool& first, bool& passed) -> gb::Task<void> {
      try {
        co_await never.wait();
      } catch (const gb::Cancelled&) {
        first = true;
      }
      co_await already_set.wait();  // cancellation is level-triggered
      passed = true;
    }(never, already_set, first, passed));
    co_await gb::sleep_for(1ms);
    waiter.cancel();
    EXPECT_THROW(co_await waiter, gb::Cancelled);
  }(never, already_set, first_cancel_seen, passed_set_event));
  EXPECT_TRUE(first_cancel_seen);
  EXPECT_FALSE(passed_set_event);
}

TEST(Event, waiting_on_a_set_event_in_a_loop_still_lets_other_tasks_run) {
  gb::Event event{true};
  int spins = -1;
  run_on_test_loop([](gb::Event& event, int& spins) -> gb::Task<void> {
    bool stop = false;
    auto spinner = gb::spawn([](gb::Event& event, const bool& stop) -> gb::Task<int> {
      int n = 0;
      while (!stop && n < 100'000) {
        co_await event.wait();  // always ready: never suspends for the event itself
        ++n;
      }
      co_return n;
    }(event, stop));
    auto stopper = gb::spawn(note_when_run(stop));
    spins = co_await spinner;
    co_await stopper;
  }(event, spins));
  // The spinner yields once its resume budget is spent, and the stopper then runs.
  EXPECT_GT(spins, 0);
  EXPECT_LE(spins, static_cast<int>(gb::detail::k_resume_budget) + 1);
}

TEST(Event, a_wait_outside_a_task_on_a_loop_throws_logic_error) {
  gb::Event event;
  gb::Task<void> task = [](gb::Event& event) -> gb::Task<void> { co_await event.wait(); }(event);
  task.handle().resume();  // run it by hand, with no loop
  ASSERT_TRUE(task.done());
  EXPECT_THROW(task.handle().promise().result(), std::logic_error);
}
