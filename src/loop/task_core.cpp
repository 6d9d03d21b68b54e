#include <gearbox/detail/task_core.hpp>

#include <stdexcept>
#include <string>

#include <gearbox/error.hpp>
#include <gearbox/loop.hpp>

#include "trace/recorder.hpp"

namespace gearbox::detail {
namespace {
// The task this thread is running (null between tasks and off-loop). Written only by
// TaskCore::run_scheduled on the owning thread, so no synchronisation.
thread_local TaskCore* t_current_core = nullptr;
}  // namespace

TaskCore* current_core() noexcept { return t_current_core; }

TaskCore& current_core_or_throw() {
  if (!t_current_core) throw std::logic_error("gearbox: this await needs a task running on a gearbox::Loop");
  return *t_current_core;
}

const char* to_string(WaitOn on) noexcept {
  switch (on) {
    case WaitOn::timer: return "timer";
    case WaitOn::io: return "io";
    case WaitOn::channel: return "channel";
    case WaitOn::event: return "event";
    case WaitOn::lock: return "lock";
    case WaitOn::future: return "future";
    case WaitOn::join: return "join";
    case WaitOn::children: return "children";
    case WaitOn::yield: return "yield";
    case WaitOn::other: break;
  }
  return "other";
}

bool is_cancellation(const std::exception_ptr& error) noexcept {
  if (!error) return false;
  try {
    std::rethrow_exception(error);
  } catch (const Cancelled&) {
    return true;
  } catch (...) {
    return false;
  }
}

TaskCore::TaskCore(Loop& loop, std::coroutine_handle<> root) noexcept
    : Runnable(&TaskCore::run_scheduled), m_loop(&loop), m_root(root), m_resume_point(root),
      m_shared(LoopAccess::runtime(loop) != nullptr) {}

CompletionListener* TaskCore::completed_mark() noexcept {
  static CompletionListener mark{[](CompletionListener*) noexcept {}};
  return &mark;
}

void TaskCore::run_scheduled(Runnable* self) noexcept {
  auto* core = static_cast<TaskCore*>(self);
  if (core->m_cancel_posted) [[unlikely]] {  // a claim, not a run: see deliver_cancel
    core->m_cancel_posted = false;
    core->cancel_slot_now();
    core->end_slice();
    return;
  }
  TaskCore* const outer = t_current_core;
  t_current_core = core;
  if (core->m_shared) {
    core->m_loop = Loop::current();  // the worker running it owns its waits from now on
    core->m_cancel_slot = nullptr;
    core->m_yielding = false;
    // scheduled -> running. We took it from a queue; other threads may only OR in the
    // cancel bit meanwhile, which the xor keeps. Memory ordering: relaxed; the queue
    // ordered the task's data, and end_slice's RMWs order what follows.
    core->m_state.fetch_xor(word_of(State::scheduled) ^ word_of(State::running), std::memory_order_relaxed);
  } else {
    core->m_state.store(word_of(State::running), std::memory_order_relaxed);
  }
  core->m_suspending = false;
  core->m_budget = k_resume_budget;
  if (!core->m_started) {
    core->m_started = true;
    core->m_loop->note_started();
  }
  if (trace::detail::on()) [[unlikely]]
    trace::detail::task_begin(*core);
  core->m_resume_point.resume();
  t_current_core = outer;
  const bool done = core->m_root.done();
  if (trace::detail::on()) [[unlikely]] {
    const bool waits = core->m_suspending || core->m_yielding ||
                       state_of(core->m_state.load(std::memory_order_relaxed)) != State::running;
    trace::detail::task_end(*core, done, waits ? core->m_wait_on : WaitOn::other);
  }
  if (done)
    core->complete();
  else if (core->m_shared)
    core->end_slice();  // its last touch of `core`: from here another worker may run it
  else if (state_of(core->m_state.load(std::memory_order_relaxed)) == State::running)
    core->m_state.store(word_of(State::suspended), std::memory_order_relaxed);  // a foreign awaitable resumes it
}

void TaskCore::end_slice() noexcept {
  // We hold the task (`running`, or `notified` if woken meanwhile) and run on the worker
  // that owns its wait. Memory ordering: acq_rel CASes. A successful one releases what the
  // slice wrote to the next owner (a waker's or canceller's acquire CAS); a failed one
  // acquires what the waker or canceller wrote before its own RMW.
  std::uint8_t word = m_state.load(std::memory_order_acquire);
  for (;;) {
    const std::uint8_t cancel = word & k_cancel_bit;
    if (m_yielding || state_of(word) == State::notified) {
      // Run it again, behind what is already queued here.
      if (!m_state.compare_exchange_weak(word, word_of(State::scheduled, cancel), std::memory_order_acq_rel,
                                         std::memory_order_acquire))
        continue;
      m_yielding = false;
      LoopAccess::reschedule(*m_loop, this);
      return;
    }
    if (cancel && m_cancel_slot) {
      // Cancelled while it ran: the canceller saw it running and left the wait to us.
      cancel_slot_now();  // may wake it (notified)
      word = m_state.load(std::memory_order_acquire);
      continue;
    }
    // Fails if a wake-up (notified) or the cancel bit arrived since we looked: look again.
    if (m_state.compare_exchange_weak(word, word_of(State::suspended, cancel), std::memory_order_acq_rel,
                                      std::memory_order_acquire))
      return;  // from here another thread may own it: touch nothing
  }
}

void TaskCore::deliver_cancel() noexcept {
  // Claim it: suspended -> running (the cancel bit is set). Memory ordering: acquire on
  // success gives us the fields the last runner wrote.
  std::uint8_t expected = word_of(State::suspended, k_cancel_bit);
  if (!m_state.compare_exchange_strong(expected, word_of(State::running, k_cancel_bit), std::memory_order_acq_rel,
                                       std::memory_order_relaxed))
    return;  // woken meanwhile: it sees the flag at its next await
  // We hold it. Its wait belongs to m_loop's worker: call the slot there.
  if (Loop::current() == m_loop) {
    cancel_slot_now();
    end_slice();
  } else {
    m_cancel_posted = true;  // run_scheduled, on that worker, calls the slot (the claim holds)
    LoopAccess::post(*m_loop, this);
  }
}

void TaskCore::cancel_slot_now() noexcept {
  if (CancelSlot* slot = std::exchange(m_cancel_slot, nullptr)) slot->m_on_cancel(slot);
}

void TaskCore::post_to_loop(Runnable* runnable) const noexcept { LoopAccess::post(*m_loop, runnable); }

void TaskCore::wake() noexcept {
  if (m_shared) {
    // Memory ordering: acq_rel CASes. The waker's writes (the wait's outcome) reach the
    // runner through the queue (scheduled) or through end_slice's failed CAS (notified).
    // Exactly one waker moves suspended -> scheduled.
    std::uint8_t word = m_state.load(std::memory_order_relaxed);
    for (;;) {
      const std::uint8_t cancel = word & k_cancel_bit;
      const State state = state_of(word);
      if (state == State::suspended) {
        if (m_state.compare_exchange_weak(word, word_of(State::scheduled, cancel), std::memory_order_acq_rel,
                                          std::memory_order_relaxed)) {
          if (trace::detail::on()) [[unlikely]]
            trace::detail::task_woken(*this);
          LoopAccess::wake_shared(*m_loop, this);
          return;
        }
      } else if (state == State::running) {
        if (m_state.compare_exchange_weak(word, word_of(State::notified, cancel), std::memory_order_acq_rel,
                                          std::memory_order_relaxed))
          return;
      } else {
        return;  // already queued, already notified, or ended
      }
    }
  }
  if (state_of(m_state.load(std::memory_order_relaxed)) != State::suspended) return;
  if (trace::detail::on()) [[unlikely]]
    trace::detail::task_woken(*this);
  m_cancel_slot = nullptr;
  m_state.store(word_of(State::scheduled), std::memory_order_relaxed);
  LoopAccess::schedule(*m_loop, this);
}

void TaskCore::yield(std::coroutine_handle<> at) noexcept {
  m_resume_point = at;
  m_cancel_slot = nullptr;
  m_wait_on = WaitOn::yield;
  if (m_shared) {
    m_yielding = true;  // end_slice queues it once the slice has returned
    return;
  }
  m_state.store(word_of(State::scheduled), std::memory_order_relaxed);
  LoopAccess::schedule(*m_loop, this);
}

void TaskCore::request_cancel() noexcept {
  if (m_shared) {
    // The flag first (what cancel_requested() reads), then the bit in the state word, whose
    // RMW decides who calls the wait's slot: us if the task is suspended, else its runner
    // (end_slice sees the bit before it publishes `suspended`). Memory ordering: acq_rel,
    // releasing the flag to whoever reads the bit.
    m_cancel_requested.store(true, std::memory_order_relaxed);
    const std::uint8_t before = m_state.fetch_or(k_cancel_bit, std::memory_order_acq_rel);
    if (!(before & k_cancel_bit) && state_of(before) == State::suspended) deliver_cancel();
    return;
  }
  const State state = state_of(m_state.load(std::memory_order_relaxed));
  if (m_cancel_requested.load(std::memory_order_relaxed) || state == State::done) return;
  m_cancel_requested.store(true, std::memory_order_relaxed);
  if (state == State::suspended && m_cancel_slot) {
    CancelSlot* slot = std::exchange(m_cancel_slot, nullptr);
    slot->m_on_cancel(slot);
  }
}

TaskCore::Listen TaskCore::try_listen(CompletionListener* listener) noexcept {
  CompletionListener* current = nullptr;
  // Memory ordering: acq_rel; on failure acquire, so a caller that finds the completed
  // mark sees the result complete() published before it.
  if (m_listener.compare_exchange_strong(current, listener, std::memory_order_acq_rel, std::memory_order_acquire))
    return Listen::set;
  return current == completed_mark() ? Listen::done : Listen::busy;
}

void TaskCore::complete() noexcept {
  m_cancel_slot = nullptr;
  // Memory ordering: release, so whoever sees `done` (done(), acquire) sees the result.
  m_state.store(word_of(State::done), std::memory_order_release);
  m_loop->forget(this);
  CompletionListener* listener;
  if (m_shared) {
    // Memory ordering: acq_rel, paired with try_listen: a listener set before this is
    // told; one set after finds the mark (and, acquiring it, the result).
    listener = m_listener.exchange(completed_mark(), std::memory_order_acq_rel);
    // The runtime's reference goes first. A listener's owner holds a reference and waits
    // until it is told, so the task outlives this call, and the owner's release, last,
    // destroys the result on the thread that used it (an exception thrown from
    // Runtime::run is never freed by a worker while the caller still reads it).
    release();
    if (listener && listener != completed_mark()) listener->m_on_complete(listener);
    return;
  } else {
    listener = m_listener.load(std::memory_order_relaxed);
    m_listener.store(completed_mark(), std::memory_order_relaxed);
  }
  if (listener && listener != completed_mark()) listener->m_on_complete(listener);
  release();  // the loop's reference
}

void TaskCore::release() noexcept {
  if (m_shared) {
    // Memory ordering: acq_rel, as shared_ptr: every owner's use happens before the delete.
    if (m_refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  } else {
    const std::uint32_t refs = m_refs.load(std::memory_order_relaxed) - 1;
    m_refs.store(refs, std::memory_order_relaxed);
    if (refs != 0) return;
  }
  if (!m_observed && state_of(m_state.load(std::memory_order_relaxed)) == State::done) {
    std::exception_ptr error = exception();
    if (error && !is_cancellation(error)) m_loop->report_unhandled(error);
  }
  delete this;
}

}  // namespace gearbox::detail
