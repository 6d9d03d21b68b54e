#include "proc_stats.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>

#include "lab_format.hpp"

namespace gearbox::lab {
namespace {

// The number after "key:" in a "key: value kB" file (/proc/meminfo, status, smaps_rollup),
// or 0 if the key is missing.
std::size_t read_field(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() > key.size() && line.compare(0, key.size(), key) == 0 && line[key.size()] == ':')
      return std::stoull(line.substr(key.size() + 1));
  }
  return 0;
}

long read_number(const std::string& path) {
  std::ifstream in(path);
  long value = -1;
  in >> value;
  return in ? value : -1;
}

std::string smaps_rollup(pid_t pid) {
  return (pid == 0 ? std::string("/proc/self") : "/proc/" + std::to_string(pid)) + "/smaps_rollup";
}

}  // namespace

std::size_t read_rss() {
  std::ifstream in("/proc/self/statm");
  std::size_t size_pages = 0;
  std::size_t resident_pages = 0;
  in >> size_pages >> resident_pages;
  return resident_pages * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

std::size_t read_private(pid_t pid) {
  const std::string path = smaps_rollup(pid);
  return (read_field(path, "Private_Clean") + read_field(path, "Private_Dirty")) * 1024;
}

std::size_t read_mem_available() { return read_field("/proc/meminfo", "MemAvailable") * 1024; }

long read_thread_count() { return static_cast<long>(read_field("/proc/self/status", "Threads")); }

TaskLimits read_task_limits() {
  TaskLimits limits;
  rlimit nproc{};
  if (::getrlimit(RLIMIT_NPROC, &nproc) == 0 && nproc.rlim_cur != RLIM_INFINITY)
    limits.rlimit_nproc = static_cast<long>(nproc.rlim_cur);
  limits.threads_max = read_number("/proc/sys/kernel/threads-max");
  limits.pid_max = read_number("/proc/sys/kernel/pid_max");
  // /proc/loadavg: "0.39 1.01 1.56 2/82 27104"; the 4th field is running/total tasks.
  std::ifstream in("/proc/loadavg");
  std::string skip;
  std::string tasks;
  in >> skip >> skip >> skip >> tasks;
  if (const auto slash = tasks.find('/'); slash != std::string::npos) limits.tasks_now = std::stol(tasks.substr(slash + 1));
  return limits;
}

TaskCeiling tightest_task_ceiling(const TaskLimits& limits) {
  TaskCeiling tightest;
  for (const TaskCeiling candidate : {TaskCeiling{limits.rlimit_nproc, "RLIMIT_NPROC", "for this user"},
                                      TaskCeiling{limits.threads_max, "threads-max", "on the whole system"},
                                      TaskCeiling{limits.pid_max, "pid_max", "on the whole system"}}) {
    if (candidate.tasks > 0 && (tightest.tasks < 0 || candidate.tasks < tightest.tasks)) tightest = candidate;
  }
  return tightest;
}

TaskHeadroom task_headroom(const TaskLimits& limits) {
  const TaskCeiling ceiling = tightest_task_ceiling(limits);
  if (ceiling.tasks < 0) return {1L << 30, "no task ceiling is known"};
  const long allowed = std::max(0L, ceiling.tasks - ceiling.tasks / 4 - limits.tasks_now);
  return {allowed, "leaving a quarter of " + std::string(ceiling.name) + " (" + with_commas(ceiling.tasks) +
                       ") to the rest of the system, where " + with_commas(limits.tasks_now) +
                       " tasks were already running"};
}

std::string describe_task_limits(const TaskLimits& limits) {
  auto show = [](long value) { return value < 0 ? std::string("unlimited") : with_commas(value); };
  return "RLIMIT_NPROC is " + show(limits.rlimit_nproc) + ", threads-max " + show(limits.threads_max) + ", pid_max " +
         show(limits.pid_max);
}

}  // namespace gearbox::lab
