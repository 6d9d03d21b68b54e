// The `scale`, `switch` and `share` subcommands of gearbox-lab: their options, and running them.
//
//   CLI::App app{"gearbox-lab"};
//   const lab::MeasureCommands measure(app);   // adds `scale`, `switch` and `share`
//   CLI11_PARSE(app, argc, argv);
//   if (const auto code = measure.run()) return *code;
//
// Each prints a table (or one JSON object with --json) on stdout and saves the JSON in
// the results file (results_cache.hpp) for `gearbox-lab guide`. Counts must be positive
// integers: CLI11 refuses anything else with a one-line error before run() is reached.
// Not copyable or movable: CLI11 holds pointers to the options inside.
#pragma once

#include <optional>

#include <CLI/CLI.hpp>

namespace gearbox::lab {

class MeasureCommands {
public:
  explicit MeasureCommands(CLI::App& app);
  MeasureCommands(const MeasureCommands&) = delete;
  MeasureCommands& operator=(const MeasureCommands&) = delete;

  // After parsing: runs the subcommand chosen, if it is one of these, and returns its exit
  // code; std::nullopt if none was chosen. Blocks for the measurement (seconds).
  std::optional<int> run() const;

private:
  CLI::App* m_scale;
  CLI::App* m_switch;
  CLI::App* m_share;
  long m_max_coroutines = 1'000'000;
  long m_max_threads = 10'000;
  long m_max_processes = 500;
  long m_round_trips = 2'000;
  long m_units = 4;
  long m_increments = 1'000'000;
  bool m_as_json = false;
};

}  // namespace gearbox::lab
