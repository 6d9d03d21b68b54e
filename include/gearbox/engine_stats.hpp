// EngineStats: the figures every engine reports in the same shape, so that a program (or
// the lab) can watch a Loop, a ThreadPool, the blocking pool behind to_thread and a
// ProcessPool alike.
//
//   gb::EngineStats s = pool.stats();
//   std::printf("%llu queued, %llu running\n", s.queued, s.running);
//
// A unit of work is what the engine was handed: a spawned task (Loop), a submitted job
// (ThreadPool, to_thread), a submitted call or map element (ProcessPool). Every unit that
// was submitted is, at any moment, in exactly one of: queued, running, or ended
// (completed, failed or cancelled). The figures are a snapshot read while the engine runs:
// each is exact when read, but they are not read at one instant, so their sums may be off
// by the units that moved meanwhile; once the engine is idle they add up exactly.
#pragma once

#include <cstdint>

namespace gearbox {

struct EngineStats {
  std::uint64_t submitted = 0;  // accepted since the engine started
  std::uint64_t queued = 0;     // accepted, not started
  std::uint64_t running = 0;    // started, not ended (a task suspended at co_await counts)
  std::uint64_t completed = 0;  // ended with a value
  std::uint64_t failed = 0;     // ended with an exception other than Cancelled
  std::uint64_t cancelled = 0;  // ended with Cancelled, run or not
};

}  // namespace gearbox
