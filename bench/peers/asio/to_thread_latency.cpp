// Peer for `gearbox-bench to_thread_latency`: the round-trip latency of handing a trivial
// blocking call from an event loop to a thread pool and getting its result back on the
// loop, in standalone Asio.
//
// How it maps to gearbox: a task on a gearbox Loop runs `co_await gb::to_thread(f)` n
// times, one after the other, f being a trivial function; each round trip posts f to the
// ThreadPool, a worker runs it, and the result is posted back to the loop, which resumes
// the task. Here the loop is an asio::io_context run() on the main thread and the pool an
// asio::thread_pool of T threads; a coroutine on the io_context makes each round trip by
// moving itself to the pool and back:
//   co_await asio::post(asio::bind_executor(pool, asio::use_awaitable));  // now on the pool
//   result += f();
//   co_await asio::post(asio::bind_executor(loop, asio::use_awaitable));  // back on the loop
// Asio's idiom for switching a coroutine's thread: the completion of each post runs on
// the executor bound to it. (Without bind_executor, `co_await asio::post(pool,
// asio::use_awaitable)` resumes the coroutine through its own executor, the io_context:
// f would run on the loop thread and nothing would cross threads. Checked: with that
// form all n calls ran on the loop thread.)
//
// Measured and not chosen (n = 50,000, T = 2, both threads pinned to one core so that
// only CPU cost shows): `co_await asio::co_spawn(pool, <coroutine returning f()>,
// asio::use_awaitable)`, which keeps the caller on the loop and starts a coroutine on the
// pool per call: 3.7 us per round trip against 2.6 us for the hop above. A hand-written
// async_initiate operation (post f to the pool, post the handler back): 2.6 us, the same
// as the hop, with more code.
//
// Timed (steady_clock): the n round trips, after a few untimed ones that make sure the
// pool's threads are running. Prints one JSON line:
// {"ms": ..., "result": n, "us_per_roundtrip": ms * 1000 / n, "threads": T}.
#include "peer_options.hpp"

#include <asio.hpp>

#include <chrono>
#include <cstdio>
#include <exception>

namespace {

// The "blocking call" handed to the pool: as cheap as a call can be.
long trivial_call() { return 1; }

// Hands trivial_call to `pool` `count` times, one after the other, each time resuming on
// `loop` with its result; returns the sum of the results (count, when every call ran).
asio::awaitable<long> round_trips(asio::thread_pool& pool, asio::io_context& loop, long count) {
  long total = 0;
  for (long i = 0; i < count; ++i) {
    co_await asio::post(asio::bind_executor(pool, asio::use_awaitable));
    total += trivial_call();
    co_await asio::post(asio::bind_executor(loop, asio::use_awaitable));
  }
  co_return total;
}

asio::awaitable<void> timed(asio::thread_pool& pool, asio::io_context& loop, long n, int threads, long& result,
                            double& ms) {
  co_await round_trips(pool, loop, 8L * threads);  // warm-up: the pool's threads are up and cached
  const auto start = std::chrono::steady_clock::now();
  result = co_await round_trips(pool, loop, n);
  ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  const auto options =
      gearbox_peer::parse_options(argc, argv, {.default_n = 10'000, .min_n = 1, .max_n = 1'000'000'000},
                                  "peer-asio-to_thread_latency [--n N] [--threads T]   (N >= 1)");

  asio::io_context loop{1};
  asio::thread_pool pool(static_cast<std::size_t>(options.threads));
  long result = -1;
  double ms = 0;
  asio::co_spawn(loop, timed(pool, loop, options.n, options.threads, result, ms), [](std::exception_ptr error) {
    if (error) std::rethrow_exception(error);
  });
  loop.run();
  pool.join();

  std::printf("{\"ms\": %.3f, \"result\": %ld, \"us_per_roundtrip\": %.3f, \"threads\": %d}\n", ms, result,
              ms * 1000.0 / static_cast<double>(options.n), options.threads);
  return 0;
}
