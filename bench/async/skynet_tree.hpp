// skynet's tree with every child started by spawn() and joined by its handle: shared by
// skynet_scheduled (one Loop, async_benchmarks.cpp) and rt_skynet (a Runtime,
// runtime_benchmarks.cpp), so both flavors run exactly the same task code.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include <gearbox/join_handle.hpp>
#include <gearbox/spawn.hpp>
#include <gearbox/task.hpp>

namespace gearbox::bench {

// Sums the leaves number..number+size-1 (size a power of 10): every node spawns its 10
// children (scheduled: each first runs at a later turn), then awaits them in order.
inline Task<std::int64_t> skynet_spawned(std::int64_t number, std::int64_t size) {
  if (size == 1) co_return number;
  const std::int64_t child_size = size / 10;
  std::array<JoinHandle<std::int64_t>, 10> children;
  for (std::int64_t i = 0; i < 10; ++i)
    children[static_cast<std::size_t>(i)] = spawn(skynet_spawned(number + i * child_size, child_size));
  std::int64_t sum = 0;
  for (auto& child : children) sum += co_await child;
  co_return sum;
}

}  // namespace gearbox::bench
