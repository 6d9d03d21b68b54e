// Pinning a thread or a process to one CPU, so that a measurement between two parties
// says where they ran: both on one core (each switch is a context switch on that core)
// or on two (each switch also wakes the other core, which may have gone idle).
//
//   const std::vector<int> cpus = lab::allowed_cpus();   // e.g. {0, 1}
//   lab::PinnedThread here(cpus[0]);                      // until `here` is destroyed
//   ... start a partner that calls lab::pin_calling_thread(cpus[1]) ...
//
// Pinning is best effort: where the kernel refuses (a CPU outside the cgroup's set), the
// thread stays where it was allowed to run, and the functions say so by returning false.
#pragma once

#include <sched.h>

#include <vector>

namespace gearbox::lab {

// The CPUs the calling thread may run on, in increasing order (at least one).
std::vector<int> allowed_cpus();

// Pins the calling thread to `cpu`. Async-signal-safe (one system call, no allocation):
// a forked child may call it. False if the kernel refused.
bool pin_calling_thread(int cpu) noexcept;

// Pins the calling thread to `cpu` for its lifetime, then restores the CPUs it had.
// Create and destroy it on the same thread.
class PinnedThread {
public:
  explicit PinnedThread(int cpu) noexcept;
  PinnedThread(const PinnedThread&) = delete;
  PinnedThread& operator=(const PinnedThread&) = delete;
  ~PinnedThread();

private:
  cpu_set_t m_saved;
  bool m_restore;
};

}  // namespace gearbox::lab
