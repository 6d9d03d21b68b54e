// Peer for `gearbox-bench sleepers`: n coroutines that each sleep S seconds at once, in
// standalone Asio.
//
// How it maps to gearbox: gearbox spawns n tasks on one loop, each awaiting sleep_for(S),
// then waits for all of them. Here each task is an asio::awaitable<void> started with
// co_spawn(..., detached) on one io_context (run() on this thread, concurrency hint 1);
// each one owns an asio::steady_timer and co_awaits its async_wait. Asio keeps the timers
// in a binary heap and waits for the earliest with one timerfd/epoll. run() returns when
// the last coroutine has finished, which stands in for "await all"; the result counts
// the coroutines that woke up, so a correct run prints result == n.
//
// The time from spawning the first coroutine to run() returning is measured with
// steady_clock; it is at least S. Prints one JSON line: {"ms": ..., "result": n}.
#include <asio.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

asio::awaitable<void> sleeper(std::chrono::nanoseconds duration, long& completed) {
  asio::steady_timer timer(co_await asio::this_coro::executor, duration);
  co_await timer.async_wait(asio::use_awaitable);
  ++completed;
}

[[noreturn]] void usage() {
  std::fputs("usage: sleepers [--n N] [--seconds S]   (N >= 0, S >= 0)\n", stderr);
  std::exit(2);
}

struct Options {
  long n = 1000000;
  double seconds = 1.0;
};

Options parse_options(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const bool is_n = std::strcmp(argv[i], "--n") == 0;
    const bool is_seconds = std::strcmp(argv[i], "--seconds") == 0;
    if ((!is_n && !is_seconds) || i + 1 >= argc) usage();
    const char* value = argv[++i];
    char* end = nullptr;
    if (is_n) {
      options.n = std::strtol(value, &end, 10);
    } else {
      options.seconds = std::strtod(value, &end);
    }
    if (*value == '\0' || *end != '\0') usage();
  }
  if (options.n < 0 || !(options.seconds >= 0) || !std::isfinite(options.seconds)) usage();
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = parse_options(argc, argv);
  const auto duration = std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::duration<double>(options.seconds));

  asio::io_context loop{1};
  long completed = 0;
  const auto start = std::chrono::steady_clock::now();
  for (long i = 0; i < options.n; ++i) asio::co_spawn(loop, sleeper(duration, completed), asio::detached);
  loop.run();
  const std::chrono::duration<double, std::milli> elapsed = std::chrono::steady_clock::now() - start;

  std::printf("{\"ms\": %.3f, \"result\": %ld}\n", elapsed.count(), completed);
  return 0;
}
