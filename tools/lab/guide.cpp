#include "guide.hpp"

#include <cstdio>

#include "lab_format.hpp"
#include "switch_cost.hpp"

namespace gearbox::lab {
namespace {

// A number from saved results, or 0 when it is missing or not a number (a results file
// may come from an older or newer lab).
double number(const nlohmann::json& object, const char* key) {
  if (!object.is_object()) return 0;
  const auto found = object.find(key);
  return found != object.end() && found->is_number() ? found->get<double>() : 0;
}

const nlohmann::json& member(const nlohmann::json& object, const char* key) {
  static const nlohmann::json none;
  if (!object.is_object()) return none;
  const auto found = object.find(key);
  return found != object.end() ? *found : none;
}

std::string format(const char* pattern, double a, double b = 0) {
  char text[128];
  std::snprintf(text, sizeof text, pattern, a, b);
  return text;
}

// "sequential 10.0 s, threads 2.0 s, ..." from a saved experiment.
std::string walls(const nlohmann::json& experiment) {
  std::string out;
  const nlohmann::json& models = member(experiment, "models");
  if (!models.is_array()) return "(unreadable)";
  for (const auto& m : models) {
    if (!m.is_object() || m.contains("error") || !member(m, "model").is_string()) continue;
    if (!out.empty()) out += ", ";
    out += member(m, "model").get<std::string>() + format(" %.1f s", number(m, "wall_s"));
  }
  return out;
}

// One step of the demonstration: the full run's figures, else a quick run's (marked as
// such: its waits and computations were a tenth of the full run's).
void add_experiment(std::string& out, const nlohmann::json& results, const std::string& work, const char* label) {
  const std::string key = "demo." + work;
  const std::string quick_key = "demo.quick." + work;
  const bool quick = !results.contains(key) && results.contains(quick_key);
  if (!quick && !results.contains(key)) {
    out += "  " + std::string(label) + ": not measured yet (run gearbox-lab)\n";
    return;
  }
  const nlohmann::json& e = member(results, quick ? quick_key.c_str() : key.c_str());
  out += wrap(std::string(label) + (quick ? ", quick run" : "") + " (" +
                  std::to_string(static_cast<long>(number(e, "tasks"))) + " tasks): " + walls(e),
              78, 2);
}

std::string switches(const nlohmann::json& results) {
  if (!results.contains("switch")) return "  One switch: not measured yet (run gearbox-lab switch)\n";
  const nlohmann::json& kinds = member(member(results, "switch"), "switches");
  if (!kinds.is_object()) return "  One switch: (unreadable)\n";
  // The switch table's names, in its order (the saved JSON's keys are sorted by name).
  std::string out = "  One switch, one way (gearbox-lab switch):\n";
  for (const SwitchKind kind : k_switch_kinds) {
    if (!kinds.contains(to_string(kind))) continue;
    char text[128];
    std::snprintf(text, sizeof text, "    %-36s %10.0f ns\n", label(kind), number(kinds[to_string(kind)], "ns_per_switch"));
    out += text;
  }
  return out;
}

std::string scale(const nlohmann::json& results) {
  if (!results.contains("scale")) return "  Units held: not measured yet (run gearbox-lab scale)\n";
  std::string out = "  Units held at once (gearbox-lab scale):\n";
  const nlohmann::json& models = member(member(results, "scale"), "models");
  if (!models.is_object()) return "  Units held: (unreadable)\n";
  for (const auto& [model, figures] : models.items()) {
    char text[160];
    std::snprintf(text, sizeof text, "    %-11s %9.0f at most, %8.1f KiB and %7.2f us each to create\n",
                  model.c_str(), number(figures, "most_alive"), number(figures, "kib_per_unit"),
                  number(figures, "create_us_per_unit"));
    out += text;
  }
  return out;
}

}  // namespace

std::string render_guide(const nlohmann::json& results, unsigned cores) {
  std::string out = "When to use which model\n\n  The work                          Use\n";
  for (const GuideRow& row : k_guide_rows) {
    char text[160];
    std::snprintf(text, sizeof text, "  %-33s %s\n      %s\n", row.work, row.use, row.why);
    out += text;
  }
  return out + "\n" + render_guide_figures(results, cores);
}

std::string render_guide_figures(const nlohmann::json& results, unsigned cores) {
  std::string out = "Measured on this machine (" + std::to_string(cores) + " cores) by earlier lab runs\n\n";
  add_experiment(out, results, "io", "I/O-bound");
  add_experiment(out, results, "cpu", "CPU-bound");
  add_experiment(out, results, "mixed", "Mixed");
  if (results.contains("demo.quick.io") && !results.contains("demo.io"))
    out += wrap("A quick run scales every wait and computation to a tenth: its ratios hold, its times do not; "
                "scripts/demo without --quick replaces it.",
                78, 2);
  out += switches(results);
  out += scale(results);
  out +=
      "\n"
      "Where C++ differs from Python\n"
      "\n"
      "  - Threads run CPU work in parallel here: there is no GIL, so a ThreadPool is\n"
      "    the first choice for computing, where Python needs processes.\n"
      "  - Processes are for isolation (a crash, a leak, a library that is not\n"
      "    thread-safe), not for getting around a lock; their arguments and results\n"
      "    are copied (cereal), so keep them small or use shared memory.\n"
      "  - Async is the same idea as asyncio, at a smaller cost per task and switch;\n"
      "    like asyncio, one loop is one thread: computing on it stalls every task.\n"
      "  - Data races are undefined behaviour, not just wrong answers: share through\n"
      "    channels, futures and the pools, or guard with a mutex.\n";
  return out;
}

std::string render_io_backend(IoBackend chosen, const IoUringSupport& support) {
  std::string text = "I/O back end here: ";
  if (chosen == IoBackend::io_uring)
    text += "io_uring. Files are read and written by the loop's ring, with no thread per operation; "
            "sockets wait for readiness (epoll, watched through the ring).";
  else
    text += "epoll. Sockets wait for readiness; files run on the blocking pool, a thread per operation in flight.";
  if (!support.available) text += " io_uring is unavailable: " + support.why_not + ".";
  else if (chosen != IoBackend::io_uring) text += " (io_uring is available; GEARBOX_IO_BACKEND chose epoll.)";
  return "\n" + wrap(text, 78, 2);
}

}  // namespace gearbox::lab
