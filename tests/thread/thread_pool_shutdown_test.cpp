// Tests of ThreadPool::shutdown (include/gearbox/thread_pool.hpp) in both modes (wait,
// cancel_pending) and of the destructor: the work that was queued is finished or
// cancelled, intake stops, jobs still running can fork and join, and what a cancelled job
// captured is destroyed once. The other tests of ThreadPool are in thread_pool_test and
// thread_pool_stress_test; the helpers they share are in thread_test_support.hpp.
//
// Shutdown and cancellation are tested on a saturated pool (libuv's saturate_threadpool):
// every worker is first blocked in a job that waits on a latch the test opens, so the jobs
// queued behind them are known not to have started when shutdown begins. "Shutdown has
// begun" is observed through the pool itself (submit throws ShutdownError, or cancelling()
// is true), never by sleeping.
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

using gearbox_test::Gate;
using gearbox_test::get_guarded;
using gearbox_test::Lifetimes;
using gearbox_test::saturate;
using gearbox_test::Tracked;

// Submits no-op probes until the pool refuses one (its shutdown has begun); returns the
// futures of the probes that got in (they must complete like any other job).
std::vector<gb::Future<int>> probe_until_shut(gb::ThreadPool& pool) {
  std::vector<gb::Future<int>> accepted;
  for (;;) {
    try {
      accepted.push_back(pool.submit([] { return -1; }));
    } catch (const gb::ShutdownError&) {
      return accepted;
    }
    std::this_thread::yield();
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Shutdown (saturated pools) and the destructor
// ---------------------------------------------------------------------------------------

TEST(ThreadPoolShutdown, shutdown_wait_finishes_the_work_that_was_queued) {
  constexpr int k_queued = 100;
  Gate gate{2};
  gb::ThreadPool pool{{.workers = 2}};
  auto blockers = saturate(pool, gate);
  std::vector<gb::Future<int>> queued;
  for (int i = 0; i < k_queued; ++i) queued.push_back(pool.submit([i] { return i * 3; }));

  std::jthread stopper([&] { pool.shutdown(gb::ShutdownMode::wait); });
  std::vector<gb::Future<int>> probes = probe_until_shut(pool);
  EXPECT_FALSE(queued.front().ready());  // nothing queued has run: every worker is blocked
  EXPECT_THROW((void)pool.submit([] { return 0; }), gb::ShutdownError);
  gate.open.count_down();
  stopper.join();

  // shutdown returned: every future already holds its value.
  int wrong = 0;
  for (int i = 0; i < k_queued; ++i) {
    auto& f = queued[static_cast<std::size_t>(i)];
    if (!f.ready() || f.get() != i * 3) ++wrong;
  }
  EXPECT_EQ(wrong, 0);
  for (std::size_t i = 0; i < blockers.size(); ++i) {
    ASSERT_TRUE(blockers[i].ready());
    EXPECT_EQ(blockers[i].get(), 1000 + static_cast<int>(i));
  }
  for (auto& p : probes) {
    ASSERT_TRUE(p.ready());
    EXPECT_EQ(p.get(), -1);
  }
}

TEST(ThreadPoolShutdown, shutdown_cancel_pending_cancels_queued_jobs_while_running_ones_finish) {
  constexpr int k_queued = 50;
  Lifetimes life;
  std::atomic<int> queued_ran{0};
  Gate gate{2};
  gb::ThreadPool pool{{.workers = 2}};
  auto blockers = saturate(pool, gate);
  std::vector<gb::Future<int>> queued;
  for (int i = 0; i < k_queued; ++i)
    queued.push_back(pool.submit([&queued_ran, t = Tracked{life, i}] {
      ++queued_ran;
      return t.value();
    }));

  std::jthread stopper([&] { pool.shutdown(gb::ShutdownMode::cancel_pending); });
  while (!gb::detail::PoolAccess::cancelling(pool)) std::this_thread::yield();
  EXPECT_THROW((void)pool.submit([] { return 0; }), gb::ShutdownError);
  gate.open.count_down();
  stopper.join();

  for (std::size_t i = 0; i < blockers.size(); ++i) EXPECT_EQ(get_guarded(blockers[i]), 1000 + static_cast<int>(i));
  int cancelled = 0;
  for (auto& f : queued) {
    ASSERT_TRUE(f.ready());
    try {
      (void)f.get();
    } catch (const gb::Cancelled&) {
      ++cancelled;
    }
  }
  EXPECT_EQ(cancelled, k_queued);
  EXPECT_EQ(queued_ran.load(), 0);
  EXPECT_EQ(life.alive(), 0);  // every cancelled job's captures were destroyed, once
  EXPECT_EQ(life.corrupt.load(), 0);
}

TEST(ThreadPoolShutdown, cancel_pending_after_a_wait_cancels_what_is_still_queued) {
  constexpr int k_queued = 20;
  Gate gate{1};
  gb::ThreadPool pool{{.workers = 1}};
  auto blockers = saturate(pool, gate);
  std::vector<gb::Future<int>> queued;
  for (int i = 0; i < k_queued; ++i) queued.push_back(pool.submit([i] { return i; }));
  std::jthread waiter([&] { pool.shutdown(gb::ShutdownMode::wait); });
  auto probes = probe_until_shut(pool);
  std::jthread canceller([&] { pool.shutdown(gb::ShutdownMode::cancel_pending); });  // stricter: allowed
  while (!gb::detail::PoolAccess::cancelling(pool)) std::this_thread::yield();
  gate.open.count_down();
  waiter.join();
  canceller.join();
  int cancelled = 0;
  for (auto& f : queued) {
    ASSERT_TRUE(f.ready());
    try {
      (void)f.get();
    } catch (const gb::Cancelled&) {
      ++cancelled;
    }
  }
  EXPECT_EQ(cancelled, k_queued);
  for (auto& p : probes) {
    ASSERT_TRUE(p.ready());
    EXPECT_THROW((void)p.get(), gb::Cancelled);
  }
  EXPECT_EQ(get_guarded(blockers[0]), 1000);
}

TEST(ThreadPoolShutdown, submit_after_shutdown_throws_shutdown_error_and_frees_the_call_once) {
  Lifetimes life;
  for (auto mode : {gb::ShutdownMode::wait, gb::ShutdownMode::cancel_pending}) {
    gb::ThreadPool pool{{.workers = 2}};
    pool.shutdown(mode);
    EXPECT_THROW((void)pool.submit([t = Tracked{life, 1}] { return t.value(); }), gb::ShutdownError);
    EXPECT_THROW((void)pool.submit([](Tracked t) { return t.value(); }, Tracked{life, 2}), gb::ShutdownError);
    EXPECT_THROW((void)pool.map([](int x) { return x; }, std::vector<int>{1, 2}), gb::ShutdownError);
    std::atomic<int> calls{0};
    EXPECT_THROW(pool.parallel_for(0, 10, [&](std::size_t) { ++calls; }), gb::ShutdownError);
    EXPECT_EQ(calls.load(), 0);
    try {
      (void)pool.submit([] {});
    } catch (const gb::Error&) {  // part of the one hierarchy
    }
    pool.shutdown(mode);  // idempotent
  }
  EXPECT_EQ(life.alive(), 0);
  EXPECT_EQ(life.corrupt.load(), 0);
}

TEST(ThreadPoolShutdown, jobs_running_during_shutdown_wait_can_still_fork_and_join) {
  constexpr int k_children = 20;
  std::mutex orphans_mutex;
  std::vector<gb::Future<int>> orphans;  // children nobody waits for inside the pool
  Gate gate{2};
  gb::ThreadPool pool{{.workers = 2}};
  auto blockers = saturate(pool, gate, [&](int i) {
    // Fork-join in flight: children, and grandchildren, submitted after shutdown began.
    std::vector<gb::Future<int>> children;
    for (int c = 0; c < k_children; ++c)
      children.push_back(pool.submit([&pool, c] { return pool.submit([c] { return c; }).get() + 1; }));
    int sum = 0;
    for (auto& child : children) sum += child.get();
    {
      std::lock_guard lock(orphans_mutex);
      orphans.push_back(pool.submit([i] { return 100 + i; }));
    }
    return sum;
  });
  std::jthread stopper([&] { pool.shutdown(gb::ShutdownMode::wait); });
  auto probes = probe_until_shut(pool);
  gate.open.count_down();
  stopper.join();

  const int expected = k_children * (k_children - 1) / 2 + k_children;
  for (auto& b : blockers) {
    ASSERT_TRUE(b.ready());
    EXPECT_EQ(b.get(), expected);
  }
  std::lock_guard lock(orphans_mutex);
  ASSERT_EQ(orphans.size(), 2u);
  for (auto& o : orphans) {
    ASSERT_TRUE(o.ready());  // shutdown(wait) ran them before it returned
    const int v = o.get();
    EXPECT_TRUE(v == 100 || v == 101) << v;
  }
  for (auto& p : probes) EXPECT_EQ(get_guarded(p), -1);
}

TEST(ThreadPoolShutdown, the_destructor_drains_the_queued_work) {
  constexpr int k_queued = 200;
  Gate gate{2};
  std::vector<gb::Future<int>> queued;
  {
    gb::ThreadPool pool{{.workers = 2}};
    auto blockers = saturate(pool, gate);
    for (int i = 0; i < k_queued; ++i) queued.push_back(pool.submit([i] { return i + 1; }));
    gate.open.count_down();
  }
  int wrong = 0;
  for (int i = 0; i < k_queued; ++i) {
    auto& f = queued[static_cast<std::size_t>(i)];
    if (!f.ready() || f.get() != i + 1) ++wrong;
  }
  EXPECT_EQ(wrong, 0);
}

TEST(ThreadPoolShutdown, shutdown_from_a_job_stops_intake_and_the_destructor_joins) {
  std::vector<gb::Future<int>> later;
  std::atomic<bool> refused{false};
  {
    gb::ThreadPool pool{{.workers = 2}};
    auto job = pool.submit([&] {
      pool.shutdown();  // from a job: no join (it would wait for itself)
      // A job of the pool may still submit; a stranger may not.
      std::thread stranger([&] {
        try {
          (void)pool.submit([] { return 0; });
        } catch (const gb::ShutdownError&) {
          refused = true;
        }
      });
      stranger.join();
      return pool.submit([] { return 9; }).get();
    });
    EXPECT_EQ(get_guarded(job), 9);
  }
  EXPECT_TRUE(refused);
}
