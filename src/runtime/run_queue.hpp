// RunQueue: a Runtime worker's local queue of ready tasks: a bounded ring, first in first
// out for its owner (so a task that yields goes behind the others and every task gets its
// turn), from which other workers steal half at a time (Tokio's local queue; Go's per-P
// runq). The owner pushes at the tail and pops at the head; a thief claims a run of tasks
// at the head with one compare-and-swap.
//
// Unlike the thread pool's Chase–Lev deque (newest first, for fork-join locality), this
// queue is FIFO for its owner: a task runtime must be fair to tasks that yield.
//
// Thread-safety: push_back(), pop() and the destination of steal_into() belong to the
// owner; steal_into() (as the victim) and size_hint() may be called from any thread.
//
// Memory ordering: everything a thread did before push_back(task) happens-before
// everything the thread that pops or steals the task does after that call, and each task
// pushed is returned exactly once. Indices are 64-bit counters that only grow (2^64
// operations would wrap them, which is centuries away), so a compare-and-swap of m_head
// can never succeed on a stale value (no ABA):
//   - push_back writes the slot, then publishes it with a store of m_tail (release: a
//     thief's acquire load of m_tail sees the slot and the task's contents). The store is
//     seq_cst because it is also one half of the runtime's no-lost-wake-up pairing (a
//     pusher's seq_cst store, then its seq_cst load of the idle count; a parker's seq_cst
//     RMW of that count, then its seq_cst loads of the queues: runtime_core.hpp). On
//     x86-64 that makes it an xchg on a line this worker owns.
//   - A thief reads the slots it wants before it claims them with an acq_rel CAS of
//     m_head; push_back's acquire load of m_head pairs with that CAS, so the owner
//     rewrites a slot (one lap later) only after whoever claimed it has read it. A thief
//     whose CAS fails discards what it read (another claimed those slots first).
//   - pop() claims the head slot with the same CAS, so owner and thieves never both
//     take one task.
// Slots are atomics (every access relaxed) only so that a thief reading a slot the owner
// is rewriting after the thief's view went stale is not a data race.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include <gearbox/detail/task_core.hpp>

namespace gearbox::detail {

class RunQueue {
public:
  static constexpr std::uint64_t k_capacity = 256;

  RunQueue() noexcept {
    for (auto& slot : m_slots) slot.store(nullptr, std::memory_order_relaxed);
  }
  RunQueue(const RunQueue&) = delete;
  RunQueue& operator=(const RunQueue&) = delete;

  // Owner only. Adds `task` at the tail; false (the queue unchanged) when it is full.
  bool push_back(Runnable* task) noexcept {
    const std::uint64_t tail = m_tail.load(std::memory_order_relaxed);  // only we write it
    if (tail - m_head.load(std::memory_order_acquire) >= k_capacity) return false;
    m_slots[tail % k_capacity].store(task, std::memory_order_relaxed);
    m_tail.store(tail + 1, std::memory_order_seq_cst);
    return true;
  }

  // Owner only. Takes the oldest task; nullptr when empty.
  Runnable* pop() noexcept {
    std::uint64_t head = m_head.load(std::memory_order_acquire);
    const std::uint64_t tail = m_tail.load(std::memory_order_relaxed);
    while (head != tail) {
      Runnable* task = m_slots[head % k_capacity].load(std::memory_order_relaxed);
      if (m_head.compare_exchange_weak(head, head + 1, std::memory_order_acq_rel, std::memory_order_acquire))
        return task;
    }
    return nullptr;
  }

  // Called by the owner of `into`: moves half (rounded up) of this queue's tasks to the
  // tail of `into` (at most as many as it has room for), except the last one moved, which
  // it returns for the caller to run at once. nullptr when there was nothing to take.
  // `moved`, if given, receives how many tasks were taken (the one returned included).
  Runnable* steal_into(RunQueue& into, std::uint64_t* moved = nullptr) noexcept {
    const std::uint64_t into_tail = into.m_tail.load(std::memory_order_relaxed);
    const std::uint64_t room = k_capacity - (into_tail - into.m_head.load(std::memory_order_acquire));
    std::uint64_t head = m_head.load(std::memory_order_acquire);
    for (;;) {
      const std::uint64_t tail = m_tail.load(std::memory_order_acquire);
      const std::uint64_t available = tail - head;
      if (available == 0 || room == 0) return nullptr;
      if (available > k_capacity) {  // our head was stale by a lap: look again
        head = m_head.load(std::memory_order_acquire);
        continue;
      }
      std::uint64_t take = available - available / 2;
      if (take > room) take = room;
      for (std::uint64_t i = 0; i < take; ++i) {
        Runnable* task = m_slots[(head + i) % k_capacity].load(std::memory_order_relaxed);
        into.m_slots[(into_tail + i) % k_capacity].store(task, std::memory_order_relaxed);
      }
      if (m_head.compare_exchange_weak(head, head + take, std::memory_order_acq_rel, std::memory_order_acquire)) {
        Runnable* run_now = into.m_slots[(into_tail + take - 1) % k_capacity].load(std::memory_order_relaxed);
        if (take > 1) into.m_tail.store(into_tail + take - 1, std::memory_order_release);
        if (moved) *moved = take;
        return run_now;
      }
    }
  }

  // Tasks in the queue; exact for the owner, a hint for anyone else. seq_cst loads: a
  // parker's re-check (see push_back).
  std::size_t size_hint() const noexcept {
    const std::uint64_t head = m_head.load(std::memory_order_seq_cst);
    const std::uint64_t tail = m_tail.load(std::memory_order_seq_cst);
    return tail > head ? static_cast<std::size_t>(tail - head) : 0;
  }

  // Tasks taken from the queue so far, by its owner or by thieves: a progress figure for
  // any thread. Memory ordering: relaxed; it orders nothing, it is compared with itself.
  std::uint64_t taken() const noexcept { return m_head.load(std::memory_order_relaxed); }

private:
  alignas(64) std::atomic<std::uint64_t> m_head{0};  // written by the owner and thieves
  alignas(64) std::atomic<std::uint64_t> m_tail{0};  // written by the owner only
  std::array<std::atomic<Runnable*>, k_capacity> m_slots;
};

}  // namespace gearbox::detail
