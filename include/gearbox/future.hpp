// Future<T> / Promise<T>: a result that arrives later, from any thread. The one bridge
// between the engines: a ThreadPool job, a to_thread call and a ProcessPool call all hand
// back a Future, and every kind of caller can wait for it:
//
//   gb::Future<int> f = pool.submit(compute, 42);
//   int a = f.get();                  // a plain thread blocks (a pool worker helps instead)
//   int b = co_await pool.submit(...); // a task on a loop suspends; the loop runs on
//
// co_await on a task of a Loop suspends only that task: the loop keeps running, and the
// task resumes on its own loop's thread when the result arrives. Cancelling the task
// abandons the wait (Cancelled), and withdraws the work too if it has not started (see
// cancel()); work already running goes on. A coroutine not on a loop (one running on a
// pool) resumes on the thread that completes the promise.
//
// cancel() withdraws the work behind a future if it has not started: a ThreadPool job or
// to_thread call still queued, a ProcessPool call not yet sent to a worker. It then never
// runs, and the future holds Cancelled. A Promise's future cannot be withdrawn (its
// producer is the program's own code): cancel() returns false.
//
// A Future is move-only and has one consumer: get() or co_await takes the result (moving
// it out); afterwards valid() is false. An exception stored in the promise is rethrown to
// the consumer. A Promise destroyed without a result breaks it: the consumer gets
// BrokenPromise instead of waiting forever. A failure nobody takes (the Future dropped, or
// never asked) is reported to stderr, never silently lost.
//
// Thread-safety: a Promise and its Future may be used on different threads at once. Each
// of them is itself used by one thread at a time.
//
// Toolchain note: g++ 12 destroys the captures of a lambda temporary twice when it is an
// argument inside a co_await expression (`co_await pool.submit([s] {...})` with a
// std::string capture). Make the future in a statement of its own, then co_await it.
//
// Memory ordering: the result is written before the promise publishes it with a release
// operation (the exchange of m_waiter); the consumer reads it only after an acquire load
// or exchange that sees the publication. So a consumer sees everything the producer did
// before set_value/set_exception.
#pragma once

#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <variant>

#include <gearbox/detail/blocking_wait.hpp>
#include <gearbox/detail/task_core.hpp>
#include <gearbox/detail/unobserved.hpp>
#include <gearbox/error.hpp>

namespace gearbox {

template <class T>
class Future;
template <class T>
class Promise;

namespace detail {

// Someone (a coroutine) waiting for a FutureState; fired once by the producer's thread.
struct FutureContinuation {
  using Fn = void (*)(FutureContinuation*) noexcept;
  explicit FutureContinuation(Fn fire) noexcept : m_fire(fire) {}
  Fn m_fire;
};

// now + limit, or no deadline at all when that would overflow (wait_for(hours::max())).
template <class Rep, class Period>
std::optional<std::chrono::steady_clock::time_point> deadline_after(std::chrono::duration<Rep, Period> limit) {
  using Clock = std::chrono::steady_clock;
  const auto now = Clock::now();
  if (limit <= limit.zero()) return now;
  const auto room = std::chrono::duration<double>(Clock::time_point::max() - now);
  if (std::chrono::duration<double>(limit) >= room) return std::nullopt;
  return now + std::chrono::ceil<Clock::duration>(limit);
}

template <class T>
using stored_t = std::conditional_t<std::is_void_v<T>, std::monostate,
                                    std::conditional_t<std::is_reference_v<T>, std::remove_reference_t<T>*, T>>;

// The shared state of a Future/Promise pair. Work that produces a result (a pool job) may
// derive from it, so that the job and its future share one allocation.
template <class T>
class FutureState {
public:
  FutureState() noexcept = default;
  FutureState(const FutureState&) = delete;
  FutureState& operator=(const FutureState&) = delete;
  virtual ~FutureState() = default;

  // m_waiter values besides a FutureContinuation* (which is aligned, so never 1 or 2).
  static constexpr std::uintptr_t k_no_waiter = 0;
  static constexpr std::uintptr_t k_ready = 1;    // the result is published
  static constexpr std::uintptr_t k_blocked = 2;  // a thread sleeps in get()/wait_for()

  // ---- producer side (one thread at a time) ----
  template <class... A>
  void set_value(A&&... args) {
    if constexpr (std::is_reference_v<T>)
      m_result.template emplace<1>(std::addressof(args)...);
    else
      m_result.template emplace<1>(std::forward<A>(args)...);
    publish();
  }
  void set_exception(std::exception_ptr error) noexcept {
    m_result.template emplace<2>(std::move(error));
    publish();
  }

