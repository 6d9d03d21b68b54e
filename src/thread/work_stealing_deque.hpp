// WorkStealingDeque: a ThreadPool worker's own run queue, a bounded Chase–Lev deque of
// Job pointers (Chase & Lev, "Dynamic Circular Work-Stealing Deque", SPAA 2005, with the
// C11 orderings of Lê, Pop, Cohen & Zappa Nardelli, "Correct and Efficient Work-Stealing
// for Weak Memory Models", PPoPP 2013). The worker that owns it pushes and pops at the
// bottom, newest first, so it runs the work it just made while that work's data is still
// in its cache; idle workers steal from the top, oldest first, so they take the jobs that
// tend to be large (the roots of fork-join trees) and rarely meet the owner.
//
// It never grows: a full deque refuses a push, and the pool then puts the job on its
// global injection queue. Indices are 64-bit counters that only grow (top) or move by one
// around the top (bottom); a slot is an index modulo the capacity. 2^63 operations would
// overflow them, which is centuries away.
//
// Thread-safety: push() and pop() belong to one thread, the owner; steal(), size_hint()
// and capacity() may be called from any thread, concurrently with everything else.
// Destruction: no thread may be using the deque. Jobs still in it are neither run nor
// freed: the pool drains its deques before destroying them.
//
// Memory ordering: everything the owner did before push(job) happens-before everything
// the thread that pop() or steal() returns the job to does after that call; each pushed
// job is returned by exactly one pop() or steal(). The two indices carry all ordering;
// the slots are atomics only so that a thief's read of a slot the owner is rewriting is
// not a data race (that thief's claim on top then fails and it drops what it read), and
// every slot access is relaxed:
//   - push() writes the slot, then publishes it with a release store of m_bottom; a
//     thief's load of m_bottom acquires it, so the slot and the job's contents are
//     visible to the thief.
//   - A thief reads its slot before it claims it with a CAS on m_top; push()'s acquire
//     load of m_top pairs with that CAS, so the owner overwrites a slot (one lap later)
//     only after the thief that took it has read it.
//   - The last job is the one that pop() and steal() can both want. pop() first lowers
//     m_bottom, then reads m_top; steal() reads m_top, then m_bottom. If each could miss
//     the other's latest write (store buffering), both would take the job. Lê et al. put
//     a seq_cst fence between the two accesses on each side; this deque instead makes
//     the four accesses seq_cst operations, so they lie in one total order S. If pop()'s
//     store to m_bottom precedes the thief's load of it in S, the thief sees the lowered
//     bottom and stops short of the owner's job. Otherwise the thief's load of m_top
//     precedes pop()'s, which then sees that top or a later one, so pop() knows the
//     thief may be coming. Either way, a job that both can take is the last one, which
//     each claims with a CAS of m_top from the same value: exactly one succeeds.
// Why operations and not fences: ThreadSanitizer does not model std::atomic_thread_fence
// (g++ 12 even warns, -Wtsan), so fence-based code either reports false races or hides
// real ones; seq_cst operations on the indices are what TSan and the C++ model both
// understand, and they cost what the fences cost. On x86-64 the seq_cst store in pop()
// is an xchg (the full barrier the fence would have been; all loads are plain moves,
// the CAS a lock cmpxchg either way). On AArch64 it is stlr followed by ldar, which the
// architecture never reorders (release-sequentially-consistent), so no dmb is needed.
#pragma once

#include <atomic>
#include <bit>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <stdexcept>

#include <gearbox/detail/job.hpp>

namespace gearbox::detail {

class WorkStealingDeque {
public:
  // Room for `capacity` jobs, rounded up to a power of two and at least 2. Throws
  // std::length_error when the rounded capacity would not fit the indices, and
  // std::bad_alloc when the ring cannot be allocated.
  explicit WorkStealingDeque(std::size_t capacity);

  WorkStealingDeque(const WorkStealingDeque&) = delete;
  WorkStealingDeque& operator=(const WorkStealingDeque&) = delete;

  // Owner only. Adds `job` (not nullptr) at the bottom; false, leaving the deque as it
  // was, when it is full. "Full" may be stale by a steal that is in flight: a push can
  // fail while a thief is freeing a slot, never succeed without room.
  bool push(Job* job) noexcept;

  // Owner only. Takes the newest job; nullptr when the deque is empty (including when a
  // thief took the last job first).
  Job* pop() noexcept;

  // Any thread. Takes the oldest job; nullptr when the deque is empty or when another
  // thread took that job first. A nullptr does not prove the deque empty: callers that
  // look for work move on to another queue and come back later.
  Job* steal() noexcept;

  // Any thread. How many jobs the deque holds, give or take the operations in flight;
  // for heuristics only (which victim to steal from, whether to wake a worker).
  std::size_t size_hint() const noexcept;

  std::size_t capacity() const noexcept { return m_mask + 1; }

private:
  static constexpr std::size_t k_cache_line = 64;
  // Beyond this, bottom - top could not be compared with the capacity in 64 bits.
  static constexpr std::size_t k_max_capacity = std::size_t{1} << (std::numeric_limits<std::size_t>::digits - 2);

