// Tests of to_thread and the process-wide blocking pool (include/gearbox/to_thread.hpp):
// results and exceptions reach a task on a loop (or a plain thread); the loop runs on while
// a blocking call blocks; the pool grows to as many threads as there are calls blocked at
// once; its limit queues the calls beyond it, and no more than the limit run at once;
// blocking_pool_stats(); cancelling the awaiting task abandons the wait while the call
// runs to its end.
//
// The blocking pool lives for the whole process, so these tests leave it as they found it:
// a LimitGuard restores the limit, and no call is left blocked when a test ends. Idle
// threads stay alive for 10 s, so a test can meet the threads of the tests before it (all
// tests of a binary run in one process unless ctest runs them one by one): the tests say
// where that matters. The first test in this file runs while the pool has no threads yet.
//
// Overlap is proved with latches and barriers that cannot open unless two things run at
// once (a hang, caught by the ctest timeout, is the failure), never by measuring time.
#include <gearbox/to_thread.hpp>

#include <gearbox/error.hpp>
#include <gearbox/future.hpp>
#include <gearbox/join_handle.hpp>
#include <gearbox/loop.hpp>
#include <gearbox/spawn.hpp>
#include <gearbox/task.hpp>
#include <gearbox/thread_pool.hpp>
#include <gearbox/time.hpp>

#include <gtest/gtest.h>

#include "support/describe.hpp"
#include "support/hang_guard.hpp"
#include "support/lifetimes.hpp"

#include <atomic>
#include <barrier>
#include <chrono>
#include <cstddef>
#include <exception>
#include <latch>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace gb = gearbox;
using namespace std::chrono_literals;

namespace {

using gearbox_test::describe;
using gearbox_test::get_guarded;
using gearbox_test::k_hang_guard;
using gearbox_test::Lifetimes;
using gearbox_test::Tracked;

struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Restores the blocking pool's limit when the test ends.
struct LimitGuard {
  std::size_t saved = gb::blocking_pool_stats().max_threads;
  LimitGuard() = default;
  LimitGuard(const LimitGuard&) = delete;
  LimitGuard& operator=(const LimitGuard&) = delete;
  ~LimitGuard() { gb::set_blocking_pool_limit(saved); }
};

// How many calls are inside their body now, and the most there ever were.
struct Concurrency {
  std::atomic<int> running{0};
  std::atomic<int> most{0};
  void enter() {
    const int now = ++running;
    int seen = most.load();
    while (now > seen && !most.compare_exchange_weak(seen, now)) {
    }
  }
  void leave() { --running; }
};

// Waits until every thread of the blocking pool is idle and nothing is queued: the calls
// of the test before have fully returned. Bounded by the test's timeout.
void wait_for_idle_pool() {
  for (;;) {
    const auto s = gb::blocking_pool_stats();
    if (s.idle == s.threads && s.queued == 0) return;
    std::this_thread::yield();
  }
}

// Starts `calls` blocking calls that each wait for `open`, limit `limit`; returns their
// futures once `limit` of them are running and the rest are accounted for (queued, or
// running beyond the limit). Then gives any call beyond the limit a last chance to start
// before the caller opens the gate: up to `grace` (a correct pool is never affected by
// this bound; it only decides how long a broken one has to show itself).
std::vector<gb::Future<int>> start_gated_calls(int calls, int limit, Concurrency& c, std::latch& open,
                                               std::chrono::milliseconds grace) {
  std::vector<gb::Future<int>> futures;
  for (int i = 0; i < calls; ++i)
    futures.push_back(gb::to_thread([&c, &open, i] {
      c.enter();
      open.wait();
      c.leave();
      return i;
    }));
  for (;;) {
    const int running = c.running.load();
    const auto queued = static_cast<int>(gb::blocking_pool_stats().queued);
    if (running > limit || (running == limit && running + queued == calls)) break;
    std::this_thread::yield();
  }
  const auto until = std::chrono::steady_clock::now() + grace;
  while (c.running.load() <= limit && std::chrono::steady_clock::now() < until) std::this_thread::yield();
  return futures;
}

}  // namespace

