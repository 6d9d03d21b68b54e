// ProcessPool: runs remote functions (registry.hpp) in worker processes (Python's
// ProcessPoolExecutor / multiprocessing.Pool), so that a crash, a leak or a corrupted heap
// stays inside one worker.
//
//   int main(int argc, char** argv) {
//     gb::init(argc, argv);                                   // workers never return from here
//     gb::ProcessPool pool{{.workers = 4}};
//     gb::Future<int> f = pool.submit(gb::remote<square>, 7);  // f.get(), or co_await f
//     auto all = pool.map(gb::remote<square>, inputs).get();    // ordered results
//   }
//
// Workers are copies of this executable started with posix_spawn (registry.hpp says which
// functions they know). Each has one SOCK_SEQPACKET socket to the pool; arguments and
// results are cereal-encoded (codec.hpp), large ones cross as sealed memfds
// (SharedBuffer, or automatically above 32 KiB).
//
// One dispatcher thread per pool owns the workers: a single epoll set holds every
// worker's socket and pidfd (so a death is noticed at once, without a thread per worker),
// an eventfd for wake-ups; deadlines bound epoll_wait's timeout. It reads results in batches,
// completes futures outside its lock, and spawns replacements. Why a thread and not a
// gb::Loop task: the pool must serve callers on plain threads and on any number of
// loops, and must keep running while those loops are busy or blocked; a Future's
// completion is thread-safe and resumes an awaiting loop task on its own loop anyway.
// Submission does not wake the dispatcher: the caller itself sends to an idle worker (one
// hop fewer on the latency path); calls that queue up behind busy workers are sent by
// the dispatcher, many per message, each time results come back (automatic batching: the
// deeper the queue, the bigger the messages; a worker answers a message with one message).
// How many calls a worker holds is adapted to how long each function (by name) takes:
// about a millisecond of work, and one call ahead for calls under 100 ms, so that a worker
// never idles waiting for its next call while long calls are not stuck behind a busy one.
// The dispatcher is woken by a submitter only for a call with a deadline or a stop request.
//
// Failures:
//  - A worker that dies fails only the call it was running, with WorkerCrashed (signal or
//    exit code, pid), or retries it (CallOptions::retries). Calls queued behind it in the
//    same worker are sent again elsewhere; so are calls it finished but whose results it
//    had not sent yet (they run again: remote functions should be idempotent where that
//    matters).
//    The worker is replaced, unless more than max_restarts crashes happen within
//    restart_window: then the pool stops and every call fails with ShutdownError saying
//    so, instead of spawning workers in a loop.
//  - A call with a timeout is sent to an idle worker on its own; when it runs out, that
//    worker is killed (pidfd_send_signal) and the call fails with TimeoutError.
//  - An exception thrown by a remote function comes back as RemoteError (type name,
//    message, pid); an unknown function name or arguments that do not decode, likewise.
//  - A malformed message from a worker counts as its crash.
//
// Thread-safety: every member may be called from any thread at once, except the
// destructor. A future's result arrives on the dispatcher thread: get() wakes a blocked
// thread; a task of a Loop that co_awaits it resumes on its own loop; another coroutine
// resumes on the dispatcher thread (do not block there).
// Cancellation: Future::cancel() withdraws a call not yet sent to a worker (it then never
// runs); CallOptions::stop_token does the same from a std::stop_source; a task on a loop
// that is cancelled while it awaits a call withdraws it too. A call already in a worker
// runs on, unless its timeout kills the worker or terminate() kills them all.
// Destruction: the destructor is shutdown(ShutdownMode::wait), as ThreadPool's is (and as
// Python's `with` block): queued and running calls finish first, so a call that never ends
// keeps it waiting. For a pool that must stop now, call terminate() (or give calls a
// timeout). Every worker is reaped before the destructor returns: no zombie, no descriptor
// left open.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <ranges>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <gearbox/detail/process_call.hpp>
#include <gearbox/engine_stats.hpp>
#include <gearbox/error.hpp>
#include <gearbox/future.hpp>
#include <gearbox/process/codec.hpp>
#include <gearbox/process/init.hpp>
#include <gearbox/process/registry.hpp>
#include <gearbox/process/shared_buffer.hpp>
#include <gearbox/result_stream.hpp>
#include <gearbox/shutdown_mode.hpp>

