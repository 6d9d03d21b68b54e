// Benchmarks of the process engine: the round trip of one trivial task (proc_roundtrip),
// trivial tasks in flight by the thousand (proc_throughput), a large argument by
// SharedBuffer (proc_bigdata) and CPU-bound tasks on 1 and 2 workers (proc_cpu_scaling).
// Peers: bench/peers/python (concurrent.futures.ProcessPoolExecutor). "threads" is the
// number of worker processes.
#include <chrono>
#include <cstdint>
#include <cstring>
#include <vector>

#include <gearbox/gearbox.hpp>

#include "cpu_kernels.hpp"
#include "registry.hpp"

namespace gearbox::bench {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// ---- the tasks (registered: every worker is this executable) ----

std::int64_t increment(std::int64_t x) { return x + 1; }

// The sum of the buffer as little-endian 64-bit words (wrapping), the tail bytes added alone.
std::uint64_t sum_words(SharedBuffer buffer) {
  const auto bytes = buffer.bytes();
  const std::size_t words = bytes.size() / 8;
  std::uint64_t sum = 0;
  for (std::size_t i = 0; i < words; ++i) {
    std::uint64_t word;
    std::memcpy(&word, bytes.data() + i * 8, 8);
    sum += word;
  }
  for (std::size_t i = words * 8; i < bytes.size(); ++i) sum += static_cast<std::uint8_t>(bytes[i]);
  return sum;
}

GEARBOX_REMOTE(increment);
GEARBOX_REMOTE(sum_words);
GEARBOX_REMOTE(collatz_steps);

std::int64_t triangle(long n) { return static_cast<std::int64_t>(n) * (n + 1) / 2; }

// The bytes of proc_bigdata: byte j is j % 251 (a pattern Python builds quickly too).
void fill_pattern(std::span<std::byte> bytes) {
  std::byte period[251];
  for (int j = 0; j < 251; ++j) period[j] = static_cast<std::byte>(j);
  for (std::size_t at = 0; at < bytes.size(); at += 251)
    std::memcpy(bytes.data() + at, period, std::min<std::size_t>(251, bytes.size() - at));
}

std::uint64_t pattern_sum(long mib) {
  std::vector<std::byte> bytes(static_cast<std::size_t>(mib) << 20);
  fill_pattern(bytes);
  std::uint64_t sum = 0;
  for (std::size_t i = 0; i + 8 <= bytes.size(); i += 8) {
    std::uint64_t word;
    std::memcpy(&word, bytes.data() + i, 8);
    sum += word;
  }
  return sum;
}

// Every worker up and warm before the clock starts (the peers do the same).
void warm_up(ProcessPool& pool) {
  (void)pool.map(remote<increment>, std::vector<std::int64_t>(pool.size() * 4, 0)).get();
}

// proc_roundtrip: one trivial task at a time, n times.
BenchRun run_roundtrip(const BenchArgs& args) {
  ProcessPool pool{{.workers = static_cast<std::size_t>(args.threads)}};
  warm_up(pool);
  std::int64_t sum = 0;
  const auto start = Clock::now();
  for (long i = 0; i < args.n; ++i) sum += pool.submit(remote<increment>, static_cast<std::int64_t>(i)).get();
  BenchRun run{ms_since(start), sum};
  run.extra["us_per_roundtrip"] = run.ms * 1000 / static_cast<double>(args.n);
  return run;
}

// proc_throughput: n trivial tasks submitted one by one (no chunk size chosen), all in
// flight at once, then every future collected.
BenchRun run_throughput(const BenchArgs& args) {
  ProcessPool pool{{.workers = static_cast<std::size_t>(args.threads)}};
  warm_up(pool);
  std::vector<Future<std::int64_t>> futures;
  futures.reserve(static_cast<std::size_t>(args.n));
  const auto start = Clock::now();
  for (long i = 0; i < args.n; ++i) futures.push_back(pool.submit(remote<increment>, static_cast<std::int64_t>(i)));
  std::int64_t sum = 0;
  for (auto& f : futures) sum += f.get();
  BenchRun run{ms_since(start), sum};
  run.extra["tasks_per_s"] = static_cast<double>(args.n) / (run.ms / 1000);
  return run;
}

// proc_bigdata: n MiB to one worker that sums them. The data is produced in a SharedBuffer
// (untimed, as the peer's bytes object is built untimed); timed: seal, send, sum, answer.
// Also timed apart: the same when the data sits in a std::vector first (one copy into
// the buffer, included).
BenchRun run_bigdata(const BenchArgs& args) {
  ProcessPool pool{{.workers = 1}};
  (void)pool.submit(remote<increment>, 0).get();
  const std::size_t size = static_cast<std::size_t>(args.n) << 20;
  auto buffer = SharedBuffer::create(size);
  fill_pattern(buffer.writable());
  const auto start = Clock::now();
  buffer.seal();
  const std::uint64_t sum = pool.submit(remote<sum_words>, buffer).get();
  BenchRun run{ms_since(start), sum};
  const double gib = static_cast<double>(size) / (1 << 30);
  const double gib_per_s = gib / (run.ms / 1000);
  run.extra["gib_per_s"] = gib_per_s;

  std::vector<std::byte> plain(size);
  fill_pattern(plain);
  // The yardstick of the goal: this machine's memcpy of the same size, in the same run,
  // between two buffers whose pages are already in place (the best of three).
  {
    std::vector<std::byte> target(size, std::byte{1});
    double best_ms = 0;
    for (int i = 0; i < 3; ++i) {
      const auto memcpy_start = Clock::now();
      std::memcpy(target.data(), plain.data(), size);
      const double ms = ms_since(memcpy_start);
      best_ms = i == 0 ? ms : std::min(best_ms, ms);
    }
    if (target[size / 2] != plain[size / 2]) run.result = "memcpy lost bytes";
    run.extra["memcpy_gib_per_s"] = gib / (best_ms / 1000);
    run.extra["of_memcpy"] = gib_per_s / (gib / (best_ms / 1000));  // the goal: >= 0.5
  }
  const auto copy_start = Clock::now();
  const std::uint64_t copied_sum = pool.submit(remote<sum_words>, SharedBuffer::copy_of(plain)).get();
  const double copy_ms = ms_since(copy_start);
  run.extra["from_vector_ms"] = copy_ms;
  run.extra["from_vector_gib_per_s"] = gib / (copy_ms / 1000);
  if (copied_sum != sum) run.result = "mismatch between the two runs";
  return run;
}

// proc_cpu_scaling: n tasks of k_collatz_block numbers each, on 1 worker then on `threads`.
BenchRun run_cpu_scaling(const BenchArgs& args) {
  std::vector<std::tuple<std::int64_t, std::int64_t>> blocks;
  for (long i = 0; i < args.n; ++i) blocks.emplace_back(1 + i * k_collatz_block, k_collatz_block);
  auto timed = [&](int workers, std::int64_t& total) {
    ProcessPool pool{{.workers = static_cast<std::size_t>(workers)}};
    warm_up(pool);
    const auto start = Clock::now();
    total = 0;
    for (std::int64_t steps : pool.map(remote<collatz_steps>, blocks).get()) total += steps;
    return ms_since(start);
  };
  std::int64_t one_total = 0;
  std::int64_t many_total = 0;
  const double one_ms = timed(1, one_total);
  const double many_ms = timed(args.threads, many_total);
  BenchRun run{many_ms, many_total};
  run.extra["ms_1_worker"] = one_ms;
  run.extra["speedup"] = one_ms / many_ms;
  if (one_total != many_total) run.result = "1 and N workers disagree";
  return run;
}

}  // namespace

