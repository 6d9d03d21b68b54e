// ThreadPool: a work-stealing pool of threads for CPU work and fork-join (oneTBB, Java's
// ForkJoinPool), also usable like Python's ThreadPoolExecutor.
//
//   gb::ThreadPool pool{{.workers = 4}};
//   gb::Future<int> f = pool.submit(count_primes, 0, 1'000'000);
//   int n = f.get();                                   // or: co_await f on a loop
//   pool.parallel_for(0, pixels.size(), [&](std::size_t i) { pixels[i] = shade(i); });
//
// Each worker has a bounded deque: work submitted from a worker goes to its own deque (run
// newest first, for cache locality and depth-first fork-join; every k_lifo_streak-th pop
// takes the oldest instead, so nothing starves). Idle workers steal the oldest jobs of
// others. Work submitted from outside goes to a global injection queue. Workers with
// nothing to do park on a futex and are woken when work arrives.
//
// A worker that waits for a Future (get(), wait) runs other jobs of the pool meanwhile, so
// recursive fork-join cannot deadlock or exhaust the pool, whatever its depth.
//
// Unlike Python, C++ has no global interpreter lock: these threads run CPU work on every
// core at once.
//
// Thread-safety: every member may be called from any thread, including from the pool's
// own jobs, except the destructor (not from a job of this pool).
// Shutdown (shutdown_mode.hpp): shutdown(ShutdownMode::wait), which the destructor does,
// lets queued work and the work it submits finish; ShutdownMode::cancel_pending completes
// jobs not yet started with Cancelled (their futures rethrow it). After shutdown,
// submitting from outside the pool throws ShutdownError.
// Cancellation: Future::cancel() withdraws one job that has not started (it then never
// runs); a running job cannot be stopped from outside (pass it a std::stop_token).
#pragma once

#include <algorithm>
#include <atomic>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <functional>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <ranges>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include <gearbox/detail/job.hpp>
#include <gearbox/detail/task_core.hpp>
#include <gearbox/engine_stats.hpp>
#include <gearbox/error.hpp>
#include <gearbox/future.hpp>
#include <gearbox/result_stream.hpp>
#include <gearbox/shutdown_mode.hpp>

namespace gearbox {

struct ThreadPoolOptions {
  std::size_t workers = 0;                  // threads; 0: one per hardware thread
  std::size_t local_queue_capacity = 1024;  // per worker; when full, half moves to the global queue
};

class ThreadPool;

namespace detail {

struct PoolAccess;

// Whether submit/to_thread can call `fn` with `args` once both are decay-copied.
template <class F, class... A>
inline constexpr bool callable_with = std::is_invocable_v<std::decay_t<F>, std::decay_t<A>...>;

// What fn(args...) returns; void when it cannot be called, so that the caller reaches its
// static_assert (one sentence) instead of failing overload resolution (pages of notes).
template <class F, class... A>
struct submit_result {
  using type = void;
};
template <class F, class... A>
  requires callable_with<F, A...>
struct submit_result<F, A...> {
  using type = std::invoke_result_t<std::decay_t<F>, std::decay_t<A>...>;
};
template <class F, class... A>
using submit_result_t = typename submit_result<F, A...>::type;

// The same for map/as_completed/imap_unordered, which call fn on their copy of each element.
template <class F, class R>
inline constexpr bool callable_on_elements = std::is_invocable_v<std::decay_t<F>&, std::ranges::range_value_t<R>&>;

// A submitted call and its future's state in one allocation. The call (and whatever it
// captured) is destroyed as soon as it has run; the state lives on until the future lets go.
template <class R, class Call>
class SubmitJob final : public FutureState<R>, public Job {
public:
  // `pool`: the pool whose shutdown(cancel_pending) cancels the job; may be null.
  SubmitJob(const ThreadPool* pool, Call&& call) : Job(&SubmitJob::run), m_pool(pool), m_call(std::move(call)) {}

private:
  static void run(Job* base) noexcept;

