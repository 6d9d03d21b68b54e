// TaskCore: the runtime record of one spawned task on a Loop (what asyncio calls a Task
// and Tokio a task header). It owns the task's root coroutine, knows where to resume it,
// which wait it is suspended in (so cancel() can abandon that wait), and who is waiting
// for it to finish.
//
// Protocol between awaiters and the core:
//   - an awaiter that must wait calls suspend(handle, slot) in await_suspend; `slot` is
//     the wait's CancelSlot (or null for a wait that cannot be abandoned);
//   - whatever ends the wait calls wake(): the core clears the slot and is scheduled;
//   - request_cancel() sets the flag and, if the core is suspended with a slot, calls
//     the slot's handler, which unlinks the wait, records "cancelled" and calls wake()
//     (or, for waits on child tasks, forwards the cancellation and keeps waiting).
// Cancellation is level-triggered: once requested, every later suspension point of the
// task throws Cancelled.
//
// Two flavors. A task on a Loop is touched by the loop's thread only, and the protocol
// above runs with plain loads and stores. A task on a Runtime (shared()) may be woken,
// cancelled, joined and released from any thread, and runs on one worker at a time:
//   - its state is an atomic word: scheduled -> running -> suspended -> scheduled ... ->
//     done, plus `notified` (running, and woken meanwhile). suspend() only records the
//     wait: the task stays `running` until its run slice has returned, so no other thread
//     can resume it while it is still inside await_suspend. Then the runner moves it to
//     `suspended`, or, if it was woken meanwhile (`notified`) or yielded, schedules it
//     again. wake() moves suspended -> scheduled and queues it (exactly one waker wins),
//     or running -> notified;
//   - whoever holds it `running` owns its fields (resume point, cancel slot, loop): the
//     worker running it, or a canceller that claimed it (suspended -> running) to call
//     its slot on the worker that owns the wait; the claim ends like a run slice;
//   - request_cancel() sets a cancel bit in the same atomic word. If the task was
//     suspended, the canceller claims it and has the slot called; if not, its runner sees
//     the bit before it can publish `suspended` (the CAS fails if the bit arrived) and
//     calls the slot itself. Once published `suspended`, a runner touches nothing more;
//   - the completion listener is an atomic pointer that complete() swaps for a
//     "completed" mark, so a listener set concurrently with the end is either told or
//     refused (try_listen), never lost; references are atomic counts.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <exception>

#include <gearbox/detail/frame_pool.hpp>
#include <gearbox/detail/intrusive_list.hpp>

namespace gearbox {
class Loop;
}

namespace gearbox::detail {

// Something the loop can run: a task to resume, or a posted function.
struct Runnable {
  using RunFn = void (*)(Runnable*) noexcept;
  explicit Runnable(RunFn run) noexcept : m_run(run) {}
  RunFn m_run;
  Runnable* m_next = nullptr;  // link in the loop's ready queue
};

// A wait that cancellation can abandon. Registered with the core while suspended.
struct CancelSlot {
  using Fn = void (*)(CancelSlot*) noexcept;
  explicit CancelSlot(Fn on_cancel) noexcept : m_on_cancel(on_cancel) {}
  Fn m_on_cancel;
};

// Told once when a task completes (value, exception or cancellation).
struct CompletionListener {
  using Fn = void (*)(CompletionListener*) noexcept;
  explicit CompletionListener(Fn on_complete) noexcept : m_on_complete(on_complete) {}
  Fn m_on_complete;
};

// What a suspended task waits on: recorded in the trace ("then" of a run slice) so that a
// timeline can say why a task stopped running.
enum class WaitOn : std::uint8_t { other, timer, io, channel, event, lock, future, join, children, yield };
const char* to_string(WaitOn on) noexcept;

// Resumes a task may run back to back before an always-ready await yields to the loop.
inline constexpr std::uint32_t k_resume_budget = 128;

class TaskCore : public Runnable, private ListNode {  // ListNode: the owner's live list
public:
  enum class State : std::uint8_t { scheduled, running, suspended, notified, done };
  // What try_listen() found.
  enum class Listen : std::uint8_t { set, done, busy };

  TaskCore(Loop& loop, std::coroutine_handle<> root) noexcept;
  TaskCore(const TaskCore&) = delete;
  // Task records come from the per-thread frame cache, as the frames do.
  static void* operator new(std::size_t size) { return frame_allocate(size); }
  static void operator delete(void* record, std::size_t size) noexcept { frame_deallocate(record, size); }
  TaskCore& operator=(const TaskCore&) = delete;

  // The loop the task last ran on (on a Runtime: the worker's loop; it changes only while
  // the task is queued, so an awaiter may use it between suspend() and its wake-up).
  Loop& loop() const noexcept { return *m_loop; }
  // True for a task on a multi-thread Runtime (see the header comment).
  bool shared() const noexcept { return m_shared; }
  // Runs `runnable` on this task's loop at its next turn (Loop::post). Thread-safe: how
  // another thread's completion reaches the task.
  void post_to_loop(Runnable* runnable) const noexcept;
  // Memory ordering: acquire, so that a caller who sees `done` sees the task's result.
  bool done() const noexcept { return state_of(m_state.load(std::memory_order_acquire)) == State::done; }
  // Memory ordering: relaxed; the flag carries no data (a cancelled await only throws).
  bool cancel_requested() const noexcept { return m_cancel_requested.load(std::memory_order_relaxed); }

