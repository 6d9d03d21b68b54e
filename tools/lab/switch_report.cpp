// The table, the conclusion and the JSON of `gearbox-lab switch` (declared in
// switch_cost.hpp).
#include <cmath>

#include "build_info.hpp"
#include "lab_format.hpp"
#include "switch_cost.hpp"

namespace gearbox::lab {

const char* label(SwitchKind kind) noexcept {
  switch (kind) {
  case SwitchKind::coroutine_resume: return "coroutine resume (bare)";
  case SwitchKind::gearbox_task: return "gearbox task to task (channel)";
  case SwitchKind::thread_one_core: return "thread to thread, one core (futex)";
  case SwitchKind::thread_two_cores: return "thread to thread, two cores (futex)";
  case SwitchKind::process_one_core: return "process to process, one core (pipe)";
  case SwitchKind::process_two_cores: return "process to process, two cores (pipe)";
  }
  return "?";
}

namespace {

const SwitchCost* find(const std::vector<SwitchCost>& costs, SwitchKind kind) {
  for (const SwitchCost& cost : costs)
    if (cost.kind == kind && cost.ns_per_switch > 0) return &cost;
  return nullptr;
}

// How many times `cost` is the bare coroutine resume, or 0 when either is missing.
double times_coroutine(const std::vector<SwitchCost>& costs, const SwitchCost& cost) {
  const SwitchCost* base = find(costs, SwitchKind::coroutine_resume);
  return base ? cost.ns_per_switch / base->ns_per_switch : 0;
}

std::string multiple(double times) {
  if (times <= 0) return "-";
  return times < 10 ? printf_string("%.1f", times) : with_commas(std::llround(times));
}

std::string nanoseconds(double ns) { return ns < 100 ? printf_string("%.1f", ns) : with_commas(std::llround(ns)); }

std::string conclusion(const std::vector<SwitchCost>& costs) {
  const SwitchCost* task = find(costs, SwitchKind::gearbox_task);
  const SwitchCost* thread = find(costs, SwitchKind::thread_one_core);
  if (!task || !thread) return "Too little was measured to compare.";
  auto in_tasks = [&](const SwitchCost& cost) {
    return with_commas(std::llround(cost.ns_per_switch / task->ns_per_switch));
  };
  std::string text = "On one core, handing control to a blocked thread costs about " + in_tasks(*thread) +
                     " gearbox task switches (" + nanoseconds(thread->ns_per_switch) + " ns against " +
                     nanoseconds(task->ns_per_switch) + " ns)";
  if (const SwitchCost* process = find(costs, SwitchKind::process_one_core))
    text += ", and to a process about " + in_tasks(*process);
  if (const SwitchCost* far = find(costs, SwitchKind::thread_two_cores))
    text += "; waking a thread on another core costs " + nanoseconds(far->ns_per_switch) + " ns here (" + in_tasks(*far) +
            " task switches)";
  return text + ". The kernel must put one thread to sleep and wake the other, where a loop only calls the next "
                "task: units that mostly wait switch cheapest as tasks on one loop.";
}

}  // namespace

std::string render_switch(const std::vector<SwitchCost>& costs) {
  // "×" is two bytes and one column: its header gets one byte more of width.
  std::string out = "\n" + printf_string("  %-36s %10s %13s\n", "one-way switch", "ns/switch", "× coroutine");
  bool any_capped = false;
  for (const SwitchCost& cost : costs) {
    any_capped = any_capped || cost.capped;
    out += printf_string("  %-36s %10s %12s%s\n", label(cost.kind), nanoseconds(cost.ns_per_switch).c_str(),
                         multiple(times_coroutine(costs, cost)).c_str(), cost.capped ? " *" : "");
  }
  if (any_capped) out += "  * cut short by the time cap: measured over fewer round trips\n";
  out += "\n" + wrap(conclusion(costs), 78, 2);
  if (!k_build_caveat.empty()) out += "\n" + wrap(std::string(k_build_caveat), 78, 2);
  return out;
}

nlohmann::json to_json(const std::vector<SwitchCost>& costs) {
  nlohmann::json kinds = nlohmann::json::object();
  for (const SwitchCost& cost : costs)
    kinds[to_string(cost.kind)] = {{"ns_per_switch", cost.ns_per_switch},
                                   {"times_coroutine", times_coroutine(costs, cost)},
                                   {"repetitions_ns", cost.repetitions},
                                   {"round_trips", cost.round_trips},
                                   {"capped", cost.capped}};
  return {{"switches", kinds}, {"build", k_build_kind}};
}

}  // namespace gearbox::lab
