// Tests of ThreadPool (include/gearbox/thread_pool.hpp): submit (how arguments are passed,
// results, exceptions), map, parallel_for (both forms), parallel_reduce, nested fork-join
// and deep chains of nested waits (which must not deadlock, even on one thread),
// ThreadPool::current, schedule(), shutdown in both modes and the destructor, the lifetime
// of what a job captured, reporting of failures nobody took, and stress tests
// parameterised over the number of threads (1, 2, 4, 8, 32).
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

#include "support/lifetimes.hpp"

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

constexpr auto k_hang_guard = 60s;  // see future_test.cpp: turns a lost wake-up into a failure

struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

using gearbox_test::count_of;
using gearbox_test::Lifetimes;
using gearbox_test::Tracked;

// The message of a stored failure. Tests read a failure that a worker produced only after
// joining the pool, while holding their own exception_ptr: the worker drops its reference
// to the exception object after publishing it (FutureState::release), and that reference
// count lives in uninstrumented libstdc++, so reading e.what() in a handler while the
// worker may free the object right after would be reported by TSan.
std::string message_of(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "not a std::exception";
  }
}

template <class T>
T get_guarded(gb::Future<T>& future) {
  if (!future.wait_for(k_hang_guard)) throw std::runtime_error("test: a future never completed");
  return future.get();
}

// Saturation: every worker blocked in a job until the test opens the gate.
struct Gate {
  explicit Gate(std::size_t workers) : started(static_cast<std::ptrdiff_t>(workers)) {}
  std::latch started;  // counted down by each blocker once it runs
  std::latch open{1};  // the test counts it down to release the blockers
};

// How long a pool may take to start one job per worker before a test gives up on it. A
// correct pool needs microseconds; the bound only turns a lost wake-up into a failure
// instead of a hang (see PoolStress.as_many_jobs_as_workers_...).
constexpr auto k_start_guard = 10s;

// Occupies every worker of `pool` with a job that waits for `gate`, then returns
// after_gate(i). Returns once every worker is blocked. If the blockers do not all start,
// opens the gate (so the pool can be joined) and throws: the test fails, it does not hang.
template <class After>
std::vector<gb::Future<int>> saturate(gb::ThreadPool& pool, Gate& gate, After after_gate) {
  std::vector<gb::Future<int>> blockers;
  for (std::size_t i = 0; i < pool.size(); ++i)
    blockers.push_back(pool.submit([&gate, after_gate, i] {
      gate.started.count_down();
      gate.open.wait();
      return after_gate(static_cast<int>(i));
    }));
  const auto until = std::chrono::steady_clock::now() + k_start_guard;
  while (!gate.started.try_wait()) {
    if (std::chrono::steady_clock::now() >= until) {
      gate.open.count_down();
      throw std::runtime_error(
          "test: one job per worker, submitted from outside, did not all start: a job was left in a blocked "
          "worker's deque while another worker slept (see PoolStress.as_many_jobs_as_workers_...)");
    }
    std::this_thread::yield();
  }
  return blockers;
}

std::vector<gb::Future<int>> saturate(gb::ThreadPool& pool, Gate& gate) {
  return saturate(pool, gate, [](int i) { return 1000 + i; });
}

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
  EXPECT_EQ(message_of(error), "job failed");
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
  EXPECT_EQ(message_of(error), "37");
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
  EXPECT_EQ(message_of(error), "chunk at 0");
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
  while (!pool.cancelling()) std::this_thread::yield();
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
  while (!pool.cancelling()) std::this_thread::yield();
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
      if ((i % 3 == 2) != static_cast<bool>(error) || (error && message_of(error) != std::to_string(i))) ++wrong;
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
    while (!pool.cancelling()) std::this_thread::yield();
    gate.open.count_down();
  }
  const std::string output = testing::internal::GetCapturedStderr();
  EXPECT_EQ(count_of(output, "pool-dropped-5e1f"), 1u) << output;
  EXPECT_EQ(count_of(output, "pool-kept-5e1f"), 0u) << output;
  EXPECT_EQ(count_of(output, "never-runs-5e1f"), 0u) << output;
  EXPECT_EQ(count_of(output, "gearbox: a future failed"), 1u) << output;  // the Cancelled is not reported
}

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
