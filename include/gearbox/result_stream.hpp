// Results in the order they finish, in one shape on every engine:
//
//   auto stream = gb::as_completed(std::move(tasks));                // async tasks on a loop
//   auto stream = thread_pool.as_completed(score, inputs);           // jobs on threads
//   auto stream = process_pool.as_completed(gb::remote<score>, inputs);  // calls in processes
//   while (auto done = co_await stream.next())                       // std::optional<Completed<R>>
//     use(done->index, done->result());                              // result() rethrows a failure
//
// Completed<R> is one finished unit of work: `index`, its position in the input range,
// failed(), and result(), which gives the value (moved out, once) or rethrows the error.
// A failure that nobody took with result() is reported when the Completed is destroyed
// (to the loop's unhandled-exception handler on a loop thread, else to stderr), like a
// Future's: never silently lost.
//
// next() hands out the next unit to finish, or std::nullopt once every unit has been
// handed out; co_await it from a task. A pool's stream (ResultStream, below) hands out a
// Future, so a plain thread may also block in next().get(); the async stream's next() is
// a Task. The pools' imap_unordered(fn, range) is the same stream of bare values, in
// which a failed element makes its next() rethrow its error and the stream goes on.
#pragma once

#include <cstddef>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <variant>

#include <gearbox/detail/unobserved.hpp>
#include <gearbox/future.hpp>

namespace gearbox {

template <class R>
class Completed {
public:
  Completed(std::size_t index, std::exception_ptr error) noexcept : index(index), m_outcome(std::in_place_index<1>, std::move(error)) {}
  template <class... A>
  explicit Completed(std::size_t index, std::in_place_t, A&&... value)
      : index(index), m_outcome(std::in_place_index<0>, std::forward<A>(value)...) {}
  Completed(Completed&& other) noexcept : index(other.index), m_outcome(std::move(other.m_outcome)), m_taken(std::exchange(other.m_taken, true)) {}
  Completed& operator=(Completed&& other) noexcept {
    if (this != &other) {
      report_if_untaken();
      index = other.index;
      m_outcome = std::move(other.m_outcome);
      m_taken = std::exchange(other.m_taken, true);
    }
    return *this;
  }
  ~Completed() { report_if_untaken(); }

  std::size_t index = 0;  // position of the unit in the input range

  bool failed() const noexcept { return m_outcome.index() == 1; }

  // The value, or rethrows the unit's error. A value is moved out: once only
  // (std::logic_error after).
  R result() {
    if (m_taken && !failed()) throw std::logic_error("gearbox: Completed::result() taken twice");
    m_taken = true;
    if (failed()) std::rethrow_exception(std::get<1>(m_outcome));
    if constexpr (std::is_void_v<R>)
      return;
    else if constexpr (std::is_reference_v<R>)
      return *std::get<0>(m_outcome);
    else
      return std::move(std::get<0>(m_outcome));
  }

private:
  void report_if_untaken() noexcept {
    if (!m_taken && failed() && !detail::is_cancellation(std::get<1>(m_outcome))) detail::report_untaken(std::get<1>(m_outcome));
  }

  std::variant<detail::stored_t<R>, std::exception_ptr> m_outcome;
  bool m_taken = false;  // result() was called, or this was moved from
};

namespace detail {

// The state behind a pool's ResultStream: the producer (a pool thread) delivers results,
// the consumer takes them through next().
template <class T>
class StreamState {
public:
  explicit StreamState(std::size_t total) noexcept : m_remaining(total) {}

  // The producer: delivers one result (a value or an exception). At most `total` times.
  void deliver(std::variant<T, std::exception_ptr> item) noexcept {
    std::optional<Promise<std::optional<T>>> waiting;
    {
      std::lock_guard lock{m_mutex};  // guards everything below
      --m_remaining;
      if (m_waiting) {
        waiting = std::move(m_waiting);
        m_waiting.reset();
      } else {
        m_ready.push_back(std::move(item));
        return;
      }
    }
    fulfil(*waiting, std::move(item));
  }

  Future<std::optional<T>> next() {
    Promise<std::optional<T>> promise;
    Future<std::optional<T>> future = promise.get_future();
    std::unique_lock lock{m_mutex};
    if (m_waiting) throw std::logic_error("gearbox: ResultStream::next() called again before its previous result came");
    if (!m_ready.empty()) {
      auto item = std::move(m_ready.front());
      m_ready.pop_front();
      lock.unlock();
      fulfil(promise, std::move(item));
    } else if (m_remaining == 0) {
      lock.unlock();
      promise.set_value(std::nullopt);
    } else {
      m_waiting = std::move(promise);
    }
    return future;
  }

  std::size_t remaining() const {
    std::lock_guard lock{m_mutex};
    return m_remaining + m_ready.size();
  }

private:
  static void fulfil(Promise<std::optional<T>>& promise, std::variant<T, std::exception_ptr> item) noexcept {
    try {
      if (item.index() == 1)
        promise.set_exception(std::move(std::get<1>(item)));
      else
        promise.set_value(std::optional<T>{std::move(std::get<0>(item))});
    } catch (...) {
      promise.set_exception(std::current_exception());
    }
  }

  mutable std::mutex m_mutex;
  std::size_t m_remaining;                                  // results not delivered yet
  std::deque<std::variant<T, std::exception_ptr>> m_ready;  // delivered, not handed out
  std::optional<Promise<std::optional<T>>> m_waiting;       // a next() that found nothing
};

}  // namespace detail

// A pool's stream of results (ThreadPool and ProcessPool's as_completed and
// imap_unordered). One next() at a time: asking again before the previous future is
// ready is a std::logic_error.
//
// Thread-safety: results are delivered from the pool's threads; a stream may be consumed
// from one thread (or task) at a time. A stream may be dropped early: the remaining
// results are discarded as they arrive (the work still runs).
template <class T>
class ResultStream {
public:
  explicit ResultStream(std::shared_ptr<detail::StreamState<T>> state) noexcept : m_state(std::move(state)) {}

  // A future of the next result to complete, or of nullopt after the last.
  Future<std::optional<T>> next() { return m_state->next(); }
  // Results not handed out yet.
  std::size_t remaining() const { return m_state->remaining(); }

private:
  std::shared_ptr<detail::StreamState<T>> m_state;
};

}  // namespace gearbox