  const ThreadPool* m_pool;
  std::optional<Call> m_call;
};

}  // namespace detail

class ThreadPool {
public:
  // Every jth pop from a worker's own deque takes its oldest job instead of its newest.
  static constexpr int k_lifo_streak = 64;

  explicit ThreadPool(ThreadPoolOptions options = {});
  // shutdown(ShutdownMode::wait), then joins the workers. Not from a job of this pool.
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  std::size_t size() const noexcept;
  // The pool whose worker is calling, or null.
  static ThreadPool* current() noexcept;

  // Runs fn(args...) on a worker; its result or exception arrives through the Future.
  // Arguments are decay-copied (moved if rvalues), as by std::async.
  template <class F, class... A>
  Future<detail::submit_result_t<F, A...>> submit(F&& fn, A&&... args);

  // Runs fn on every element of `range` in parallel; the future gives the results in the
  // order of the range (or rethrows the first exception, after every call has ended).
  template <class F, std::ranges::input_range R>
  auto map(F&& fn, R&& range);

  // Calls body(i) for every i in [begin, end), or body(chunk_begin, chunk_end) over
  // disjoint chunks if body takes two indices, in parallel, and returns when all are done
  // (rethrowing the first exception). Chunks are sized automatically: the range is split
  // into about 8 chunks per worker. From a worker, the caller runs chunks itself.
  template <class F>
  void parallel_for(std::size_t begin, std::size_t end, F&& body);

  // Reduces [begin, end): chunk(b, e) -> T for disjoint chunks, then combine(T, T) -> T
  // from left to right, starting from `identity`.
  template <class T, class Chunk, class Combine>
  T parallel_reduce(std::size_t begin, std::size_t end, T identity, Chunk&& chunk, Combine&& combine);

  // co_await pool.schedule(): the coroutine continues on a worker of the pool. For
  // coroutines that are not tasks of a Loop (a loop's task stays on its loop: hand work to
  // the pool with co_await pool.submit(...) instead); std::logic_error otherwise.
  auto schedule() {
    struct Awaiter : detail::Job {
      ThreadPool* m_pool;
      std::coroutine_handle<> m_handle;
      explicit Awaiter(ThreadPool* pool) : Job(&Awaiter::run), m_pool(pool) {}
      bool await_ready() const noexcept { return false; }
      void await_suspend(std::coroutine_handle<> handle) {
        if (detail::current_core())
          throw std::logic_error("gearbox: a task on a Loop cannot move to a ThreadPool; co_await pool.submit(fn) instead");
        m_handle = handle;
        m_pool->post(this);
      }
      void await_resume() const noexcept {}
      static void run(Job* base) noexcept { static_cast<Awaiter*>(base)->m_handle.resume(); }
    };
    return Awaiter{this};
  }

  // fn on every element of `range`, in parallel, streamed in the order the calls finish
  // (result_stream.hpp): as_completed gives Completed<R>{index, result()}; imap_unordered
  // gives the bare values, a failed call making its next() rethrow. The range is copied;
  // each element is one job. After shutdown(cancel_pending), calls not yet started arrive
  // as Cancelled.
  template <class F, std::ranges::input_range R>
  auto as_completed(F&& fn, R&& range);
  template <class F, std::ranges::input_range R>
  auto imap_unordered(F&& fn, R&& range);

  // Stops accepting work from outside and waits for the workers to finish (see the header
  // comment). Idempotent. From a job of this pool it only stops intake (no join).
  void shutdown(ShutdownMode mode = ShutdownMode::wait);

  // What the pool has done so far (engine_stats.hpp). A job withdrawn by Future::cancel
  // counts as queued until a worker reaches it, then as cancelled.
  EngineStats stats() const noexcept;

private:
  friend struct detail::PoolAccess;

  // The runtime's hooks, reached through detail::PoolAccess (documented there).
  void post(detail::Job* job);
  bool cancelling() const noexcept;
  static bool help_once() noexcept;