std::vector<Benchmark> process_benchmarks() {
  return {
      Benchmark{
          .name = "proc_roundtrip",
          .description = "one trivial task at a time through a ProcessPool: submit, run in a worker, get",
          .default_n = 10'000,
          .valid_n = [](long n) { return n >= 1; },
          .expected = [](long n) { return nlohmann::json(triangle(n)); },
          .run = run_roundtrip,
          .peer_args = {},
          .peer_name = {},
          .default_threads = 2,
      },
      Benchmark{
          .name = "proc_throughput",
          .description = "N trivial tasks in flight on the worker processes, no chunk size given; tasks/s",
          .default_n = 100'000,
          .valid_n = [](long n) { return n >= 1; },
          .expected = [](long n) { return nlohmann::json(triangle(n)); },
          .run = run_throughput,
          .peer_args = {},
          .peer_name = {},
          .default_threads = 2,
      },
      Benchmark{
          .name = "proc_bigdata",
          .description = "N MiB to a worker that sums them as 64-bit words, by SharedBuffer (sealed memfd)",
          .default_n = 256,
          .valid_n = [](long n) { return n >= 1 && n <= 4096; },
          .expected = [](long n) { return nlohmann::json(pattern_sum(n)); },
          .run = run_bigdata,
          .peer_args = {},
          .peer_name = {},
          .default_threads = 0,
      },
      Benchmark{
          .name = "proc_cpu_scaling",
          .description = "N CPU-bound tasks (Collatz steps of 100,000 numbers each) on 1 worker, then on T; speedup",
          .default_n = 16,
          .valid_n = [](long n) { return n >= 1 && n <= 10'000; },
          .expected =
              [](long n) { return nlohmann::json(collatz_blocks_total(n)); },
          .run = run_cpu_scaling,
          .peer_args = {},
          .peer_name = {},
          .default_threads = 2,
      },
  };
}

}  // namespace gearbox::bench
