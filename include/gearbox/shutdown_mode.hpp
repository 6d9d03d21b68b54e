// ShutdownMode: how a pool stops (ThreadPool::shutdown, ProcessPool::shutdown), with the
// same meaning on both engines (Python's Executor.shutdown(wait, cancel_futures)).
//
//   pool.shutdown();                                  // ShutdownMode::wait
//   pool.shutdown(gb::ShutdownMode::cancel_pending);  // drop what has not started
//
// Both modes stop the intake first: a submit from outside the pool afterwards throws
// ShutdownError. Both return once no work of the pool runs any more, and both let running
// work end by itself: a thread cannot be stopped from outside, and a process pool's
// terminate() is the separate, explicit way to kill running work. A pool's destructor is
// shutdown(ShutdownMode::wait), as Python's `with` block is.
#pragma once

namespace gearbox {

enum class ShutdownMode : unsigned char {
  // Queued work runs, and running work finishes.
  wait,
  // Work that has not started completes with Cancelled (its future rethrows it); running
  // work finishes.
  cancel_pending,
};

}  // namespace gearbox
