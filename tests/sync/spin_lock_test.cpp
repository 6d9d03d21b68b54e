// SpinLock: exclusion between tasks on every worker of a Runtime (1 to 8 of them, more
// than this machine's cores, so holders are preempted), between plain threads, and on a
// Loop (where it costs nothing). The counters are plain integers: a section the lock
// failed to exclude loses increments, and TSan reports the race.
#include <gearbox/sync/spin_lock.hpp>

#include <mutex>
#include <thread>
#include <vector>

#include <gearbox/join_handle.hpp>
#include <gearbox/loop.hpp>
#include <gearbox/runtime.hpp>
#include <gearbox/spawn.hpp>
#include <gearbox/task.hpp>
#include <gearbox/time.hpp>

#include <gtest/gtest.h>

#include "support/runtime_threads.hpp"

namespace gb = gearbox;

namespace {

constexpr int k_tasks = 32;
constexpr long k_increments = 2000;

struct Shared {
  gb::SpinLock lock;
  long counter = 0;  // under lock
  long pairs = 0;    // under lock: bumped with counter, so always equal to it inside the lock
  long torn = 0;     // under lock: times a holder found counter != pairs
};

// Increments both counters k_increments times, yielding now and then so that tasks
// interleave (and, on a Runtime, migrate) between sections.
gb::Task<void> bump(Shared& shared) {
  for (long i = 0; i < k_increments; ++i) {
    {
      std::lock_guard guard{shared.lock};
      if (shared.counter != shared.pairs) ++shared.torn;
      ++shared.counter;
      ++shared.pairs;
    }
    if (i % 64 == 0) co_await gb::yield_now();
  }
}

gb::Task<void> bump_from_many_tasks(Shared& shared) {
  std::vector<gb::JoinHandle<void>> tasks;
  for (int t = 0; t < k_tasks; ++t) tasks.push_back(gb::spawn(bump(shared)));
  for (auto& task : tasks) co_await std::move(task);
}

class SpinLockOnRuntime : public gearbox_test::OnRuntimeThreads {};

}  // namespace

INSTANTIATE_TEST_SUITE_P(Runtime, SpinLockOnRuntime, gearbox_test::runtime_threads(), gearbox_test::threads_name);

TEST_P(SpinLockOnRuntime, tasks_on_every_worker_never_share_the_section_and_lose_no_increment) {
  Shared shared;
  rt.run(bump_from_many_tasks(shared));
  EXPECT_EQ(shared.counter, k_tasks * k_increments);
  EXPECT_EQ(shared.pairs, k_tasks * k_increments);
  EXPECT_EQ(shared.torn, 0);
}

TEST(SpinLock, plain_threads_never_share_the_section_and_lose_no_increment) {
  Shared shared;
  constexpr int k_threads = 4;
  constexpr long k_each = 200000;
  std::vector<std::thread> threads;
  for (int t = 0; t < k_threads; ++t)
    threads.emplace_back([&shared] {
      for (long i = 0; i < k_each; ++i) {
        std::scoped_lock guard{shared.lock};
        if (shared.counter != shared.pairs) ++shared.torn;
        ++shared.counter;
        ++shared.pairs;
      }
    });
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(shared.counter, k_threads * k_each);
  EXPECT_EQ(shared.torn, 0);
}

TEST(SpinLock, on_a_loop_the_same_task_code_runs_with_the_same_result) {
  Shared shared;
  gb::Loop loop;
  loop.run(bump_from_many_tasks(shared));
  EXPECT_EQ(shared.counter, k_tasks * k_increments);
  EXPECT_EQ(shared.torn, 0);
}
