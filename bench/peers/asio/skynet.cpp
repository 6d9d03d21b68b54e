// Peer for `gearbox-bench skynet`: the skynet tree of coroutines in standalone Asio.
//
// How it maps to gearbox: gearbox spawns a task per tree node on one loop; the root
// covers leaves 0..n-1, every node spawns 10 children each covering a tenth of its range,
// down to single leaves that return their own number, and each parent sums its children.
// Here each non-root node is an asio::awaitable<long> started with asio::co_spawn on one
// io_context (run() on this thread, concurrency hint 1). A parent co_spawns all 10
// children first, with a completion handler that adds the child's result to the parent's
// sum, then suspends until the last child has finished; the "last child finished" event
// is a steady_timer that never expires and is cancelled by that child (the usual Asio
// idiom for an event). So all siblings exist at once, as in the gearbox and Go versions.
//
// Forms measured and not chosen (n = 1M, this machine):
//  - `co_await co_spawn(ex, child, use_awaitable)` for each child in turn: ~1.8x faster
//    and tiny memory, but each child finishes before its next sibling is spawned, so the
//    run is a depth-first walk with at most one path alive: a different benchmark.
//  - experimental::make_parallel_group(co_spawn(..., deferred)...).async_wait(
//    wait_for_all()): ~3x slower, 2.5x the memory.
//  - children sending results on an experimental::channel<void(error_code, long)>:
//    ~6x slower.
//
// Only the tree itself is timed (steady_clock), not process start-up. Prints one JSON
// line: {"ms": ..., "result": n*(n-1)/2, "tasks": <spawned coroutines>}.
#include <asio.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>

namespace {

constexpr int k_fan_out = 10;

// The children of one node: their running sum, and the event the parent waits on.
// Lives in the parent's frame, which outlives every child (the parent waits for all).
struct Join {
  long sum = 0;
  int pending = k_fan_out;
  asio::steady_timer all_done;

  explicit Join(const asio::any_io_executor& ex)
      : all_done(ex, asio::steady_timer::time_point::max()) {}
};

// Returns the sum of the leaves num..num+size-1.
asio::awaitable<long> skynet(long num, long size) {
  if (size == 1) co_return num;
  auto ex = co_await asio::this_coro::executor;
  Join join(ex);
  const long step = size / k_fan_out;
  for (int i = 0; i < k_fan_out; ++i) {
    asio::co_spawn(ex, skynet(num + i * step, step), [&join](std::exception_ptr error, long value) {
      if (error) std::rethrow_exception(error);
      join.sum += value;
      if (--join.pending == 0) join.all_done.cancel();
    });
  }
  asio::error_code cancelled;  // the timer "fails" with operation_aborted: that is the event
  co_await join.all_done.async_wait(asio::redirect_error(asio::use_awaitable, cancelled));
  co_return join.sum;
}

bool is_power_of_10(long n) {
  while (n > 1 && n % 10 == 0) n /= 10;
  return n == 1;
}

// Every node of the tree except the root is a spawned coroutine.
long task_count(long n) {
  long total = 0;
  for (long level = n; level >= 1; level /= k_fan_out) total += level;
  return total - 1;
}

[[noreturn]] void usage() {
  std::fputs("usage: skynet [--n N]   (N must be a power of 10, >= 1)\n", stderr);
  std::exit(2);
}

long parse_n(int argc, char** argv) {
  long n = 1000000;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--n") != 0 || i + 1 >= argc) usage();
    char* end = nullptr;
    n = std::strtol(argv[++i], &end, 10);
    if (*argv[i] == '\0' || *end != '\0') usage();
  }
  if (!is_power_of_10(n)) usage();
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  const long n = parse_n(argc, argv);

  asio::io_context loop{1};
  long result = -1;
  const auto start = std::chrono::steady_clock::now();
  asio::co_spawn(loop, skynet(0, n), [&result](std::exception_ptr error, long value) {
    if (error) std::rethrow_exception(error);
    result = value;
  });
  loop.run();
  const std::chrono::duration<double, std::milli> elapsed = std::chrono::steady_clock::now() - start;

  std::printf("{\"ms\": %.3f, \"result\": %ld, \"tasks\": %ld}\n", elapsed.count(), result, task_count(n));
  return 0;
}
