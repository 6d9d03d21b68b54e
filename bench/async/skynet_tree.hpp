// skynet's tree, in the two forms the benchmarks run on both flavors (one Loop in
// async_benchmarks.cpp, a Runtime in runtime_benchmarks.cpp), so that both run exactly
// the same task code: skynet_node gathers its children (skynet, rt_skynet), and
// skynet_spawned starts each by spawn() and joins it by its handle (skynet_scheduled,
// rt_skynet_scheduled).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include <gearbox/combinators.hpp>
#include <gearbox/join_handle.hpp>
#include <gearbox/spawn.hpp>
#include <gearbox/task.hpp>

namespace gearbox::bench {

// skynet: every node of a tree of fan-out 10 is a task; leaves return their number,
// parents sum their children (gather: they start eagerly, in the parent's turn). Counts
// spawn + schedule + join cost.
inline Task<std::int64_t> skynet_node(std::int64_t number, std::int64_t size) {
  if (size == 1) co_return number;
  const std::int64_t child_size = size / 10;
  std::vector<Task<std::int64_t>> children;
  children.reserve(10);
  for (std::int64_t i = 0; i < 10; ++i) children.push_back(skynet_node(number + i * child_size, child_size));
  std::int64_t sum = 0;
  for (std::int64_t value : co_await gather(std::move(children))) sum += value;
  co_return sum;
}

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