  static std::size_t round_capacity(std::size_t requested);

  std::atomic<Job*>& slot(std::int64_t index) const noexcept {
    return m_slots[static_cast<std::size_t>(index) & m_mask];
  }

  // Read-only after construction. On a cache line of their own, so that the thieves'
  // writes to m_top and the owner's to m_bottom never evict them from anyone's cache.
  alignas(k_cache_line) const std::size_t m_mask;
  const std::unique_ptr<std::atomic<Job*>[]> m_slots;

  // Index of the oldest job, the next one to steal: 0 at first, then only ever
  // incremented, by a seq_cst CAS from the thief that takes that job, or from the owner
  // when it takes the last one. Read with acquire by push() (pairs with those CASes: a
  // slot is reused only after its thief read it), seq_cst by pop() and steal() (the
  // total order that settles the race for the last job; see "Memory ordering"), and
  // relaxed by pop()'s empty fast path and size_hint(), which only compare it.
  alignas(k_cache_line) std::atomic<std::int64_t> m_top{0};

  // One past the newest job. Written only by the owner: push() stores bottom + 1 with
  // release (pairs with the acquire part of steal()'s seq_cst load: the slot and the
  // job's contents are visible to a thief that sees it); pop() first stores bottom - 1
  // with seq_cst (the reservation that thieves must see before they go for the same
  // job), which can leave it at top - 1, then, when the deque held one job or none,
  // restores it to the new top with a relaxed store: any thief that reads that value
  // together with an older top fails its CAS, so there is nothing to publish.
  alignas(k_cache_line) std::atomic<std::int64_t> m_bottom{0};
};

inline std::size_t WorkStealingDeque::round_capacity(std::size_t requested) {
  if (requested > k_max_capacity) throw std::length_error("WorkStealingDeque: capacity too large");
  return std::bit_ceil(requested < 2 ? std::size_t{2} : requested);
}

inline WorkStealingDeque::WorkStealingDeque(std::size_t capacity)
    : m_mask(round_capacity(capacity) - 1), m_slots(std::make_unique<std::atomic<Job*>[]>(m_mask + 1)) {}

inline bool WorkStealingDeque::push(Job* job) noexcept {
  assert(job != nullptr && "nullptr is how the deque says it is empty");
  const std::int64_t bottom = m_bottom.load(std::memory_order_relaxed);  // our own last write
  const std::int64_t top = m_top.load(std::memory_order_acquire);
  if (bottom - top >= static_cast<std::int64_t>(capacity())) return false;
  slot(bottom).store(job, std::memory_order_relaxed);
  m_bottom.store(bottom + 1, std::memory_order_release);
  return true;
}

inline Job* WorkStealingDeque::pop() noexcept {
  const std::int64_t old_bottom = m_bottom.load(std::memory_order_relaxed);  // our own last write
  // Fast path for the common "anything local?" poll of an idle worker: top only grows,
  // so a stale top that already reaches bottom proves the deque empty, and we skip the
  // full barrier below.
  if (old_bottom <= m_top.load(std::memory_order_relaxed)) return nullptr;

  const std::int64_t bottom = old_bottom - 1;
  m_bottom.store(bottom, std::memory_order_seq_cst);
  std::int64_t top = m_top.load(std::memory_order_seq_cst);
  if (top > bottom) {  // thieves emptied it since the fast path looked
    m_bottom.store(old_bottom, std::memory_order_relaxed);
    return nullptr;
  }
  Job* job = slot(bottom).load(std::memory_order_relaxed);
  if (top < bottom) return job;  // thieves stop at the lowered bottom, short of this job

  // The last job: a thief that read bottom before our store may be going for it too.
  // Whoever moves top past it has it.
  if (!m_top.compare_exchange_strong(top, top + 1, std::memory_order_seq_cst, std::memory_order_relaxed)) {
    job = nullptr;
  }
  m_bottom.store(old_bottom, std::memory_order_relaxed);  // == top now, whoever won
  return job;
}

inline Job* WorkStealingDeque::steal() noexcept {
  std::int64_t top = m_top.load(std::memory_order_seq_cst);
  const std::int64_t bottom = m_bottom.load(std::memory_order_seq_cst);
  if (top >= bottom) return nullptr;
  // This may be the last job, which the owner may be popping: the CAS decides which of
  // us has it. With a stale top it may even be a slot the owner has since refilled:
  // top has then moved on, the CAS fails, and what we read is dropped.
  Job* job = slot(top).load(std::memory_order_relaxed);
  if (!m_top.compare_exchange_strong(top, top + 1, std::memory_order_seq_cst, std::memory_order_relaxed)) {
    return nullptr;
  }
  return job;
}

inline std::size_t WorkStealingDeque::size_hint() const noexcept {
  // Relaxed: an estimate that may be stale the moment it is read, and nothing is read
  // through it. Bottom can sit one below top during a pop(), hence the clamp.
  const std::int64_t bottom = m_bottom.load(std::memory_order_relaxed);
  const std::int64_t top = m_top.load(std::memory_order_relaxed);
  return bottom > top ? static_cast<std::size_t>(bottom - top) : 0;
}

}  // namespace gearbox::detail
