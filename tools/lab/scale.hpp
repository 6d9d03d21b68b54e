// gearbox-lab scale: how many waiting units each concurrency model holds on this machine,
// and what one costs to create and to keep.
//
//   const auto steps = lab::scale_steps(lab::ScaleModel::threads, 10'000);  // 10 .. 10,000
//   lab::ScaleRun run = lab::scale_threads(steps);
//   std::puts(lab::render_scale({run}).c_str());
//
// Each step creates `asked` units from nothing, all blocked on one shared release at once,
// measures them, then releases and joins (or reaps) every one before the next step:
//   coroutines  gearbox tasks on one Loop, each suspended on one gearbox::Event;
//   threads     std::threads, each blocked on one condition variable;
//   processes   fork()ed children, each blocked reading one pipe (they run no gearbox
//               code and leave by _exit; the parent kills and reaps them).
// Creation time runs from the first creation until every unit is blocked. Memory per unit
// is the growth of this process's RSS (threads also report the address space their stack
// reserves, as each thread sees its own stack); for processes it is the children's unique
// set size (USS, the pages each owns alone): a forked child shares the parent's pages
// until it writes to them, so what it adds is what it wrote. (The growth of the PSS of the
// lab and its children was used before; it also moves whenever any other process on the
// machine maps or unmaps a library they share, and read zero on a busy machine.)
//
// A model stops early, cleanly, at the first guard it meets, and says which: the caller's
// cap (ScaleLimits::unit_cap), the task ceiling (a quarter of the tightest of
// RLIMIT_NPROC, threads-max and pid_max is left to the rest of the system), a failed
// creation (pthread_create or fork returning EAGAIN or ENOMEM, an allocation failing), the
// memory guard (the next step is projected to exceed half of MemAvailable, or the units
// already exceed it) or the time guard. Whatever happens, every unit created is released
// and joined or reaped before the function returns.
//
// Thread-safety: the functions block the calling thread for up to the time budget and
// must not run concurrently with each other (they measure the whole process's memory and
// threads). scale_processes forks: call it from a process that may fork.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "proc_stats.hpp"

namespace gearbox::lab {

enum class ScaleModel { coroutines, threads, processes };
const char* to_string(ScaleModel model) noexcept;

// Why a model stopped before its last step.
enum class ScaleStop { none, unit_cap, task_ceiling, create_failed, memory_guard, time_guard };
const char* to_string(ScaleStop stop) noexcept;

struct ScaleLimits {
  std::size_t unit_cap = static_cast<std::size_t>(-1);  // stop at this many units at once
  double time_budget_s = 10;                             // per model, creation included
  double memory_fraction = 0.5;                          // of MemAvailable at the start
};

struct ScaleStep {
  std::size_t asked = 0;
  std::size_t created = 0;           // all alive at once; fewer than asked if it stopped
  double create_us_per_unit = 0;
  double bytes_per_unit = 0;         // RSS growth (for processes: each child's USS)
  double reserved_bytes_per_unit = 0;  // threads: stack address space, guard included
};

struct ScaleRun {
  ScaleModel model = ScaleModel::coroutines;
  std::vector<ScaleStep> steps;  // in the order run; the last one may be partial
  ScaleStop stop = ScaleStop::none;
  std::string stop_reason;  // plain words, e.g. "pthread_create failed with EAGAIN (...)"
  double seconds = 0;       // the whole model, releases included

  // The most units that were alive at once.
  std::size_t most_created() const noexcept;
};

// The counts to try up to `max`: 1,000, 10,000, ... for coroutines, 10, 100, ... for
// threads and processes, then `max` itself if it is not on that scale. Pure.
std::vector<std::size_t> scale_steps(ScaleModel model, std::size_t max);

ScaleRun scale_coroutines(const std::vector<std::size_t>& steps, const ScaleLimits& limits = {});
ScaleRun scale_threads(const std::vector<std::size_t>& steps, const ScaleLimits& limits = {});
ScaleRun scale_processes(const std::vector<std::size_t>& steps, const ScaleLimits& limits = {});

// What the runs are read against: the machine's memory and the thread stack defaults.
struct ScaleContext {
  std::size_t mem_available = 0;       // bytes, when the report is made
  std::size_t stack_rlimit = 0;        // RLIMIT_STACK soft limit in bytes, 0 if unlimited
  std::size_t default_thread_stack = 0;  // glibc's default pthread stack size in bytes
  TaskLimits task_limits;                // the ceilings threads and processes share
};
ScaleContext read_scale_context();

// The table (80 columns), the stop reasons, and a conclusion drawn from the figures.
std::string render_scale(const std::vector<ScaleRun>& runs, const ScaleContext& context);
nlohmann::json to_json(const std::vector<ScaleRun>& runs, const ScaleContext& context);

}  // namespace gearbox::lab
