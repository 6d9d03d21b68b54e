// Peer for `gearbox-bench channel_pingpong`: two coroutines bounce a counter through two
// Asio channels.
//
// How it maps to gearbox: gearbox runs two tasks on one loop joined by two channels,
// ping and pong; the pinger sends the counter on ping, the ponger receives it, adds one
// and sends it back on pong, n times. Each round trip is two task switches. Here the tasks
// are two asio::awaitable<void> coroutines co_spawned on one io_context (run() on this
// thread, concurrency hint 1), and the channels are
// asio::experimental::channel<void(asio::error_code, long)> with no buffer, so each send
// waits for its receiver. (channel, not concurrent_channel: everything is on one thread,
// so the channels need no mutex.) Each hand-over goes through the io_context's queue.
//
// Only the n round trips are timed (steady_clock). Prints one JSON line:
// {"ms": ..., "result": n, "ns_per_switch": ms*1e6/(2n)}.
#include <asio.hpp>
#include <asio/experimental/channel.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

using Channel = asio::experimental::channel<void(asio::error_code, long)>;

asio::awaitable<void> pinger(Channel& ping, Channel& pong, long round_trips, long& counter) {
  for (long i = 0; i < round_trips; ++i) {
    co_await ping.async_send(asio::error_code{}, counter, asio::use_awaitable);
    counter = co_await pong.async_receive(asio::use_awaitable);
  }
}

asio::awaitable<void> ponger(Channel& ping, Channel& pong, long round_trips) {
  for (long i = 0; i < round_trips; ++i) {
    const long value = co_await ping.async_receive(asio::use_awaitable);
    co_await pong.async_send(asio::error_code{}, value + 1, asio::use_awaitable);
  }
}

[[noreturn]] void usage() {
  std::fputs("usage: channel_pingpong [--n N]   (N >= 1)\n", stderr);
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
  if (n < 1) usage();
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  const long n = parse_n(argc, argv);

  asio::io_context loop{1};
  Channel ping(loop);
  Channel pong(loop);
  long counter = 0;
  asio::co_spawn(loop, ponger(ping, pong, n), asio::detached);
  asio::co_spawn(loop, pinger(ping, pong, n, counter), asio::detached);
  const auto start = std::chrono::steady_clock::now();
  loop.run();
  const std::chrono::duration<double, std::milli> elapsed = std::chrono::steady_clock::now() - start;

  const double ms = elapsed.count();
  std::printf("{\"ms\": %.3f, \"result\": %ld, \"ns_per_switch\": %.2f}\n", ms, counter, ms * 1e6 / (2.0 * n));
  return 0;
}