  // Called by an awaiter from await_suspend: the task waits (on `on`); `at` resumes it.
  void suspend(std::coroutine_handle<> at, CancelSlot* slot, WaitOn on) noexcept {
    m_resume_point = at;
    m_cancel_slot = slot;
    m_wait_on = on;
    m_suspending = true;
    // Shared: stays `running` until the slice returns (run_scheduled publishes it).
    if (!m_shared) m_state.store(word_of(State::suspended), std::memory_order_relaxed);
  }
  // Ends the current wait and schedules the task. No effect unless it is suspended (or,
  // shared, running: then it is scheduled again as soon as its slice returns).
  void wake() noexcept;
  // Reschedules the task behind everything already ready (the task suspends at `at`).
  void yield(std::coroutine_handle<> at) noexcept;
  // Counts one resume that did not have to wait. False when the budget is spent: the
  // caller should yield so other tasks run.
  bool take_budget() noexcept { return m_budget == 0 ? false : (--m_budget, true); }

  void request_cancel() noexcept;

  // At most one listener; it is told (and forgotten) when the task completes.
  // Sets `listener` unless the task has completed (done: it will never be told) or has
  // one already (busy). Thread-safe.
  Listen try_listen(CompletionListener* listener) noexcept;
  // Takes `listener` back: true if it will not be told; false if the task's completion
  // has taken it already (it is being, or has been, told). Thread-safe.
  bool try_unlisten(CompletionListener* listener) noexcept {
    // Memory ordering: relaxed; success only forgets a pointer, and on failure the
    // caller synchronises with the listener's callback through its own lock.
    return m_listener.compare_exchange_strong(listener, nullptr, std::memory_order_relaxed, std::memory_order_relaxed);
  }

  // References: the loop holds one until the task completes; a JoinHandle (or TaskGroup
  // entry) holds one until it lets go. The last release destroys the task.
  void add_ref() noexcept {
    // Memory ordering: relaxed, as for shared_ptr: a new reference is made from one the
    // caller holds, so the count cannot reach zero meanwhile.
    if (m_shared)
      m_refs.fetch_add(1, std::memory_order_relaxed);
    else
      m_refs.store(m_refs.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  void release() noexcept;
  // A result was taken by an owner: a failure is not reported as unhandled.
  void mark_observed() noexcept { m_observed = true; }

  virtual std::exception_ptr exception() const noexcept = 0;

  // The task's identity in the trace (0 while tracing is off when it was spawned).
  std::uint64_t trace_id() const noexcept { return m_trace_id; }
  void set_trace_id(std::uint64_t id) noexcept { m_trace_id = id; }

  ListNode* live_node() noexcept { return this; }
  static TaskCore* from_live_node(ListNode* node) noexcept { return static_cast<TaskCore*>(node); }

protected:
  virtual ~TaskCore() = default;

private:
  friend class ::gearbox::Loop;
  friend class RuntimeCore;
  static constexpr std::uint8_t k_cancel_bit = 0x80;
  static constexpr State state_of(std::uint8_t word) noexcept { return static_cast<State>(word & 0x7f); }
  static constexpr std::uint8_t word_of(State state, std::uint8_t flags = 0) noexcept {
    return static_cast<std::uint8_t>(static_cast<std::uint8_t>(state) | flags);
  }
  static void run_scheduled(Runnable* self) noexcept;
  static CompletionListener* completed_mark() noexcept;
  void complete() noexcept;
  // Shared: after a run slice (or a cancel claim) has returned, publish the outcome.
  void end_slice() noexcept;
  // Shared: claims a suspended task and calls its slot on the worker that owns the wait.
  void deliver_cancel() noexcept;
  void cancel_slot_now() noexcept;

  Loop* m_loop;
  std::coroutine_handle<> m_root;
  std::coroutine_handle<> m_resume_point;
  CancelSlot* m_cancel_slot = nullptr;
  std::atomic<CompletionListener*> m_listener{nullptr};
  std::uint64_t m_trace_id = 0;
  std::atomic<std::uint32_t> m_refs{1};
  std::uint32_t m_budget = k_resume_budget;
  // The State, and (shared) k_cancel_bit once cancellation was requested: one word, so
  // that a runner publishing `suspended` and a canceller setting the bit meet in one
  // modification order (the runner's CAS fails if the bit arrived meanwhile).
  std::atomic<std::uint8_t> m_state{0};
  WaitOn m_wait_on = WaitOn::other;  // what the last suspension waited on (for the trace)
  std::atomic<bool> m_cancel_requested{false};
  bool m_observed = false;
  bool m_started = false;     // has run at least once (stats)
  bool m_shared = false;      // lives on a Runtime
  bool m_suspending = false;  // the running slice called suspend()
  bool m_yielding = false;    // shared: the running slice called yield()
  // Shared: a canceller that claimed the task posted it to its worker, to have the wait's
  // slot called there (the task, not in any queue while claimed, is its own message).
  bool m_cancel_posted = false;
  std::uint16_t m_live_shard = 0;   // shared: the runtime's live list that holds it
};

// The task the calling thread is running, or null when not inside a task on a loop.
TaskCore* current_core() noexcept;
// The same, for awaiters that need a loop: throws std::logic_error off-loop.
TaskCore& current_core_or_throw();

// True on a worker thread of a gb::Runtime (which blocks every signal from birth).
bool on_runtime_worker() noexcept;

// True if `error` holds a gearbox::Cancelled.
bool is_cancellation(const std::exception_ptr& error) noexcept;

}  // namespace gearbox::detail