namespace gearbox {

struct ProcessPoolOptions {
  std::size_t workers = 0;                   // 0: one per hardware thread
  std::chrono::milliseconds call_timeout{0};  // default per-call timeout; 0: none
  int retries = 0;                            // default retries of a call whose worker crashed
  std::size_t max_calls_per_child = 0;        // a worker is replaced after this many calls; 0: never
  std::string initializer = {};               // a remote void() function each worker runs first
  int max_restarts = 10;                      // crashes tolerated within restart_window
  std::chrono::milliseconds restart_window{std::chrono::seconds{10}};
};

struct CallOptions {
  std::chrono::milliseconds timeout{0};  // 0: the pool's call_timeout
  int retries = -1;                      // -1: the pool's retries
  std::stop_token stop_token = {};       // a stop request cancels the call if it is still queued
};

namespace detail {
template <class T>
inline constexpr bool is_remote_ref = false;
template <auto Fn>
inline constexpr bool is_remote_ref<RemoteRef<Fn>> = true;
// A callable handed where a remote function belongs (submit(fn, ...) for
// submit(gb::remote<fn>, ...)): caught by an overload that says so in one sentence.
template <class F>
inline constexpr bool not_a_remote_function = !is_remote_ref<std::remove_cvref_t<F>> &&
                                              !std::is_same_v<std::remove_cvref_t<F>, CallOptions> &&
                                              !std::is_convertible_v<F, std::string_view>;
// Whether an element of a range converts to a remote function's argument tuple.
template <class Arguments, class Element>
inline constexpr bool element_fits = std::is_constructible_v<Arguments, Element>;
}  // namespace detail

#define GEARBOX_DETAIL_NOT_REMOTE                                                                       \
  "gearbox: a ProcessPool runs remote functions: register fn with GEARBOX_REMOTE(fn) and pass " \
  "gb::remote<fn>, or a registered name with its result type: submit<R>(\"name\", args...)"

class ProcessPool {
public:
  // Starts the workers (and waits until they are spawned, not until they are ready).
  // std::logic_error if gb::init was not called; IoError if a worker cannot be spawned.
  explicit ProcessPool(ProcessPoolOptions options = {});
  // shutdown(ShutdownMode::wait): see the header comment.
  ~ProcessPool();
  ProcessPool(const ProcessPool&) = delete;
  ProcessPool& operator=(const ProcessPool&) = delete;

  std::size_t size() const noexcept;

  // Runs fn(args...) in a worker. Arguments are converted to fn's parameter types and
  // encoded on the calling thread (an encoding error throws here). ShutdownError after
  // shutdown (or once the restart limit stopped the pool).
  template <auto Fn, class... A>
  auto submit(RemoteRef<Fn> fn, A&&... args) {
    return submit(CallOptions{}, fn, std::forward<A>(args)...);
  }
  template <auto Fn, class... A>
  auto submit(const CallOptions& options, RemoteRef<Fn> fn, A&&... args) {
    using Sig = typename RemoteRef<Fn>::signature;
    constexpr bool fits = std::is_constructible_v<typename Sig::arguments, A&&...>;
    static_assert(fits, "gearbox: these arguments do not convert to the remote function's parameters");
    if constexpr (fits)
      return submit_encoded<typename Sig::result>(options, fn.name(), typename Sig::arguments(std::forward<A>(args)...));
  }
  // By name: the arguments are encoded as they are given (their decayed types) and the
  // worker checks them against the function's parameters (RemoteError "gearbox::BadArguments").
  template <class R, class... A>
  Future<R> submit(std::string_view name, A&&... args) {
    return submit<R>(CallOptions{}, name, std::forward<A>(args)...);
  }
  template <class R, class... A>
  Future<R> submit(const CallOptions& options, std::string_view name, A&&... args) {
    return submit_encoded<R>(options, std::string(name), std::tuple<std::decay_t<A>...>(std::forward<A>(args)...));
  }

