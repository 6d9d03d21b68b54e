// Benchmarks of the thread engine: fork-join (fib), the cost of a task (submit_throughput),
// a parallel loop (parallel_sum) and the loop-to-thread round trip (to_thread_latency).
// Peers: bench/peers/{tbb,stdasync,asio,python}.
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include <gearbox/gearbox.hpp>

#include "registry.hpp"

namespace gearbox::bench {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// fib: every call with n >= 2 submits fib(n-1) as a task, computes fib(n-2) itself and
// waits for the task (a worker that waits runs other tasks meanwhile). No cut-off.
std::int64_t fib(ThreadPool& pool, int n) {
  if (n < 2) return n;
  Future<std::int64_t> left = pool.submit([&pool, n] { return fib(pool, n - 1); });
  const std::int64_t right = fib(pool, n - 2);
  return left.get() + right;
}

std::int64_t fib_plain(int n) { return n < 2 ? n : fib_plain(n - 1) + fib_plain(n - 2); }

BenchRun run_fib(const BenchArgs& args) {
  ThreadPool pool{{.workers = static_cast<std::size_t>(args.threads)}};
  const int n = static_cast<int>(args.n);
  const auto start = Clock::now();
  const std::int64_t result = pool.submit([&pool, n] { return fib(pool, n); }).get();
  BenchRun run{ms_since(start), result};
  run.extra["tasks"] = fib_plain(static_cast<int>(args.n) + 1) - 1;  // calls with n >= 2
  return run;
}

// submit_throughput: n empty tasks (each counts itself), submitted (a) from this thread,
// outside the pool, and (b) from inside: T root tasks (one per worker, as idle workers
// take them), each submitting its share of the n into its worker's own deque and helping
// until its share has run. The futures are dropped at once (the tasks still run).
BenchRun run_submit_throughput(const BenchArgs& args) {
  const auto threads = static_cast<std::size_t>(args.threads);
  ThreadPool pool{{.workers = threads}};
  const long n = args.n;
  // Memory ordering: each task counts with a release RMW and the waiters read with acquire,
  // so once a waiter sees the full count, every task is done with the counter (it may die).
  std::atomic<long> ran{0};
  auto count = [&ran] { ran.fetch_add(1, std::memory_order_release); };

  auto outside_start = Clock::now();
  for (long i = 0; i < n; ++i) (void)pool.submit(count);
  while (ran.load(std::memory_order_acquire) < n) std::this_thread::yield();
  const double outside_ms = ms_since(outside_start);
  const long outside_ran = ran.exchange(0);

  struct alignas(64) RootCount {
    std::atomic<long> ran{0};
  };
  std::vector<RootCount> roots(threads);
  const auto inside_start = Clock::now();
  std::vector<Future<void>> root_futures;
  for (std::size_t r = 0; r < threads; ++r) {
    const long share = n / static_cast<long>(threads) + (static_cast<long>(r) < n % static_cast<long>(threads) ? 1 : 0);
    root_futures.push_back(pool.submit([&pool, share, &mine = roots[r].ran] {
      for (long i = 0; i < share; ++i) (void)pool.submit([&mine] { mine.fetch_add(1, std::memory_order_release); });
      while (mine.load(std::memory_order_acquire) < share)
        if (!gearbox::detail::PoolAccess::help_once()) std::this_thread::yield();
    }));
  }
  for (auto& f : root_futures) f.get();
  const double inside_ms = ms_since(inside_start);
  long inside_ran = 0;
  for (auto& r : roots) inside_ran += r.ran.load();

  BenchRun run{inside_ms, outside_ran == n ? inside_ran : outside_ran};
  run.extra["outside_ms"] = outside_ms;
  run.extra["outside_tasks_per_s"] = static_cast<double>(n) / (outside_ms / 1000.0);
  run.extra["inside_tasks_per_s"] = static_cast<double>(n) / (inside_ms / 1000.0);
  return run;
}

// parallel_sum: x[i] = float(i % 1000) * 0.001f summed in double, by a plain loop and by
// parallel_reduce; the same definition as every peer, so result = llround(sum) matches.
// Not inlined, so that the plain loop and the chunks run the very same code (inlined into
// the caller, g++ 12 kept the plain loop's sum in memory and ran it twice as slow).
[[gnu::noinline]] double add_range(const float* x, std::size_t begin, std::size_t end) {
  double sum = 0;
  for (std::size_t i = begin; i < end; ++i) sum += x[i];
  return sum;
}

BenchRun run_parallel_sum(const BenchArgs& args) {
  const auto n = static_cast<std::size_t>(args.n);
  std::unique_ptr<float[]> x(new float[n]);
  for (std::size_t i = 0; i < n; ++i) x[i] = static_cast<float>(i % 1000) * 0.001f;
  ThreadPool pool{{.workers = static_cast<std::size_t>(args.threads)}};

  const auto sequential_start = Clock::now();
  const double sequential = add_range(x.get(), 0, n);
  const double sequential_ms = ms_since(sequential_start);

  const auto start = Clock::now();
  const double parallel = pool.parallel_reduce(
      0, n, 0.0, [&](std::size_t b, std::size_t e) { return add_range(x.get(), b, e); },
      [](double a, double b) { return a + b; });
  const double ms = ms_since(start);

  const long long result = std::llround(parallel);
  BenchRun run{ms, result == std::llround(sequential) ? nlohmann::json(result) : nlohmann::json("sums differ")};
  run.extra["sequential_ms"] = sequential_ms;
  run.extra["speedup"] = sequential_ms / ms;
  return run;
}

// to_thread_latency: from a task on a loop, n times one after another: hand a trivial
// call to the blocking pool and await its result back on the loop.
Task<long> to_thread_round_trips(long n) {
  long done = 0;
  for (long i = 0; i < n; ++i) done += co_await to_thread([] { return 1L; });
  co_return done;
}

BenchRun run_to_thread_latency(const BenchArgs& args) {
  Loop loop;
  (void)loop.run(to_thread_round_trips(100));  // warm up: start the pool's thread
  const auto start = Clock::now();
  const long done = loop.run(to_thread_round_trips(args.n));
  const double ms = ms_since(start);
  BenchRun run{ms, done};
  run.extra["us_per_roundtrip"] = ms * 1000.0 / static_cast<double>(args.n);
  return run;
}

std::int64_t parallel_sum_expected(long n) {
  double sum = 0;
  for (long i = 0; i < n; ++i) sum += static_cast<float>(i % 1000) * 0.001f;
  return std::llround(sum);
}

}  // namespace

