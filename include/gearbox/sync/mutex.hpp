// Mutex: mutual exclusion between tasks on one loop (asyncio.Lock), for a critical
// section that must stay exclusive across co_await.
//
//   gb::Mutex mutex;
//   {
//     auto guard = co_await mutex.lock();   // Mutex::Guard: unlocks when it goes away
//     co_await write_all(socket, header);   // no other task enters while we wait here
//     co_await write_all(socket, body);
//   }
//
// Between tasks on one thread, code without a co_await is already exclusive; a Mutex is
// for sections that suspend. It is fair: waiters get the lock in the order they asked for
// it, by direct hand-off. unlock() with waiters makes the first waiter the owner at once,
// so a task that runs in between cannot take the lock first (no barging), and no waiter
// is passed over. The mutex is not recursive and does not track its owner: any task may
// unlock it, and a task that locks it twice waits for itself forever.
//
// Thread-safety: none. A Mutex serves the tasks of one loop; call every member on that
// loop's thread. (To exclude threads, use std::mutex.)
// Destruction: the mutex must be unlocked, with no task waiting and no Guard left.
//
// Memory ordering: single-threaded; a task that acquires the lock sees everything every
// earlier owner did before it unlocked.
#pragma once

#include <coroutine>
#include <mutex>  // std::adopt_lock_t
#include <stdexcept>
#include <utility>

#include <gearbox/detail/wait_queue.hpp>

namespace gearbox {

class Mutex;

namespace detail {

class MutexLockAwaiter : public Waiter {
public:
  explicit MutexLockAwaiter(Mutex& mutex) noexcept : m_mutex(&mutex) {}
  MutexLockAwaiter(MutexLockAwaiter&& other) noexcept : Waiter(std::move(other)), m_mutex(other.m_mutex) {}
  // A lock that was handed over but never delivered (the awaiting frame was destroyed
  // before it resumed) is passed on, so the mutex cannot stay locked by nobody.
  ~MutexLockAwaiter();

  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> awaiter);
  [[nodiscard]] auto await_resume();  // Mutex::Guard

private:
  Mutex* m_mutex;
  bool m_delivered = false;
};

}  // namespace detail

class Mutex {
public:
  // Owns the lock of one Mutex (or nothing) and unlocks it on destruction. Move-only.
  // A Guard belongs to the loop's thread, like its mutex.
  class [[nodiscard]] Guard {
  public:
    // Owns nothing.
    Guard() noexcept = default;
    // Takes over a lock the caller already holds (from try_lock()).
    Guard(Mutex& mutex, std::adopt_lock_t) noexcept : m_mutex(&mutex) {}
    Guard(Guard&& other) noexcept : m_mutex(std::exchange(other.m_mutex, nullptr)) {}
    Guard& operator=(Guard&& other) noexcept {
      if (this != &other) {
        unlock();
        m_mutex = std::exchange(other.m_mutex, nullptr);
      }
      return *this;
    }
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;
    ~Guard() { unlock(); }

    // Unlocks now (handing the lock to the first waiter, if any) instead of at
    // destruction. No effect on a guard that owns nothing, so it is safe to call twice.
    void unlock() noexcept {
      if (Mutex* mutex = std::exchange(m_mutex, nullptr)) mutex->release();
    }
    bool owns_lock() const noexcept { return m_mutex != nullptr; }
    explicit operator bool() const noexcept { return owns_lock(); }

  private:
    Mutex* m_mutex = nullptr;
  };

  Mutex() noexcept = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  // co_await mutex.lock(): waits until the calling task owns the lock and returns a Guard
  // for it. Returns at once when the mutex is free (it is never free while tasks wait).
  // Resumes on the loop's thread. Throws Cancelled if the task is cancelled before or
  // while it waits; the lock is then not taken and the next waiter is unaffected. A lock
  // already handed over is delivered even if a cancel arrives before the task resumes
  // (the task throws at its next suspension point, and the Guard unlocks as it unwinds).
  // Must be awaited from a task on a Loop (std::logic_error otherwise).
  [[nodiscard]] detail::MutexLockAwaiter lock() noexcept { return detail::MutexLockAwaiter{*this}; }

  // Takes the lock if it is free; never waits. Pair with unlock(), or adopt it:
  // `Mutex::Guard guard{mutex, std::adopt_lock};`.
  [[nodiscard]] bool try_lock() noexcept {
    if (m_locked) return false;
    m_locked = true;
    return true;
  }

  // Unlocks; if tasks are waiting, the first becomes the owner and is woken (it resumes in
  // a later turn). Throws std::logic_error if the mutex is not locked.
  void unlock() {
    if (!m_locked) throw std::logic_error("gearbox: Mutex::unlock of a mutex that is not locked");
    release();
  }

  bool is_locked() const noexcept { return m_locked; }

private:
  friend class detail::MutexLockAwaiter;

  void release() noexcept {
    if (auto* next = m_waiters.front()) {
      next->complete(detail::WaitOutcome::completed);  // hand-off: m_locked stays true
      return;
    }
    m_locked = false;
  }

  detail::WaitQueue m_waiters{detail::WaitOn::lock};  // non-empty only while m_locked
  bool m_locked = false;
};

namespace detail {

inline MutexLockAwaiter::~MutexLockAwaiter() {
  if (outcome() == WaitOutcome::completed && !m_delivered) m_mutex->release();
}

inline bool MutexLockAwaiter::await_suspend(std::coroutine_handle<> awaiter) {
  return suspend_unless_ready(awaiter, m_mutex->m_waiters,
                              [this] { return m_mutex->try_lock() ? WaitOutcome::completed : WaitOutcome::pending; });
}

inline auto MutexLockAwaiter::await_resume() {
  throw_if_cancelled();
  m_delivered = true;
  return Mutex::Guard{*m_mutex, std::adopt_lock};
}

}  // namespace detail

}  // namespace gearbox
