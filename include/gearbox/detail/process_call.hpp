// The calls a ProcessPool sends to its workers, and how each kind completes what its
// caller holds: a Future (submit), one slot of an ordered vector (map), or an element
// of a ResultStream (imap_unordered, as_completed). The pool owns a call from enqueue
// until it calls complete() or fail(), exactly once, which disposes of the call.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <gearbox/future.hpp>
#include <gearbox/process/codec.hpp>
#include <gearbox/result_stream.hpp>
#include <gearbox/process/shared_buffer.hpp>

namespace gearbox::detail {

// What a queued call's stop callback runs: tells the pool to look for stopped calls.
struct StopPoke {
  void (*poke)(void* pool) noexcept;
  void* pool;
  void operator()() const noexcept { poke(pool); }
};

// One unit sent to a worker: a call, or a chunk of calls. Owned by the pool from
// enqueue until it calls complete() or fail() (exactly one, once, from the dispatcher
// thread or a thread calling cancel/shutdown), which disposes of it.
class ProcessCall {
public:
  virtual ~ProcessCall() = default;
  // `result` is the encoded result; its descriptors are in the current DecodeScope.
  virtual void complete(std::string_view result) noexcept = 0;
  virtual void fail(std::exception_ptr error) noexcept = 0;
  // Called by the pool before it sends the call to a worker: false if the caller withdrew
  // it (Future::cancel), and then the pool only disposes of it (fail() without effect).
  virtual bool claim() noexcept { return true; }

  std::string name;
  std::string args;                                 // encoded arguments
  std::vector<int> fds;                             // sent beside them; kept open by `owners`
  std::vector<std::shared_ptr<const void>> owners;
  SharedBuffer spill;                               // the arguments, when too large to send inline
  bool chunk = false;                               // args: a vector of argument tuples
  std::size_t units = 1;                            // elements of a chunk, for EngineStats
  std::chrono::milliseconds timeout{0};
  int retries = -1;
  std::stop_token stop_token;

  // Encodes `arguments` (a tuple or a vector of tuples) as this call's arguments.
  template <class Arguments>
  void encode(const Arguments& arguments) {
    EncodeScope scope;
    encode_into(args, arguments);
    fds = std::move(scope.fds);
    owners = std::move(scope.owners);
  }

  // ---- the pool's bookkeeping (written under its lock) ----
  std::uint64_t m_id = 0;
  std::chrono::steady_clock::time_point m_deadline{};
  bool m_timed_out = false;
  double* m_run_time_us = nullptr;  // the pool's estimate for this function name
  std::optional<std::stop_callback<StopPoke>> m_stop_callback;  // while the pool holds the call
};

template <class R>
R decode_result(std::string_view bytes) {
  if constexpr (std::is_void_v<R>) {
    if (!bytes.empty()) throw std::runtime_error("gearbox: a void remote function returned bytes");
  } else {
    return decode<R>(bytes);
  }
}

// submit(): the call and its future's state in one allocation.
template <class R>
class SubmitCall final : public FutureState<R>, public ProcessCall {
public:
  SubmitCall() noexcept { this->make_cancellable(); }
  bool claim() noexcept override { return FutureState<R>::claim(); }
  void complete(std::string_view result) noexcept override {
    if (!claim()) {  // cannot happen after a send (claimed then); kept for symmetry with fail()
      this->release();
      return;
    }
    try {
      if constexpr (std::is_void_v<R>) {
        decode_result<R>(result);
        this->set_value();
      } else {
        this->set_value(decode_result<R>(result));
      }
    } catch (...) {
      if (!this->has_result()) this->set_exception(std::current_exception());
    }
    this->release();
  }
  void fail(std::exception_ptr error) noexcept override {
    if (claim()) this->set_exception(std::move(error));  // else: withdrawn, it holds Cancelled
    this->release();
  }
};

// map(): the ordered results of every chunk, published when the last chunk is in.
template <class R>
class MapState final : public FutureState<std::vector<R>> {
public:
  MapState(std::size_t size, std::size_t chunks) : m_results(size), m_chunks_left(chunks) {}

