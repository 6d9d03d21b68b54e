// TaskCore: the runtime record of one spawned task on a Loop (what asyncio calls a Task
// and Tokio a task header). It owns the task's root coroutine, knows where to resume it,
// which wait it is suspended in (so cancel() can abandon that wait), and who is waiting
// for it to finish.
//
// Protocol between awaiters and the core (all on the loop's thread):
//   - an awaiter that must wait calls suspend(handle, slot) in await_suspend; `slot` is
//     the wait's CancelSlot (or null for a wait that cannot be abandoned);
//   - whatever ends the wait calls wake(): the core clears the slot and is scheduled;
//   - request_cancel() sets the flag and, if the core is suspended with a slot, calls
//     the slot's handler, which unlinks the wait, records "cancelled" and calls wake()
//     (or, for waits on child tasks, forwards the cancellation and keeps waiting).
// Cancellation is level-triggered: once requested, every later suspension point of the
// task throws Cancelled.
#pragma once

#include <coroutine>
#include <cstdint>
#include <exception>

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

class TaskCore : public Runnable, private ListNode {  // ListNode: the loop's live list
public:
  enum class State : std::uint8_t { scheduled, running, suspended, done };

  TaskCore(Loop& loop, std::coroutine_handle<> root) noexcept;
  TaskCore(const TaskCore&) = delete;
  TaskCore& operator=(const TaskCore&) = delete;

  Loop& loop() const noexcept { return *m_loop; }
  // Runs `runnable` on this task's loop at its next turn (Loop::post). Thread-safe: how
  // another thread's completion reaches the task.
  void post_to_loop(Runnable* runnable) const noexcept;
  bool done() const noexcept { return m_state == State::done; }
  bool cancel_requested() const noexcept { return m_cancel_requested; }

  // Called by an awaiter from await_suspend: the task waits (on `on`); `at` resumes it.
  void suspend(std::coroutine_handle<> at, CancelSlot* slot, WaitOn on) noexcept {
    m_resume_point = at;
    m_cancel_slot = slot;
    m_state = State::suspended;
    m_wait_on = on;
  }
  // Ends the current wait and schedules the task. No effect unless it is suspended.
  void wake() noexcept;
  // Reschedules the task behind everything already ready (the task suspends at `at`).
  void yield(std::coroutine_handle<> at) noexcept;
  // Counts one resume that did not have to wait. False when the budget is spent: the
  // caller should yield so other tasks run.
  bool take_budget() noexcept { return m_budget == 0 ? false : (--m_budget, true); }

  void request_cancel() noexcept;

  // At most one listener; it is told (and forgotten) when the task completes.
  void set_listener(CompletionListener* listener) noexcept { m_listener = listener; }
  bool has_listener() const noexcept { return m_listener != nullptr; }

  // References: the loop holds one until the task completes; a JoinHandle (or TaskGroup
  // entry) holds one until it lets go. The last release destroys the task.
  void add_ref() noexcept { ++m_refs; }
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
  static void run_scheduled(Runnable* self) noexcept;
  void complete() noexcept;

  Loop* m_loop;
  std::coroutine_handle<> m_root;
  std::coroutine_handle<> m_resume_point;
  CancelSlot* m_cancel_slot = nullptr;
  CompletionListener* m_listener = nullptr;
  std::uint64_t m_trace_id = 0;
  std::uint32_t m_refs = 1;
  std::uint32_t m_budget = k_resume_budget;
  State m_state = State::scheduled;
  WaitOn m_wait_on = WaitOn::other;  // what the last suspension waited on (for the trace)
  bool m_cancel_requested = false;
  bool m_observed = false;
  bool m_started = false;  // has run at least once (Loop::stats)
};

// The task the calling thread is running, or null when not inside a task on a loop.
TaskCore* current_core() noexcept;
// The same, for awaiters that need a loop: throws std::logic_error off-loop.
TaskCore& current_core_or_throw();

// True if `error` holds a gearbox::Cancelled.
bool is_cancellation(const std::exception_ptr& error) noexcept;

}  // namespace gearbox::detail