  // fn on every element of `range` (an element is fn's argument, or a tuple of its
  // arguments); the future gives the results in the order of the range, or the error of
  // the earliest element that failed, once every element has ended. `chunk` elements go to
  // a worker as one call (messages are batched anyway; a chunk is retried as a whole).
  template <auto Fn, std::ranges::input_range Range>
  auto map(RemoteRef<Fn> fn, Range&& range, std::size_t chunk = 1) {
    using R = typename RemoteRef<Fn>::signature::result;
    static_assert(!std::is_void_v<R>, "gearbox: map needs a function that returns a value");
    auto inputs = collect<typename RemoteRef<Fn>::signature::arguments>(std::forward<Range>(range));
    check_open();
    const std::size_t count = inputs.size();
    chunk = chunk == 0 ? 1 : chunk;
    const std::size_t chunks = (count + chunk - 1) / chunk;
    auto* state = new detail::MapState<R>(count, chunks == 0 ? 1 : chunks);
    Future<std::vector<R>> future = detail::FutureAccess::make<std::vector<R>>(state);
    if (count == 0) {
      state->chunk_done();
      return future;
    }
    std::vector<detail::ProcessCall*> calls;
    calls.reserve(chunks);
    for (std::size_t offset = 0; offset < count; offset += chunk) {
      const std::size_t n = std::min(chunk, count - offset);
      calls.push_back(make_chunk(new detail::MapChunk<R>(state, offset, n), fn.name(), inputs, offset, n));
    }
    enqueue(calls);
    return future;
  }

  // fn on every element of `range`, the results in the order they complete (see
  // result_stream.hpp). A failed element makes its next() rethrow its error.
  template <auto Fn, std::ranges::input_range Range>
  auto imap_unordered(RemoteRef<Fn> fn, Range&& range, std::size_t chunk = 1) {
    using R = detail::chunk_value_t<typename RemoteRef<Fn>::signature::result>;
    return stream<Fn, R, R>(fn, std::forward<Range>(range), chunk);
  }
  // The same, as Completed{index, outcome} in the order they complete (Python's
  // concurrent.futures.as_completed over a list of submits).
  template <auto Fn, std::ranges::input_range Range>
  auto as_completed(RemoteRef<Fn> fn, Range&& range) {
    using R = detail::chunk_value_t<typename RemoteRef<Fn>::signature::result>;
    return stream<Fn, R, Completed<R>>(fn, std::forward<Range>(range), 1);
  }

  // Misuse: a plain function or lambda where gb::remote<fn> belongs.
  template <class F, class... A>
    requires detail::not_a_remote_function<F>
  void submit(F&&, A&&...) {
    static_assert(!detail::not_a_remote_function<F>, GEARBOX_DETAIL_NOT_REMOTE);
  }
  template <class F, class Range>
    requires detail::not_a_remote_function<F>
  void map(F&&, Range&&, std::size_t = 1) {
    static_assert(!detail::not_a_remote_function<F>, GEARBOX_DETAIL_NOT_REMOTE);
  }
  template <class F, class Range>
    requires detail::not_a_remote_function<F>
  void imap_unordered(F&&, Range&&, std::size_t = 1) {
    static_assert(!detail::not_a_remote_function<F>, GEARBOX_DETAIL_NOT_REMOTE);
  }
  template <class F, class Range>
    requires detail::not_a_remote_function<F>
  void as_completed(F&&, Range&&) {
    static_assert(!detail::not_a_remote_function<F>, GEARBOX_DETAIL_NOT_REMOTE);
  }

  // Cancels every call still queued (not yet sent to a worker): their futures fail with
  // Cancelled. Returns how many. Running calls are not affected.
  std::size_t cancel_pending();

