// Tests of ThreadPool (include/gearbox/thread_pool.hpp): submit (how arguments are passed,
// results, exceptions), map, parallel_for (both forms), parallel_reduce, ThreadPool::current,
// schedule(), the lifetime of what a job captured, and reporting of failures nobody took.
// Shutdown in both modes and the destructor have a file of their own
// (thread_pool_shutdown_test), and so have the stress tests parameterised over the number
// of threads, nested fork-join and deep chains of nested waits included
// (thread_pool_stress_test); the helpers they share are in thread_test_support.hpp.
//
// A cancelled job is observed on a saturated pool (see thread_test_support.hpp): every
// worker is first blocked in a job that waits on a latch the test opens, so the jobs
// queued behind them are known not to have started when shutdown begins.
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

struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

using gearbox_test::count_of;
using gearbox_test::describe;
using gearbox_test::Gate;
using gearbox_test::get_guarded;
using gearbox_test::k_hang_guard;
using gearbox_test::Lifetimes;
using gearbox_test::saturate;
using gearbox_test::Tracked;

// Counts copies and moves of itself.
struct Probe {
  std::atomic<int>* copies;
  std::atomic<int>* moves;
  Probe(std::atomic<int>& c, std::atomic<int>& m) : copies(&c), moves(&m) {}
  Probe(const Probe& other) : copies(other.copies), moves(other.moves) { ++*copies; }
  Probe(Probe&& other) noexcept : copies(other.copies), moves(other.moves) { ++*moves; }
  Probe& operator=(const Probe&) = delete;
};

}  // namespace

// ---------------------------------------------------------------------------------------
// submit
// ---------------------------------------------------------------------------------------

TEST(ThreadPool, submit_runs_the_call_on_a_worker_and_returns_its_result) {
  gb::ThreadPool pool{{.workers = 2}};
  EXPECT_EQ(pool.size(), 2u);
  auto future = pool.submit([&pool] {
    return std::make_pair(std::this_thread::get_id(), gb::ThreadPool::current() == &pool);
  });
  const auto [thread, on_pool] = get_guarded(future);
  EXPECT_NE(thread, std::this_thread::get_id());
  EXPECT_TRUE(on_pool);
  EXPECT_FALSE(future.valid());
}

TEST(ThreadPool, a_pool_of_zero_threads_gets_one_per_hardware_thread) {
  gb::ThreadPool pool;
  EXPECT_EQ(pool.size(), std::max(1u, std::thread::hardware_concurrency()));
  auto f = pool.submit([] { return 5; });
  EXPECT_EQ(get_guarded(f), 5);
}

TEST(ThreadPool, submit_passes_arguments_by_decay_copy_and_moves_rvalues) {
  gb::ThreadPool pool{{.workers = 2}};
  std::atomic<int> copies{0}, moves{0};
  Probe lvalue{copies, moves};
  auto by_lvalue = pool.submit([](const Probe& p) { return &p; }, lvalue);
  EXPECT_NE(get_guarded(by_lvalue), &lvalue);  // the job has its own copy, not a reference
  EXPECT_EQ(copies.load(), 1);                 // copied once, into the job; moved after that

  copies = 0;
  auto by_rvalue = pool.submit([](Probe p) { return p.copies != nullptr; }, Probe{copies, moves});
  EXPECT_TRUE(get_guarded(by_rvalue));
  EXPECT_EQ(copies.load(), 0);  // an rvalue is only ever moved
  EXPECT_GT(moves.load(), 0);

  // Arrays decay to pointers, and std::ref passes a real reference.
  auto decayed = pool.submit([](const char* s) { return std::string(s); }, "literal");
  EXPECT_EQ(get_guarded(decayed), "literal");
  int target = 1;
  auto by_ref = pool.submit([](int& r) { r = 7; }, std::ref(target));
  get_guarded(by_ref);
  EXPECT_EQ(target, 7);
}

