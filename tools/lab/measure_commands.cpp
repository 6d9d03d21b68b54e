#include "measure_commands.hpp"

#include <charconv>
#include <cstdio>
#include <string>
#include <system_error>

#include <nlohmann/json.hpp>

#include "results_cache.hpp"
#include "scale.hpp"
#include "share.hpp"
#include "switch_cost.hpp"

namespace gearbox::lab {
namespace {

// Prints the report (its JSON, or `table`) and keeps the JSON under `key` for the guide.
int print_and_save(const char* key, const nlohmann::json& report, const std::string& table, bool as_json) {
  std::fputs(as_json ? (report.dump() + "\n").c_str() : table.c_str(), stdout);
  std::fflush(stdout);
  save_result(key, report);
  return 0;
}

std::size_t count(long value) { return static_cast<std::size_t>(value); }

// A count on the command line: a whole number of at least 1.
const CLI::Validator k_positive_count(
    [](std::string& text) -> std::string {
      long value = 0;
      const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
      if (error != std::errc{} || end != text.data() + text.size() || value < 1)
        return "expected a whole number of at least 1, got '" + text + "'";
      return {};
    },
    "COUNT");

}  // namespace

MeasureCommands::MeasureCommands(CLI::App& app)
    : m_scale(app.add_subcommand("scale", "how many waiting coroutines, threads and processes fit here, and their cost")),
      m_switch(app.add_subcommand("switch", "the cost of one switch between coroutines, tasks, threads, processes")),
      m_share(app.add_subcommand("share", "who shares memory, and where a switch can happen: x = x + 1 in every model")) {
  m_scale->add_option("--max-coroutines", m_max_coroutines, "the most gearbox tasks to try (default 1,000,000)")
      ->check(k_positive_count);
  m_scale->add_option("--max-threads", m_max_threads, "the most threads to try (default 10,000)")->check(k_positive_count);
  m_scale->add_option("--max-processes", m_max_processes, "the most processes to try (default 500)")
      ->check(k_positive_count);
  m_scale->add_flag("--json", m_as_json, "print one JSON object");
  m_switch->add_option("--iterations", m_round_trips, "round trips per measurement (default 2,000)")
      ->check(k_positive_count);
  m_switch->add_flag("--json", m_as_json, "print one JSON object");
  m_share->add_option("--units", m_units, "threads, tasks or processes adding to the counter (default 4)")
      ->check(k_positive_count)
      ->check(CLI::Range(1L, static_cast<long>(k_max_share_units)));
  m_share->add_option("--increments", m_increments, "adds per unit (default 1,000,000)")->check(k_positive_count);
  m_share->add_flag("--json", m_as_json, "print one JSON object");
}

std::optional<int> MeasureCommands::run() const {
  if (*m_scale) {
    const std::vector<ScaleRun> runs = {
        scale_coroutines(scale_steps(ScaleModel::coroutines, count(m_max_coroutines))),
        scale_threads(scale_steps(ScaleModel::threads, count(m_max_threads))),
        scale_processes(scale_steps(ScaleModel::processes, count(m_max_processes))),
    };
    const ScaleContext context = read_scale_context();
    return print_and_save("scale", to_json(runs, context), render_scale(runs, context), m_as_json);
  }
  if (*m_switch) {
    const std::vector<SwitchCost> costs = measure_switch_costs(m_round_trips);
    return print_and_save("switch", to_json(costs), render_switch(costs), m_as_json);
  }
  if (*m_share) {
    const ShareSpec spec{static_cast<int>(m_units), m_increments};
    const std::vector<ShareRun> runs = run_share(spec);
    return print_and_save("share", to_json(runs, spec), render_share(runs, spec), m_as_json);
  }
  return std::nullopt;
}

}  // namespace gearbox::lab
