// WaitLock: the lock of one synchronisation primitive (Event, Mutex, Semaphore, Channel).
// It guards the primitive's state and wait queues, on a Loop (where it is never contended)
// and on a multi-thread Runtime (where tasks on several workers use the primitive).
//
// A spin lock, not a std::mutex: it is held for a few loads and stores only (never while
// a task is woken, resumed or allocates), so a waiter is better off spinning than sleeping
// in the kernel, and taking it costs one atomic exchange. A contender that has spun for a
// while yields its core, because the holder may have been preempted (a worker thread is an
// ordinary thread); it never sleeps on a futex, so an unlock is one plain store.
//
// On a thread that is running a single-thread Loop the lock is not taken at all: every
// user of a primitive there is that thread (the Loop's contract: its primitives are used
// from its thread only), and the atomic exchange would cost a single-thread ping-pong over
// a channel a quarter of its speed. The Loop sets t_exclusive_loop_thread while it runs.
//
// Meets Lockable, for std::lock_guard / std::scoped_lock.
#pragma once

#include <atomic>

namespace gearbox::detail {

// True while this thread runs a single-thread Loop (set by Loop, loop.cpp). Runtime
// workers and plain threads leave it false.
inline thread_local constinit bool t_exclusive_loop_thread = false;

class WaitLock {
public:
  WaitLock() noexcept = default;
  WaitLock(const WaitLock&) = delete;
  WaitLock& operator=(const WaitLock&) = delete;

  void lock() noexcept {
    if (t_exclusive_loop_thread) return;
    // Memory ordering: acquire on the exchange that takes the lock, pairing with unlock()'s
    // release: the new holder sees everything the previous one wrote.
    if (m_locked.exchange(true, std::memory_order_acquire)) [[unlikely]]
      lock_contended();
  }
  // Memory ordering: release, publishing the holder's writes to the next lock().
  void unlock() noexcept {
    if (t_exclusive_loop_thread) return;
    m_locked.store(false, std::memory_order_release);
  }

private:
  void lock_contended() noexcept;  // spins on a relaxed load, then yields, until it takes it

  std::atomic<bool> m_locked{false};
};

}  // namespace gearbox::detail
