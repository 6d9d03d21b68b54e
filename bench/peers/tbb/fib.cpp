// Peer for `gearbox-bench fib`: recursive fork-join fib(n) in oneTBB, one task per level.
//
// How it maps to gearbox: gearbox computes fib(n) on a ThreadPool of T threads; every call
// with n >= 2 submits fib(n-1) as a task, computes fib(n-2) itself, then waits for the
// task (the waiting worker runs other tasks meanwhile), with no cut-off to a sequential
// fib: fib(30) spawns fib(31) - 1 = 1,346,268 tasks. Here each such call makes a
// tbb::task_group, run()s fib(n-1) in it, computes fib(n-2) inline and wait()s: the
// textbook oneTBB fork-join (the task_group example in the oneTBB documentation). A TBB
// thread blocked in wait() also runs other tasks, as a gearbox worker does.
// The work runs in a tbb::task_arena of T threads: the main thread, which joins the arena
// through arena.execute() and runs the root call, plus T - 1 workers; a
// tbb::global_control lets oneTBB start T threads even if T exceeds the core count.
//
// Measured and not chosen (n = 30, T = 2, a 2-core VM): tbb::parallel_invoke of the two
// branches, the other idiomatic spelling, took 93-104 ms against 92-93 ms for this.
//
// Timed (steady_clock): the root call only, after all T threads have been started.
// The task count is computed, not counted (it is fixed by n: one task per call with
// n >= 2), so counting costs the tasks nothing. Prints one JSON line:
// {"ms": ..., "result": fib(n), "tasks": fib(n+1) - 1, "threads": T}.
#include "peer_options.hpp"
#include "tbb_arena.hpp"

#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>

#include <chrono>
#include <cstdio>

namespace {

long fib(long n) {
  if (n < 2) return n;
  long x = 0;
  tbb::task_group group;
  group.run([&x, n] { x = fib(n - 1); });
  const long y = fib(n - 2);
  group.wait();
  return x + y;
}

// Tasks spawned by fib(n): one per call with n >= 2, i.e. fib(n+1) - 1.
long task_count(long n) {
  long a = 0, b = 1;  // fib(0), fib(1)
  for (long i = 0; i < n + 1; ++i) {
    const long next = a + b;
    a = b;
    b = next;
  }
  return a - 1;
}

}  // namespace

int main(int argc, char** argv) {
  const auto options = gearbox_peer::parse_options(
      argc, argv, {.default_n = 30, .min_n = 0, .max_n = 60}, "peer-tbb-fib [--n N] [--threads T]   (0 <= N <= 60)");
  const int threads = options.threads;

  tbb::global_control parallelism(tbb::global_control::max_allowed_parallelism, static_cast<std::size_t>(threads));
  tbb::task_arena arena(threads);  // one slot kept for the main thread, which joins in execute()
  arena.initialize();
  gearbox_peer::start_workers(arena, threads - 1);

  long result = -1;
  double ms = 0;
  arena.execute([&] {
    const auto start = std::chrono::steady_clock::now();
    result = fib(options.n);
    ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  });

  std::printf("{\"ms\": %.3f, \"result\": %ld, \"tasks\": %ld, \"threads\": %d}\n", ms, result, task_count(options.n),
              threads);
  return 0;
}
