// Shared by the tests of the thread engine (future_test, future_await_test,
// thread_pool_test, thread_pool_shutdown_test, thread_pool_stress_test): a spin-wait on a
// flag, and the saturation of a ThreadPool (every worker blocked in a job that waits on a
// latch the test opens, libuv's saturate_threadpool).
//
// Objects a job uses (latches, counters) are declared before the pool, so that the pool's
// destructor has joined its workers before they go away.
#pragma once

#include <gearbox/future.hpp>
#include <gearbox/thread_pool.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <latch>
#include <stdexcept>
#include <thread>
#include <vector>

namespace gearbox_test {

namespace gb = gearbox;
using namespace std::chrono_literals;

// Spins (yielding the CPU) until `flag` holds true. Bounded by the test's timeout.
inline void wait_until(const std::atomic<bool>& flag) {
  while (!flag.load()) std::this_thread::yield();
}

// Saturation: every worker blocked in a job until the test opens the gate.
struct Gate {
  explicit Gate(std::size_t workers) : started(static_cast<std::ptrdiff_t>(workers)) {}
  std::latch started;  // counted down by each blocker once it runs
  std::latch open{1};  // the test counts it down to release the blockers
};

// How long a pool may take to start one job per worker before a test gives up on it. A
// correct pool needs microseconds; the bound only turns a lost wake-up into a failure
// instead of a hang (see PoolStress.as_many_jobs_as_workers_...).
inline constexpr auto k_start_guard = 10s;

// Occupies every worker of `pool` with a job that waits for `gate`, then returns
// after_gate(i). Returns once every worker is blocked. If the blockers do not all start,
// opens the gate (so the pool can be joined) and throws: the test fails, it does not hang.
template <class After>
inline std::vector<gb::Future<int>> saturate(gb::ThreadPool& pool, Gate& gate, After after_gate) {
  std::vector<gb::Future<int>> blockers;
  for (std::size_t i = 0; i < pool.size(); ++i)
    blockers.push_back(pool.submit([&gate, after_gate, i] {
      gate.started.count_down();
      gate.open.wait();
      return after_gate(static_cast<int>(i));
    }));
  const auto until = std::chrono::steady_clock::now() + k_start_guard;
  while (!gate.started.try_wait()) {
    if (std::chrono::steady_clock::now() >= until) {
      gate.open.count_down();
      throw std::runtime_error(
          "test: one job per worker, submitted from outside, did not all start: a job was left in a blocked "
          "worker's deque while another worker slept (see PoolStress.as_many_jobs_as_workers_...)");
    }
    std::this_thread::yield();
  }
  return blockers;
}

inline std::vector<gb::Future<int>> saturate(gb::ThreadPool& pool, Gate& gate) {
  return saturate(pool, gate, [](int i) { return 1000 + i; });
}

}  // namespace gearbox_test
