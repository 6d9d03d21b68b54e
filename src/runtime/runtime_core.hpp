// RuntimeCore: the scheduler behind gb::Runtime (runtime.hpp): N workers, each a thread
// with its own Loop (epoll reactor, timing wheel, posted functions), a local RunQueue and
// a LIFO slot; one global injection queue; the idle set through which parked workers are
// woken. docs/architecture.md ("The multi-thread runtime") tells the whole story.
//
// Where a ready task goes:
//   spawned on a worker ............ the back of that worker's queue (eager: run at once)
//   woken by a task on a worker .... that worker's LIFO slot (its occupant moves to the
//                                    back of the queue); run next, at most 3 in a row
//   woken on a worker between tasks  the back of that worker's queue, waking no parked
//                                    worker (timers, I/O, posts of its own loop; the
//                                    monitor hands a stranded queue over)
//   yielded, or woken while running  the back of the queue of the worker that ran it
//   spawned or woken off the runtime the injection queue
// A full local queue moves half of itself to the injection queue (Tokio's overflow).
//
// Parking without a lost wake-up: m_counts packs how many workers are idle and how many
// are searching (stealing). Whoever makes work available publishes it with a seq_cst
// store (a queue's tail, the injection queue's size) and then reads m_counts with a
// seq_cst load; a worker that parks announces itself with a seq_cst read-modify-write of
// m_counts and then reads every queue's size with seq_cst loads. All four are in the one
// total order of seq_cst operations, so the pattern of store buffering (each side missing
// the other's write) cannot happen: either the notifier sees the parker idle (and wakes
// it), or the parker sees the work. A notifier also skips the wake when a worker is
// searching; a searcher that finds work and was the last one searching wakes another (so
// a burst spreads), and one that gives up re-checks as a parker does. (A notifier reads
// m_counts without writing it: an RMW would pull the line to every pushing core.)
//
// Live tasks: one list per worker (plus one for spawns from outside), each under its own
// mutex with its size, so ~Runtime can cancel every task; no global counter is written
// per task. ~Runtime's emptiness check is a scan of the lists between two reads of
// m_ended_generation, which every adopt and forget bumps once m_draining is set (seq_cst:
// a spawn or end that the scan could miss is one that reads m_draining after the scan
// began, so it bumps the generation and the scan is repeated).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <gearbox/detail/intrusive_list.hpp>
#include <gearbox/detail/task_core.hpp>
#include <gearbox/engine_stats.hpp>
#include <gearbox/loop.hpp>
#include <gearbox/runtime.hpp>

#include "runtime/run_queue.hpp"

namespace gearbox::detail {

class RuntimeCore {
public:
  explicit RuntimeCore(RuntimeOptions options);
  ~RuntimeCore();
  RuntimeCore(const RuntimeCore&) = delete;
  RuntimeCore& operator=(const RuntimeCore&) = delete;

  unsigned threads() const noexcept { return static_cast<unsigned>(m_workers.size()); }
  // The loop of the calling thread's worker if it is one of ours, else null.
  Loop* current_worker_loop() const noexcept;
  Loop& worker_loop(unsigned index) noexcept;
  // The loop whose reactor the next new descriptor is registered with: each worker's in
  // turn (LoopAccess::home_for_new_descriptor). Thread-safe.
  Loop& next_descriptor_home() noexcept;

  // Loop's hooks for a worker loop (loop.cpp).
  void adopt(TaskCore* core, Start start) noexcept;
  void forget(TaskCore* core) noexcept;
  void note_started(unsigned worker) noexcept;
  void schedule_woken(TaskCore* core) noexcept;
  void schedule_again(TaskCore* core) noexcept;

  std::size_t live_tasks() const noexcept;
  EngineStats stats() const noexcept;
  RuntimeCounters counters() const noexcept;

  struct Worker;  // defined in runtime.cpp

private:
  struct alignas(64) LiveShard {
    std::mutex mutex;
    List tasks;             // under mutex
    std::size_t count = 0;  // under mutex
  };

