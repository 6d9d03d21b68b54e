// Peer for `gearbox-bench fib`: recursive fork-join fib(n) with std::async, one task per
// level, to show what a thread-per-task "pool" costs.
//
// How it maps to gearbox: gearbox computes fib(n) on a ThreadPool of T threads; every call
// with n >= 2 submits fib(n-1) as a task, computes fib(n-2) itself, then waits for the
// task, with no cut-off: fib(n+1) - 1 tasks in all. Here each such call starts fib(n-1)
// with std::async(std::launch::async, ...), computes fib(n-2) inline and get()s the
// future. libstdc++ starts a new OS thread for every std::launch::async call (there is no
// pool in the standard library), so fib(n) starts fib(n+1) - 1 threads, and a thread
// whose future waits just blocks. --threads T is accepted and ignored: std::async has no
// way to bound its threads.
//
// fib(20) starts 10,945 threads, up to ~2,400 of them alive at once (every thread waiting
// on a child is still alive); fib(22) peaks at ~5,400, and on the 2-core VM this was
// written on fib(25) already failed with std::system_error (EAGAIN: no more threads).
// fib(30) would need 1,346,268 threads. So for n > 20 this peer refuses: it prints
// {"ms": 0, "result": null, "error": "..."} and exits with 3, which gearbox-bench reports
// as a failed peer with that reason. Run it with --n 20 (or less) for a time. Should the
// kernel refuse a thread even so, the peer reports that the same way.
//
// Timed (steady_clock): the root call. Prints one JSON line:
// {"ms": ..., "result": fib(n), "tasks": fib(n+1) - 1, "threads": "one per task"}.
#include "peer_options.hpp"

#include <chrono>
#include <cstdio>
#include <future>
#include <system_error>

namespace {

constexpr long k_max_n = 20;

long fib(long n) {
  if (n < 2) return n;
  std::future<long> x = std::async(std::launch::async, fib, n - 1);
  const long y = fib(n - 2);
  return x.get() + y;
}

// Tasks (threads) started by fib(n): one per call with n >= 2, i.e. fib(n+1) - 1.
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
  const auto options = gearbox_peer::parse_options(argc, argv, {.default_n = 30, .min_n = 0, .max_n = 60},
                                                   "peer-stdasync-fib [--n N] [--threads T]   (0 <= N <= 60)");
  const long n = options.n;
  if (n > k_max_n) {
    std::printf(
        "{\"ms\": 0, \"result\": null, \"error\": \"std::async starts one thread per task; fib(%ld) needs ~%ld threads, "
        "refusing (this peer runs n <= %ld)\"}\n",
        n, task_count(n), k_max_n);
    return 3;
  }

  long result = -1;
  double ms = 0;
  try {
    const auto start = std::chrono::steady_clock::now();
    result = fib(n);
    ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  } catch (const std::system_error& error) {  // the kernel refused a thread (EAGAIN)
    std::printf("{\"ms\": 0, \"result\": null, \"error\": \"std::async could not start a thread: %s\"}\n",
                error.what());
    return 3;
  }

  std::printf("{\"ms\": %.3f, \"result\": %ld, \"tasks\": %ld, \"threads\": \"one per task\"}\n", ms, result,
              task_count(n));
  return 0;
}