  // ---- consumer side (one thread at a time) ----
  bool ready() const noexcept {
    // Memory ordering: acquire pairs with the release of the exchange in publish().
    return m_waiter.load(std::memory_order_acquire) == k_ready;
  }

  // Registers `continuation` to be fired when the result is published. False if it is
  // already published (nothing was registered).
  bool try_register(FutureContinuation* continuation) noexcept {
    std::uintptr_t expected = m_waiter.load(std::memory_order_acquire);
    while (expected != k_ready) {
      // Memory ordering: release, so the producer's acquire exchange sees the continuation's
      // fields; acquire on failure pairs with publish() when we find k_ready.
      if (m_waiter.compare_exchange_weak(expected, reinterpret_cast<std::uintptr_t>(continuation),
                                         std::memory_order_acq_rel, std::memory_order_acquire))
        return true;
    }
    return false;
  }

  // Takes back a registered continuation. False if the producer has already taken it (it
  // is being fired, or has been).
  bool try_revoke(FutureContinuation* continuation) noexcept {
    std::uintptr_t expected = reinterpret_cast<std::uintptr_t>(continuation);
    // Memory ordering: acq_rel/acquire; a failure means publish() exchanged first.
    return m_waiter.compare_exchange_strong(expected, k_no_waiter, std::memory_order_acq_rel,
                                            std::memory_order_acquire);
  }

  // Blocks until the result is published or `deadline` passes; true if published. A
  // thread-pool worker runs other jobs of its pool meanwhile, so fork-join cannot deadlock.
  bool wait(std::optional<std::chrono::steady_clock::time_point> deadline) noexcept {
    while (!ready()) {
      if (help_pool_once()) continue;
      if (deadline && std::chrono::steady_clock::now() >= *deadline) return false;
      std::uintptr_t expected = m_waiter.load(std::memory_order_acquire);
      if (expected == k_ready) break;
      if (expected != k_blocked &&
          !m_waiter.compare_exchange_strong(expected, k_blocked, std::memory_order_acq_rel, std::memory_order_acquire))
        continue;  // published meanwhile
      // A worker naps briefly so that it comes back to help with new jobs.
      std::optional<std::chrono::steady_clock::time_point> until = deadline;
      if (on_pool_worker()) {
        const auto nap = std::chrono::steady_clock::now() + std::chrono::microseconds(200);
        if (!until || nap < *until) until = nap;
      }
      wait_on(m_ready_word, 0, until);
    }
    return true;
  }

  // The result, moved out (rethrows a stored exception). Only once, after ready().
  T take() {
    m_observed = true;
    // The exception moves out, so the consumer holds its only reference and it is freed on
    // the consumer's thread (not by whichever side releases the state last).
    if (m_result.index() == 2) std::rethrow_exception(std::exchange(std::get<2>(m_result), nullptr));
    if constexpr (std::is_void_v<T>)
      return;
    else if constexpr (std::is_reference_v<T>)
      return *std::get<1>(m_result);
    else
      return std::move(std::get<1>(m_result));
  }

