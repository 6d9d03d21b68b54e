// Stress tests of ThreadPool (include/gearbox/thread_pool.hpp), parameterised over the
// number of threads (1, 2, 4, 8, 32): nested fork-join and deep chains of nested waits
// (which must not deadlock, even on one thread), external threads and nested submits,
// parallel_for and map from outside and from workers, jobs that wait for each other, and
// submits racing shutdown. The other tests of ThreadPool are in thread_pool_test and
// thread_pool_shutdown_test; the helpers they share are in thread_test_support.hpp.
//
// Objects a job uses (latches, counters) are declared before the pool, so that the pool's
// destructor has joined its workers before they go away. Sizes are bounded so the file
// runs in seconds under TSan on two cores.
#include <gearbox/thread_pool.hpp>

#include <gearbox/error.hpp>
#include <gearbox/future.hpp>
#include <gearbox/join_handle.hpp>
#include <gearbox/loop.hpp>
#include <gearbox/spawn.hpp>
#include <gearbox/task.hpp>
#include <gearbox/time.hpp>

#include <gtest/gtest.h>

#include "support/describe.hpp"
#include "support/hang_guard.hpp"
#include "support/lifetimes.hpp"
#include "thread_test_support.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <exception>
#include <functional>
#include <latch>
#include <list>
#include <memory>
#include <mutex>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace gb = gearbox;
using namespace std::chrono_literals;

