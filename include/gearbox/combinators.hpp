// Combinators: run several tasks concurrently and combine their outcomes.
//
//   auto [a, b] = co_await gb::gather(fetch("a"), fetch("b"));     // asyncio.gather
//   std::vector<int> all = co_await gb::gather(std::move(tasks));   // same, over a range
//   auto first = co_await gb::when_any(std::move(tasks));           // first to finish wins
//   auto stream = gb::as_completed(std::move(tasks));               // in finishing order
//   while (auto done = co_await stream.next()) use(done->index, done->result());
//
// Each argument runs as a child task of the caller (anything awaitable is accepted in the
// variadic forms and wrapped in a task). They are structured: when the combinator returns
// or throws, no child is left running. Specifically:
//   gather    waits for all; the first child to fail (in finishing order) cancels the
//             others, and its exception is rethrown once they have ended.
//   when_any  the first child to finish (with a value or an exception) cancels the others;
//             once they have ended, its value is returned (or its exception rethrown).
//   cancelling the caller cancels every child, waits for them, then throws Cancelled.
// Failures of children other than the one rethrown are reported to the loop's
// unhandled-exception handler (Cancelled is not a failure worth reporting).
//
// when_any and consuming operations: a loser that had already completed when the winner
// was chosen (two receives both handed a value in the same turn) has its result dropped.
// Do not race operations that consume (Channel::receive, Semaphore::acquire) with
// when_any; receive from one channel that several producers feed, or use as_completed,
// which delivers every result.
// Call from a task on a Loop or a Runtime (on a Runtime the children run on any worker).
#pragma once

#include <cstddef>
#include <array>
#include <memory>
#include <optional>
#include <stdexcept>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

#include <gearbox/detail/awaitable_traits.hpp>
#include <gearbox/detail/child_set.hpp>
#include <gearbox/error.hpp>
#include <gearbox/join_handle.hpp>
#include <gearbox/loop.hpp>
#include <gearbox/result_stream.hpp>
#include <gearbox/task.hpp>

namespace gearbox {

namespace detail {

// Spawns every task of a range as a child watched by `set`.
template <class T>
std::vector<JoinHandle<T>> spawn_children(std::vector<Task<T>>& tasks, ChildSet& set,
                                          std::vector<ChildSet::Listener>& listeners) {
  Loop& loop = Loop::current_or_throw();
  std::vector<JoinHandle<T>> handles;
  handles.reserve(tasks.size());
  listeners.resize(tasks.size());  // never resized again: the set points into it
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    handles.push_back(loop.spawn(std::move(tasks[i]), set.cancelling() ? Start::scheduled : Start::eager));
    set.watch(listeners[i], *handles.back().core(), i);
  }
  return handles;
}

template <class Handles>
[[noreturn]] void rethrow_child_failure(Handles& handles, std::size_t index) {
  handles[index].result();  // rethrows, and marks the failure as observed
  throw std::logic_error("gearbox: a failed child had no exception");
}

template <class... T, std::size_t... I>
auto spawn_tuple(Loop& loop, ChildSet& set, std::array<ChildSet::Listener, sizeof...(T)>& listeners,
                 std::index_sequence<I...>, Task<T>&&... tasks) {
  std::tuple<JoinHandle<T>...> handles{loop.spawn(std::move(tasks), Start::eager)...};
  (set.watch(listeners[I], *std::get<I>(handles).core(), I), ...);
  return handles;
}

template <class T>
non_void_t<T> take_non_void(JoinHandle<T>& handle) {
  if constexpr (std::is_void_v<T>) {
    handle.result();
    return {};
  } else {
    return handle.result();
  }
}

template <class... T>
Task<std::tuple<non_void_t<T>...>> gather_tasks(Task<T>... tasks) {
  Loop& loop = Loop::current_or_throw();
  ChildSet set{ChildSet::CancelOn::failure};
  std::array<ChildSet::Listener, sizeof...(T)> listeners;
  auto handles = spawn_tuple(loop, set, listeners, std::index_sequence_for<T...>{}, std::move(tasks)...);
  if (co_await set.all_ended()) throw Cancelled{};
  if (auto failed = set.first_failure()) {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      ((I == *failed ? (void)std::get<I>(handles).result() : void()), ...);
    }(std::index_sequence_for<T...>{});
  }
  co_return std::apply([](auto&... h) { return std::tuple<non_void_t<T>...>{take_non_void(h)...}; }, handles);
}

template <class... T>
Task<std::variant<non_void_t<T>...>> when_any_tasks(Task<T>... tasks) {
  Loop& loop = Loop::current_or_throw();
  ChildSet set{ChildSet::CancelOn::completion, /*track_order=*/true};
  set.reserve(sizeof...(T));
  std::array<ChildSet::Listener, sizeof...(T)> listeners;
  auto handles = spawn_tuple(loop, set, listeners, std::index_sequence_for<T...>{}, std::move(tasks)...);
  if (co_await set.all_ended()) throw Cancelled{};
  const std::size_t winner = set.ended_at(0);
  std::optional<std::variant<non_void_t<T>...>> result;
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    ((I == winner ? (void)result.emplace(std::in_place_index<I>, take_non_void(std::get<I>(handles))) : void()), ...);
  }(std::index_sequence_for<T...>{});
  co_return std::move(*result);
}

}  // namespace detail

