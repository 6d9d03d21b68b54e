// CPU-bound kernels shared by the benchmarks that measure how work spreads over cores
// (proc_cpu_scaling on worker processes, rt_cpu_scaling on a Runtime's workers): the same
// computation in every engine, so that their speedups compare.
#pragma once

#include <cstdint>

namespace gearbox::bench {

// Numbers per task of the scaling benchmarks.
inline constexpr std::int64_t k_collatz_block = 100'000;

// Total Collatz steps of the numbers in [first, first + count): CPU only, no memory.
inline std::int64_t collatz_steps(std::int64_t first, std::int64_t count) {
  std::int64_t steps = 0;
  for (std::int64_t start = first; start < first + count; ++start) {
    std::uint64_t x = static_cast<std::uint64_t>(start);
    while (x != 1) {
      x = (x & 1) ? 3 * x + 1 : x / 2;
      ++steps;
    }
  }
  return steps;
}

// The steps of tasks 0..tasks-1 of k_collatz_block numbers each: the scaling benchmarks'
// expected result.
inline std::int64_t collatz_blocks_total(long tasks) {
  std::int64_t total = 0;
  for (long i = 0; i < tasks; ++i) total += collatz_steps(1 + i * k_collatz_block, k_collatz_block);
  return total;
}

}  // namespace gearbox::bench
