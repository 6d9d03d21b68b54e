// The contract the thread engine shares with the others: Future::cancel withdrawing a job
// that has not started (ThreadPool and to_thread), a cancelled awaiting task withdrawing
// its queued job, as_completed / imap_unordered streams (result_stream.hpp), the
// EngineStats figures, and the two ShutdownModes.
//
// Jobs are known not to have started because every worker is first blocked on a latch
// the test opens (the pool is saturated); nothing here sleeps to order events.
#include <gearbox/thread_pool.hpp>

#include <gearbox/error.hpp>
#include <gearbox/future.hpp>
#include <gearbox/loop.hpp>
#include <gearbox/result_stream.hpp>
#include <gearbox/spawn.hpp>
#include <gearbox/task.hpp>
#include <gearbox/time.hpp>
#include <gearbox/to_thread.hpp>

#include <gtest/gtest.h>

#include "support/hang_guard.hpp"

#include <atomic>
#include <chrono>
#include <latch>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace gb = gearbox;
using namespace std::chrono_literals;

namespace {

using gearbox_test::k_hang_guard;

// Blocks the pool's only worker until open() is called; started() once it runs.
struct Blocker {
  std::latch started_latch{1};
  std::latch open_latch{1};
  gb::Future<int> future;

  explicit Blocker(gb::ThreadPool& pool) {
    future = pool.submit([this] {
      started_latch.count_down();
      open_latch.wait();
      return 1;
    });
    started_latch.wait();
  }
  void open() { open_latch.count_down(); }
};

TEST(PoolCancel, a_queued_job_is_withdrawn_and_never_runs) {
  std::atomic<int> runs{0};
  gb::ThreadPool pool{{.workers = 1}};
  Blocker blocker{pool};
  auto queued = pool.submit([&runs] { return ++runs; });
  EXPECT_TRUE(queued.cancel());
  EXPECT_TRUE(queued.ready());  // at once: nobody has to reach it first
  EXPECT_FALSE(queued.cancel());
  blocker.open();
  EXPECT_EQ(blocker.future.get(), 1);
  EXPECT_THROW(queued.get(), gb::Cancelled);
  pool.shutdown();
  EXPECT_EQ(runs.load(), 0);
  const gb::EngineStats stats = pool.stats();
  EXPECT_EQ(stats.submitted, 2u);
  EXPECT_EQ(stats.completed, 1u);
  EXPECT_EQ(stats.cancelled, 1u);
  EXPECT_EQ(stats.queued + stats.running + stats.failed, 0u);
}

TEST(PoolCancel, a_running_or_finished_job_is_not_withdrawn) {
  gb::ThreadPool pool{{.workers = 1}};
  Blocker blocker{pool};
  EXPECT_FALSE(blocker.future.cancel());  // running
  blocker.open();
  blocker.future.wait();
  EXPECT_FALSE(blocker.future.cancel());  // finished
  EXPECT_EQ(blocker.future.get(), 1);
}

TEST(PoolCancel, a_promise_future_cannot_be_withdrawn_and_an_invalid_one_says_no) {
  gb::Promise<int> promise;
  auto future = promise.get_future();
  EXPECT_FALSE(future.cancel());
  promise.set_value(3);
  EXPECT_EQ(future.get(), 3);
  EXPECT_FALSE(future.cancel());  // taken: invalid
}

TEST(PoolCancel, cancelling_a_task_that_awaits_a_queued_job_withdraws_the_job) {
  std::atomic<int> runs{0};
  gb::ThreadPool pool{{.workers = 1}};
  Blocker blocker{pool};
  gb::Loop loop;
  bool cancelled = false;
  loop.run([&]() -> gb::Task<void> {
    // Parameters, not captures: the lambda is a temporary that dies before the task runs.
    auto waiter = gb::spawn([](gb::ThreadPool& p, std::atomic<int>& count) -> gb::Task<void> {
      auto job = p.submit([&count] { return ++count; });
      (void)co_await job;
    }(pool, runs));
    co_await gb::yield_now();  // the waiter is suspended on the job now
    waiter.cancel();
    try {
      co_await waiter;
    } catch (const gb::Cancelled&) {
      cancelled = true;
    }
  }());
  EXPECT_TRUE(cancelled);
  blocker.open();
  pool.shutdown();
  EXPECT_EQ(runs.load(), 0);
  EXPECT_EQ(pool.stats().cancelled, 1u);
}

TEST(PoolCancel, a_to_thread_call_still_queued_is_withdrawn) {
  const std::size_t saved = gb::blocking_pool_stats().max_threads;
  gb::set_blocking_pool_limit(1);
  std::latch started{1}, open{1};
  std::atomic<int> runs{0};
  auto blocker = gb::to_thread([&] {
    started.count_down();
    open.wait();
  });
  started.wait();
  auto queued = gb::to_thread([&runs] { ++runs; });
  EXPECT_TRUE(queued.cancel());
  open.count_down();
  blocker.get();
  EXPECT_THROW(queued.get(), gb::Cancelled);
  auto after = gb::to_thread([] { return 5; });  // the pool went past the withdrawn call
  EXPECT_EQ(after.get(), 5);
  EXPECT_EQ(runs.load(), 0);
  gb::set_blocking_pool_limit(saved);
}

TEST(PoolStreams, as_completed_gives_each_index_once_with_its_result_or_its_error) {
  gb::ThreadPool pool{{.workers = 2}};
  std::vector<int> inputs{0, 1, 2, 3, 4, 5, 6, 7};
  auto stream = pool.as_completed(
      [](int x) {
        if (x % 3 == 0) throw std::runtime_error("bad " + std::to_string(x));
        return x * 10;
      },
      inputs);
  std::vector<int> hits(inputs.size());
  for (;;) {
    auto next = stream.next();
    ASSERT_TRUE(next.wait_for(k_hang_guard));
    auto done = next.get();
    if (!done) break;
    ++hits.at(done->index);
    const int x = inputs[done->index];
    if (x % 3 == 0) {
      EXPECT_TRUE(done->failed());
      EXPECT_THROW(done->result(), std::runtime_error);
    } else {
      EXPECT_FALSE(done->failed());
      EXPECT_EQ(done->result(), x * 10);
      EXPECT_THROW(done->result(), std::logic_error);  // a value is taken once
    }
  }
  EXPECT_EQ(hits, std::vector<int>(inputs.size(), 1));
  EXPECT_EQ(stream.next().get(), std::nullopt);
}

TEST(PoolStreams, imap_unordered_yields_every_value_once_and_rethrows_a_failure_in_place) {
  gb::ThreadPool pool{{.workers = 2}};
  std::vector<int> inputs(200);
  for (int i = 0; i < 200; ++i) inputs[static_cast<std::size_t>(i)] = i;
  auto stream = pool.imap_unordered(
      [](int x) {
        if (x == 17) throw std::runtime_error("seventeen");
        return x * x;
      },
      inputs);
  std::multiset<int> seen;
  int errors = 0;
  for (;;) {
    try {
      auto value = stream.next().get();
      if (!value) break;
      seen.insert(*value);
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "seventeen");
      ++errors;
    }
  }
  std::multiset<int> expected;
  for (int x : inputs)
    if (x != 17) expected.insert(x * x);
  EXPECT_EQ(seen, expected);
  EXPECT_EQ(errors, 1);
}

