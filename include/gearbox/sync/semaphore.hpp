// Semaphore: a counter of permits that tasks take and give back (asyncio.Semaphore,
// tokio::sync::Semaphore), typically to bound how many tasks do something at once.
//
//   gb::Semaphore slots{4};                        // at most 4 downloads in flight
//   auto permit = co_await slots.acquire_guard();  // Semaphore::Guard: releases on exit
//   co_await download(url);
//
// acquire() takes one permit, waiting while there is none; release(n) gives n back. It is
// fair: permits go to waiters in the order they began to wait, by direct hand-off, so a
// released permit is never taken by a task that arrives later (no barging). Permits are
// not tied to tasks: any task may release, and release may raise the count above its
// initial value.
//
// Thread-safety: on a Loop, call every member on the loop's thread. On a Runtime, tasks on
// any worker may acquire and release, and release() may also be called from any other
// thread. (To count between plain threads, use std::counting_semaphore.)
// Destruction: no task may be waiting, and no Guard may be left.
//
// Memory ordering: a task that acquires a permit sees everything the releasing thread did
// before release() (release by its internal lock, acquire by the acquirer's lock or
// wake-up). available() is a snapshot.
#pragma once

#include <coroutine>
#include <cstddef>
#include <mutex>  // std::adopt_lock_t
#include <utility>

#include <gearbox/detail/wait_queue.hpp>

namespace gearbox {

class Semaphore;

namespace detail {

// Waits for one permit. With `Guarded`, await_resume yields a Semaphore::Guard for it.
template <bool Guarded>
class SemaphoreAcquireAwaiter : public Waiter {
public:
  explicit SemaphoreAcquireAwaiter(Semaphore& semaphore) noexcept : m_semaphore(&semaphore) {}
  SemaphoreAcquireAwaiter(SemaphoreAcquireAwaiter&& other) noexcept
      : Waiter(std::move(other)), m_semaphore(other.m_semaphore) {}
  // A permit that was handed over but never delivered (the awaiting frame was destroyed
  // before it resumed) is given back, so it cannot be lost.
  ~SemaphoreAcquireAwaiter();

  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> awaiter);
  auto await_resume();  // void, or Semaphore::Guard

private:
  Semaphore* m_semaphore;
  bool m_delivered = false;
};

}  // namespace detail

class Semaphore {
public:
  // Owns one permit of a Semaphore (or nothing) and releases it on destruction. Move-only.
  class [[nodiscard]] Guard {
  public:
    // Owns nothing.
    Guard() noexcept = default;
    // Takes over a permit the caller already holds (from try_acquire()).
    Guard(Semaphore& semaphore, std::adopt_lock_t) noexcept : m_semaphore(&semaphore) {}
    Guard(Guard&& other) noexcept : m_semaphore(std::exchange(other.m_semaphore, nullptr)) {}
    Guard& operator=(Guard&& other) noexcept {
      if (this != &other) {
        release();
        m_semaphore = std::exchange(other.m_semaphore, nullptr);
      }
      return *this;
    }
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;
    ~Guard() { release(); }

    // Gives the permit back now instead of at destruction. No effect on a guard that owns
    // nothing, so it is safe to call twice.
    void release() noexcept {
      if (Semaphore* semaphore = std::exchange(m_semaphore, nullptr)) semaphore->release();
    }
    bool owns_permit() const noexcept { return m_semaphore != nullptr; }
    explicit operator bool() const noexcept { return owns_permit(); }

  private:
    Semaphore* m_semaphore = nullptr;
  };

  explicit Semaphore(std::size_t permits) noexcept : m_available(permits) {}
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;

  // co_await sem.acquire(): takes one permit, waiting until one is released to this task.
  // Returns at once when a permit is available (there is none while tasks wait). Throws
  // Cancelled if the task is cancelled before or while it
  // waits; no permit is then taken. A permit already handed over is delivered even if a
  // cancel arrives before the task resumes (the task throws at its next suspension
  // point). Must be awaited from a task on a Loop or a Runtime (std::logic_error
  // otherwise).
  [[nodiscard]] detail::SemaphoreAcquireAwaiter<false> acquire() noexcept {
    return detail::SemaphoreAcquireAwaiter<false>{*this};
  }
  // co_await sem.acquire_guard(): acquire(), returning a Guard that releases the permit.
  [[nodiscard]] detail::SemaphoreAcquireAwaiter<true> acquire_guard() noexcept {
    return detail::SemaphoreAcquireAwaiter<true>{*this};
  }

  // Takes a permit if one is available; never waits.
  [[nodiscard]] bool try_acquire() noexcept {
    std::lock_guard guard{m_lock};
    return try_acquire_locked();
  }

  // Gives back `n` permits: each goes to the first waiting task, if any (woken to resume
  // in a later turn), else to the count.
  void release(std::size_t n = 1) noexcept {
    detail::WakeList wakes;  // wakes once the lock is released
    std::lock_guard guard{m_lock};
    for (; n > 0; --n) {
      auto* next = m_waiters.claim_front();
      if (!next) break;
      next->complete(detail::WaitOutcome::completed, wakes);  // hand-off: the count is untouched
    }
    m_available += n;
  }

  // Permits that can be taken without waiting.
  std::size_t available() const noexcept {
    std::lock_guard guard{m_lock};
    return m_available;
  }

private:
  template <bool>
  friend class detail::SemaphoreAcquireAwaiter;

  // The caller holds m_lock.
  bool try_acquire_locked() noexcept {
    if (m_available == 0) return false;
    --m_available;
    return true;
  }

  mutable detail::WaitLock m_lock;                    // guards everything below
  detail::WaitQueue m_waiters{detail::WaitOn::lock};  // non-empty only while m_available == 0
  std::size_t m_available;
};

namespace detail {

template <bool Guarded>
SemaphoreAcquireAwaiter<Guarded>::~SemaphoreAcquireAwaiter() {
  if (outcome() == WaitOutcome::completed && !m_delivered) m_semaphore->release();
}

template <bool Guarded>
bool SemaphoreAcquireAwaiter<Guarded>::await_suspend(std::coroutine_handle<> awaiter) {
  return suspend_unless_ready(awaiter, m_semaphore->m_lock, m_semaphore->m_waiters, [this](WakeList&) {
    return m_semaphore->try_acquire_locked() ? WaitOutcome::completed : WaitOutcome::pending;
  });
}

template <bool Guarded>
auto SemaphoreAcquireAwaiter<Guarded>::await_resume() {
  throw_if_cancelled();
  m_delivered = true;
  if constexpr (Guarded) return Semaphore::Guard{*m_semaphore, std::adopt_lock};
}

}  // namespace detail

}  // namespace gearbox