  // Stops the intake (submit throws ShutdownError), then (shutdown_mode.hpp):
  // wait: queued and running calls finish; cancel_pending: queued calls fail with
  // Cancelled, running ones finish. The workers then exit. Returns once every worker has
  // been reaped. Idempotent; a later terminate() still kills what runs.
  void shutdown(ShutdownMode mode = ShutdownMode::wait);
  // Stops now (multiprocessing.Pool.terminate): queued calls fail with Cancelled, every
  // worker is killed and its running calls fail with Cancelled. Returns once every worker
  // has been reaped. Idempotent.
  void terminate();

  // For tests and monitoring: the pids of the live workers, and counters. A unit of the
  // engine's figures (engine_stats.hpp) is a submitted call or one element of a map or
  // stream.
  std::vector<int> worker_pids() const;
  struct Stats : EngineStats {
    std::size_t crashes = 0;   // workers that died unexpectedly (timeouts excluded)
    std::size_t timeouts = 0;  // workers killed for a call's timeout
    std::size_t spawned = 0;   // workers started, replacements included
  };
  Stats stats() const;

private:
  struct Impl;

  void check_open() const;
  void join_dispatcher();
  // Takes ownership of the calls (on failure they are failed, not leaked).
  void enqueue(detail::ProcessCall* call);
  void enqueue(std::vector<detail::ProcessCall*>& calls);
  void prepare(detail::ProcessCall& call, const CallOptions& options) const;

  template <class R, class Arguments>
  Future<R> submit_encoded(const CallOptions& options, std::string name, const Arguments& arguments) {
    check_open();
    auto* call = new detail::SubmitCall<R>();
    Future<R> future = detail::FutureAccess::make<R>(call);
    try {
      call->name = std::move(name);
      call->encode(arguments);
      prepare(*call, options);
    } catch (...) {
      call->fail(std::current_exception());
      future.get();  // rethrows the encoding error, and frees the call
    }
    enqueue(call);
    return future;
  }

  template <class Arguments, class Range>
  static std::vector<Arguments> collect(Range&& range) {
    static_assert(detail::element_fits<Arguments, std::ranges::range_reference_t<Range>>,
                  "gearbox: an element of the range does not convert to the remote function's parameters. "
                  "For a function of several parameters, the range holds a std::tuple of its arguments.");
    std::vector<Arguments> inputs;
    if constexpr (std::ranges::sized_range<Range>) inputs.reserve(std::ranges::size(range));
    for (auto&& element : range) inputs.push_back(detail::arguments_from<Arguments>(std::forward<decltype(element)>(element)));
    return inputs;
  }

  template <class Arguments>
  detail::ProcessCall* make_chunk(detail::ProcessCall* call, std::string name, const std::vector<Arguments>& inputs,
                                  std::size_t offset, std::size_t count) {
    try {
      call->name = std::move(name);
      call->chunk = true;
      call->units = count;
      call->encode(std::vector<Arguments>(inputs.begin() + static_cast<std::ptrdiff_t>(offset),
                                          inputs.begin() + static_cast<std::ptrdiff_t>(offset + count)));
      prepare(*call, CallOptions{});
    } catch (...) {
      call->fail(std::current_exception());
      return nullptr;
    }
    return call;
  }

  template <auto Fn, class R, class Item, class Range>
  ResultStream<Item> stream(RemoteRef<Fn> fn, Range&& range, std::size_t chunk) {
    auto inputs = collect<typename RemoteRef<Fn>::signature::arguments>(std::forward<Range>(range));
    check_open();
    chunk = chunk == 0 ? 1 : chunk;
    auto state = std::make_shared<detail::StreamState<Item>>(inputs.size());
    std::vector<detail::ProcessCall*> calls;
    for (std::size_t offset = 0; offset < inputs.size(); offset += chunk) {
      const std::size_t n = std::min(chunk, inputs.size() - offset);
      calls.push_back(make_chunk(new detail::StreamChunk<R, Item>(state, offset, n), fn.name(), inputs, offset, n));
    }
    enqueue(calls);
    return ResultStream<Item>{std::move(state)};
  }

  std::unique_ptr<Impl> m_impl;
};

}  // namespace gearbox

#undef GEARBOX_DETAIL_NOT_REMOTE