TEST(ThreadPool, submit_takes_move_only_arguments_callables_and_results) {
  gb::ThreadPool pool{{.workers = 2}};
  auto arg = pool.submit([](std::unique_ptr<int> p) { return *p * 2; }, std::make_unique<int>(21));
  EXPECT_EQ(get_guarded(arg), 42);
  auto callable = pool.submit([p = std::make_unique<int>(5)] { return *p; });
  EXPECT_EQ(get_guarded(callable), 5);
  auto result = pool.submit([] { return std::make_unique<std::string>("owned"); });
  EXPECT_EQ(*get_guarded(result), "owned");
  struct RvalueOnly {
    int operator()() && { return 3; }  // the call is invoked as an rvalue, as by std::async
  };
  auto rvalue_call = pool.submit(RvalueOnly{});
  EXPECT_EQ(get_guarded(rvalue_call), 3);
}

TEST(ThreadPool, a_void_call_completes_its_future) {
  gb::ThreadPool pool{{.workers = 1}};
  std::atomic<int> ran{0};
  auto f = pool.submit([&] { ++ran; });
  ASSERT_TRUE(f.wait_for(k_hang_guard));
  f.get();
  EXPECT_EQ(ran.load(), 1);
}

TEST(ThreadPool, an_exception_thrown_by_a_job_reaches_its_future_and_the_pool_goes_on) {
  gb::ThreadPool pool{{.workers = 2}};
  auto failing = pool.submit([]() -> int { throw Failure("job failed"); });
  std::exception_ptr error;
  try {
    (void)get_guarded(failing);
    ADD_FAILURE() << "get() returned instead of throwing";
  } catch (const Failure&) {
    error = std::current_exception();
  }
  EXPECT_FALSE(failing.valid());
  auto next = pool.submit([] { return 1; });
  EXPECT_EQ(get_guarded(next), 1);
  pool.shutdown();
  EXPECT_EQ(describe(error), "job failed");
}

TEST(ThreadPool, current_is_the_pool_on_its_workers_and_null_elsewhere) {
  gb::ThreadPool a{{.workers = 1}};
  gb::ThreadPool b{{.workers = 1}};
  EXPECT_EQ(gb::ThreadPool::current(), nullptr);
  auto on_a = a.submit([] { return gb::ThreadPool::current(); });
  auto on_b = b.submit([] { return gb::ThreadPool::current(); });
  EXPECT_EQ(get_guarded(on_a), &a);
  EXPECT_EQ(get_guarded(on_b), &b);
  // A job of one pool waiting on a job of another is still on its own pool.
  auto nested = a.submit([&b] {
    auto inner = b.submit([] { return gb::ThreadPool::current(); });
    return std::make_pair(gb::ThreadPool::current(), inner.get());
  });
  const auto [outer, inner] = get_guarded(nested);
  EXPECT_EQ(outer, &a);
  EXPECT_EQ(inner, &b);
}

TEST(ThreadPool, tasks_on_a_loop_await_submitted_jobs_and_resume_on_the_loops_thread) {
  constexpr int k_tasks = 32;
  gb::ThreadPool pool{{.workers = 2}};
  std::thread::id loop_thread;
  int wrong_thread = 0;
  gb::Loop loop;
  const int total = loop.run([&]() -> gb::Task<int> {
    loop_thread = std::this_thread::get_id();
    std::vector<gb::JoinHandle<int>> tasks;
    for (int i = 0; i < k_tasks; ++i)
      tasks.push_back(gb::spawn([](gb::ThreadPool& p, int n, std::thread::id home, int& wrong) -> gb::Task<int> {
        const int v = co_await p.submit([n] { return n * n; });
        if (std::this_thread::get_id() != home) ++wrong;
        co_return v;
      }(pool, i, loop_thread, wrong_thread)));
    int sum = 0;
    for (auto& t : tasks) sum += co_await t;
    co_return sum;
  }());
  int expected = 0;
  for (int i = 0; i < k_tasks; ++i) expected += i * i;
  EXPECT_EQ(total, expected);
  EXPECT_EQ(wrong_thread, 0);
}