std::vector<Benchmark> thread_benchmarks() {
  return {
      Benchmark{
          .name = "fib",
          .description = "recursive fib(N) forking one branch as a pool task at every level, no cut-off",
          .default_n = 30,
          .valid_n = [](long n) { return n >= 1 && n <= 40; },
          .expected = [](long n) { return nlohmann::json(fib_plain(static_cast<int>(n))); },
          .run = run_fib,
          .peer_args = {},
          .peer_name = {},
          .default_threads = 2,
      },
      Benchmark{
          .name = "submit_throughput",
          .description = "N empty tasks submitted from outside, then from inside the pool; tasks/s",
          .default_n = 10'000'000,
          .valid_n = [](long n) { return n >= 1; },
          .expected = [](long n) { return nlohmann::json(n); },
          .run = run_submit_throughput,
          .peer_args = {},
          .peer_name = {},
          .default_threads = 2,
      },
      Benchmark{
          .name = "parallel_sum",
          .description = "sum of N floats with parallel_reduce, and the speedup over a plain loop",
          .default_n = 100'000'000,
          .valid_n = [](long n) { return n >= 1; },
          .expected = [](long n) { return nlohmann::json(parallel_sum_expected(n)); },
          .run = run_parallel_sum,
          .peer_args = {},
          .peer_name = {},
          .default_threads = 2,
      },
      Benchmark{
          .name = "to_thread_latency",
          .description = "loop -> blocking pool -> loop round trips, one at a time",
          .default_n = 10'000,
          .valid_n = [](long n) { return n >= 1; },
          .expected = [](long n) { return nlohmann::json(n); },
          .run = run_to_thread_latency,
          .peer_args = {},
          .peer_name = {},
          .default_threads = 1,
      },
  };
}

}  // namespace gearbox::bench