  // Both the Promise and the Future hold a reference; the last to let go frees the state,
  // reporting a failure that nobody took.
  void release() noexcept {
    // Memory ordering: acq_rel, so the last releaser sees every write of the other side.
    if (m_refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    if (!m_observed && m_result.index() == 2 && !is_cancellation(std::get<2>(m_result)))
      report_unobserved(std::get<2>(m_result));
    delete this;
  }

  bool has_result() const noexcept { return m_result.index() != 0; }  // producer side

  // ---- withdrawing work that has not started ----
  // A producer that queues work (a pool) calls make_cancellable() before the future is
  // handed out, then claim() before it starts the work and before it completes the state.
  // claim() is true if the producer owns the result (from then on cancel() fails); false
  // if the consumer withdrew the work: the producer must not run it nor touch the result,
  // only release() its reference.
  void make_cancellable() noexcept { m_claim.store(k_unclaimed, std::memory_order_relaxed); }
  bool claim() noexcept {
    std::uint8_t state = k_unclaimed;
    // Memory ordering: the CAS alone decides who owns the result (the consumer's try_cancel
    // or the producer), so relaxed would do; acq_rel keeps it simple to reason about. The
    // result itself is published by publish()'s exchange.
    if (m_claim.compare_exchange_strong(state, k_claimed, std::memory_order_acq_rel, std::memory_order_acquire))
      return true;
    return state != k_cancelled;
  }
  // Consumer side: withdraws unclaimed work and completes the state with Cancelled.
  bool try_cancel() noexcept {
    std::uint8_t state = k_unclaimed;
    if (!m_claim.compare_exchange_strong(state, k_cancelled, std::memory_order_acq_rel, std::memory_order_acquire))
      return false;
    set_exception(std::make_exception_ptr(Cancelled{}));
    return true;
  }

private:
  void publish() noexcept {
    // Memory ordering: release publishes m_result; acquire makes a registered
    // continuation's fields visible before we fire it (pairs with try_register).
    const std::uintptr_t previous = m_waiter.exchange(k_ready, std::memory_order_acq_rel);
    if (previous == k_blocked) {
      // Memory ordering: the flag is only the futex's sleep condition; the data is
      // published by the exchange above, which the woken thread re-reads with acquire.
      m_ready_word.store(1, std::memory_order_release);
      wake_all(m_ready_word);
    } else if (previous != k_no_waiter) {
      auto* continuation = reinterpret_cast<FutureContinuation*>(previous);
      continuation->m_fire(continuation);
    }
  }

  // Who owns the result. k_uncancellable: a Promise's state (never withdrawn);
  // k_unclaimed: queued work, which either side may take; k_claimed: the producer's;
  // k_cancelled: the consumer withdrew the work (and completed the state itself).
  static constexpr std::uint8_t k_uncancellable = 0, k_unclaimed = 1, k_claimed = 2, k_cancelled = 3;
  std::atomic<std::uint8_t> m_claim{k_uncancellable};
  std::atomic<std::uint32_t> m_refs{2};              // the Promise's and the Future's
  std::atomic<std::uintptr_t> m_waiter{k_no_waiter};  // see the constants above
  std::atomic<std::uint32_t> m_ready_word{0};        // futex word: 1 once published to a blocked thread
  std::variant<std::monostate, stored_t<T>, std::exception_ptr> m_result;  // written once, before publish
  bool m_observed = false;                            // consumer side: the result was taken
};

struct FutureAccess;

}  // namespace detail

template <class T>
class [[nodiscard]] Future {
public:
  Future() noexcept = default;
  Future(Future&& other) noexcept : m_state(std::exchange(other.m_state, nullptr)) {}
  Future& operator=(Future&& other) noexcept {
    if (this != &other) {
      reset();
      m_state = std::exchange(other.m_state, nullptr);
    }
    return *this;
  }
  Future(const Future&) = delete;
  Future& operator=(const Future&) = delete;
  ~Future() { reset(); }

  // True until the result has been taken (or for a default-constructed future, never).
  bool valid() const noexcept { return m_state != nullptr; }
  // True once the result (value or exception) is there; get() would not block.
  bool ready() const noexcept { return m_state && m_state->ready(); }

  // Blocks until the result is there, then returns it (or rethrows its exception). On a
  // ThreadPool worker, runs other jobs of the pool while it waits. Takes the result:
  // afterwards valid() is false. std::logic_error on an invalid future.
  T get() {
    auto* state = checked_state();
    state->wait(std::nullopt);
    struct Release {
      Future* f;
      ~Release() { f->reset(); }
    } release{this};
    return state->take();
  }

  // Waits up to `limit` for the result; true if it is there. Does not take it.
  template <class Rep, class Period>
  bool wait_for(std::chrono::duration<Rep, Period> limit) const {
    return checked_state()->wait(detail::deadline_after(limit));
  }
  void wait() const { checked_state()->wait(std::nullopt); }

  // Withdraws the work behind this future if it has not started (see the header comment):
  // true if it will never run; the future is then ready and holds Cancelled. False if the
  // work has started or ended, or cannot be withdrawn; and on an invalid future.
  bool cancel() noexcept { return m_state && m_state->try_cancel(); }

  // co_await future: see the header comment. Takes the result.
  auto operator co_await() && { return Awaiter{this}; }
  auto operator co_await() & { return Awaiter{this}; }

private:
  friend class Promise<T>;
  friend struct detail::FutureAccess;
  explicit Future(detail::FutureState<T>* state) noexcept : m_state(state) {}

