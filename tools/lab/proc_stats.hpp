// What the kernel says about memory and task limits, read from /proc: the figures
// `gearbox-lab scale` attributes to each unit it creates, and the ceilings it stops at.
//
//   const std::size_t before = lab::read_rss();
//   ... create 1,000 threads ...
//   const double per_thread = double(lab::read_rss() - before) / 1000;
//
// Every function reads the files afresh (no caching) and returns 0 (or -1 where a limit
// can be "unlimited") when a file is missing or unreadable, so a lab run on a kernel
// without smaps_rollup loses one figure, not the run. All functions are thread-safe
// (they only read files) and async-signal-unsafe (they allocate): never call them in a
// forked child.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>

namespace gearbox::lab {

// This process's resident set size in bytes (RSS: the pages it touched that are in RAM
// now), from /proc/self/statm.
std::size_t read_rss();

// The unique set size of `pid` (0: this process) in bytes, from /proc/<pid>/smaps_rollup:
// the pages mapped by this process alone (Private_Clean + Private_Dirty), which is what
// the system gets back when it exits. Unlike the proportional set size (PSS) it does not
// move when other processes map or unmap the pages it shares with them.
std::size_t read_private(pid_t pid = 0);

// MemAvailable from /proc/meminfo in bytes: what can be allocated without swapping.
std::size_t read_mem_available();

// The threads of this process now ("Threads:" in /proc/self/status).
long read_thread_count();

// The ceilings on how many tasks (threads and processes: the kernel counts both) can exist.
struct TaskLimits {
  long rlimit_nproc = -1;  // RLIMIT_NPROC soft limit for this user, -1 if unlimited
  long threads_max = -1;   // /proc/sys/kernel/threads-max
  long pid_max = -1;       // /proc/sys/kernel/pid_max
  long tasks_now = 0;      // tasks on the whole system now (/proc/loadavg)
};
TaskLimits read_task_limits();

// The tightest of the three ceilings, its name ("pid_max") and its scope; tasks is -1 if
// none is known.
// Pure.
struct TaskCeiling {
  long tasks = -1;
  const char* name = "";
  const char* scope = "";  // "for this user" (RLIMIT_NPROC) or "on the whole system"
};
TaskCeiling tightest_task_ceiling(const TaskLimits& limits);

// How many more tasks the lab allows itself: it leaves a quarter of the tightest ceiling,
// and the tasks already running, to the rest of the system. `reason` names that ceiling in
// plain words ("leaving a quarter of pid_max (32,768) to the rest of the system, where 812
// tasks were already running"). Pure.
struct TaskHeadroom {
  long tasks = 0;
  std::string reason;
};
TaskHeadroom task_headroom(const TaskLimits& limits);

// "RLIMIT_NPROC is 4,096, threads-max 192,730, pid_max 32,768": the ceilings, for an
// error message about a failed pthread_create or fork. Pure.
std::string describe_task_limits(const TaskLimits& limits);

}  // namespace gearbox::lab