// ---------------------------------------------------------------------------------------
// map, parallel_for, parallel_reduce
// ---------------------------------------------------------------------------------------

TEST(ThreadPool, map_gives_the_results_in_the_order_of_the_range) {
  gb::ThreadPool pool{{.workers = 4}};
  std::vector<int> inputs(1000);
  std::iota(inputs.begin(), inputs.end(), 0);
  auto squares = pool.map([](int x) { return x * x; }, inputs);
  const std::vector<int> out = get_guarded(squares);
  ASSERT_EQ(out.size(), inputs.size());
  int misplaced = 0;
  for (std::size_t i = 0; i < out.size(); ++i)
    if (out[i] != inputs[i] * inputs[i]) ++misplaced;
  EXPECT_EQ(misplaced, 0);

  const std::list<std::string> words{"a", "bb", "ccc"};  // not a random-access range
  auto lengths = pool.map([](const std::string& w) { return w.size(); }, words);
  EXPECT_EQ(get_guarded(lengths), (std::vector<std::size_t>{1, 2, 3}));

  auto none = pool.map([](int x) { return x; }, std::vector<int>{});
  EXPECT_TRUE(get_guarded(none).empty());
}

TEST(ThreadPool, map_rethrows_the_first_exception_in_range_order_after_every_call_has_ended) {
  gb::ThreadPool pool{{.workers = 4}};
  std::vector<int> inputs(200);
  std::iota(inputs.begin(), inputs.end(), 0);
  std::atomic<int> active{0};
  auto future = pool.map(
      [&](int x) {
        ++active;
        struct Leave {
          std::atomic<int>& a;
          ~Leave() { --a; }
        } leave{active};
        if (x == 37 || x == 150) throw Failure(std::to_string(x));
        std::this_thread::yield();  // keep the other calls in flight a little longer
        return x;
      },
      inputs);
  std::exception_ptr error;
  try {
    (void)get_guarded(future);
    ADD_FAILURE() << "map's future returned instead of throwing";
  } catch (const Failure&) {
    error = std::current_exception();
    EXPECT_EQ(active.load(), 0);
  }
  pool.shutdown();
  EXPECT_EQ(describe(error), "37");
}

TEST(ThreadPool, parallel_for_calls_every_index_exactly_once) {
  gb::ThreadPool pool{{.workers = 4}};
  for (std::size_t n : {1u, 2u, 3u, 31u, 32u, 33u, 1000u, 4099u}) {
    std::vector<std::atomic<int>> hits(n + 10);
    pool.parallel_for(10, n + 10, [&](std::size_t i) { hits[i].fetch_add(1); });
    int wrong = 0;
    for (std::size_t i = 0; i < hits.size(); ++i)
      if (hits[i].load() != (i < 10 ? 0 : 1)) ++wrong;
    EXPECT_EQ(wrong, 0) << "n = " << n;
  }
}

TEST(ThreadPool, parallel_for_with_a_chunk_body_covers_every_index_once_in_disjoint_chunks) {
  gb::ThreadPool pool{{.workers = 4}};
  for (std::size_t n : {1u, 5u, 32u, 1000u, 4099u}) {
    std::vector<std::atomic<int>> hits(n);
    std::atomic<int> empty_chunks{0};
    pool.parallel_for(0, n, [&](std::size_t b, std::size_t e) {
      if (b >= e) ++empty_chunks;
      for (std::size_t i = b; i < e; ++i) hits[i].fetch_add(1);
    });
    int wrong = 0;
    for (auto& h : hits)
      if (h.load() != 1) ++wrong;
    EXPECT_EQ(wrong, 0) << "n = " << n;
    EXPECT_EQ(empty_chunks.load(), 0);
  }
}