namespace {

using gearbox_test::get_guarded;
using gearbox_test::k_hang_guard;
using gearbox_test::k_start_guard;

int fib(gb::ThreadPool& pool, int n) {
  if (n < 2) return n;
  gb::Future<int> left = pool.submit(fib, std::ref(pool), n - 1);
  const int right = fib(pool, n - 2);
  return left.get() + right;
}

// A chain of jobs, each waiting for the next: `depth` nested waits.
int chain(gb::ThreadPool& pool, int depth) {
  if (depth == 0) return 0;
  return pool.submit(chain, std::ref(pool), depth - 1).get() + 1;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Stress, over thread counts
// ---------------------------------------------------------------------------------------

// The thread counts run from 1 to 32 on a machine of any size. Where the pool has many
// more workers than the machine has cores (32 on 2), every nested wait and every round
// depends on the OS scheduling threads that spin, and under a sanitizer that made one test
// take from 3 s to 34 s from one run to the next. So the work shrinks with the
// oversubscription: the same shapes (nesting depth beyond the worker count, every worker
// waiting for every other), fewer repetitions. What each test proves does not depend on
// how many times it is repeated; how long it takes must not depend on luck.
bool heavily_oversubscribed(std::size_t workers) { return workers > 4 * std::max(1u, std::thread::hardware_concurrency()); }

class PoolStress : public ::testing::TestWithParam<std::size_t> {
protected:
  // `full` repetitions, or `oversubscribed` of them when the pool is heavily oversubscribed.
  int repetitions(int full, int oversubscribed) const { return heavily_oversubscribed(GetParam()) ? oversubscribed : full; }
};

TEST_P(PoolStress, nested_fork_join_fib_gives_the_right_answer_without_deadlock) {
  gb::ThreadPool pool{{.workers = GetParam()}};
  // fib(20): 21,891 jobs nested 20 deep; fib(13): 753 jobs nested 13 deep, still far
  // more waits at once than the machine has cores.
  const int n = repetitions(20, 13);
  auto root = pool.submit(fib, std::ref(pool), n);
  EXPECT_EQ(get_guarded(root), n == 20 ? 6765 : 233);
  EXPECT_EQ(fib(pool, 15), 610);  // from outside the pool too: only the submitted halves run there
}

TEST_P(PoolStress, a_chain_of_nested_waits_deeper_than_the_worker_count_finishes) {
  // Deeper than the worker count either way; each level may wait for a time slice of
  // the OS when 32 workers share 2 cores.
  const int k_depth = repetitions(200, 40);
  gb::ThreadPool pool{{.workers = GetParam()}};
  auto root = pool.submit(chain, std::ref(pool), k_depth);
  EXPECT_EQ(get_guarded(root), k_depth);
}

TEST_P(PoolStress, external_threads_and_nested_submits_complete_every_future_exactly_once) {
  constexpr int k_external = 4;
  constexpr int k_per_thread = 200;
  constexpr int k_total = k_external * k_per_thread;
  std::vector<std::atomic<int>> parent_runs(k_total), child_runs(k_total);
  std::atomic<int> wrong{0};
  gb::ThreadPool pool{{.workers = GetParam()}};
  {
    std::vector<std::jthread> submitters;
    for (int t = 0; t < k_external; ++t)
      submitters.emplace_back([&, t] {
        std::vector<gb::Future<long>> futures;
        futures.reserve(k_per_thread);
        for (int j = 0; j < k_per_thread; ++j) {
          const int id = t * k_per_thread + j;
          futures.push_back(pool.submit([&, id]() -> long {
            parent_runs[static_cast<std::size_t>(id)].fetch_add(1);
            auto child = pool.submit([&, id]() -> long {
              child_runs[static_cast<std::size_t>(id)].fetch_add(1);
              return 2L * id;
            });
            return child.get() + 1;
          }));
        }
        for (int j = 0; j < k_per_thread; ++j) {
          const int id = t * k_per_thread + j;
          auto& f = futures[static_cast<std::size_t>(j)];
          if (!f.wait_for(k_hang_guard) || f.get() != 2L * id + 1 || f.valid()) ++wrong;
        }
      });
  }
  EXPECT_EQ(wrong.load(), 0);
  int not_once = 0;
  for (int i = 0; i < k_total; ++i)
    if (parent_runs[static_cast<std::size_t>(i)].load() != 1 || child_runs[static_cast<std::size_t>(i)].load() != 1)
      ++not_once;
  EXPECT_EQ(not_once, 0);
}

TEST_P(PoolStress, parallel_for_and_map_from_outside_and_from_workers_cover_every_index_once) {
  constexpr std::size_t k_n = 3001;
  gb::ThreadPool pool{{.workers = GetParam()}};
  std::vector<std::atomic<int>> outside(k_n), inside(k_n);
  pool.parallel_for(0, k_n, [&](std::size_t i) { outside[i].fetch_add(1); });
  auto nested = pool.submit([&] {
    // Two parallel_fors at once from inside the pool, the second one nested in the first.
    pool.parallel_for(0, 3, [&](std::size_t part) {
      const std::size_t b = part * k_n / 3, e = (part + 1) * k_n / 3;
      pool.parallel_for(b, e, [&](std::size_t i) { inside[i].fetch_add(1); });
    });
  });
  ASSERT_TRUE(nested.wait_for(k_hang_guard));
  nested.get();
  int wrong = 0;
  for (std::size_t i = 0; i < k_n; ++i)
    if (outside[i].load() != 1 || inside[i].load() != 1) ++wrong;
  EXPECT_EQ(wrong, 0);

  std::vector<int> inputs(k_n);
  std::iota(inputs.begin(), inputs.end(), 0);
  auto doubled = pool.map([](int x) { return 2 * x; }, inputs);
  const auto out = get_guarded(doubled);
  ASSERT_EQ(out.size(), k_n);
  int misplaced = 0;
  for (std::size_t i = 0; i < k_n; ++i)
    if (out[i] != 2 * static_cast<int>(i)) ++misplaced;
  EXPECT_EQ(misplaced, 0);
}

// Regression: jobs moved from the injection queue into a worker's deque used to be
// announced without the parking fence, so a parking worker could miss them.
TEST_P(PoolStress, as_many_jobs_as_workers_that_wait_for_each_other_all_run_at_once) {
  const int k_rounds = repetitions(150, 20);
  const std::size_t n = GetParam();
  gb::ThreadPool pool{{.workers = n}};
  int stuck_rounds = 0;
  for (int round = 0; round < k_rounds && stuck_rounds == 0; ++round) {
    // A pause of 0 to 120 us between rounds, so that rounds begin with the workers still
    // spinning, just parking, or asleep (an aid to reach the interleaving, not a threshold).
    std::this_thread::sleep_for(std::chrono::microseconds(30 * (round % 5)));
    // Each job arrives, then waits until all n have arrived (or the test gives up).
    auto arrived = std::make_shared<std::atomic<std::size_t>>(0);
    auto give_up = std::make_shared<std::atomic<bool>>(false);
    std::vector<gb::Future<bool>> jobs;
    for (std::size_t i = 0; i < n; ++i)
      jobs.push_back(pool.submit([arrived, give_up, n] {
        ++*arrived;
        while (arrived->load() < n && !give_up->load()) std::this_thread::yield();
        return arrived->load() >= n;
      }));
    const auto until = std::chrono::steady_clock::now() + k_start_guard;
    bool all_met = true;
    for (auto& j : jobs) {
      const auto left = until - std::chrono::steady_clock::now();
      if (left <= std::chrono::steady_clock::duration::zero() || !j.wait_for(left)) {
        all_met = false;
        break;
      }
    }
    if (!all_met) {
      ++stuck_rounds;
      *give_up = true;  // releases the jobs that did start, so the pool can be joined
    }
    for (auto& j : jobs) (void)get_guarded(j);
  }
  EXPECT_EQ(stuck_rounds, 0);
}

// Regression: a submit racing shutdown() used to be accepted and then never run.
TEST_P(PoolStress, submits_racing_shutdown_either_throw_or_complete_before_shutdown_returns) {
  const int k_rounds = repetitions(60, 8);  // each round starts and joins a pool
  int lost = 0, accepted_total = 0;
  for (int round = 0; round < k_rounds; ++round) {
    gb::ThreadPool pool{{.workers = GetParam()}};
    std::vector<gb::Future<int>> accepted;
    std::atomic<bool> started{false};
    std::jthread submitter([&] {
      for (int i = 0;; ++i) {
        try {
          accepted.push_back(pool.submit([i] { return i; }));
        } catch (const gb::ShutdownError&) {
          return;
        }
        started = true;
      }
    });
    while (!started) std::this_thread::yield();
    pool.shutdown(round % 2 == 0 ? gb::ShutdownMode::wait : gb::ShutdownMode::cancel_pending);
    submitter.join();
    // shutdown has returned and every submit has returned: an accepted job either ran or
    // was cancelled; none may still be waiting in a queue nobody reads.
    for (auto& f : accepted)
      if (!f.ready()) ++lost;
    accepted_total += static_cast<int>(accepted.size());
  }
  EXPECT_EQ(lost, 0);
  EXPECT_GT(accepted_total, 0);
}

INSTANTIATE_TEST_SUITE_P(ThreadPool, PoolStress, ::testing::Values(std::size_t{1}, std::size_t{2}, std::size_t{4}, std::size_t{8}, std::size_t{32}),
                         [](const ::testing::TestParamInfo<std::size_t>& info) { return "threads_" + std::to_string(info.param); });