// gather(tasks): runs every task of the range concurrently; returns their results in the
// order of the range (or nothing, for Task<void>).
template <class T>
Task<std::conditional_t<std::is_void_v<T>, void, std::vector<T>>> gather(std::vector<Task<T>> tasks) {
  static_assert(!std::is_reference_v<T>, "gather over a range of Task<T&> is not supported");
  detail::ChildSet set{detail::ChildSet::CancelOn::failure};
  std::vector<detail::ChildSet::Listener> listeners;
  auto handles = detail::spawn_children(tasks, set, listeners);
  if (co_await set.all_ended()) throw Cancelled{};
  if (auto failed = set.first_failure()) detail::rethrow_child_failure(handles, *failed);
  if constexpr (!std::is_void_v<T>) {
    std::vector<T> results;
    results.reserve(handles.size());
    for (auto& handle : handles) results.push_back(handle.result());
    co_return results;
  }
}

// gather(a, b, ...): any awaitables; returns a tuple of their results (std::monostate for
// void).
template <class... A>
  requires(sizeof...(A) > 0 && (detail::Awaitable<A> && ...))
auto gather(A&&... awaitables) {
  return detail::gather_tasks(detail::to_task(std::forward<A>(awaitables))...);
}

template <class T>
struct WhenAnyResult {
  std::size_t index;  // which task finished first
  T value;
};
template <>
struct WhenAnyResult<void> {
  std::size_t index;
};

// when_any(tasks): the first task of the range to finish wins; the others are cancelled.
// Returns the winner's index and value, or rethrows the winner's exception.
// std::invalid_argument for an empty range.
template <class T>
Task<WhenAnyResult<T>> when_any(std::vector<Task<T>> tasks) {
  if (tasks.empty()) throw std::invalid_argument("gearbox: when_any of no tasks");
  detail::ChildSet set{detail::ChildSet::CancelOn::completion, /*track_order=*/true};
  set.reserve(tasks.size());
  std::vector<detail::ChildSet::Listener> listeners;
  auto handles = detail::spawn_children(tasks, set, listeners);
  if (co_await set.all_ended()) throw Cancelled{};
  const std::size_t winner = set.ended_at(0);
  if constexpr (std::is_void_v<T>) {
    handles[winner].result();
    co_return WhenAnyResult<void>{winner};
  } else {
    co_return WhenAnyResult<T>{winner, handles[winner].result()};
  }
}

// when_any(a, b, ...): any awaitables; returns a variant whose index() says which won.
template <class... A>
  requires(sizeof...(A) > 0 && (detail::Awaitable<A> && ...))
auto when_any(A&&... awaitables) {
  return detail::when_any_tasks(detail::to_task(std::forward<A>(awaitables))...);
}

// as_completed(tasks): a stream of the tasks' outcomes in the order they finish, as
// Completed<T> (result_stream.hpp: the same shape as the pools' as_completed).
//
//   auto stream = gb::as_completed(std::move(tasks));
//   while (auto done = co_await stream.next()) {
//     try { use(done->index, done->result()); } catch (const MyError&) { ... }
//   }
//
// next() returns std::nullopt when every task has been delivered. Destroying the stream
// cancels the tasks not yet finished. Cancelling the consumer while it waits in next()
// throws Cancelled there (the tasks keep running until the stream is destroyed).
template <class T>
class AsCompleted {
public:
  using Completed = gearbox::Completed<T>;

  explicit AsCompleted(std::vector<Task<T>> tasks)
      : m_listeners(std::make_unique<std::vector<detail::ChildSet::Listener>>()),
        m_set(std::make_unique<detail::ChildSet>(detail::ChildSet::CancelOn::nothing, /*track_order=*/true)) {
    m_set->reserve(tasks.size());
    m_handles = detail::spawn_children(tasks, *m_set, *m_listeners);
  }
  AsCompleted(AsCompleted&&) noexcept = default;
  AsCompleted& operator=(AsCompleted&&) = delete;
  // Cancels what is still running (the handles do), and stops listening to it.
  ~AsCompleted() = default;

  std::size_t size() const noexcept { return m_handles.size(); }

  [[nodiscard]] Task<std::optional<Completed>> next() {
    if (m_delivered == m_handles.size()) co_return std::nullopt;
    co_await m_set->next_ended(m_delivered);
    const std::size_t index = m_set->ended_at(m_delivered++);
    co_return take(index);
  }

private:
  // The outcome of a finished child, moved into a Completed (which reports a failure that
  // nobody takes, as the handle would have).
  Completed take(std::size_t index) {
    auto* core = m_handles[index].core();
    if (std::exception_ptr error = core->exception()) {
      core->mark_observed();
      return Completed{index, std::move(error)};
    }
    if constexpr (std::is_void_v<T>) {
      core->take_result();
      return Completed{index, std::in_place};
    } else if constexpr (std::is_reference_v<T>) {
      return Completed{index, std::in_place, std::addressof(core->take_result())};
    } else {
      return Completed{index, std::in_place, core->take_result()};
    }
  }

  // Destroyed in reverse order: the set first forgets the children still running (while
  // their listeners exist), then the listeners go, then the handles cancel those children.
  // The set and listeners are on the heap so the stream can move while children point at them.
  std::vector<JoinHandle<T>> m_handles;
  std::unique_ptr<std::vector<detail::ChildSet::Listener>> m_listeners;
  std::unique_ptr<detail::ChildSet> m_set;
  std::size_t m_delivered = 0;
};

template <class T>
AsCompleted<T> as_completed(std::vector<Task<T>> tasks) {
  return AsCompleted<T>{std::move(tasks)};
}

}  // namespace gearbox