// Runs first (definition order): in a process that runs the whole file, the blocking pool
// has no threads yet, so the limit decides alone how many threads there are. Where earlier
// calls left idle threads behind (--gtest_repeat, or a shuffled order), this test fails too,
// for the reason given at the next test.
TEST(BlockingPool, a_limit_queues_the_calls_beyond_it_and_they_all_still_complete) {
  constexpr int k_calls = 8;
  constexpr int k_limit = 2;
  LimitGuard guard;
  gb::set_blocking_pool_limit(k_limit);
  EXPECT_EQ(gb::blocking_pool_stats().max_threads, static_cast<std::size_t>(k_limit));
  Concurrency c;
  std::latch open{1};
  auto futures = start_gated_calls(k_calls, k_limit, c, open, 100ms);
  EXPECT_EQ(c.running.load(), k_limit);
  EXPECT_EQ(gb::blocking_pool_stats().queued, static_cast<std::size_t>(k_calls - k_limit));
  open.count_down();
  int wrong = 0;
  for (int i = 0; i < k_calls; ++i)
    if (get_guarded(futures[static_cast<std::size_t>(i)]) != i) ++wrong;
  EXPECT_EQ(wrong, 0);
  EXPECT_EQ(c.most.load(), k_limit);  // never more than the limit at once
}

// Regression: a lowered limit used to bind only threads started after it.
TEST(BlockingPool, a_lowered_limit_also_bounds_the_threads_that_are_already_alive) {
  constexpr int k_calls = 8;
  constexpr int k_limit = 2;
  LimitGuard guard;
  gb::set_blocking_pool_limit(64);
  {
    // Make sure k_calls threads exist: k_calls calls that can only pass their barrier
    // together (with this thread).
    std::barrier<> all(k_calls + 1);
    std::vector<gb::Future<void>> growers;
    for (int i = 0; i < k_calls; ++i) growers.push_back(gb::to_thread([&all] { all.arrive_and_wait(); }));
    all.arrive_and_wait();
    for (auto& g : growers) get_guarded(g);
  }
  wait_for_idle_pool();
  ASSERT_GE(gb::blocking_pool_stats().idle, static_cast<std::size_t>(k_calls));

  gb::set_blocking_pool_limit(k_limit);
  Concurrency c;
  std::latch open{1};
  auto futures = start_gated_calls(k_calls, k_limit, c, open, 200ms);
  open.count_down();
  for (auto& f : futures) (void)get_guarded(f);
  EXPECT_LE(c.most.load(), k_limit);
}

TEST(ToThread, a_result_reaches_the_awaiting_task_which_resumes_on_its_loop) {
  std::thread::id loop_thread, call_thread, resumed_on;
  gb::ThreadPool* pool_in_call = reinterpret_cast<gb::ThreadPool*>(1);
  gb::Loop loop;
  const std::string result = loop.run([&]() -> gb::Task<std::string> {
    loop_thread = std::this_thread::get_id();
    std::string s = co_await gb::to_thread(
        [&](std::string prefix, int n) {
          call_thread = std::this_thread::get_id();
          pool_in_call = gb::ThreadPool::current();
          return prefix + std::to_string(n);
        },
        std::string("answer="), 42);
    resumed_on = std::this_thread::get_id();
    co_return s;
  }());
  EXPECT_EQ(result, "answer=42");
  EXPECT_NE(call_thread, loop_thread);
  EXPECT_EQ(resumed_on, loop_thread);
  EXPECT_EQ(pool_in_call, nullptr);  // the blocking pool is not a ThreadPool
}