TEST(PoolStreams, a_stream_is_consumed_by_a_loop_task_without_blocking_its_loop) {
  gb::ThreadPool pool{{.workers = 2}};
  gb::Loop loop;
  int sum = 0;
  loop.run([&]() -> gb::Task<void> {
    auto stream = pool.as_completed([](int x) { return x + 1; }, std::vector<int>{1, 2, 3});
    while (auto done = co_await stream.next()) sum += done->result();
  }());
  EXPECT_EQ(sum, 9);
}

TEST(PoolStreams, a_failure_nobody_took_is_reported_when_its_completed_is_dropped) {
  testing::internal::CaptureStderr();
  {
    gb::ThreadPool pool{{.workers = 1}};
    auto stream = pool.as_completed([](int) -> int { throw std::runtime_error("dropped-7c1d"); }, std::vector<int>{1});
    auto done = stream.next().get();
    ASSERT_TRUE(done.has_value());
    EXPECT_TRUE(done->failed());
  }
  const std::string output = testing::internal::GetCapturedStderr();
  EXPECT_NE(output.find("dropped-7c1d"), std::string::npos) << output;
}

TEST(PoolStreams, after_shutdown_cancel_pending_elements_not_started_arrive_as_cancelled) {
  gb::ThreadPool pool{{.workers = 1}};
  Blocker blocker{pool};
  auto stream = pool.as_completed([](int x) { return x; }, std::vector<int>{1, 2, 3});
  std::jthread stopper([&] { pool.shutdown(gb::ShutdownMode::cancel_pending); });
  while (!gb::detail::PoolAccess::cancelling(pool)) std::this_thread::yield();
  blocker.open();
  int cancelled = 0;
  while (auto done = stream.next().get()) {
    EXPECT_THROW(done->result(), gb::Cancelled);
    ++cancelled;
  }
  EXPECT_EQ(cancelled, 3);
}

