// The table, the conclusion and the JSON of `gearbox-lab scale` (declared in scale.hpp).
#include <algorithm>
#include <cmath>

#include "build_info.hpp"
#include "lab_format.hpp"
#include "scale.hpp"

namespace gearbox::lab {
namespace {

const char* unit_name(ScaleModel model) noexcept {
  switch (model) {
  case ScaleModel::coroutines: return "coroutine";
  case ScaleModel::threads: return "thread";
  case ScaleModel::processes: return "process";
  }
  return "unit";
}

// The step with the most units: its figures are the least disturbed by fixed costs.
const ScaleStep* largest_step(const ScaleRun& run) {
  const auto it = std::max_element(run.steps.begin(), run.steps.end(),
                                   [](const ScaleStep& a, const ScaleStep& b) { return a.created < b.created; });
  return it == run.steps.end() ? nullptr : &*it;
}

// 74,812,345 -> "75,000,000": two significant digits are all such a projection deserves.
std::string rough(double count) {
  if (count < 100) return with_commas(std::llround(count));
  const double scale = std::pow(10.0, std::floor(std::log10(count)) - 1);
  return with_commas(std::llround(std::round(count / scale) * scale));
}

std::string count_of(std::size_t count, ScaleModel model) {
  return with_commas(static_cast<long long>(count)) + " " + (count == 1 ? unit_name(model) : to_string(model));
}

std::string micros(double us) { return printf_string(us < 10 ? "%.2f µs" : "%.0f µs", us); }

// "a coroutine ~298 B and 0.45 µs", "a thread ~12.1 KiB touched (8.0 MiB reserved) and 25 µs"
std::string cost_phrase(const ScaleRun& run, const ScaleStep& step) {
  std::string phrase = std::string("a ") + unit_name(run.model) + " ~" + human_bytes(step.bytes_per_unit);
  if (run.model == ScaleModel::threads) phrase += " touched (" + human_bytes(step.reserved_bytes_per_unit) + " reserved)";
  if (run.model == ScaleModel::processes) phrase += " of its own";
  return phrase + " and " + micros(step.create_us_per_unit);
}

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i)
    out += (i == 0 ? "" : i + 1 < parts.size() ? ", " : i > 1 ? ", and " : " and ") + parts[i];
  return out;
}

std::string conclusion(const std::vector<ScaleRun>& runs, const ScaleContext& context) {
  std::vector<std::string> costs;
  std::vector<std::string> alive;
  std::vector<std::string> by_memory;
  bool kernel_tasks = false;
  for (const ScaleRun& run : runs) {
    const ScaleStep* step = largest_step(run);
    if (!step) continue;
    costs.push_back(cost_phrase(run, *step));
    alive.push_back(count_of(run.most_created(), run.model) +
                    (run.stop == ScaleStop::none ? " (all asked)" : " (stopped by a limit)"));
    if (step->bytes_per_unit >= 1)
      by_memory.push_back("~" + rough(static_cast<double>(context.mem_available) / step->bytes_per_unit) + " " +
                          to_string(run.model));
    kernel_tasks = kernel_tasks || run.model != ScaleModel::coroutines;
  }
  if (costs.empty()) return "Nothing was created, so there is nothing to compare.";
  std::string text =
      "To keep one waiting, and to create it: " + join(costs) + ". Alive at once here: " + join(alive) + ".";
  if (!by_memory.empty())
    text += " Memory alone (MemAvailable " + human_bytes(static_cast<double>(context.mem_available)) + ") would hold " +
            join(by_memory);
  const TaskCeiling ceiling = tightest_task_ceiling(context.task_limits);
  if (!by_memory.empty() && kernel_tasks && ceiling.tasks > 0)
    text += ", but threads and processes are kernel tasks: at most " + with_commas(ceiling.tasks) + " (" + ceiling.name +
            ") " + ceiling.scope;
  return text + (by_memory.empty() ? "" : ".");
}

}  // namespace

std::string render_scale(const std::vector<ScaleRun>& runs, const ScaleContext& context) {
  std::string out = "\n" + printf_string("  %-10s %15s %13s %14s %15s\n", "model", "units alive", "create/unit",
                                         "memory/unit", "reserved/unit");
  for (const ScaleRun& run : runs) {
    for (const ScaleStep& step : run.steps) {
      const std::string units = with_commas(static_cast<long long>(step.created)) + (step.created < step.asked ? "*" : " ");
      const std::string reserved = run.model == ScaleModel::threads ? human_bytes(step.reserved_bytes_per_unit) : "-";
      out += printf_string("  %-10s %15s %10.2f µs %14s %15s\n", to_string(run.model), units.c_str(),
                           step.create_us_per_unit, human_bytes(step.bytes_per_unit).c_str(), reserved.c_str());
    }
    if (run.stop != ScaleStop::none)
      out += wrap("* stopped at " + count_of(run.most_created(), run.model) + ": " + run.stop_reason, 78, 4);
  }
  std::string notes = "memory/unit: RSS growth (for processes, the pages each child owns alone, its USS); the "
                      "kernel's own share (a kernel stack per thread or process, page tables) is not in it. "
                      "reserved/unit: address space; threads reserve a stack each";
  if (context.default_thread_stack > 0) {
    const std::string rlimit =
        context.stack_rlimit > 0 ? human_bytes(static_cast<double>(context.stack_rlimit)) : std::string("unlimited");
    notes += " (" + human_bytes(static_cast<double>(context.default_thread_stack)) + " by default, from RLIMIT_STACK " +
             rlimit + ")";
  }
  out += "\n" + wrap(notes + ".", 78, 2);
  out += "\n" + wrap(conclusion(runs, context), 78, 2);
  if (!k_build_caveat.empty()) out += "\n" + wrap(std::string(k_build_caveat), 78, 2);
  return out;
}

nlohmann::json to_json(const std::vector<ScaleRun>& runs, const ScaleContext& context) {
  nlohmann::json models = nlohmann::json::object();
  for (const ScaleRun& run : runs) {
    nlohmann::json steps = nlohmann::json::array();
    for (const ScaleStep& step : run.steps)
      steps.push_back({{"asked", step.asked},
                       {"created", step.created},
                       {"create_us_per_unit", step.create_us_per_unit},
                       {"kib_per_unit", step.bytes_per_unit / 1024},
                       {"reserved_kib_per_unit", step.reserved_bytes_per_unit / 1024}});
    nlohmann::json model = {{"most_alive", run.most_created()},
                            {"stopped", to_string(run.stop)},
                            {"stop_reason", run.stop_reason},
                            {"seconds", run.seconds},
                            {"steps", steps}};
    if (const ScaleStep* step = largest_step(run)) {
      model["create_us_per_unit"] = step->create_us_per_unit;
      model["kib_per_unit"] = step->bytes_per_unit / 1024;
    }
    models[to_string(run.model)] = std::move(model);
  }
  return {{"models", models},
          {"mem_available_bytes", context.mem_available},
          {"stack_rlimit_bytes", context.stack_rlimit},
          {"default_thread_stack_bytes", context.default_thread_stack},
          {"rlimit_nproc", context.task_limits.rlimit_nproc},
          {"threads_max", context.task_limits.threads_max},
          {"pid_max", context.task_limits.pid_max},
          {"build", k_build_kind}};
}

}  // namespace gearbox::lab
