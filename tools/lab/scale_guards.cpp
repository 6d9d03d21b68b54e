#include "scale_guards.hpp"

#include <algorithm>
#include <cstring>

#include "lab_format.hpp"
#include "proc_stats.hpp"

namespace gearbox::lab {
namespace {

std::string over_the_memory_guard(double budget, double fraction) {
  return printf_string(", over the memory guard (%.0f%% of MemAvailable: %s)", fraction * 100, human_bytes(budget).c_str());
}

}  // namespace

ScaleGuards::ScaleGuards(ScaleModel model, const ScaleLimits& limits)
    : m_model(model),
      m_limits(limits),
      m_start(std::chrono::steady_clock::now()),
      m_memory_budget(limits.memory_fraction * static_cast<double>(read_mem_available())),
      m_task_headroom(1L << 40) {
  if (model != ScaleModel::coroutines) {
    const TaskHeadroom headroom = task_headroom(read_task_limits());
    m_task_headroom = headroom.tasks;
    m_headroom_reason = headroom.reason;
  }
}

double ScaleGuards::elapsed_s() const noexcept {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - m_start).count();
}

bool ScaleGuards::stop_with(ScaleStop stop, std::string reason) {
  if (m_stop == ScaleStop::none) {
    m_stop = stop;
    m_reason = std::move(reason);
  }
  return false;
}

bool ScaleGuards::admit_step(std::size_t asked, const std::vector<ScaleStep>& done) {
  if (stopped()) return false;
  if (done.empty()) return true;
  // A unit costs something even when the last step measured no growth (RSS can shrink
  // between two readings as the allocator returns memory): at least a byte.
  const double projected = std::max(done.back().bytes_per_unit, 1.0) * static_cast<double>(asked);
  if (projected <= m_memory_budget) return true;
  return stop_with(ScaleStop::memory_guard, with_commas(static_cast<long long>(asked)) + " would take about " +
                                                human_bytes(projected) +
                                                over_the_memory_guard(m_memory_budget, m_limits.memory_fraction));
}

bool ScaleGuards::admit_unit(std::size_t alive, bool check_budgets, std::size_t bytes_in_use) {
  if (stopped()) return false;
  if (alive >= m_limits.unit_cap)
    return stop_with(ScaleStop::unit_cap, "the cap of " + with_commas(static_cast<long long>(m_limits.unit_cap)) +
                                              " units set by the caller");
  if (static_cast<long>(alive) >= m_task_headroom) return stop_with(ScaleStop::task_ceiling, m_headroom_reason);
  if (!check_budgets) return true;
  if (elapsed_s() >= m_limits.time_budget_s)
    return stop_with(ScaleStop::time_guard,
                     printf_string("the time guard (%.0f s per model) ran out", m_limits.time_budget_s));
  if (alive > 0 && static_cast<double>(bytes_in_use) > m_memory_budget)  // not noise before the first unit
    return stop_with(ScaleStop::memory_guard, "they took " + human_bytes(static_cast<double>(bytes_in_use)) +
                                                  over_the_memory_guard(m_memory_budget, m_limits.memory_fraction));
  return true;
}

void ScaleGuards::creation_failed(const char* call, int error) {
  const char* name = ::strerrorname_np(error);
  std::string reason = std::string(call) + " failed with " + (name ? name : std::to_string(error));
  if (m_model != ScaleModel::coroutines) reason += " (" + describe_task_limits(read_task_limits()) + ")";
  stop_with(ScaleStop::create_failed, std::move(reason));
}

}  // namespace gearbox::lab