TEST(ToThread, an_exception_thrown_by_the_call_is_rethrown_at_the_await) {
  gb::Loop loop;
  std::exception_ptr error;
  loop.run([&]() -> gb::Task<void> {
    try {
      (void)co_await gb::to_thread([]() -> int { throw Failure("blocking call failed"); });
    } catch (const Failure&) {
      error = std::current_exception();
    }
  }());
  ASSERT_TRUE(error);
  // The blocking thread drops its reference to the exception after publishing it; read the
  // message once it has (see describe).
  wait_for_idle_pool();
  EXPECT_EQ(describe(error), "blocking call failed");
}

TEST(ToThread, a_plain_thread_can_get_the_result_and_move_only_values_pass_through) {
  auto future = gb::to_thread([](std::unique_ptr<int> p) { return std::make_unique<int>(*p + 1); }, std::make_unique<int>(1));
  EXPECT_EQ(*get_guarded(future), 2);
  auto failed = gb::to_thread([] { throw Failure("plain"); });
  EXPECT_THROW(get_guarded(failed), Failure);
}

TEST(ToThread, the_loop_keeps_running_while_the_blocking_call_blocks) {
  // The call blocks on a latch that only another task of the same loop opens: both must
  // be running at the same time, or neither finishes (a hang, caught by the timeout).
  std::latch release{1};
  std::atomic<bool> call_started{false}, call_finished{false};
  bool released_while_call_blocked = false;
  std::thread::id loop_thread, helper_thread;
  gb::Loop loop;
  const int value = loop.run([&]() -> gb::Task<int> {
    loop_thread = std::this_thread::get_id();
    auto helper = gb::spawn([](std::atomic<bool>& started, std::atomic<bool>& finished, std::latch& l, bool& overlap,
                               std::thread::id& on) -> gb::Task<void> {
      while (!started.load()) co_await gb::yield_now();
      on = std::this_thread::get_id();
      overlap = !finished.load();
      l.count_down();
    }(call_started, call_finished, release, released_while_call_blocked, helper_thread));
    const int v = co_await gb::to_thread([&] {
      call_started = true;
      release.wait();
      call_finished = true;
      return 7;
    });
    co_await helper;
    co_return v;
  }());
  EXPECT_EQ(value, 7);
  EXPECT_TRUE(released_while_call_blocked);
  EXPECT_EQ(helper_thread, loop_thread);
}

TEST(ToThread, the_blocking_pool_grows_to_run_every_blocked_call_at_once) {
  constexpr int k_calls = 16;
  LimitGuard guard;
  gb::set_blocking_pool_limit(64);
  // Each call waits at a barrier of k_calls + 1: it opens only when all k_calls calls are
  // blocked in it at once (and this thread arrives), which needs k_calls threads.
  std::barrier<> all(k_calls + 1);
  std::vector<gb::Future<int>> futures;
  for (int i = 0; i < k_calls; ++i)
    futures.push_back(gb::to_thread([&all, i] {
      all.arrive_and_wait();
      return i;
    }));
  all.arrive_and_wait();
  const auto during = gb::blocking_pool_stats();
  EXPECT_GE(during.threads, static_cast<std::size_t>(k_calls));
  EXPECT_EQ(during.max_threads, 64u);
  int wrong = 0;
  for (int i = 0; i < k_calls; ++i)
    if (get_guarded(futures[static_cast<std::size_t>(i)]) != i) ++wrong;
  EXPECT_EQ(wrong, 0);
}

TEST(ToThread, many_tasks_on_one_loop_await_blocking_calls_concurrently) {
  constexpr int k_tasks = 24;
  // Half the calls wait at a barrier for the other half: they must overlap.
  std::barrier<> pairs(k_tasks);
  gb::Loop loop;
  const int total = loop.run([&]() -> gb::Task<int> {
    std::vector<gb::JoinHandle<int>> tasks;
    for (int i = 0; i < k_tasks; ++i)
      tasks.push_back(gb::spawn([](std::barrier<>& b, int n) -> gb::Task<int> {
        co_return co_await gb::to_thread([&b, n] {
          b.arrive_and_wait();
          return n;
        });
      }(pairs, i)));
    int sum = 0;
    for (auto& t : tasks) sum += co_await t;
    co_return sum;
  }());
  EXPECT_EQ(total, k_tasks * (k_tasks - 1) / 2);
}