TEST(ThreadPool, parallel_for_on_an_empty_range_calls_nothing) {
  gb::ThreadPool pool{{.workers = 2}};
  std::atomic<int> calls{0};
  pool.parallel_for(5, 5, [&](std::size_t) { ++calls; });
  pool.parallel_for(7, 3, [&](std::size_t) { ++calls; });
  pool.parallel_for(0, 0, [&](std::size_t, std::size_t) { ++calls; });
  EXPECT_EQ(calls.load(), 0);
}

TEST(ThreadPool, parallel_for_on_a_range_smaller_than_the_thread_count_calls_each_index_once) {
  gb::ThreadPool pool{{.workers = 8}};
  std::vector<std::atomic<int>> hits(3);
  pool.parallel_for(0, 3, [&](std::size_t i) { hits[i].fetch_add(1); });
  for (auto& h : hits) EXPECT_EQ(h.load(), 1);
}

TEST(ThreadPool, parallel_for_from_a_job_on_one_thread_runs_the_chunks_itself) {
  gb::ThreadPool pool{{.workers = 1}};
  std::vector<std::atomic<int>> hits(500);
  auto job = pool.submit([&] { pool.parallel_for(0, hits.size(), [&](std::size_t i) { hits[i].fetch_add(1); }); });
  ASSERT_TRUE(job.wait_for(k_hang_guard));
  job.get();
  int wrong = 0;
  for (auto& h : hits)
    if (h.load() != 1) ++wrong;
  EXPECT_EQ(wrong, 0);
}

TEST(ThreadPool, parallel_for_rethrows_the_first_exception_only_after_every_chunk_has_ended) {
  gb::ThreadPool pool{{.workers = 2}};
  constexpr std::size_t k_n = 64;
  std::vector<std::atomic<int>> covered(k_n);
  std::atomic<int> active{0};
  std::atomic<bool> thrown{false};
  std::exception_ptr error;
  try {
    pool.parallel_for(0, k_n, [&](std::size_t b, std::size_t e) {
      ++active;
      struct Leave {
        std::atomic<int>& a;
        ~Leave() { --a; }
      } leave{active};
      for (std::size_t i = b; i < e; ++i) covered[i].fetch_add(1);
      if (b == 0) {  // the first chunk: submitted first, so it always starts
        thrown = true;
        throw Failure("chunk at 0");
      }
      if (e == k_n) throw Failure("last chunk");  // a later failure: not the one rethrown
      while (!thrown) std::this_thread::yield();  // the others end after the failure
      for (int spin = 0; spin < 50; ++spin) std::this_thread::yield();
    });
    ADD_FAILURE() << "parallel_for returned instead of throwing";
  } catch (const Failure&) {
    error = std::current_exception();
    EXPECT_EQ(active.load(), 0);
    int wrong = 0;
    for (auto& c : covered)
      if (c.load() != 1) ++wrong;
    EXPECT_EQ(wrong, 0);  // every chunk ran, the failing one included
  }
  pool.shutdown();
  EXPECT_EQ(describe(error), "chunk at 0");
}

TEST(ThreadPool, parallel_reduce_combines_the_chunks_from_left_to_right) {
  gb::ThreadPool pool{{.workers = 4}};
  const long long sum = pool.parallel_reduce(
      std::size_t{0}, std::size_t{10000}, 0LL,
      [](std::size_t b, std::size_t e) {
        long long s = 0;
        for (std::size_t i = b; i < e; ++i) s += static_cast<long long>(i);
        return s;
      },
      [](long long a, long long b) { return a + b; });
  EXPECT_EQ(sum, 10000LL * 9999 / 2);

  // Concatenation is not commutative: only left-to-right order gives back the range.
  using Indices = std::vector<std::size_t>;
  const Indices joined = pool.parallel_reduce(
      std::size_t{5}, std::size_t{1005}, Indices{},
      [](std::size_t b, std::size_t e) {
        Indices part;
        for (std::size_t i = b; i < e; ++i) part.push_back(i);
        return part;
      },
      [](Indices a, Indices b) {
        a.insert(a.end(), b.begin(), b.end());
        return a;
      });
  Indices expected(1000);
  std::iota(expected.begin(), expected.end(), std::size_t{5});
  EXPECT_EQ(joined, expected);

  std::atomic<int> chunk_calls{0};
  const int identity = pool.parallel_reduce(
      std::size_t{3}, std::size_t{3}, 77, [&](std::size_t, std::size_t) { return ++chunk_calls; },
      [](int a, int b) { return a + b; });
  EXPECT_EQ(identity, 77);
  EXPECT_EQ(chunk_calls.load(), 0);
}