  class Awaiter : private detail::FutureContinuation, private detail::CancelSlot, private detail::Runnable {
  public:
    explicit Awaiter(Future* future)
        : FutureContinuation(&Awaiter::on_fire), CancelSlot(&Awaiter::on_cancel), Runnable(&Awaiter::on_loop),
          m_future(future), m_state(future->checked_state()) {}

    bool await_ready() const noexcept { return m_state->ready(); }
    bool await_suspend(std::coroutine_handle<> awaiter) {
      m_core = detail::current_core();
      m_handle = awaiter;
      if (m_core && m_core->cancel_requested()) {
        m_cancelled = true;
        return false;
      }
      if (!m_state->try_register(this)) return false;  // published meanwhile
      if (m_core) m_core->suspend(awaiter, this, detail::WaitOn::future);
      return true;
    }
    T await_resume() {
      if (m_cancelled) throw Cancelled{};
      struct Release {
        Future* f;
        ~Release() { f->reset(); }
      } release{m_future};
      return m_state->take();
    }

  private:
    // On the producer's thread: hand the wake-up to the task's loop, or resume in place.
    static void on_fire(FutureContinuation* base) noexcept {
      auto* self = static_cast<Awaiter*>(base);
      if (self->m_core)
        self->m_core->post_to_loop(static_cast<Runnable*>(self));
      else
        self->m_handle.resume();
    }
    // On the loop's thread.
    static void on_loop(Runnable* base) noexcept { static_cast<Awaiter*>(base)->m_core->wake(); }
    static void on_cancel(CancelSlot* base) noexcept {
      auto* self = static_cast<Awaiter*>(base);
      // If the producer already took the continuation, its posted wake-up is on the way:
      // the wait completes normally and the task sees Cancelled at its next await.
      if (self->m_state->try_revoke(self)) {
        self->m_cancelled = true;
        (void)self->m_state->try_cancel();  // the work too, if it has not started
        self->m_core->wake();
      }
    }

    Future* m_future;
    detail::FutureState<T>* m_state;
    detail::TaskCore* m_core = nullptr;
    std::coroutine_handle<> m_handle;
    bool m_cancelled = false;
  };

  detail::FutureState<T>* checked_state() const {
    if (!m_state) throw std::logic_error("gearbox: this Future has no result to give (invalid, or already taken)");
    return m_state;
  }
  void reset() noexcept {
    if (m_state) std::exchange(m_state, nullptr)->release();
  }

  detail::FutureState<T>* m_state = nullptr;
};

namespace detail {
// For the runtime's producers (pool jobs) that derive from FutureState.
struct FutureAccess {
  template <class T>
  static Future<T> make(FutureState<T>* state) noexcept {
    return Future<T>{state};
  }
};
}  // namespace detail

template <class T>
class Promise {
public:
  Promise() : m_state(new detail::FutureState<T>) {}
  Promise(Promise&& other) noexcept
      : m_state(std::exchange(other.m_state, nullptr)), m_future_taken(other.m_future_taken) {}
  Promise& operator=(Promise&& other) noexcept {
    if (this != &other) {
      abandon();
      m_state = std::exchange(other.m_state, nullptr);
      m_future_taken = other.m_future_taken;
    }
    return *this;
  }
  Promise(const Promise&) = delete;
  Promise& operator=(const Promise&) = delete;
  // A promise destroyed without a result breaks it (BrokenPromise for the consumer).
  ~Promise() { abandon(); }

  // The consumer's end; once only (std::logic_error after).
  Future<T> get_future() {
    if (!m_state || m_future_taken) throw std::logic_error("gearbox: Promise::get_future called twice");
    m_future_taken = true;
    return Future<T>{m_state};
  }

  template <class... A>
  void set_value(A&&... value) {
    checked_unsatisfied()->set_value(std::forward<A>(value)...);
  }
  void set_exception(std::exception_ptr error) { checked_unsatisfied()->set_exception(std::move(error)); }

private:
  detail::FutureState<T>* checked_unsatisfied() {
    if (!m_state || m_state->has_result()) throw std::logic_error("gearbox: the promise already has a result");
    return m_state;
  }
  void abandon() noexcept {
    if (!m_state) return;
    if (!m_future_taken) {
      m_state->release();  // the Future's reference, never handed out: nobody to tell
    } else if (!m_state->has_result()) {
      m_state->set_exception(std::make_exception_ptr(BrokenPromise{}));
    }
    std::exchange(m_state, nullptr)->release();
  }

  detail::FutureState<T>* m_state;
  bool m_future_taken = false;
};

}  // namespace gearbox