TEST(BlockingPool, stats_report_the_limit_and_an_idle_pool_has_nothing_queued) {
  LimitGuard guard;
  gb::set_blocking_pool_limit(0);  // at least 1
  EXPECT_EQ(gb::blocking_pool_stats().max_threads, 1u);
  gb::set_blocking_pool_limit(33);
  EXPECT_EQ(gb::blocking_pool_stats().max_threads, 33u);

  auto f = gb::to_thread([] { return 1; });
  EXPECT_EQ(get_guarded(f), 1);
  EXPECT_GE(gb::blocking_pool_stats().threads, 1u);  // idle threads stay for a while
  wait_for_idle_pool();
  const auto s = gb::blocking_pool_stats();
  EXPECT_EQ(s.queued, 0u);
  EXPECT_EQ(s.idle, s.threads);
}

TEST(BlockingPool, stats_count_a_running_call_as_a_busy_thread) {
  LimitGuard guard;
  gb::set_blocking_pool_limit(64);
  wait_for_idle_pool();
  std::latch started{1}, open{1};
  auto f = gb::to_thread([&] {
    started.count_down();
    open.wait();
    return 3;
  });
  started.wait();
  const auto s = gb::blocking_pool_stats();
  EXPECT_GE(s.threads, 1u);
  EXPECT_LT(s.idle, s.threads);  // the thread running the call is not idle
  open.count_down();
  EXPECT_EQ(get_guarded(f), 3);
}

namespace {

// Starts a blocking call that holds a Tracked and waits for `gate`. Built in a plain
// function on purpose: g++ 12 destroys a lambda's non-trivial captures twice when the
// lambda is a temporary inside a co_await expression (co_await to_thread([t = ...] {...})),
// which would corrupt the very counts this test checks.
gb::Future<int> start_gated_call(Lifetimes& life, std::latch& gate, std::atomic<bool>& started,
                                 std::atomic<bool>& finished) {
  return gb::to_thread([&gate, &started, &finished, t = Tracked{life, 5}] {
    started = true;
    gate.wait();
    finished = true;
    return t.value();
  });
}

gb::Task<void> await_gated_call(Lifetimes& life, std::latch& gate, std::atomic<bool>& started,
                                std::atomic<bool>& finished, bool& cancelled) {
  try {
    (void)co_await start_gated_call(life, gate, started, finished);
  } catch (const gb::Cancelled&) {
    cancelled = true;
    throw;
  }
}

}  // namespace

TEST(ToThread, cancelling_the_awaiting_task_abandons_the_wait_while_the_call_runs_to_its_end) {
  Lifetimes life;
  std::latch open{1};
  std::atomic<bool> call_started{false}, call_finished{false};
  bool cancelled_at_await = false, task_ended_cancelled = false;
  {
    gb::Loop loop;
    loop.run([&]() -> gb::Task<void> {
      auto waiter = gb::spawn(await_gated_call(life, open, call_started, call_finished, cancelled_at_await));
      while (!call_started.load()) co_await gb::yield_now();
      waiter.cancel();
      try {
        co_await waiter;
      } catch (const gb::Cancelled&) {
        task_ended_cancelled = true;
      }
    }());
  }
  EXPECT_TRUE(cancelled_at_await);
  EXPECT_TRUE(task_ended_cancelled);
  EXPECT_FALSE(call_finished.load());  // the task ended while the call was still blocked
  EXPECT_EQ(life.alive(), 1);          // the call, still running, holds its capture
  open.count_down();
  while (life.alive() != 0) std::this_thread::yield();  // the call ends; its captures go
  EXPECT_TRUE(call_finished.load());
}