TEST(ThreadPool, parallel_reduce_rethrows_a_chunks_exception) {
  gb::ThreadPool pool{{.workers = 2}};
  EXPECT_THROW((void)pool.parallel_reduce(
                   std::size_t{0}, std::size_t{100}, 0,
                   [](std::size_t b, std::size_t) -> int {
                     if (b == 0) throw Failure("reduce");
                     return 1;
                   },
                   [](int a, int b) { return a + b; }),
               Failure);
}

// ---------------------------------------------------------------------------------------
// schedule()
// ---------------------------------------------------------------------------------------

namespace {

struct ScheduleRecord {
  std::thread::id before, after;
  gb::ThreadPool* current_after = nullptr;
};

gb::Task<void> hop(gb::ThreadPool& pool, ScheduleRecord& record, gb::Promise<void>& done) {
  record.before = std::this_thread::get_id();
  co_await pool.schedule();
  record.after = std::this_thread::get_id();
  record.current_after = gb::ThreadPool::current();
  done.set_value();
}

}  // namespace

TEST(ThreadPoolSchedule, schedule_moves_a_coroutine_onto_a_worker_of_the_pool) {
  ScheduleRecord record;
  gb::Promise<void> done;
  gb::Future<void> finished = done.get_future();
  gb::ThreadPool pool{{.workers = 2}};
  gb::Task<void> task = hop(pool, record, done);
  task.handle().resume();
  ASSERT_TRUE(finished.wait_for(k_hang_guard));
  pool.shutdown();  // joins the workers: the coroutine has reached its end
  EXPECT_TRUE(task.done());
  EXPECT_EQ(record.before, std::this_thread::get_id());
  EXPECT_NE(record.after, std::this_thread::get_id());
  EXPECT_EQ(record.current_after, &pool);
}

TEST(ThreadPoolSchedule, schedule_from_a_task_on_a_loop_throws_logic_error_and_stays_on_the_loop) {
  gb::ThreadPool pool{{.workers = 1}};
  bool threw = false;
  std::thread::id after;
  gb::Loop loop;
  loop.run([&]() -> gb::Task<void> {
    try {
      co_await pool.schedule();
    } catch (const std::logic_error&) {
      threw = true;
    }
    after = std::this_thread::get_id();
  }());
  EXPECT_TRUE(threw);
  EXPECT_EQ(after, std::this_thread::get_id());
}

TEST(ThreadPoolSchedule, schedule_onto_a_pool_that_was_shut_down_throws_shutdown_error) {
  gb::ThreadPool pool{{.workers = 1}};
  pool.shutdown();
  bool threw = false;
  gb::Task<void> task = [](gb::ThreadPool& p, bool& out) -> gb::Task<void> {
    try {
      co_await p.schedule();
    } catch (const gb::ShutdownError&) {
      out = true;
    }
  }(pool, threw);
  task.handle().resume();  // runs to the end on this thread
  EXPECT_TRUE(task.done());
  EXPECT_TRUE(threw);
}

// ---------------------------------------------------------------------------------------
// Lifetimes of what a job captured; failures nobody took
// ---------------------------------------------------------------------------------------

