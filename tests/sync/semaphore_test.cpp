// Tests of Semaphore (include/gearbox/sync/semaphore.hpp). The cases that assert outcomes
// (count tasks can hold a permit at once and never more, guards give their permit back
// once, a timed-out acquire leaves the count intact) run on both flavors
// (SemaphoreOnEveryFlavor). Those that assert what only one thread guarantees stay on the
// test loop: a release hands its permit straight to the waiter, FIFO wake order, no
// barging, a cancel in the same turn as release() or after the hand-off, and the resume
// budget of a task that never waits. The multi-thread stress tests are in
// tests/runtime/runtime_sync_test.cpp.
#include <gearbox/sync/semaphore.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include <gearbox/loop.hpp>
#include <gearbox/spawn.hpp>
#include <gearbox/sync/event.hpp>
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

class SemaphoreOnEveryFlavor : public gearbox_test::OnEveryTestEngine {};

// Sleeps `delay`, acquires a permit, appends `id` to `order`, and keeps the permit
// (the test gives it back).
gb::Task<void> acquire_then_log(gb::Semaphore& semaphore, std::chrono::milliseconds delay, int id,
                                std::vector<int>& order) {
  co_await gb::sleep_for(delay);
  co_await semaphore.acquire();
  order.push_back(id);
}

