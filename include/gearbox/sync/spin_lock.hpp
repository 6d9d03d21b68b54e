// SpinLock: mutual exclusion for a few loads and stores of state that tasks share, never
// held across co_await. Free on a Loop, a spin lock on a Runtime: the same code is correct
// on both flavors and costs nothing on one thread.
//
//   struct Outbox { gb::SpinLock lock; std::vector<Line> lines; };
//   {
//     std::lock_guard guard{outbox.lock};   // Lockable: std::lock_guard, std::scoped_lock
//     outbox.lines.push_back(line);
//   }
//
// On a thread that runs a single-thread Loop, lock() and unlock() do nothing: every task
// there runs on that thread, one at a time, and code without a co_await is exclusive
// already. On a Runtime worker or any other thread they take the lock with one atomic
// exchange, and a contender spins, then yields its core (the holder may have been
// preempted); it never sleeps in the kernel. So keep the section short: a few loads and
// stores, an append that now and then grows a vector; not a system call, not waking,
// resuming or destroying tasks (set an Event after unlocking), never a co_await (the task
// may resume on another thread, and a Loop's other tasks would not be excluded). For
// longer sections use gb::Mutex (across co_await) or std::mutex (plain threads).
//
// It is the lock gearbox's own Event, Mutex, Semaphore and Channel use (detail::WaitLock;
// see docs/architecture.md). Not recursive; no owner is tracked.
//
// Thread-safety: on a Loop, only that loop's thread may use it (where it is a no-op); on
// a Runtime, any worker and any other thread. Its users must all be of one kind: a Loop's
// thread and another thread sharing one SpinLock are not excluded from each other.
//
// Memory ordering: acquire by lock(), release by unlock(): a holder sees everything the
// previous holders did inside the lock. On a Loop thread there is nothing to order.
#pragma once

#include <gearbox/detail/wait_lock.hpp>

namespace gearbox {

using SpinLock = detail::WaitLock;

}  // namespace gearbox