TEST(ThreadPoolLifetimes, a_jobs_captures_and_arguments_are_destroyed_exactly_once_after_it_ran) {
  constexpr int k_jobs = 100;
  Lifetimes life;
  {
    gb::ThreadPool pool{{.workers = 2}};
    std::vector<gb::Future<int>> futures;
    for (int i = 0; i < k_jobs; ++i) {
      if (i % 3 == 0)
        futures.push_back(pool.submit([t = Tracked{life, i}] { return t.value(); }));
      else if (i % 3 == 1)
        futures.push_back(pool.submit([](const Tracked& t) { return t.value(); }, Tracked{life, i}));
      else
        futures.push_back(pool.submit([t = Tracked{life, i}]() -> int { throw Failure(std::to_string(t.value())); }));
    }
    int wrong = 0;
    std::vector<std::exception_ptr> errors(k_jobs);
    for (int i = 0; i < k_jobs; ++i) {
      auto& f = futures[static_cast<std::size_t>(i)];
      try {
        if (get_guarded(f) != i) ++wrong;
      } catch (const Failure&) {
        errors[static_cast<std::size_t>(i)] = std::current_exception();
      }
    }
    pool.shutdown();  // joins: every job has finished with its call
    for (int i = 0; i < k_jobs; ++i) {
      const auto& error = errors[static_cast<std::size_t>(i)];
      if ((i % 3 == 2) != static_cast<bool>(error) || (error && describe(error) != std::to_string(i))) ++wrong;
    }
    EXPECT_EQ(wrong, 0);  // each call ran with its own, living, captures
    EXPECT_EQ(life.alive(), 0);
  }
  EXPECT_EQ(life.alive(), 0);
  EXPECT_GT(life.constructed.load(), 0);
  EXPECT_EQ(life.corrupt.load(), 0);
}

TEST(ThreadPoolLifetimes, the_shared_state_outlives_the_pool_until_the_future_lets_go) {
  Lifetimes life;
  gb::Future<Tracked> survivor;
  {
    gb::ThreadPool pool{{.workers = 1}};
    survivor = pool.submit([&life] { return Tracked{life, 8}; });
  }
  EXPECT_EQ(life.alive(), 1);  // the result, held by the shared state
  EXPECT_EQ(survivor.get().value(), 8);
  EXPECT_EQ(life.alive(), 0);
  EXPECT_EQ(life.corrupt.load(), 0);
}

TEST(ThreadPoolLifetimes, a_failed_job_whose_future_was_dropped_is_reported_once_and_a_cancelled_one_not_at_all) {
  testing::internal::CaptureStderr();
  {
    gb::ThreadPool pool{{.workers = 1}};
    { auto dropped = pool.submit([]() -> int { throw Failure("pool-dropped-5e1f"); }); }
    auto kept = pool.submit([]() -> int { throw Failure("pool-kept-5e1f"); });
    EXPECT_THROW((void)get_guarded(kept), Failure);
    pool.shutdown();
  }
  {
    Gate gate{1};
    gb::ThreadPool pool{{.workers = 1}};
    auto blockers = saturate(pool, gate);
    { auto cancelled = pool.submit([]() -> int { throw Failure("never-runs-5e1f"); }); }
    std::jthread stopper([&] { pool.shutdown(gb::ShutdownMode::cancel_pending); });
    while (!gb::detail::PoolAccess::cancelling(pool)) std::this_thread::yield();
    gate.open.count_down();
  }
  const std::string output = testing::internal::GetCapturedStderr();
  EXPECT_EQ(count_of(output, "pool-dropped-5e1f"), 1u) << output;
  EXPECT_EQ(count_of(output, "pool-kept-5e1f"), 0u) << output;
  EXPECT_EQ(count_of(output, "never-runs-5e1f"), 0u) << output;
  EXPECT_EQ(count_of(output, "gearbox: a future failed"), 1u) << output;  // the Cancelled is not reported
}
