// JoinHandle<T>: the owner's end of a spawned task (Loop::spawn, gearbox::spawn).
//
//   auto handle = gb::spawn(fetch(url));   // starts running concurrently
//   ...
//   std::string page = co_await handle;    // its result, or its exception
//
// Ownership is structured by default: destroying a handle whose task is still running
// cancels the task (it ends at its next suspension point). To let a task run on its own,
// call detach(); a detached task that fails is reported to the loop's unhandled-exception
// handler, never dropped.
//
// Awaiting a handle from a task that gets cancelled forwards the cancellation to the
// awaited task, waits for it to end (so its destructors have run), then throws Cancelled.
//
// Thread-safety: on a Loop, a handle belongs to the loop's thread; use it only there. On a
// Runtime, a handle may be awaited, cancelled, detached or dropped on any thread (one
// thread at a time: the handle itself is not shared).
#pragma once

#include <coroutine>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include <gearbox/detail/task_core.hpp>
#include <gearbox/error.hpp>
#include <gearbox/task.hpp>

namespace gearbox {

namespace detail {

template <class T>
class TaskCoreOf final : public TaskCore {
public:
  TaskCoreOf(Loop& loop, Task<T>&& task) noexcept : TaskCore(loop, task.handle()), m_task(std::move(task)) {}

  std::exception_ptr exception() const noexcept override { return m_task.handle().promise().exception(); }

  decltype(auto) take_result() {
    mark_observed();
    if constexpr (std::is_void_v<T>)
      m_task.handle().promise().result();
    else if constexpr (std::is_reference_v<T>)
      return m_task.handle().promise().result();
    else
      return T(std::move(m_task.handle().promise()).result());
  }

private:
  Task<T> m_task;
};

// Waits for one task to complete, forwarding the waiter's cancellation to it.
// Does not throw on its own; await_resume reports whether the waiter was cancelled.
class JoinWait : private CancelSlot, private CompletionListener {
public:
  explicit JoinWait(TaskCore& child) noexcept
      : CancelSlot(&JoinWait::on_cancel), CompletionListener(&JoinWait::on_complete), m_child(&child) {}

  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> awaiter) {
    m_waiter = &current_core_or_throw();
    if (m_waiter->cancel_requested()) m_child->request_cancel();
    switch (m_child->try_listen(this)) {
      case TaskCore::Listen::done: return false;
      case TaskCore::Listen::busy:
        throw std::logic_error("gearbox: a task is already being awaited; a JoinHandle has one awaiter at a time");
      case TaskCore::Listen::set: break;
    }
    // From here the child may end on another worker and wake us: wake() then finds us
    // still running and reschedules us once this slice has returned (task_core.hpp).
    m_waiter->suspend(awaiter, m_waiter->cancel_requested() ? nullptr : static_cast<CancelSlot*>(this), detail::WaitOn::join);
    return true;
  }
  // True if the waiter was cancelled (the child has ended either way).
  bool await_resume() const noexcept { return m_waiter->cancel_requested(); }

private:
  static void on_cancel(CancelSlot* slot) noexcept {
    static_cast<JoinWait*>(slot)->m_child->request_cancel();  // keep waiting for it to end
  }
  static void on_complete(CompletionListener* listener) noexcept {
    static_cast<JoinWait*>(listener)->m_waiter->wake();
  }

  TaskCore* m_child;
  TaskCore* m_waiter = nullptr;
};

}  // namespace detail

template <class T>
class [[nodiscard]] JoinHandle {
public:
  JoinHandle() noexcept = default;
  explicit JoinHandle(detail::TaskCoreOf<T>* core) noexcept : m_core(core) {}
  JoinHandle(JoinHandle&& other) noexcept : m_core(std::exchange(other.m_core, nullptr)) {}
  JoinHandle& operator=(JoinHandle&& other) noexcept {
    if (this != &other) {
      reset();
      m_core = std::exchange(other.m_core, nullptr);
    }
    return *this;
  }
  JoinHandle(const JoinHandle&) = delete;
  JoinHandle& operator=(const JoinHandle&) = delete;
  // Cancels the task if it is still running.
  ~JoinHandle() { reset(); }

  bool valid() const noexcept { return m_core != nullptr; }
  bool done() const noexcept { return m_core && m_core->done(); }

  // Requests cancellation: the task throws Cancelled at its next suspension point.
  // Memory ordering: none. On a Runtime the task may see the request (through a relaxed
  // flag) without seeing what the caller wrote before cancel(); pass data to a task being
  // cancelled through something that synchronises (an atomic, a Channel, an Event).
  void cancel() noexcept {
    if (m_core) m_core->request_cancel();
  }

  // Lets the task run on without an owner. Its failure, if any, is reported to the
  // loop's unhandled-exception handler.
  void detach() noexcept {
    if (m_core) std::exchange(m_core, nullptr)->release();
  }

  // The result of a finished task (rethrows its exception). Throws std::logic_error if
  // the task has not finished; a movable result can be taken once.
  decltype(auto) result() {
    if (!done()) throw std::logic_error("gearbox: JoinHandle::result() before the task finished");
    return m_core->take_result();
  }

  // co_await handle: waits for the task to finish, then yields its result.
  auto operator co_await() {
    struct Awaiter : detail::JoinWait {
      JoinHandle* m_handle;
      Awaiter(JoinHandle* handle) : detail::JoinWait(*handle->checked_core()), m_handle(handle) {}
      decltype(auto) await_resume() {
        if (detail::JoinWait::await_resume()) throw Cancelled{};
        return m_handle->m_core->take_result();
      }
    };
    return Awaiter{this};
  }

  detail::TaskCoreOf<T>* core() const noexcept { return m_core; }

private:
  detail::TaskCoreOf<T>* checked_core() const {
    if (!m_core) throw std::logic_error("gearbox: co_await on an empty JoinHandle");
    return m_core;
  }
  void reset() noexcept {
    if (!m_core) return;
    m_core->request_cancel();
    std::exchange(m_core, nullptr)->release();
  }

  detail::TaskCoreOf<T>* m_core = nullptr;
};

}  // namespace gearbox