  template <class Item, class Out, class F, class R>
  ResultStream<Item> stream(F&& fn, R&& range);
  template <class F, std::ranges::input_range R>
  auto map_callable(F&& fn, R&& range);

  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

// ---- out-of-line definitions ----

namespace detail {

// The pool's hooks for the runtime (the futures that wait on a worker, to_thread, the
// streams) and for white-box tests and benchmarks: not part of the user's API, and free to
// change.
struct PoolAccess {
  // Queues `job` (it owns itself). ShutdownError if the pool no longer takes work from the
  // calling thread.
  static void post(ThreadPool& pool, Job* job) { pool.post(job); }
  // True after shutdown(cancel_pending): jobs starting now should complete as Cancelled.
  static bool cancelling(const ThreadPool& pool) noexcept { return pool.cancelling(); }
  // On a worker: runs one job of its pool, if there is one (true). Elsewhere: false.
  static bool help_once() noexcept { return ThreadPool::help_once(); }
};

}  // namespace detail

template <class R, class Call>
void detail::SubmitJob<R, Call>::run(Job* base) noexcept {
  auto* self = static_cast<SubmitJob*>(base);
  if (!self->claim()) {  // withdrawn by Future::cancel: the future already holds Cancelled
    t_job_outcome = JobOutcome::cancelled;
    self->m_call.reset();
    self->release();
    return;
  }
  // The call (and its captures) is destroyed before the result is published, so whoever
  // waits for the result knows the captures are gone.
  std::exception_ptr error;
  std::optional<stored_t<R>> value;
  if (self->m_pool && PoolAccess::cancelling(*self->m_pool)) {
    error = std::make_exception_ptr(Cancelled{});
  } else {
    try {
      if constexpr (std::is_void_v<R>) {
        (*self->m_call)();
        value.emplace();
      } else if constexpr (std::is_reference_v<R>) {
        value.emplace(std::addressof((*self->m_call)()));
      } else {
        value.emplace((*self->m_call)());
      }
    } catch (...) {
      error = std::current_exception();
    }
  }
  self->m_call.reset();
  if (error) {
    t_job_outcome = is_cancellation(error) ? JobOutcome::cancelled : JobOutcome::failed;
    self->set_exception(std::move(error));
  } else if constexpr (std::is_void_v<R>) {
    self->set_value();
  } else if constexpr (std::is_reference_v<R>) {
    self->set_value(**value);
  } else {
    self->set_value(std::move(*value));
  }
  self->release();  // the producer's reference
}

namespace detail {
// as_completed / imap_unordered: the function, the copied inputs and the stream, shared
// by one StreamJob per element.
template <class Item, class Fn, class Input>
struct StreamWork {
  Fn fn;
  std::vector<Input> inputs;
  std::shared_ptr<StreamState<Item>> state;
};

// One element of a stream: runs fn(inputs[index]) and delivers its outcome.
template <class Item, class R, class Work>
class StreamJob final : public Job {
public:
  StreamJob(const ThreadPool* pool, std::shared_ptr<Work> work, std::size_t index) noexcept
      : Job(&StreamJob::run), m_pool(pool), m_work(std::move(work)), m_index(index) {}

private:
  static void run(Job* base) noexcept {
    std::unique_ptr<StreamJob> self{static_cast<StreamJob*>(base)};
    Work& work = *self->m_work;
    std::exception_ptr error;
    std::optional<stored_t<R>> value;
    if (PoolAccess::cancelling(*self->m_pool)) {
      error = std::make_exception_ptr(Cancelled{});
    } else {
      try {
        if constexpr (std::is_void_v<R>) {
          std::invoke(work.fn, work.inputs[self->m_index]);
          value.emplace();
        } else {
          value.emplace(std::invoke(work.fn, work.inputs[self->m_index]));
        }
      } catch (...) {
        error = std::current_exception();
      }
    }
    if (error) {
      t_job_outcome = is_cancellation(error) ? JobOutcome::cancelled : JobOutcome::failed;
      if constexpr (std::is_same_v<Item, Completed<R>>)
        work.state->deliver(Completed<R>{self->m_index, std::move(error)});
      else
        work.state->deliver(std::move(error));
    } else if constexpr (std::is_same_v<Item, Completed<R>>) {
      work.state->deliver(Completed<R>{self->m_index, std::in_place, std::move(*value)});
    } else {
      work.state->deliver(Item(std::move(*value)));
    }
  }