// Holds a permit until `all_in` is set: set by the holder that makes `holding` reach
// `count`, so it returns only if `count` tasks could hold a permit at once.
gb::Task<void> hold_until_all_are_in(gb::Semaphore& semaphore, std::atomic<int>& holding, int count, gb::Event& all_in) {
  auto permit = co_await semaphore.acquire_guard();
  if (++holding == count) all_in.set();
  co_await all_in.wait();
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(Semaphore, SemaphoreOnEveryFlavor, gearbox_test::every_flavor(), gearbox_test::flavor_name);

TEST(Semaphore, try_acquire_takes_permits_until_none_are_left_and_release_can_raise_the_count) {
  gb::Semaphore semaphore{2};
  EXPECT_EQ(semaphore.available(), 2u);
  EXPECT_TRUE(semaphore.try_acquire());
  EXPECT_TRUE(semaphore.try_acquire());
  EXPECT_EQ(semaphore.available(), 0u);
  EXPECT_FALSE(semaphore.try_acquire());
  semaphore.release(3);
  EXPECT_EQ(semaphore.available(), 3u);
  gb::Semaphore none{0};
  EXPECT_FALSE(none.try_acquire());
}

TEST(Semaphore, acquire_takes_permits_at_once_until_none_are_left_then_waits_for_a_release) {
  gb::Semaphore semaphore{2};
  std::vector<int> order;
  run_on_test_loop([](gb::Semaphore& semaphore, std::vector<int>& order) -> gb::Task<void> {
    co_await semaphore.acquire();
    co_await semaphore.acquire();
    EXPECT_EQ(semaphore.available(), 0u);
    auto waiter = gb::spawn(acquire_then_log(semaphore, 0ms, 1, order));
    co_await gb::sleep_for(10ms);
    EXPECT_TRUE(order.empty());
    semaphore.release();
    EXPECT_EQ(semaphore.available(), 0u) << "the permit went straight to the waiter";
    co_await waiter;
    EXPECT_EQ(order, std::vector<int>{1});
    semaphore.release(3);  // the waiter's permit and the two taken here
  }(semaphore, order));
  EXPECT_EQ(semaphore.available(), 3u);
}

TEST(Semaphore, release_of_n_wakes_up_to_n_waiters_in_fifo_order_and_counts_the_rest) {
  gb::Semaphore semaphore{0};
  std::vector<int> order;
  run_on_test_loop([](gb::Semaphore& semaphore, std::vector<int>& order) -> gb::Task<void> {
    // Spawned 0..4, but they begin to wait in the order 3, 1, 4, 0, 2.
    const std::chrono::milliseconds delays[] = {4ms, 2ms, 5ms, 1ms, 3ms};
    std::vector<gb::JoinHandle<void>> waiters;
    for (int id = 0; id < 5; ++id) waiters.push_back(gb::spawn(acquire_then_log(semaphore, delays[id], id, order)));
    co_await gb::sleep_for(10ms);
    semaphore.release(2);
    co_await gb::sleep_for(1ms);
    EXPECT_EQ(order, (std::vector<int>{3, 1}));
    EXPECT_EQ(semaphore.available(), 0u);
    semaphore.release(5);  // three to the waiters, two to the count
    EXPECT_EQ(semaphore.available(), 2u);
    for (auto& waiter : waiters) co_await waiter;
  }(semaphore, order));
  EXPECT_EQ(order, (std::vector<int>{3, 1, 4, 0, 2}));
}

TEST(Semaphore, a_released_permit_goes_to_a_waiter_before_a_task_that_runs_first) {
  gb::Semaphore semaphore{1};
  std::vector<int> order;
  run_on_test_loop([](gb::Semaphore& semaphore, std::vector<int>& order) -> gb::Task<void> {
    co_await semaphore.acquire();
    auto waiter = gb::spawn(acquire_then_log(semaphore, 0ms, 1, order));
    co_await gb::sleep_for(1ms);
    semaphore.release();
    EXPECT_FALSE(semaphore.try_acquire()) << "the permit already belongs to the waiter";
    auto barger = gb::spawn(acquire_then_log(semaphore, 0ms, 2, order));
    co_await gb::sleep_for(1ms);
    EXPECT_EQ(order, std::vector<int>{1});
    semaphore.release();
    co_await waiter;
    co_await barger;
    semaphore.release();
  }(semaphore, order));
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
  EXPECT_EQ(semaphore.available(), 1u);
}

TEST_P(SemaphoreOnEveryFlavor, count_tasks_can_hold_a_permit_at_once) {
  constexpr int k_permits = 3;
  gb::Semaphore semaphore{k_permits};
  run([](gb::Semaphore& semaphore) -> gb::Task<void> {
    std::atomic<int> holding{0};
    gb::Event all_in;
    std::vector<gb::JoinHandle<void>> holders;
    for (int i = 0; i < k_permits; ++i)
      holders.push_back(gb::spawn(hold_until_all_are_in(semaphore, holding, k_permits, all_in)));
    for (auto& holder : holders) co_await holder;
  }(semaphore));
  EXPECT_EQ(semaphore.available(), static_cast<std::size_t>(k_permits));
}

TEST_P(SemaphoreOnEveryFlavor, at_most_count_tasks_hold_a_permit_at_once) {
  constexpr std::size_t k_permits = 3;
  constexpr int k_tasks = 10;
  constexpr int k_rounds = 100;
  gb::Semaphore semaphore{k_permits};
  std::atomic<int> inside{0};
  std::atomic<int> most_inside{0};
  std::atomic<int> rounds{0};
  run([](gb::Semaphore& semaphore, std::atomic<int>& inside, std::atomic<int>& most_inside,
         std::atomic<int>& rounds) -> gb::Task<void> {
    std::vector<gb::JoinHandle<void>> workers;
    for (int t = 0; t < k_tasks; ++t) {
      workers.push_back(gb::spawn([](gb::Semaphore& semaphore, std::atomic<int>& inside, std::atomic<int>& most_inside,
                                     std::atomic<int>& rounds, unsigned seed) -> gb::Task<void> {
        std::minstd_rand random{seed};
        for (int round = 0; round < k_rounds; ++round) {
          auto permit = co_await semaphore.acquire_guard();
          const int now = ++inside;
          for (int most = most_inside.load(); now > most && !most_inside.compare_exchange_weak(most, now);) {
          }
          if (random() % 2) co_await gb::yield_now();
          if (random() % 4 == 0) co_await gb::sleep_for(1ms);
          --inside;
          ++rounds;
        }
      }(semaphore, inside, most_inside, rounds, static_cast<unsigned>(t + 1))));
    }
    for (auto& worker : workers) co_await worker;
  }(semaphore, inside, most_inside, rounds));
  EXPECT_LE(most_inside.load(), static_cast<int>(k_permits));
  EXPECT_GE(most_inside.load(), 1);
  EXPECT_EQ(rounds.load(), k_tasks * k_rounds);
  EXPECT_EQ(semaphore.available(), k_permits);
}

TEST_P(SemaphoreOnEveryFlavor, a_guard_releases_its_permit_once_when_released_early_moved_or_destroyed) {
  gb::Semaphore semaphore{2};
  run([](gb::Semaphore& semaphore) -> gb::Task<void> {
    {
      auto permit = co_await semaphore.acquire_guard();
      EXPECT_TRUE(permit.owns_permit());
      EXPECT_EQ(semaphore.available(), 1u);
      gb::Semaphore::Guard moved = std::move(permit);
      EXPECT_FALSE(permit.owns_permit());
      EXPECT_EQ(semaphore.available(), 1u);
      moved.release();
      EXPECT_EQ(semaphore.available(), 2u);
      moved.release();  // no effect the second time
      EXPECT_EQ(semaphore.available(), 2u);
      auto kept = co_await semaphore.acquire_guard();
      EXPECT_EQ(semaphore.available(), 1u);
    }
    EXPECT_EQ(semaphore.available(), 2u);
    EXPECT_TRUE(semaphore.try_acquire());
    {
      gb::Semaphore::Guard adopted{semaphore, std::adopt_lock};
      EXPECT_EQ(semaphore.available(), 1u);
    }
    EXPECT_EQ(semaphore.available(), 2u);
  }(semaphore));
  EXPECT_EQ(semaphore.available(), 2u);
}

TEST(Semaphore, a_task_cancelled_while_waiting_for_a_permit_throws_cancelled_and_the_count_is_intact) {
  gb::Semaphore semaphore{0};
  std::vector<int> order;
  run_on_test_loop([](gb::Semaphore& semaphore, std::vector<int>& order) -> gb::Task<void> {
    auto first = gb::spawn(acquire_then_log(semaphore, 1ms, 1, order));
    auto second = gb::spawn(acquire_then_log(semaphore, 2ms, 2, order));
    co_await gb::sleep_for(10ms);
    first.cancel();
    EXPECT_EQ(semaphore.available(), 0u);
    // In the same turn: the cancelled waiter has already left the queue, so one permit
    // goes to the remaining waiter and one to the count.
    semaphore.release(2);
    EXPECT_EQ(semaphore.available(), 1u);
    EXPECT_THROW(co_await first, gb::Cancelled);
    co_await second;
    EXPECT_EQ(semaphore.available(), 1u);
  }(semaphore, order));
  EXPECT_EQ(order, std::vector<int>{2});
  EXPECT_EQ(semaphore.available(), 1u);
}

TEST(Semaphore, a_cancel_that_arrives_after_a_permit_was_handed_over_keeps_the_permit) {
  gb::Semaphore semaphore{0};
  bool got_permit = false;
  run_on_test_loop([](gb::Semaphore& semaphore, bool& got_permit) -> gb::Task<void> {
    auto holder = gb::spawn([](gb::Semaphore& semaphore, bool& got_permit) -> gb::Task<void> {
      auto permit = co_await semaphore.acquire_guard();
      got_permit = permit.owns_permit();
      co_await gb::yield_now();  // throws Cancelled; the guard gives the permit back
    }(semaphore, got_permit));
    co_await gb::sleep_for(1ms);
    semaphore.release();  // hands the permit to the holder...
    holder.cancel();      // ...which is cancelled before it resumes
    EXPECT_EQ(semaphore.available(), 0u);
    EXPECT_THROW(co_await holder, gb::Cancelled);
  }(semaphore, got_permit));
  EXPECT_TRUE(got_permit);
  EXPECT_EQ(semaphore.available(), 1u);
}

TEST_P(SemaphoreOnEveryFlavor, an_acquire_can_be_given_a_timeout_and_the_count_stays_intact) {
  gb::Semaphore semaphore{0};
  run([](gb::Semaphore& semaphore) -> gb::Task<void> {
    EXPECT_THROW(co_await gb::timeout(5ms, semaphore.acquire()), gb::TimeoutError);
    semaphore.release();
    EXPECT_EQ(semaphore.available(), 1u) << "the timed-out acquire is no longer waiting";
    co_await gb::timeout(5ms, semaphore.acquire());
    EXPECT_EQ(semaphore.available(), 0u);
  }(semaphore));
}

TEST(Semaphore, acquiring_available_permits_in_a_loop_still_lets_other_tasks_run) {
  gb::Semaphore semaphore{1'000'000};
  int spins = -1;
  run_on_test_loop([](gb::Semaphore& semaphore, int& spins) -> gb::Task<void> {
    bool stop = false;
    auto spinner = gb::spawn([](gb::Semaphore& semaphore, const bool& stop) -> gb::Task<int> {
      int n = 0;
      while (!stop && n < 100'000) {
        co_await semaphore.acquire();  // always available: never waits for a permit
        ++n;
      }
      co_return n;
    }(semaphore, stop));
    auto stopper = gb::spawn(note_when_run(stop));
    spins = co_await spinner;
    co_await stopper;
  }(semaphore, spins));
  EXPECT_GT(spins, 0);
  EXPECT_LE(spins, static_cast<int>(gb::detail::k_resume_budget) + 1);
  EXPECT_EQ(semaphore.available(), 1'000'000u - static_cast<unsigned>(spins));
}
