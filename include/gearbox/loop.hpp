// Loop: an event loop that runs many tasks on one thread (asyncio's event loop).
//
//   gb::Loop loop;
//   int n = loop.run(main_task());        // like asyncio.run: result or exception
//
// Tasks switch only at co_await (cooperative): a task that computes for a second holds
// the loop for that second. The loop waits for I/O with epoll (edge-triggered), or with
// io_uring (files by completion; see io_backend.hpp), and for
// time with a hierarchical timing wheel (1 ms resolution: a timer never fires early, and
// fires within a millisecond of its deadline when the loop is not busy).
//
// Each turn the loop runs the tasks that were ready when the turn began, then polls I/O
// and fires due timers; what those wake runs in the next turn. So a task that keeps
// yielding cannot starve I/O or timers, and the order of a run is deterministic given the
// order of events.
//
// Thread-safety: one thread runs a loop (the thread inside run()). Every member except
// post() must be called on that thread. post() may be called from any thread; it wakes
// the loop through an eventfd.
//
// Destruction: ~Loop cancels every task still alive and runs the loop until they have
// ended, so their destructors run and nothing leaks, and runs the functions posted before
// it began (posting to a loop being destroyed is an error). A JoinHandle, TaskGroup or sync primitive must not outlive its loop.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <stdexcept>

#include <gearbox/clock.hpp>
#include <gearbox/detail/io_watcher.hpp>
#include <gearbox/detail/ready_queue.hpp>
#include <gearbox/detail/task_core.hpp>
#include <gearbox/detail/timer_node.hpp>
#include <gearbox/engine_stats.hpp>
#include <gearbox/io_backend.hpp>
#include <gearbox/join_handle.hpp>
#include <gearbox/task.hpp>

namespace gearbox {

namespace detail {
struct LoopAccess;
class RuntimeCore;
class Ring;
}

// How a spawned task starts.
//   scheduled  it first runs at the loop's next turn; the spawner continues at once
//              (asyncio.create_task). The default of spawn().
//   eager      it runs at once, inside spawn(), until its first suspension; then the
//              spawner continues (C# and JavaScript async calls, Python 3.12 eager tasks).
//              A task that finishes without suspending costs no scheduling at all. The
//              combinators start their children this way. Nested eager starts deeper than
//              k_max_eager_depth fall back to scheduled, so the stack stays bounded.
enum class Start : unsigned char { scheduled, eager };
inline constexpr int k_max_eager_depth = 64;

struct LoopOptions {
  // The clock for timers; null means SteadyClock. Must outlive the loop.
  Clock* clock = nullptr;
  // With a ManualClock: when no task is ready and no I/O is pending, jump the clock to the
  // next timer's deadline (tests then run timer logic instantly and deterministically). A
  // loop in this mode that has nothing ready, no timer and no watched descriptor throws
  // std::logic_error ("deadlock") instead of waiting forever.
  bool auto_advance = false;
  // Called on the loop's thread with the exception of a task that failed and that nobody
  // will observe (detached, or its handle dropped). Default: print it to stderr.
  std::function<void(std::exception_ptr)> on_unhandled_exception = {};
  // How the loop does I/O (see io_backend.hpp): automatic, epoll or io_uring; and, with
  // io_uring, how stream sockets wait.
  IoBackend io_backend = IoBackend::automatic;
  SocketIo socket_io = SocketIo::automatic;
};

class Loop {
public:
  using time_point = Clock::time_point;

  explicit Loop(LoopOptions options = {});
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  // Runs the loop on the calling thread until `task` finishes; returns its result or
  // rethrows its exception. Other tasks keep their state between runs. Not reentrant.
  template <class T>
  T run(Task<T> task);

  // Starts `task` concurrently (see Start). Loop thread only (or, scheduled, before the
  // first run()).
  template <class T>
  JoinHandle<T> spawn(Task<T> task, Start start = Start::scheduled);

  // Runs `fn` on the loop's thread at its next turn. Thread-safe; the only member that is.
  // Functions posted before ~Loop begins are run by it at the latest.
  void post(std::function<void()> fn);

  // The loop running on the calling thread, or null.
  static Loop* current() noexcept;
  // The same; throws std::logic_error when the caller is not on a loop.
  static Loop& current_or_throw();

