#include <gearbox/detail/wait_lock.hpp>

#include <sched.h>

namespace gearbox::detail {
namespace {
// Spins before a contender yields its core: about a microsecond of pause instructions,
// longer than any critical section of a primitive, shorter than a time slice.
constexpr int k_spins_before_yield = 64;

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}
}  // namespace

void WaitLock::lock_contended() noexcept {
  for (int spins = 0;; ++spins) {
    // Memory ordering: the relaxed load only watches for a release; the exchange that
    // takes the lock is the acquire.
    if (!m_locked.load(std::memory_order_relaxed) && !m_locked.exchange(true, std::memory_order_acquire)) return;
    if (spins < k_spins_before_yield) {
      cpu_relax();
    } else {
      sched_yield();
    }
  }
}

}  // namespace gearbox::detail
