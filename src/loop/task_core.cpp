#include <gearbox/detail/task_core.hpp>

#include <stdexcept>

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
    : Runnable(&TaskCore::run_scheduled), m_loop(&loop), m_root(root), m_resume_point(root) {}

void TaskCore::run_scheduled(Runnable* self) noexcept {
  auto* core = static_cast<TaskCore*>(self);
  TaskCore* const outer = t_current_core;
  t_current_core = core;
  core->m_state = State::running;
  core->m_budget = k_resume_budget;
  if (!core->m_started) {
    core->m_started = true;
    ++core->m_loop->m_started;
  }
  if (trace::detail::on()) [[unlikely]]
    trace::detail::task_begin(*core);
  core->m_resume_point.resume();
  t_current_core = outer;
  const bool done = core->m_root.done();
  if (trace::detail::on()) [[unlikely]]
    trace::detail::task_end(*core, done, core->m_state == State::running ? WaitOn::other : core->m_wait_on);
  if (done)
    core->complete();
  else if (core->m_state == State::running)
    core->m_state = State::suspended;  // suspended by a foreign awaitable: it resumes it
}

void TaskCore::post_to_loop(Runnable* runnable) const noexcept { m_loop->post(runnable); }

void TaskCore::wake() noexcept {
  if (m_state != State::suspended) return;
  if (trace::detail::on()) [[unlikely]]
    trace::detail::task_woken(*this);
  m_cancel_slot = nullptr;
  m_state = State::scheduled;
  m_loop->schedule(this);
}

void TaskCore::yield(std::coroutine_handle<> at) noexcept {
  m_resume_point = at;
  m_cancel_slot = nullptr;
  m_state = State::scheduled;
  m_wait_on = WaitOn::yield;
  m_loop->schedule(this);
}

void TaskCore::request_cancel() noexcept {
  if (m_cancel_requested || m_state == State::done) return;
  m_cancel_requested = true;
  if (m_state == State::suspended && m_cancel_slot) {
    CancelSlot* slot = std::exchange(m_cancel_slot, nullptr);
    slot->m_on_cancel(slot);
  }
}

void TaskCore::complete() noexcept {
  m_state = State::done;
  m_cancel_slot = nullptr;
  m_loop->forget(this);
  if (CompletionListener* listener = std::exchange(m_listener, nullptr)) listener->m_on_complete(listener);
  release();  // the loop's reference
}

void TaskCore::release() noexcept {
  if (--m_refs != 0) return;
  if (!m_observed && m_state == State::done) {
    std::exception_ptr error = exception();
    if (error && !is_cancellation(error)) m_loop->report_unhandled(error);
  }
  delete this;
}

}  // namespace gearbox::detail
