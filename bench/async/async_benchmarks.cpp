// Benchmarks of the async engine: spawning (skynet), many timers at once (sleepers) and
// task switching through channels (channel_pingpong). Peers: bench/peers/{asio,go,python}.
#include <array>
#include <chrono>
#include <cstdint>
#include <vector>

#include <gearbox/gearbox.hpp>

#include "registry.hpp"
#include "async/skynet_tree.hpp"

namespace gearbox::bench {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

bool is_power_of_ten(long n) {
  if (n < 1) return false;
  while (n % 10 == 0) n /= 10;
  return n == 1;
}

BenchRun run_skynet_scheduled(const BenchArgs& args) {
  Loop loop;
  const auto start = Clock::now();
  const std::int64_t sum = loop.run(skynet_spawned(0, args.n));  // skynet_tree.hpp: breadth-first
  return {ms_since(start), sum};
}

BenchRun run_skynet(const BenchArgs& args) {
  Loop loop;
  const auto start = Clock::now();
  const std::int64_t sum = loop.run(skynet_node(0, args.n));
  return {ms_since(start), sum};
}

// skynet_traced: skynet while the trace records every spawn, slice, wake and completion
// (trace.hpp). Its time next to skynet's is what tracing costs; writing the trace out is
// not timed (clear() drops it).
BenchRun run_skynet_traced(const BenchArgs& args) {
  Loop loop;
  trace::clear();
  trace::start();
  const auto start = Clock::now();
  const std::int64_t sum = loop.run(skynet_node(0, args.n));
  const double ms = ms_since(start);
  trace::stop();
  trace::clear();
  return {ms, sum};
}

// sleepers: n tasks each sleeping one second at once, all awaited. Measures the memory of
// a waiting task and timer arm/expire cost at scale.
Task<void> sleeper() { co_await sleep_for(1s); }

Task<std::int64_t> sleep_all(long n) {
  std::vector<JoinHandle<void>> handles;
  handles.reserve(static_cast<std::size_t>(n));
  for (long i = 0; i < n; ++i) handles.push_back(spawn(sleeper()));
  std::int64_t completed = 0;
  for (auto& handle : handles) {
    co_await handle;
    ++completed;
  }
  co_return completed;
}

BenchRun run_sleepers(const BenchArgs& args) {
  Loop loop;
  const auto start = Clock::now();
  const std::int64_t completed = loop.run(sleep_all(args.n));
  return {ms_since(start), completed};
}

// channel_pingpong: two tasks pass a counter back and forth through two rendezvous
// channels (capacity 0, like unbuffered Go channels); each round trip is two switches.
Task<std::int64_t> pingpong(long rounds) {
  Channel<std::int64_t> ping{0};
  Channel<std::int64_t> pong{0};
  auto echo = spawn([](Channel<std::int64_t>& in, Channel<std::int64_t>& out) -> Task<void> {
    while (auto value = co_await in.receive()) co_await out.send(*value + 1);
  }(ping, pong));
  std::int64_t counter = 0;
  for (long i = 0; i < rounds; ++i) {
    co_await ping.send(counter);
    counter = *co_await pong.receive();
  }
  ping.close();
  co_await echo;
  co_return counter;
}

BenchRun run_channel_pingpong(const BenchArgs& args) {
  Loop loop;
  const auto start = Clock::now();
  const std::int64_t counter = loop.run(pingpong(args.n));
  const double ms = ms_since(start);
  BenchRun run{ms, counter};
  run.extra["ns_per_switch"] = ms * 1e6 / (2.0 * static_cast<double>(args.n));
  return run;
}

}  // namespace

std::vector<Benchmark> async_benchmarks() {
  return {
      Benchmark{
          .name = "skynet",
          .description = "1M tasks spawned in a tree of fan-out 10, sums gathered up, one loop",
          .default_n = 1'000'000,
          .valid_n = is_power_of_ten,
          .expected = [](long n) { return nlohmann::json(std::int64_t{n} * (n - 1) / 2); },
          .run = run_skynet,
          .peer_args = {},
          .peer_name = {},
      },
      Benchmark{
          .name = "skynet_traced",
          .description = "skynet with tracing on (compare with skynet: the cost of the trace)",
          .default_n = 1'000'000,
          .valid_n = is_power_of_ten,
          .expected = [](long n) { return nlohmann::json(std::int64_t{n} * (n - 1) / 2); },
          .run = run_skynet_traced,
          .peer_args = {},
          .peer_name = "skynet",
      },
      Benchmark{
          .name = "skynet_scheduled",
          .description = "skynet with every child started by spawn() (scheduled, breadth-first)",
          .default_n = 1'000'000,
          .valid_n = is_power_of_ten,
          .expected = [](long n) { return nlohmann::json(std::int64_t{n} * (n - 1) / 2); },
          .run = run_skynet_scheduled,
          .peer_args = {},
          .peer_name = "skynet",
      },
      Benchmark{
          .name = "sleepers",
          .description = "N tasks each sleeping 1 s at once, one loop",
          .default_n = 1'000'000,
          .valid_n = [](long n) { return n >= 1; },
          .expected = [](long n) { return nlohmann::json(n); },
          .run = run_sleepers,
          .peer_args = {"--seconds", "1"},
          .peer_name = {},
      },
      Benchmark{
          .name = "channel_pingpong",
          .description = "two tasks passing a counter back and forth through channels, N round trips",
          .default_n = 1'000'000,
          .valid_n = [](long n) { return n >= 1; },
          .expected = [](long n) { return nlohmann::json(n); },
          .run = run_channel_pingpong,
          .peer_args = {},
          .peer_name = {},
      },
  };
}

}  // namespace gearbox::bench