  Clock& clock() const noexcept { return *m_clock; }
  time_point now() const noexcept { return m_clock->now(); }
  // Tasks spawned on this loop that have not ended.
  std::size_t live_tasks() const noexcept { return m_live_count; }
  // What the loop has done so far, in the shape every engine reports (engine_stats.hpp).
  // A unit is a spawned task (run()'s task included): queued until it first runs, then
  // running (suspended at a co_await included) until it ends. Loop thread only.
  EngineStats stats() const noexcept;
  // The I/O back end in use: epoll or io_uring (never automatic). Any thread.
  IoBackend io_backend() const noexcept;
  // How stream sockets wait: completion only with io_uring (never automatic). Any thread.
  SocketIo socket_io() const noexcept;

private:
  friend class detail::TaskCore;
  friend struct detail::LoopAccess;
  struct Impl;

  // The runtime's hooks, reached through detail::LoopAccess (documented there).
  void post(detail::Runnable* runnable) noexcept;
  void schedule(detail::Runnable* runnable) noexcept { m_ready.push(runnable); }
  void add_timer(detail::TimerNode* timer, time_point deadline) noexcept;
  void cancel_timer(detail::TimerNode* timer) noexcept;
  void watch(int fd, detail::IoWatcher* watcher, std::uint32_t events, bool on_a_runtime = false);
  void unwatch(int fd, detail::IoWatcher* watcher) noexcept;
  void forget(detail::IoWatcher* watcher) noexcept;
  void unregister(int fd) noexcept;
  void report_unhandled(std::exception_ptr error) noexcept;

  void adopt(detail::TaskCore* core, Start start) noexcept;
  void forget(detail::TaskCore* core) noexcept;
  void note_started() noexcept;
  // A Runtime's worker loop: the runtime's queues, not m_ready, hold its tasks.
  void wake_shared(detail::TaskCore* core) noexcept;
  void reschedule(detail::TaskCore* core) noexcept;
  int drive(bool may_block);
  void wake_up() noexcept;
  void check_can_run() const;
  void run_until_done(detail::TaskCore& core);
  void run_turn(const detail::TaskCore* target);
  void drain();

  Clock* m_clock;
  detail::ReadyQueue m_ready;
  detail::List m_live;
  std::size_t m_live_count = 0;
  // For stats(): tasks spawned, first run, and ended by outcome (loop thread only).
  std::uint64_t m_spawned = 0;
  std::uint64_t m_started = 0;
  std::uint64_t m_completed = 0;
  std::uint64_t m_failed = 0;
  std::uint64_t m_cancelled = 0;
  std::unique_ptr<Impl> m_impl;
  // Set when the loop is a worker of a multi-thread Runtime (runtime.hpp); null otherwise.
  detail::RuntimeCore* m_runtime = nullptr;
  unsigned m_worker_index = 0;
};

namespace detail {

// The loop's hooks for the runtime's own awaiters, sockets and engines: not part of the
// user's API (a user reaches them only through the awaitables built on them), and free to
// change. Loop thread only, except post.
struct LoopAccess {
  // Runs `runnable` once on the loop's thread at its next turn, without allocating.
  // Thread-safe. The runnable must stay valid until it has run.
  static void post(Loop& loop, Runnable* runnable) noexcept { loop.post(runnable); }
  // Makes `runnable` ready: it runs in the loop's next turn.
  static void schedule(Loop& loop, Runnable* runnable) noexcept { loop.schedule(runnable); }
  // Arms `timer` to fire at `deadline` (already due: it fires at the next turn).
  static void add_timer(Loop& loop, TimerNode* timer, Loop::time_point deadline) noexcept {
    loop.add_timer(timer, deadline);
  }
  // Disarms `timer`; no effect if it is not armed. O(1).
  static void cancel_timer(Loop& loop, TimerNode* timer) noexcept { loop.cancel_timer(timer); }
  // Watches `fd` (edge-triggered) for io_events; the watcher must outlive the watch. A
  // watch still registered when the loop is destroyed is dropped and its watcher told
  // (io_events::detached), so a socket may outlive the loop it was used on.
  // Refused on a Runtime's worker loop (std::logic_error): only FdWatch, which is made for
  // several workers, watches there (watch_fd).
  static void watch(Loop& loop, int fd, IoWatcher* watcher, std::uint32_t events) { loop.watch(fd, watcher, events); }
  static void watch_fd(Loop& loop, int fd, IoWatcher* watcher, std::uint32_t events) {
    loop.watch(fd, watcher, events, /*on_a_runtime=*/true);
  }
  // Stops watching `fd` and forgets `watcher` (the loop's thread).
  static void unwatch(Loop& loop, int fd, IoWatcher* watcher) noexcept { loop.unwatch(fd, watcher); }
  // Stops watching `fd` but keeps `watcher` listed until unwatch or the loop's end; from
  // any thread (a Runtime's FdWatch closed on another worker). Readiness the loop's
  // reactor already reported may still reach the watcher, on the loop's thread.
  static void unregister(Loop& loop, int fd) noexcept { loop.unregister(fd); }
  // Forgets `watcher`, already unregistered (the loop's thread).
  static void forget_watcher(Loop& loop, IoWatcher* watcher) noexcept { loop.forget(watcher); }
  // The loop whose reactor a descriptor first used on `loop` is registered with: `loop`
  // itself, or on a Runtime the next worker's loop in turn (round robin), so that
  // connections spread over the workers' reactors as over nginx's worker processes, and
  // each connection's task runs where its readiness lands. Thread-safe.
  static Loop& home_for_new_descriptor(Loop& loop) noexcept;
  // The loop's io_uring ring (io_uring back end), or null (epoll). The loop's thread only.
  static Ring* ring(Loop& loop) noexcept;
  // The ring stream sockets submit to (SocketIo::completion), or null. The loop's thread.
  static Ring* socket_ring(Loop& loop) noexcept;
  // Hands a failure nobody will observe to LoopOptions::on_unhandled_exception.
  static void report_unhandled(Loop& loop, std::exception_ptr error) noexcept { loop.report_unhandled(std::move(error)); }

