// Helper shared by the oneTBB peers: make sure an arena's worker threads exist before
// anything is timed.
//
// oneTBB starts its worker threads lazily, the first time an arena asks for them, and by
// default allows at most hardware_concurrency() - 1 workers in the whole process. A peer
// that is told "--threads T" therefore (a) raises that process-wide limit with a
// tbb::global_control so that T threads exist even when T exceeds the core count, and
// (b) calls start_workers before the clock starts, so that creating the workers is not
// part of the measurement (gearbox's ThreadPool starts its threads in its constructor,
// before the timed work).
#pragma once

#include <oneapi/tbb/task_arena.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <thread>

namespace gearbox_peer {

// Runs `workers` tasks in `arena` with tbb::task_arena::enqueue and returns once all of
// them have run. Each task waits (up to a second) until all `workers` tasks have started,
// so `workers` distinct worker threads must have joined the arena at once. If oneTBB does
// not provide that many, the tasks give up after the second, a warning goes to stderr,
// and the peer goes on with fewer; returns false then. Call from a thread that is not in
// `arena`. `workers` counts worker threads only: an arena that keeps a slot for the
// calling thread (the default) has max_concurrency() - 1 of them.
inline bool start_workers(tbb::task_arena& arena, int workers) {
  // Shared with the tasks, which may still touch it after this function has seen the
  // last `finished` and returned. All accesses are seq_cst.
  //   arrived:  0..workers, incremented by each task as it starts.
  //   finished: 0..workers, incremented by each task as it ends; this function waits on it.
  //   gave_up:  set by a task that stopped waiting at the deadline.
  struct Barrier {
    std::atomic<int> arrived{0};
    std::atomic<int> finished{0};
    std::atomic<bool> gave_up{false};
  };
  auto barrier = std::make_shared<Barrier>();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{1};
  for (int i = 0; i < workers; ++i) {
    arena.enqueue([barrier, workers, deadline] {
      barrier->arrived.fetch_add(1);
      while (barrier->arrived.load() < workers && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::yield();
      }
      if (barrier->arrived.load() < workers) barrier->gave_up.store(true);
      barrier->finished.fetch_add(1);
      barrier->finished.notify_one();
    });
  }
  for (int done = barrier->finished.load(); done < workers; done = barrier->finished.load()) {
    barrier->finished.wait(done);
  }
  if (barrier->gave_up.load()) {
    std::fprintf(stderr, "warning: oneTBB did not start %d worker threads within a second\n", workers);
    return false;
  }
  return true;
}

}  // namespace gearbox_peer
