#include "cpu_pinning.hpp"

namespace gearbox::lab {

std::vector<int> allowed_cpus() {
  std::vector<int> cpus;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) == 0) {
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
      if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  }
  if (cpus.empty()) cpus.push_back(0);
  return cpus;
}

bool pin_calling_thread(int cpu) noexcept {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return ::sched_setaffinity(0, sizeof set, &set) == 0;  // 0: the calling thread
}

PinnedThread::PinnedThread(int cpu) noexcept {
  CPU_ZERO(&m_saved);
  m_restore = ::sched_getaffinity(0, sizeof m_saved, &m_saved) == 0 && pin_calling_thread(cpu);
}

PinnedThread::~PinnedThread() {
  if (m_restore) ::sched_setaffinity(0, sizeof m_saved, &m_saved);
}

}  // namespace gearbox::lab
