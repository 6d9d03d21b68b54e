// Runtime: the multi-thread flavor of the async engine. The same Task<T> code that runs on
// one thread in a Loop runs here on N worker threads (Tokio's multi_thread runtime; Go's
// scheduler with GOMAXPROCS=N).
//
//   gb::Runtime rt{{.threads = 4}};          // default: one worker per core
//   int n = rt.run(main_task());              // blocks the caller until main_task ends
//
// Moving a program between the flavors is one line: `gb::Loop loop; loop.run(t)` or
// `gb::Runtime rt; rt.run(t)`. Inside tasks nothing changes: gb::spawn, co_await of a
// JoinHandle, yield_now, sleep_for/sleep_until, cancellation, and Event, Mutex, Semaphore,
// Channel and select (shared by tasks on different workers) work on both.
//
// Scheduling (docs/architecture.md, "The multi-thread runtime"):
//   - each worker has a local FIFO run queue of 256 tasks and a LIFO slot: a task woken by
//     the task running on a worker runs next on that worker (capped at 3 in a row, so a
//     ping-pong pair cannot starve the others); a task spawned from a task goes to the back
//     of that worker's queue; one spawned or woken from outside any worker goes to the
//     global injection queue, which every worker also checks every 61 tasks;
//   - a worker with nothing to do steals half of another's queue (from a random victim;
//     at most half the workers search at once), then parks in its own epoll wait;
//   - each worker owns a Loop with its own epoll reactor and timing wheel: a timer or
//     socket watch belongs to the worker the task was running on when it began the wait,
//     and wakes the task there. A woken task may then be stolen by another worker.
//
// What a task may assume about its thread: nothing across a co_await. A task runs on one
// thread at a time and every co_await is a happens-before edge (what it wrote before the
// await it reads after, wherever it resumes), but it may resume on another worker, so
// thread_local variables and thread-affine objects must not be held across an await.
//
// Also here: awaiting a Future from either pool, and so to_thread.
// Also gather / when_any / as_completed / TaskGroup: children end on any worker and tell
// their parent from there.
// timeout() works too (its limit a timer disarmed from any worker), and so do sockets,
// pipes and subprocesses (a descriptor is registered at its first use with the workers'
// reactors in turn, and its readiness wakes the waiting task onto that worker, so
// connections spread over the workers), SignalSet (made in the thread that calls run();
// see os/signal.hpp), http::Server, and http::Client (libcurl on a driver thread of the
// Client's own; see http/client.hpp).
//
// Thread-safety: run(), spawn() and stats() may be called from any thread. run() must not
// be called from one of this runtime's own workers (it would block a worker).
// Destruction: ~Runtime cancels every task still alive, waits until they have ended (so
// their destructors ran), then stops and joins the workers. A JoinHandle must not outlive
// its runtime (as with a Loop).
//
// Tracing: each worker is a thread named gearbox-rt<N>, so a trace has one row per
// worker showing which tasks it ran; each steal is an instant event on the thief's row
// (victim, tasks taken), and each slice that held its worker past blocking_threshold is
// a "blocked" instant at its end, on its worker's row.
//
// Known limits of this step: a task in a worker's LIFO slot is not stealable, so it waits
// for the task running on that worker to await (as in Tokio); a worker busy computing
// fires its own timers late (see docs/architecture.md on one reactor per worker).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <stdexcept>

#include <gearbox/detail/task_core.hpp>
#include <gearbox/engine_stats.hpp>
#include <gearbox/io_backend.hpp>
#include <gearbox/join_handle.hpp>
#include <gearbox/loop.hpp>
#include <gearbox/task.hpp>

namespace gearbox {

struct RuntimeOptions {
  // Worker threads; 0: one per core (std::thread::hardware_concurrency()).
  unsigned threads = 0;
  // Called on a worker with the exception of a task that failed and that nobody will
  // observe (detached, or its handle dropped). Default: print it to stderr. Must be
  // thread-safe: workers may call it at once.
  std::function<void(std::exception_ptr)> on_unhandled_exception = {};
  // A run slice (a task between two awaits) that holds its worker this long is reported:
  // counted in RuntimeCounters::blocking_slices and marked "blocked" in the trace, on the
  // worker's row at the end of the slice (Go preempts such a goroutine at 10 ms; a
  // cooperative runtime can at least say who did it). A monitor thread looks every
  // millisecond (or quarter threshold, if shorter) while a worker is awake, and sleeps
  // while all are parked: a slice shorter than the threshold is never reported, one
  // longer than 1.5x it always is. Zero: no reports.
  std::chrono::milliseconds blocking_threshold{10};
  // Each worker's I/O back end (see io_backend.hpp): with io_uring, a ring per worker.
  IoBackend io_backend = IoBackend::automatic;
  SocketIo socket_io = SocketIo::automatic;
};

// Scheduler counters, for tests, benchmarks and the lab (each exact when read).
struct RuntimeCounters {
  std::uint64_t steals = 0;        // steal operations that took at least one task
  std::uint64_t stolen_tasks = 0;  // tasks moved by them
  std::uint64_t parks = 0;         // times a worker found nothing to do and slept
  std::uint64_t blocking_slices = 0;  // run slices that held a worker past blocking_threshold
  // Looks of the monitor thread at the workers (blocking slices, stranded queues): one a
  // millisecond while a worker is awake, none while every worker is parked.
  std::uint64_t monitor_looks = 0;
};

namespace detail {
class RuntimeCore;
}

class Runtime {
public:
  explicit Runtime(RuntimeOptions options = {});
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // Runs `task` on the workers and blocks the calling thread until it ends; returns its
  // result or rethrows its exception (asyncio.run). Other tasks keep running. Not from a
  // worker of this runtime (std::logic_error).
  template <class T>
  T run(Task<T> task);

  // Starts `task` on the workers (from a task: at the back of the current worker's queue;
  // from any other thread: on the injection queue). Thread-safe.
  template <class T>
  JoinHandle<T> spawn(Task<T> task);

  unsigned threads() const noexcept;
  // The workers' I/O back end: epoll or io_uring (never automatic).
  IoBackend io_backend() const noexcept;
  SocketIo socket_io() const noexcept;
  // Tasks spawned on this runtime that have not ended.
  std::size_t live_tasks() const noexcept;
  // What the runtime has done so far, in the shape every engine reports (engine_stats.hpp).
  EngineStats stats() const noexcept;
  RuntimeCounters counters() const noexcept;

private:
  // The loop a new task is created on: the calling worker's, or worker 0's from outside.
  Loop& spawn_loop() noexcept;
  void check_can_run() const;
  void wait_for(detail::TaskCore& core);

  std::unique_ptr<detail::RuntimeCore> m_core;
};

template <class T>
JoinHandle<T> Runtime::spawn(Task<T> task) {
  return spawn_loop().spawn(std::move(task));
}

template <class T>
T Runtime::run(Task<T> task) {
  check_can_run();  // before spawning: a refused run must not start its task
  JoinHandle<T> handle = spawn(std::move(task));
  wait_for(*handle.core());
  return handle.result();
}

}  // namespace gearbox