TEST(PoolStats, the_figures_add_up_once_the_pool_is_idle) {
  gb::ThreadPool pool{{.workers = 2}};
  std::vector<gb::Future<int>> futures;
  for (int i = 0; i < 50; ++i)
    futures.push_back(pool.submit([i] {
      if (i % 10 == 0) throw std::runtime_error("x");
      return i;
    }));
  // A job that submits from inside the pool counts too.
  auto nested = pool.submit([&pool] { return pool.submit([] { return 1; }).get(); });
  int failed = 0;
  for (auto& f : futures) {
    try {
      (void)f.get();
    } catch (const std::runtime_error&) {
      ++failed;
    }
  }
  EXPECT_EQ(nested.get(), 1);
  pool.shutdown();
  const gb::EngineStats stats = pool.stats();
  EXPECT_EQ(failed, 5);
  EXPECT_EQ(stats.submitted, 52u);
  EXPECT_EQ(stats.failed, 5u);
  EXPECT_EQ(stats.completed, 47u);
  EXPECT_EQ(stats.cancelled + stats.queued + stats.running, 0u);
}

TEST(PoolStats, a_saturated_pool_shows_its_running_and_queued_jobs) {
  gb::ThreadPool pool{{.workers = 1}};
  Blocker blocker{pool};
  auto a = pool.submit([] { return 2; });
  auto b = pool.submit([] { return 3; });
  const gb::EngineStats during = pool.stats();
  EXPECT_EQ(during.submitted, 3u);
  EXPECT_EQ(during.running, 1u);
  EXPECT_EQ(during.queued, 2u);
  blocker.open();
  EXPECT_EQ(a.get() + b.get(), 5);
}

TEST(PoolStats, the_blocking_pool_reports_the_same_figures) {
  const gb::BlockingPoolStats before = gb::blocking_pool_stats();
  auto ok = gb::to_thread([] { return 1; });
  auto bad = gb::to_thread([]() -> int { throw std::runtime_error("x"); });
  EXPECT_EQ(ok.get(), 1);
  EXPECT_THROW(bad.get(), std::runtime_error);
  // A call's end is counted just after its future completes, on the pool's thread: wait
  // (bounded) until both are. The figures are process-wide and only move forward.
  gb::BlockingPoolStats after = gb::blocking_pool_stats();
  const auto until = std::chrono::steady_clock::now() + k_hang_guard;
  while ((after.completed == before.completed || after.failed == before.failed) &&
         std::chrono::steady_clock::now() < until) {
    std::this_thread::yield();
    after = gb::blocking_pool_stats();
  }
  EXPECT_GE(after.submitted - before.submitted, 2u);
  EXPECT_GE(after.completed - before.completed, 1u);
  EXPECT_GE(after.failed - before.failed, 1u);
}

}  // namespace
