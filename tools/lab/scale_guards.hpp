// The guards of one `gearbox-lab scale` model run (see scale.hpp), and the loop that
// grows a population of blocked units under them. Private to scale.cpp.
//
//   ScaleGuards guards(ScaleModel::threads, limits);   // reads the task ceiling once
//   std::size_t n = grow_units(1000, guards, "pthread_create", 64, add_one_thread, rss_growth);
//   if (guards.stopped()) std::puts(guards.reason().c_str());
//
// A guard that trips records the first reason only; later checks keep refusing. Not
// thread-safe: one model run, on one thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "scale.hpp"

namespace gearbox::lab {

class ScaleGuards {
public:
  // Reads MemAvailable (the budget is limits.memory_fraction of it) and, for threads and
  // processes, the task ceiling (task_headroom in proc_stats.hpp). The time budget runs
  // from here.
  ScaleGuards(ScaleModel model, const ScaleLimits& limits);

  // Before a step of `asked` units: false (and stopped) if the last step's memory per
  // unit projects `asked` units over the memory budget.
  bool admit_step(std::size_t asked, const std::vector<ScaleStep>& done);

  // Before creating one more unit with `alive` already alive: false (and stopped) at the
  // unit cap or the task ceiling, and, when `check_budgets`, past the time budget or with
  // `bytes_in_use` over the memory budget.
  bool admit_unit(std::size_t alive, bool check_budgets, std::size_t bytes_in_use);

  // A creation failed with errno value `error`; `call` names it ("pthread_create").
  void creation_failed(const char* call, int error);

  bool stopped() const noexcept { return m_stop != ScaleStop::none; }
  ScaleStop stop() const noexcept { return m_stop; }
  const std::string& reason() const noexcept { return m_reason; }
  double elapsed_s() const noexcept;

private:
  bool stop_with(ScaleStop stop, std::string reason);

  ScaleModel m_model;
  ScaleLimits m_limits;
  std::chrono::steady_clock::time_point m_start;
  double m_memory_budget;  // bytes
  long m_task_headroom;    // units (huge for coroutines)
  std::string m_headroom_reason;
  ScaleStop m_stop = ScaleStop::none;
  std::string m_reason;
};

// Creates units with `add_one()` (returns 0, or the errno value of a failed creation)
// until `target` are alive or a guard stops it; returns how many were created. The time
// and memory budgets are checked every `check_every` units, `bytes_in_use()` giving the
// memory the units use so far.
template <class AddOne, class BytesInUse>
std::size_t grow_units(std::size_t target, ScaleGuards& guards, const char* call, std::size_t check_every,
                       AddOne add_one, BytesInUse bytes_in_use) {
  std::size_t alive = 0;
  while (alive < target) {
    const bool check = alive % check_every == 0;
    if (!guards.admit_unit(alive, check, check ? bytes_in_use() : 0)) break;
    if (const int error = add_one(); error != 0) {
      guards.creation_failed(call, error);
      break;
    }
    ++alive;
  }
  return alive;
}

}  // namespace gearbox::lab