  const ThreadPool* m_pool;
  std::shared_ptr<Work> m_work;
  std::size_t m_index;
};

// Packages fn(args...) as a job with its future, and hands the job to `post`.
template <class F, class... A, class Post>
Future<submit_result_t<F, A...>> submit_to(const ThreadPool* pool, Post&& post, F&& fn, A&&... args) {
  using R = submit_result_t<F, A...>;
  static_assert(callable_with<F, A...>,
                "gearbox: fn cannot be called with these arguments. Each argument is decay-copied, as by "
                "std::async (pass std::ref(x) to share x), and the copies are passed as rvalues.");
  if constexpr (!callable_with<F, A...>) {
    return Future<R>{};
  } else {
    auto call = [fn = std::forward<F>(fn), ... args = std::forward<A>(args)]() mutable -> R {
      return std::invoke(std::move(fn), std::move(args)...);
    };
    auto* job = new SubmitJob<R, decltype(call)>(pool, std::move(call));
    job->make_cancellable();
    Future<R> future = FutureAccess::make<R>(job);
    try {
      post(job);
    } catch (...) {
      job->release();  // never ran: drop the producer's reference; the future drops its own
      throw;
    }
    return future;
  }
}
}  // namespace detail

template <class F, class... A>
Future<detail::submit_result_t<F, A...>> ThreadPool::submit(F&& fn, A&&... args) {
  return detail::submit_to(this, [this](detail::Job* job) { post(job); }, std::forward<F>(fn), std::forward<A>(args)...);
}

template <class F>
void ThreadPool::parallel_for(std::size_t begin, std::size_t end, F&& body) {
  if (begin >= end) return;
  const std::size_t count = end - begin;
  const std::size_t chunks = std::min(count, std::max<std::size_t>(1, size() * 8));
  const std::size_t step = (count + chunks - 1) / chunks;
  auto run_chunk = [&body](std::size_t b, std::size_t e) {
    if constexpr (std::is_invocable_v<F&, std::size_t, std::size_t>) {
      body(b, e);
    } else {
      for (std::size_t i = b; i < e; ++i) body(i);
    }
  };
  std::vector<Future<void>> parts;
  parts.reserve(chunks);
  std::exception_ptr first;
  // From a worker, the caller runs the first chunk itself; from outside, every chunk is a job.
  // If a submit fails (shutdown, bad_alloc), the chunks already submitted still use this
  // frame: wait for them below before rethrowing.
  const bool inline_first = current() == this;
  try {
    for (std::size_t b = begin + (inline_first ? step : 0); b < end; b += step)
      parts.push_back(submit([&run_chunk, b, e = std::min(end, b + step)] { run_chunk(b, e); }));
  } catch (...) {
    first = std::current_exception();
  }
  if (inline_first && !first) {
    try {
      run_chunk(begin, std::min(end, begin + step));
    } catch (...) {
      first = std::current_exception();
    }
  }
  for (auto& part : parts) {  // every part must end before `body` goes out of scope
    try {
      part.get();
    } catch (...) {
      if (!first) first = std::current_exception();
    }
  }
  if (first) std::rethrow_exception(first);
}

template <class T, class Chunk, class Combine>
T ThreadPool::parallel_reduce(std::size_t begin, std::size_t end, T identity, Chunk&& chunk, Combine&& combine) {
  if (begin >= end) return identity;
  const std::size_t count = end - begin;
  const std::size_t chunks = std::min(count, std::max<std::size_t>(1, size() * 8));
  const std::size_t step = (count + chunks - 1) / chunks;
  std::vector<std::optional<T>> partial((count + step - 1) / step);
  parallel_for(0, partial.size(), [&](std::size_t i) {
    const std::size_t b = begin + i * step;
    partial[i].emplace(chunk(b, std::min(end, b + step)));
  });
  T total = std::move(identity);
  for (auto& p : partial) total = combine(std::move(total), std::move(*p));
  return total;
}

template <class F, std::ranges::input_range R>
auto ThreadPool::map(F&& fn, R&& range) {
  static_assert(detail::callable_on_elements<F, R>,
                "gearbox: fn cannot be called with an element of the range. For a function of several "
                "arguments, make the elements tuples and unpack each: [](const auto& t) { return std::apply(fn, t); }");
  if constexpr (detail::callable_on_elements<F, R>) {
    return map_callable(std::forward<F>(fn), std::forward<R>(range));
  }
}

template <class F, std::ranges::input_range R>
auto ThreadPool::map_callable(F&& fn, R&& range) {
  using Item = std::ranges::range_value_t<R>;
  using Out = std::invoke_result_t<F&, std::ranges::range_reference_t<R>>;
  static_assert(!std::is_void_v<Out>, "gearbox: map needs a function that returns a value; use parallel_for");
  auto inputs = std::make_shared<std::vector<Item>>(std::ranges::begin(range), std::ranges::end(range));
  return submit([this, inputs, fn = std::forward<F>(fn)]() mutable {
    std::vector<std::optional<Out>> outputs(inputs->size());
    parallel_for(0, inputs->size(), [&](std::size_t i) { outputs[i].emplace(fn((*inputs)[i])); });
    std::vector<Out> results;
    results.reserve(outputs.size());
    for (auto& o : outputs) results.push_back(std::move(*o));
    return results;
  });
}

template <class F, std::ranges::input_range R>
auto ThreadPool::as_completed(F&& fn, R&& range) {
  static_assert(detail::callable_on_elements<F, R>,
                "gearbox: fn cannot be called with an element of the range. For a function of several "
                "arguments, make the elements tuples and unpack each: [](const auto& t) { return std::apply(fn, t); }");
  if constexpr (detail::callable_on_elements<F, R>) {
    using Out = std::remove_cvref_t<std::invoke_result_t<std::decay_t<F>&, std::ranges::range_value_t<R>&>>;
    return stream<Completed<Out>, Out>(std::forward<F>(fn), std::forward<R>(range));
  }
}

template <class F, std::ranges::input_range R>
auto ThreadPool::imap_unordered(F&& fn, R&& range) {
  static_assert(detail::callable_on_elements<F, R>,
                "gearbox: fn cannot be called with an element of the range. For a function of several "
                "arguments, make the elements tuples and unpack each: [](const auto& t) { return std::apply(fn, t); }");
  if constexpr (detail::callable_on_elements<F, R>) {
    using Out = std::remove_cvref_t<std::invoke_result_t<std::decay_t<F>&, std::ranges::range_value_t<R>&>>;
    static_assert(!std::is_void_v<Out>, "gearbox: imap_unordered needs a function that returns a value; use as_completed");
    return stream<Out, Out>(std::forward<F>(fn), std::forward<R>(range));
  }
}

template <class Item, class Out, class F, class R>
ResultStream<Item> ThreadPool::stream(F&& fn, R&& range) {
  using Input = std::ranges::range_value_t<R>;
  using Work = detail::StreamWork<Item, std::decay_t<F>, Input>;
  auto work = std::make_shared<Work>(Work{std::forward<F>(fn), {std::ranges::begin(range), std::ranges::end(range)}, nullptr});
  const std::size_t count = work->inputs.size();
  work->state = std::make_shared<detail::StreamState<Item>>(count);
  ResultStream<Item> results{work->state};
  for (std::size_t i = 0; i < count; ++i) {
    auto* job = new detail::StreamJob<Item, Out, Work>(this, work, i);
    try {
      post(job);
    } catch (...) {
      delete job;
      throw;  // the elements already posted still run; their results go to a stream nobody holds
    }
  }
  return results;
}

}  // namespace gearbox