  void worker_main(Worker& worker);
  // The monitor thread (on a runtime of 2 workers or more, or with a blocking_threshold):
  // looks at every worker each millisecond (or quarter threshold), reports a slice that
  // has run for a threshold (RuntimeOptions::blocking_threshold), and offers a queue that
  // stayed non-empty and still between two looks to a parked worker (share_stranded_work).
  // While every worker is parked there is nothing to look at, and it sleeps until a
  // worker leaves the idle set (Go's sysmon does the same): an idle runtime makes no
  // wake-ups (it made 1,000 a second).
  void monitor_main();
  void stop_monitor() noexcept;
  // The monitor's sleep: it may begin only while every worker is parked; a worker that
  // leaves the idle set ends it (wake_monitor_if_asleep, after its m_counts RMW and with
  // m_idle_mutex released: the monitor takes m_idle_mutex in its looks, so one of the two
  // mutexes is never held while taking the other).
  void monitor_sleep_while_all_parked(std::unique_lock<std::mutex>& lock);
  void wake_monitor_if_asleep() noexcept;
  // What the monitor saw of a worker's queue at its last look.
  struct StrandWatch {
    bool queued = false;     // it held tasks
    std::uint64_t taken = 0;  // RunQueue::taken()
  };
  void share_stranded_work(Worker& worker, StrandWatch& watch) noexcept;
  Runnable* next_task(Worker& worker);
  Runnable* steal(Worker& worker);
  void run_task(Worker& worker, Runnable* task) noexcept;
  void end_searching(Worker& worker) noexcept;
  void park(Worker& worker);
  void unpark_self(Worker& worker) noexcept;
  bool work_available() const noexcept;

  // The calling thread's worker, if it is one of ours.
  Worker* local_worker() const noexcept;
  // Whether a push wakes a parked worker when the queue holds more than the task the
  // worker will run next (if_shared), or never (no; a full queue's overflow always does).
  enum class WakeParked : bool { no, if_shared };
  void push_local(Worker& worker, Runnable* task, WakeParked wake = WakeParked::if_shared) noexcept;
  void push_inject(Runnable* first, Runnable* last, std::size_t count) noexcept;
  Runnable* pop_inject() noexcept;
  void notify_parked() noexcept;
  // Cancels every live task; returns how many there were.
  std::size_t cancel_all() noexcept;
  void note_draining_change() noexcept;

  // m_counts: idle workers << 16 | searching workers.
  static constexpr std::uint32_t k_idle_one = 1u << 16;
  static std::uint32_t searching_of(std::uint32_t counts) noexcept { return counts & 0xffffu; }
  static std::uint32_t idle_of(std::uint32_t counts) noexcept { return counts >> 16; }

  RuntimeOptions m_options;
  std::vector<std::unique_ptr<Worker>> m_workers;

  alignas(64) std::mutex m_inject_mutex;
  Runnable* m_inject_head = nullptr;          // under m_inject_mutex
  Runnable** m_inject_tail = &m_inject_head;  // under m_inject_mutex
  // Memory ordering: written under m_inject_mutex (seq_cst: the publishing half of the
  // no-lost-wake-up pairing); read without it only as a hint, confirmed under the mutex.
  std::atomic<std::size_t> m_inject_size{0};

  alignas(64) std::atomic<std::uint32_t> m_counts{0};
  alignas(64) std::mutex m_idle_mutex;
  std::vector<unsigned> m_idle;  // parked workers, under m_idle_mutex

  // Live tasks, sharded by the worker that spawned them (the last shard: off the runtime).
  std::vector<std::unique_ptr<LiveShard>> m_live;
  // Bumped (and futex-woken) at each spawn and end once ~Runtime has begun (m_draining).
  alignas(64) std::atomic<std::uint32_t> m_ended_generation{0};
  std::atomic<bool> m_draining{false};
  std::atomic<bool> m_stopping{false};
  // Memory ordering: relaxed; a counter that only spreads descriptors over the workers.
  std::atomic<unsigned> m_next_home{0};
  // Tasks spawned from off the runtime (the per-worker figures count the rest).
  std::atomic<std::uint64_t> m_spawned_outside{0};

  std::thread m_monitor;
  std::mutex m_monitor_mutex;
  std::condition_variable m_monitor_wake;
  bool m_monitor_stop = false;  // under m_monitor_mutex
  // The monitor sleeps (or is about to). Written under m_monitor_mutex; read without it by
  // workers leaving the idle set. Memory ordering: seq_cst, the pairing of parking's: the
  // monitor stores true then loads m_counts, a waker RMWs m_counts then loads this, so
  // either the monitor sees a worker awake or the waker sees it asleep.
  std::atomic<bool> m_monitor_asleep{false};
  // Looks taken (RuntimeCounters::monitor_looks); written by the monitor only.
  std::atomic<std::uint64_t> m_monitor_looks{0};
};

}  // namespace gearbox::detail
