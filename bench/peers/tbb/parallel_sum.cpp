// Peer for `gearbox-bench parallel_sum`: the sum of n floats with tbb::parallel_reduce.
//
// How it maps to gearbox: gearbox sums an array of n floats, x[i] =
// static_cast<float>(i % 1000) * 0.001f, in double, split across a ThreadPool of T
// threads, and also with a plain loop in the same process for the speedup. Every
// version (gearbox and its peers) uses that same definition and reports
// result = llround(sum), so the integer is the same everywhere (n = 1e8: 49950002;
// n = 1e6: 499500). Here the parallel sum is tbb::parallel_reduce over a
// tbb::blocked_range<std::size_t> with the default auto_partitioner and the functional
// form (a body that sums its subrange into a double, joined with std::plus), run inside
// a tbb::task_arena of T threads: the main thread, which joins through arena.execute(),
// plus T - 1 workers. Both sums run the same scalar loop (add_range; not vectorised,
// since the compiler may not reorder double additions without -ffast-math), so the
// speedup compares like with like.
//
// Not timed: allocating and filling the array, starting the workers. Timed (steady_clock):
// the sequential loop, then the parallel_reduce. Prints one JSON line:
// {"ms": <parallel>, "result": llround(sum), "sequential_ms": ..., "speedup":
// sequential_ms / ms, "threads": T}. Exits with 1 if the two sums round differently.
#include "peer_options.hpp"
#include "tbb_arena.hpp"

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/parallel_reduce.h>
#include <oneapi/tbb/task_arena.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// Adds x[begin..end) to `sum`, in order. Both the sequential and the parallel sum run this
// one copy of the loop: inlined into main(), GCC 12 kept the sequential accumulator on
// the stack (a store and a load per element) and made that loop twice as slow as the
// same loop in the parallel body, which inflated the speedup to ~3.4 on 2 threads.
[[gnu::noinline]] double add_range(const float* x, std::size_t begin, std::size_t end, double sum) {
  for (std::size_t i = begin; i != end; ++i) sum += x[i];
  return sum;
}

double sequential_sum(const float* x, std::size_t n) { return add_range(x, 0, n, 0.0); }

double parallel_sum(const float* x, std::size_t n) {
  return tbb::parallel_reduce(
      tbb::blocked_range<std::size_t>(0, n), 0.0,
      [x](const tbb::blocked_range<std::size_t>& range, double sum) {
        return add_range(x, range.begin(), range.end(), sum);
      },
      std::plus<double>{});
}

}  // namespace

int main(int argc, char** argv) {
  const auto options =
      gearbox_peer::parse_options(argc, argv, {.default_n = 100'000'000, .min_n = 1, .max_n = 4'000'000'000},
                                  "peer-tbb-parallel_sum [--n N] [--threads T]   (1 <= N <= 4e9)");
  const int threads = options.threads;
  const auto n = static_cast<std::size_t>(options.n);

  const std::unique_ptr<float[]> x(new float[n]);
  for (std::size_t i = 0; i < n; ++i) x[i] = static_cast<float>(i % 1000) * 0.001f;

  tbb::global_control parallelism(tbb::global_control::max_allowed_parallelism, static_cast<std::size_t>(threads));
  tbb::task_arena arena(threads);  // one slot kept for the main thread, which joins in execute()
  arena.initialize();
  gearbox_peer::start_workers(arena, threads - 1);

  auto start = Clock::now();
  const double sequential = sequential_sum(x.get(), n);
  const double sequential_ms = ms_since(start);

  double parallel = 0;
  double ms = 0;
  arena.execute([&] {
    start = Clock::now();
    parallel = parallel_sum(x.get(), n);
    ms = ms_since(start);
  });

  const long long result = std::llround(parallel);
  if (result != std::llround(sequential)) {
    std::fprintf(stderr, "peer-tbb-parallel_sum: the parallel sum %.6f and the sequential sum %.6f round differently\n",
                 parallel, sequential);
    return 1;
  }
  std::printf("{\"ms\": %.3f, \"result\": %lld, \"sequential_ms\": %.3f, \"speedup\": %.3f, \"threads\": %d}\n", ms,
              result, sequential_ms, sequential_ms / ms, threads);
  return 0;
}
