// ResultStream<T>: results that arrive one by one, in the order they complete (what
// ProcessPool::imap_unordered and as_completed hand back).
//
//   auto stream = pool.imap_unordered(gb::task<score>, inputs);
//   while (std::optional<int> s = stream.next().get()) use(*s);      // a plain thread
//   while (auto s = co_await stream.next()) use(*s);                  // a task on a loop
//
// next() is a Future of the next result, or of std::nullopt once every result has been
// handed out. A result that is an error makes that next() future rethrow it; the stream
// goes on with the rest. One next() at a time: asking again before the previous future
// is ready is a std::logic_error.
//
// Thread-safety: results are delivered from the pool's dispatcher thread; a stream may be
// consumed from one thread (or task) at a time. A stream may be dropped early: the
// remaining results are discarded as they arrive (the tasks still run).
#pragma once

#include <cstddef>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <utility>
#include <variant>

#include <gearbox/future.hpp>

namespace gearbox {

namespace detail {

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
  std::size_t m_remaining;                              // results not delivered yet
  std::deque<std::variant<T, std::exception_ptr>> m_ready;  // delivered, not handed out
  std::optional<Promise<std::optional<T>>> m_waiting;   // a next() that found nothing
};

}  // namespace detail

template <class T>
class ResultStream {
public:
  explicit ResultStream(std::shared_ptr<detail::StreamState<T>> state) noexcept : m_state(std::move(state)) {}

  // The next result to complete, or nullopt after the last. See the header comment.
  Future<std::optional<T>> next() { return m_state->next(); }
  // Results not handed out yet.
  std::size_t remaining() const { return m_state->remaining(); }

private:
  std::shared_ptr<detail::StreamState<T>> m_state;
};

// An element of ProcessPool::as_completed: which input it was, and its outcome.
template <class R>
struct Completed {
  std::size_t index = 0;
  std::variant<R, std::exception_ptr> outcome;

  bool failed() const noexcept { return outcome.index() == 1; }
  // The value, or rethrows the task's error.
  R get() && {
    if (outcome.index() == 1) std::rethrow_exception(std::get<1>(outcome));
    return std::move(std::get<0>(outcome));
  }
};

}  // namespace gearbox
