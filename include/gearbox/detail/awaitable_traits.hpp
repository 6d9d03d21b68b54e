// Traits for "anything that can be co_awaited", and a wrapper that turns one into a Task
// so that combinators can run it as a child task.
#pragma once

#include <concepts>
#include <coroutine>
#include <type_traits>
#include <utility>
#include <variant>

#include <gearbox/task.hpp>

namespace gearbox::detail {

template <class A>
decltype(auto) get_awaiter(A&& awaitable) {
  if constexpr (requires { std::forward<A>(awaitable).operator co_await(); })
    return std::forward<A>(awaitable).operator co_await();
  else if constexpr (requires { operator co_await(std::forward<A>(awaitable)); })
    return operator co_await(std::forward<A>(awaitable));
  else
    return std::forward<A>(awaitable);
}

template <class A>
using awaiter_t = decltype(get_awaiter(std::declval<A>()));

template <class A>
using await_result_t = decltype(std::declval<awaiter_t<A>&>().await_resume());

template <class A>
concept Awaitable = requires(awaiter_t<A>& a) {
  { a.await_ready() } -> std::convertible_to<bool>;
  a.await_resume();
};

template <class T>
struct is_task : std::false_type {};
template <class T>
struct is_task<Task<T>> : std::true_type {};

// A Task<R> that awaits `awaitable` (moved into its frame).
template <Awaitable A>
Task<await_result_t<A>> as_task(A awaitable) {
  co_return co_await std::move(awaitable);
}

// A Task<R> that awaits an lvalue awaitable the caller keeps alive (a JoinHandle, say)
// until the task has finished.
template <class A>
Task<await_result_t<A&>> as_task_ref(A& awaitable) {
  co_return co_await awaitable;
}

// A Task stays a Task; an rvalue awaitable is moved into a wrapping task; an lvalue one is
// awaited by reference (it must outlive the wrapping task, as a local of the caller does).
template <class A>
auto to_task(A&& awaitable) {
  if constexpr (is_task<std::remove_cvref_t<A>>::value)
    return std::forward<A>(awaitable);
  else if constexpr (std::is_lvalue_reference_v<A>)
    return as_task_ref(awaitable);
  else
    return as_task(std::move(awaitable));
}

// void results are represented by std::monostate in tuples and variants.
template <class T>
using non_void_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

}  // namespace gearbox::detail
