// Mutex: mutual exclusion between tasks (asyncio.Lock, tokio::sync::Mutex), for a
// critical section that must stay exclusive across co_await.
//
//   gb::Mutex mutex;
//   {
//     auto guard = co_await mutex.lock();   // Mutex::Guard: unlocks when it goes away
//     co_await write_all(socket, header);   // no other task enters while we wait here
//     co_await write_all(socket, body);
//   }
//
// Between tasks on one Loop, code without a co_await is already exclusive; a Mutex is for
// sections that suspend, and, on a Runtime, for any section that tasks on several workers
// must not run at once. It is fair: waiters get the lock in the order they asked for
// it, by direct hand-off. unlock() with waiters makes the first waiter the owner at once,
// so a task that runs in between cannot take the lock first (no barging), and no waiter
// is passed over. The mutex is not recursive and does not track its owner: any task may
// unlock it, and a task that locks it twice waits for itself forever.
//
// A waiting task suspends; it never blocks its worker. (To exclude plain threads, use
// std::mutex: lock() must be awaited from a task.)
//
// Thread-safety: on a Loop, call every member on the loop's thread. On a Runtime, tasks on
// any worker may lock and unlock it, and a Guard may move between workers with its task
// (a task that migrates while holding the lock still holds it).
// Destruction: the mutex must be unlocked, with no task waiting and no Guard left.
//
// Memory ordering: a task that acquires the lock sees everything every earlier owner did
// before it unlocked (release by unlock's internal lock, acquire by the new owner's
// lock or wake-up). is_locked() is a snapshot.
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
  // Throws Cancelled if the task is cancelled before or
  // while it waits; the lock is then not taken and the next waiter is unaffected. A lock
  // already handed over is delivered even if a cancel arrives before the task resumes
  // (the task throws at its next suspension point, and the Guard unlocks as it unwinds).
  // Must be awaited from a task on a Loop or a Runtime (std::logic_error otherwise).
  [[nodiscard]] detail::MutexLockAwaiter lock() noexcept { return detail::MutexLockAwaiter{*this}; }

  // Takes the lock if it is free; never waits. Pair with unlock(), or adopt it:
  // `Mutex::Guard guard{mutex, std::adopt_lock};`.
  [[nodiscard]] bool try_lock() noexcept {
    std::lock_guard guard{m_lock};
    return try_lock_locked();
  }

  // Unlocks; if tasks are waiting, the first becomes the owner and is woken (it resumes in
  // a later turn). Throws std::logic_error if the mutex is not locked.
  void unlock() {
    detail::WakeList wakes;  // wakes once the lock is released
    std::lock_guard guard{m_lock};
    if (!m_locked) throw std::logic_error("gearbox: Mutex::unlock of a mutex that is not locked");
    release_locked(wakes);
  }

  bool is_locked() const noexcept {
    std::lock_guard guard{m_lock};
    return m_locked;
  }

private:
  friend class detail::MutexLockAwaiter;

  void release() noexcept {
    detail::WakeList wakes;  // wakes once the lock is released
    std::lock_guard guard{m_lock};
    release_locked(wakes);
  }
  // The caller holds m_lock.
  void release_locked(detail::WakeList& wakes) noexcept {
    if (auto* next = m_waiters.claim_front()) {
      next->complete(detail::WaitOutcome::completed, wakes);  // hand-off: m_locked stays true
      return;
    }
    m_locked = false;
  }
  bool try_lock_locked() noexcept {
    if (m_locked) return false;
    m_locked = true;
    return true;
  }

  mutable detail::WaitLock m_lock;                    // guards everything below
  detail::WaitQueue m_waiters{detail::WaitOn::lock};  // non-empty only while m_locked
  bool m_locked = false;
};

namespace detail {

inline MutexLockAwaiter::~MutexLockAwaiter() {
  if (outcome() == WaitOutcome::completed && !m_delivered) m_mutex->release();
}

inline bool MutexLockAwaiter::await_suspend(std::coroutine_handle<> awaiter) {
  return suspend_unless_ready(awaiter, m_mutex->m_lock, m_mutex->m_waiters, [this](WakeList&) {
    return m_mutex->try_lock_locked() ? WaitOutcome::completed : WaitOutcome::pending;
  });
}

inline auto MutexLockAwaiter::await_resume() {
  throw_if_cancelled();
  m_delivered = true;
  return Mutex::Guard{*m_mutex, std::adopt_lock};
}

}  // namespace detail

}  // namespace gearbox