  void store(std::size_t offset, std::vector<R>&& values) {
    if (offset + values.size() > m_results.size()) throw std::runtime_error("gearbox: a chunk returned too many results");
    std::move(values.begin(), values.end(), m_results.begin() + static_cast<std::ptrdiff_t>(offset));
  }
  void store_error(std::size_t offset, std::exception_ptr error) noexcept {
    std::lock_guard lock{m_error_mutex};
    if (!m_error || offset < m_error_offset) {
      m_error = std::move(error);
      m_error_offset = offset;
    }
  }
  // A chunk is done (after store or store_error). The last one publishes.
  void chunk_done() noexcept {
    // Memory ordering: acq_rel, so the last chunk sees every other chunk's stores.
    if (m_chunks_left.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    // The error moves out: the consumer then holds the only reference to the exception, and
    // frees it on its own thread.
    if (m_error)
      this->set_exception(std::move(m_error));
    else
      this->set_value(std::move(m_results));
    this->release();
  }

private:
  std::vector<R> m_results;  // each chunk writes its own slots
  std::mutex m_error_mutex;
  std::exception_ptr m_error;  // the failure of the earliest failed chunk; under m_error_mutex
  std::size_t m_error_offset = 0;
  std::atomic<std::size_t> m_chunks_left;  // chunks not done; the one that reaches 0 publishes
};

template <class R>
class MapChunk final : public ProcessCall {
public:
  MapChunk(MapState<R>* state, std::size_t offset, std::size_t count) noexcept
      : m_state(state), m_offset(offset), m_count(count) {}
  void complete(std::string_view result) noexcept override {
    try {
      auto values = decode<std::vector<R>>(result);
      if (values.size() != m_count) throw std::runtime_error("gearbox: a chunk returned the wrong number of results");
      m_state->store(m_offset, std::move(values));
    } catch (...) {
      m_state->store_error(m_offset, std::current_exception());
    }
    m_state->chunk_done();
    delete this;
  }
  void fail(std::exception_ptr error) noexcept override {
    m_state->store_error(m_offset, std::move(error));
    m_state->chunk_done();
    delete this;
  }

private:
  MapState<R>* m_state;
  std::size_t m_offset;
  std::size_t m_count;
};

// imap_unordered() / as_completed(): each chunk delivers its results to a stream.
template <class R, class Item>
class StreamChunk final : public ProcessCall {
public:
  StreamChunk(std::shared_ptr<StreamState<Item>> state, std::size_t offset, std::size_t count) noexcept
      : m_state(std::move(state)), m_offset(offset), m_count(count) {}
  void complete(std::string_view result) noexcept override {
    std::vector<R> values;
    try {
      values = decode<std::vector<R>>(result);
      if (values.size() != m_count) throw std::runtime_error("gearbox: a chunk returned the wrong number of results");
    } catch (...) {
      fail(std::current_exception());
      return;
    }
    for (std::size_t i = 0; i < m_count; ++i) {
      if constexpr (std::is_same_v<Item, R>)
        m_state->deliver(std::move(values[i]));
      else
        m_state->deliver(Item{m_offset + i, std::in_place, std::move(values[i])});
    }
    delete this;
  }
  void fail(std::exception_ptr error) noexcept override {
    for (std::size_t i = 0; i < m_count; ++i) {
      std::exception_ptr mine = i + 1 == m_count ? std::move(error) : error;  // keep no reference here
      if constexpr (std::is_same_v<Item, R>)
        m_state->deliver(std::move(mine));
      else
        m_state->deliver(Item{m_offset + i, std::move(mine)});
    }
    delete this;
  }

private:
  std::shared_ptr<StreamState<Item>> m_state;
  std::size_t m_offset;
  std::size_t m_count;
};

// The argument tuple of a remote function from one element of a range: the element itself for a
// one-parameter function, else a tuple of all the arguments.
template <class Arguments, class Element>
Arguments arguments_from(Element&& element) {
  if constexpr (std::tuple_size_v<Arguments> == 1)
    return Arguments{std::forward<Element>(element)};
  else
    return Arguments(std::forward<Element>(element));
}

}  // namespace gearbox::detail
