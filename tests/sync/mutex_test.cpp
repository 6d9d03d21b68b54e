// Tests of Mutex (include/gearbox/sync/mutex.hpp). The cases that assert outcomes (a guard
// unlocks, tasks that suspend while holding the lock never overlap and lose no update, a
// cancelled task takes no lock, a timed-out lock leaves the mutex intact) run on both
// flavors (MutexOnEveryFlavor). Those that assert what only one thread guarantees stay on
// the test loop: FIFO hand-off order, no barging by a task that runs before the woken
// waiter, a cancel in the same turn as unlock() or after the hand-off, and the resume
// budget of a task that never waits. The multi-thread stress tests are in
// tests/runtime/runtime_sync_test.cpp.
#include <gearbox/sync/mutex.hpp>

#include <algorithm>
#include <chrono>
#include <exception>
#include <mutex>
#include <random>
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

class MutexOnEveryFlavor : public gearbox_test::OnEveryTestEngine {};

// Sleeps `delay`, locks, appends `id` to `order`, holds the lock for `hold`, unlocks.
gb::Task<void> lock_then_log(gb::Mutex& mutex, std::chrono::milliseconds delay, int id, std::vector<int>& order,
                             std::chrono::milliseconds hold = 0ms) {
  co_await gb::sleep_for(delay);
  auto guard = co_await mutex.lock();
  order.push_back(id);
  co_await gb::sleep_for(hold);
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(Mutex, MutexOnEveryFlavor, gearbox_test::every_flavor(), gearbox_test::flavor_name);

TEST_P(MutexOnEveryFlavor, a_free_mutex_is_locked_at_once_and_the_guard_unlocks_it) {
  gb::Mutex mutex;
  bool locked_inside = false;
  run([](gb::Mutex& mutex, bool& locked_inside) -> gb::Task<void> {
    {
      auto guard = co_await mutex.lock();
      EXPECT_TRUE(guard.owns_lock());
      locked_inside = mutex.is_locked();
    }
    EXPECT_FALSE(mutex.is_locked());
  }(mutex, locked_inside));
  EXPECT_TRUE(locked_inside);
  EXPECT_FALSE(mutex.is_locked());
}

TEST(Mutex, try_lock_fails_while_the_mutex_is_locked_and_succeeds_after_unlock) {
  gb::Mutex mutex;
  EXPECT_TRUE(mutex.try_lock());
  EXPECT_FALSE(mutex.try_lock());
  mutex.unlock();
  EXPECT_FALSE(mutex.is_locked());
  EXPECT_TRUE(mutex.try_lock());
  mutex.unlock();
}

TEST(Mutex, unlock_of_a_mutex_that_is_not_locked_throws_logic_error) {
  gb::Mutex mutex;
  EXPECT_THROW(mutex.unlock(), std::logic_error);
}

TEST(Mutex, a_guard_unlocks_early_once_moves_its_ownership_and_adopts_a_try_lock) {
  gb::Mutex mutex;
  ASSERT_TRUE(mutex.try_lock());
  gb::Mutex::Guard guard{mutex, std::adopt_lock};
  EXPECT_TRUE(guard.owns_lock());
  gb::Mutex::Guard moved = std::move(guard);
  EXPECT_FALSE(guard.owns_lock());
  EXPECT_TRUE(moved.owns_lock());
  EXPECT_TRUE(mutex.is_locked());
  moved.unlock();
  EXPECT_FALSE(mutex.is_locked());
  moved.unlock();  // no effect the second time
  guard.unlock();  // nor on a guard that owns nothing
  EXPECT_FALSE(mutex.is_locked());
  EXPECT_TRUE(mutex.try_lock()) << "an unlock done twice would have corrupted the state";
  mutex.unlock();
}

TEST_P(MutexOnEveryFlavor, tasks_that_yield_while_holding_the_lock_never_overlap) {
  gb::Mutex mutex;
  int inside = 0;
  int most_inside = 0;
  int counter = 0;
  constexpr int k_tasks = 6;
  constexpr int k_rounds = 200;
  run([](gb::Mutex& mutex, int& inside, int& most_inside, int& counter) -> gb::Task<void> {
    std::vector<gb::JoinHandle<void>> workers;
    for (int t = 0; t < k_tasks; ++t) {
      workers.push_back(gb::spawn([](gb::Mutex& mutex, int& inside, int& most_inside, int& counter,
                                     unsigned seed) -> gb::Task<void> {
        std::minstd_rand random{seed};
        for (int round = 0; round < k_rounds; ++round) {
          auto guard = co_await mutex.lock();
          most_inside = std::max(most_inside, ++inside);
          const int seen = counter;  // a read-modify-write split by suspensions:
          if (random() % 2) co_await gb::yield_now();
          if (random() % 8 == 0) co_await gb::sleep_for(1ms);
          counter = seen + 1;  // ...loses updates unless the lock excludes the others
          --inside;
          guard.unlock();
          if (random() % 2) co_await gb::yield_now();
        }
      }(mutex, inside, most_inside, counter, static_cast<unsigned>(t + 1))));
    }
    for (auto& worker : workers) co_await worker;
  }(mutex, inside, most_inside, counter));
  EXPECT_EQ(most_inside, 1);
  EXPECT_EQ(counter, k_tasks * k_rounds);
  EXPECT_FALSE(mutex.is_locked());
}

TEST(Mutex, waiters_get_the_lock_in_the_order_they_asked_for_it) {
  gb::Mutex mutex;
  std::vector<int> order;
  run_on_test_loop([](gb::Mutex& mutex, std::vector<int>& order) -> gb::Task<void> {
    auto guard = co_await mutex.lock();
    // Spawned 0..4, but they ask for the lock in the order 3, 1, 4, 0, 2.
    const std::chrono::milliseconds delays[] = {4ms, 2ms, 5ms, 1ms, 3ms};
    std::vector<gb::JoinHandle<void>> waiters;
    for (int id = 0; id < 5; ++id) waiters.push_back(gb::spawn(lock_then_log(mutex, delays[id], id, order, 1ms)));
    co_await gb::sleep_for(10ms);
    EXPECT_TRUE(order.empty());
    guard.unlock();
    for (auto& waiter : waiters) co_await waiter;
  }(mutex, order));
  EXPECT_EQ(order, (std::vector<int>{3, 1, 4, 0, 2}));
  EXPECT_FALSE(mutex.is_locked());
}

TEST(Mutex, unlock_hands_the_lock_to_the_first_waiter_so_a_task_that_runs_first_cannot_barge_in) {
  gb::Mutex mutex;
  std::vector<int> order;
  run_on_test_loop([](gb::Mutex& mutex, std::vector<int>& order) -> gb::Task<void> {
    auto guard = co_await mutex.lock();
    auto waiter = gb::spawn(lock_then_log(mutex, 0ms, 1, order));
    co_await gb::sleep_for(1ms);
    guard.unlock();
    EXPECT_TRUE(mutex.is_locked()) << "ownership passes straight to the waiter";
    EXPECT_FALSE(mutex.try_lock());
    // This task runs before the waiter resumes, yet must queue behind it.
    auto barger = gb::spawn(lock_then_log(mutex, 0ms, 2, order));
    co_await waiter;
    co_await barger;
  }(mutex, order));
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
  EXPECT_FALSE(mutex.is_locked());
}

TEST(Mutex, a_task_cancelled_while_waiting_for_the_lock_throws_cancelled_and_the_next_waiter_gets_it) {
  gb::Mutex mutex;
  std::vector<int> order;
  run_on_test_loop([](gb::Mutex& mutex, std::vector<int>& order) -> gb::Task<void> {
    auto guard = co_await mutex.lock();
    auto first = gb::spawn(lock_then_log(mutex, 1ms, 1, order));
    auto second = gb::spawn(lock_then_log(mutex, 2ms, 2, order));
    auto third = gb::spawn(lock_then_log(mutex, 3ms, 3, order));
    co_await gb::sleep_for(10ms);
    first.cancel();
    guard.unlock();  // in the same turn: the cancelled waiter has already left the queue
    EXPECT_TRUE(mutex.is_locked()) << "handed to the second waiter";
    EXPECT_THROW(co_await first, gb::Cancelled);
    co_await second;
    co_await third;
  }(mutex, order));
  EXPECT_EQ(order, (std::vector<int>{2, 3}));
  EXPECT_FALSE(mutex.is_locked());
}

TEST(Mutex, a_cancel_that_arrives_after_the_lock_was_handed_over_still_delivers_it) {
  gb::Mutex mutex;
  bool owned = false;
  std::vector<int> order;
  run_on_test_loop([](gb::Mutex& mutex, bool& owned, std::vector<int>& order) -> gb::Task<void> {
    auto guard = co_await mutex.lock();
    auto holder = gb::spawn([](gb::Mutex& mutex, bool& owned) -> gb::Task<void> {
      auto guard = co_await mutex.lock();
      owned = guard.owns_lock();
      co_await gb::yield_now();  // throws Cancelled; the guard unlocks as it unwinds
    }(mutex, owned));
    co_await gb::sleep_for(1ms);
    guard.unlock();   // hands the lock to the holder...
    holder.cancel();  // ...which is cancelled before it resumes
    auto next = gb::spawn(lock_then_log(mutex, 0ms, 2, order));
    EXPECT_THROW(co_await holder, gb::Cancelled);
    co_await next;
  }(mutex, owned, order));
  EXPECT_TRUE(owned);
  EXPECT_EQ(order, std::vector<int>{2});
  EXPECT_FALSE(mutex.is_locked());
}

TEST_P(MutexOnEveryFlavor, a_cancelled_task_does_not_take_even_a_free_mutex) {
  gb::Mutex mutex;
  gb::Mutex held;
  bool took_lock = false;
  run([](gb::Mutex& mutex, gb::Mutex& held, bool& took_lock) -> gb::Task<void> {
    auto guard = co_await held.lock();
    auto task = gb::spawn([](gb::Mutex& mutex, gb::Mutex& held, bool& took_lock) -> gb::Task<void> {
      try {
        auto never = co_await held.lock();
      } catch (const gb::Cancelled&) {
      }
      auto guard = co_await mutex.lock();  // level-triggered: throws again
      took_lock = true;
    }(mutex, held, took_lock));
    co_await gb::sleep_for(1ms);
    task.cancel();
    EXPECT_THROW(co_await task, gb::Cancelled);
  }(mutex, held, took_lock));
  EXPECT_FALSE(took_lock);
  EXPECT_FALSE(mutex.is_locked());
  EXPECT_FALSE(held.is_locked());
}

TEST_P(MutexOnEveryFlavor, a_lock_can_be_given_a_timeout_and_the_mutex_stays_intact) {
  gb::Mutex mutex;
  std::vector<int> order;
  run([](gb::Mutex& mutex, std::vector<int>& order) -> gb::Task<void> {
    auto guard = co_await mutex.lock();
    auto later = gb::spawn(lock_then_log(mutex, 1ms, 1, order));
    EXPECT_THROW(auto never = co_await gb::timeout(5ms, mutex.lock()), gb::TimeoutError);
    EXPECT_TRUE(mutex.is_locked());
    guard.unlock();
    co_await later;
    auto again = co_await gb::timeout(5ms, mutex.lock());
    EXPECT_TRUE(again.owns_lock());
  }(mutex, order));
  EXPECT_EQ(order, std::vector<int>{1});
  EXPECT_FALSE(mutex.is_locked());
}

TEST(Mutex, locking_a_free_mutex_in_a_loop_still_lets_other_tasks_run) {
  gb::Mutex mutex;
  int spins = -1;
  run_on_test_loop([](gb::Mutex& mutex, int& spins) -> gb::Task<void> {
    bool stop = false;
    auto spinner = gb::spawn([](gb::Mutex& mutex, const bool& stop) -> gb::Task<int> {
      int n = 0;
      while (!stop && n < 100'000) {
        auto guard = co_await mutex.lock();  // always free: never waits for the mutex
        ++n;
      }
      co_return n;
    }(mutex, stop));
    auto stopper = gb::spawn(note_when_run(stop));
    spins = co_await spinner;
    co_await stopper;
  }(mutex, spins));
  EXPECT_GT(spins, 0);
  EXPECT_LE(spins, static_cast<int>(gb::detail::k_resume_budget) + 1);
  EXPECT_FALSE(mutex.is_locked());
}
