// Task<T>: a lazy coroutine that produces a T (or throws).
//
//   gb::Task<int> answer() { co_return 42; }
//   gb::Task<int> twice() { co_return 2 * co_await answer(); }
//
// A Task does nothing until it is awaited (or spawned on a Loop). Awaiting it hands
// control to it by symmetric transfer, and its completion hands control straight back,
// so chains of any depth run in constant stack. An exception escaping the task is
// rethrown at the co_await. Task is move-only and owns its coroutine frame: destroying
// a Task that was never started destroys the frame (and the arguments it holds).
//
// Stack depth: symmetric transfer is constant-stack only where the compiler emits it as a
// tail call: clang always; g++ at -O1 and above, or at -O0 with -foptimize-sibling-calls;
// under ASan+UBSan only with --param=asan-stack=0, under TSan only with
// --param=tsan-instrument-func-entry-exit=0. Without it, each synchronously completing
// co_await in a chain keeps 100-200 bytes of stack until the chain returns.
//
// Thread-safety: a Task is a value owned by one coroutine at a time. It resumes its
// awaiter on the thread on which it completes (for tasks on a Loop: the loop's thread).
#pragma once

#include <coroutine>
#include <exception>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <variant>

#include <gearbox/detail/frame_pool.hpp>

namespace gearbox {

template <class T = void>
class Task;

namespace detail {

class TaskPromiseBase {
public:
  // Hands control to the awaiter when the task ends; a task with no awaiter (the root of
  // a spawned task) returns to whoever resumed it, which then sees it is done.
  struct FinalAwaiter {
    bool await_ready() const noexcept { return false; }
    template <class Promise>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> self) noexcept {
      std::coroutine_handle<> continuation = self.promise().m_continuation;
      return continuation ? continuation : std::noop_coroutine();
    }
    void await_resume() const noexcept {}
  };

  // Frames come from the per-thread frame cache (detail/frame_pool.hpp).
  static void* operator new(std::size_t size) { return frame_allocate(size); }
  static void operator delete(void* frame, std::size_t size) noexcept { frame_deallocate(frame, size); }

  std::suspend_always initial_suspend() const noexcept { return {}; }
  FinalAwaiter final_suspend() const noexcept { return {}; }
  void set_continuation(std::coroutine_handle<> continuation) noexcept { m_continuation = continuation; }

private:
  std::coroutine_handle<> m_continuation;
};

[[noreturn]] inline void throw_no_result() {
  throw std::logic_error("gearbox: the task has no result (it was never run to completion)");
}

template <class T>
class TaskPromise final : public TaskPromiseBase {
public:
  Task<T> get_return_object() noexcept;

  void unhandled_exception() noexcept { m_result.template emplace<2>(std::current_exception()); }

  template <class U = T>
    requires std::convertible_to<U&&, T>
  void return_value(U&& value) noexcept(std::is_nothrow_constructible_v<T, U&&>) {
    m_result.template emplace<1>(std::forward<U>(value));
  }

  T& result() & {
    rethrow_if_failed();
    return std::get<1>(m_result);
  }
  T&& result() && {
    rethrow_if_failed();
    return std::move(std::get<1>(m_result));
  }
  std::exception_ptr exception() const noexcept {
    return m_result.index() == 2 ? std::get<2>(m_result) : nullptr;
  }

private:
  void rethrow_if_failed() const {
    if (m_result.index() == 2) std::rethrow_exception(std::get<2>(m_result));
    if (m_result.index() == 0) throw_no_result();
  }

  std::variant<std::monostate, T, std::exception_ptr> m_result;
};

template <class T>
class TaskPromise<T&> final : public TaskPromiseBase {
public:
  Task<T&> get_return_object() noexcept;
  void unhandled_exception() noexcept { m_exception = std::current_exception(); }
  void return_value(T& value) noexcept { m_value = std::addressof(value); }
  T& result() const {
    if (m_exception) std::rethrow_exception(m_exception);
    if (!m_value) throw_no_result();
    return *m_value;
  }
  std::exception_ptr exception() const noexcept { return m_exception; }

private:
  T* m_value = nullptr;
  std::exception_ptr m_exception;
};

template <>
class TaskPromise<void> final : public TaskPromiseBase {
public:
  Task<void> get_return_object() noexcept;
  void unhandled_exception() noexcept { m_exception = std::current_exception(); }
  void return_void() noexcept {}
  void result() const {
    if (m_exception) std::rethrow_exception(m_exception);
  }
  std::exception_ptr exception() const noexcept { return m_exception; }

private:
  std::exception_ptr m_exception;
};

}  // namespace detail

template <class T>
class [[nodiscard]] Task {
public:
  using promise_type = detail::TaskPromise<T>;
  using value_type = T;
  using handle_type = std::coroutine_handle<promise_type>;

  Task() noexcept = default;
  explicit Task(handle_type handle) noexcept : m_handle(handle) {}
  Task(Task&& other) noexcept : m_handle(std::exchange(other.m_handle, {})) {}
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      destroy();
      m_handle = std::exchange(other.m_handle, {});
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() { destroy(); }

  // True while this Task owns a coroutine.
  bool valid() const noexcept { return static_cast<bool>(m_handle); }
  // True once the coroutine has run to its end (returned or thrown).
  bool done() const noexcept { return m_handle && m_handle.done(); }
  handle_type handle() const noexcept { return m_handle; }

  // co_await task: runs it to completion, then yields its result or rethrows.
  auto operator co_await() & noexcept { return Awaiter<false>{m_handle}; }
  auto operator co_await() && noexcept { return Awaiter<true>{m_handle}; }

private:
  template <bool Move>
  struct Awaiter {
    handle_type m_task;
    bool await_ready() const noexcept { return !m_task || m_task.done(); }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiter) noexcept {
      m_task.promise().set_continuation(awaiter);
      return m_task;  // symmetric transfer: no stack growth
    }
    // Awaiting an rvalue Task yields the result by value (the frame dies with the
    // temporary); awaiting an lvalue yields a reference into the still-owned frame.
    using result_type = std::conditional_t<Move && !std::is_reference_v<T>, T, std::add_lvalue_reference_t<T>>;
    result_type await_resume() {
      if (!m_task) throw std::logic_error("gearbox: co_await on an empty Task");
      if constexpr (std::is_void_v<T>)
        m_task.promise().result();
      else if constexpr (Move && !std::is_reference_v<T>)
        return std::move(m_task.promise()).result();
      else
        return m_task.promise().result();
    }
  };

  void destroy() noexcept {
    if (m_handle) m_handle.destroy();
    m_handle = {};
  }

  handle_type m_handle;
};

namespace detail {
template <class T>
Task<T> TaskPromise<T>::get_return_object() noexcept {
  return Task<T>{std::coroutine_handle<TaskPromise>::from_promise(*this)};
}
template <class T>
Task<T&> TaskPromise<T&>::get_return_object() noexcept {
  return Task<T&>{std::coroutine_handle<TaskPromise>::from_promise(*this)};
}
inline Task<void> TaskPromise<void>::get_return_object() noexcept {
  return Task<void>{std::coroutine_handle<TaskPromise>::from_promise(*this)};
}
}  // namespace detail

}  // namespace gearbox