  // For the multi-thread Runtime (src/runtime), whose workers each own a loop:
  // The runtime `loop` is a worker of, or null for a standalone loop.
  static RuntimeCore* runtime(const Loop& loop) noexcept { return loop.m_runtime; }
  // True if both loops are workers of one Runtime.
  static bool same_runtime(const Loop& a, const Loop& b) noexcept {
    return a.m_runtime != nullptr && a.m_runtime == b.m_runtime;
  }
  static void attach(Loop& loop, RuntimeCore* runtime, unsigned worker) noexcept {
    loop.m_runtime = runtime;
    loop.m_worker_index = worker;
  }
  // Queues a shared task that a wake-up made ready (see TaskCore::wake).
  static void wake_shared(Loop& loop, TaskCore* core) noexcept { loop.wake_shared(core); }
  // Queues a shared task again after its slice (it yielded, or was woken while running).
  static void reschedule(Loop& loop, TaskCore* core) noexcept { loop.reschedule(core); }
  // One round of the loop's own work, on its worker's thread: polls I/O (blocking until
  // the next timer when `may_block`, and until wake_up() or a post), fires due timers and
  // runs posted functions. Returns how many of those it found.
  static int drive(Loop& loop, bool may_block) { return loop.drive(may_block); }
  // Ends a blocking drive() from any thread (an eventfd write; no effect if one is due).
  static void wake_up(Loop& loop) noexcept { loop.wake_up(); }
  // Makes `loop` the calling thread's current loop (Loop::current); returns the previous.
  static Loop* enter(Loop* loop) noexcept;
};

}  // namespace detail

template <class T>
JoinHandle<T> Loop::spawn(Task<T> task, Start start) {
  if (!task.valid()) throw std::invalid_argument("gearbox: spawn of an empty Task");
  auto* core = new detail::TaskCoreOf<T>(*this, std::move(task));
  core->add_ref();  // the handle's reference; the loop holds the first
  JoinHandle<T> handle{core};
  adopt(core, start);
  return handle;
}

template <class T>
T Loop::run(Task<T> task) {
  check_can_run();  // before spawning: a refused run must not start its task
  JoinHandle<T> handle = spawn(std::move(task));
  run_until_done(*handle.core());
  return handle.result();
}

// asyncio.run: runs `task` on a new loop and returns its result. Tasks it leaves behind
// are cancelled and awaited before this returns.
template <class T>
T run(Task<T> task, LoopOptions options = {}) {
  Loop loop{std::move(options)};
  return loop.run(std::move(task));
}

}  // namespace gearbox
