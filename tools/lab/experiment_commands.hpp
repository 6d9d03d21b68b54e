// The lab's experiment commands on the command line:
//
//   gearbox-lab                      the demonstration: I/O-bound, CPU-bound, mixed work,
//                                    each under every model, with tables, timelines and
//                                    a verdict (about 35 s; --quick: a few seconds)
//   gearbox-lab compare --work io|cpu|mixed|sleep --tasks N --wait D --cost D
//                       [--models seq,threads,async,procs,async+procs,async-cores] [--json]
//                       [--timeline] [--trace FILE] [--svg FILE] [--html FILE]
//   gearbox-lab --html FILE          the demonstration, also as one HTML page (html_page.hpp)
//   gearbox-lab guide                when to use which model, with this machine's figures
//   gearbox-lab run-model ...        (internal) one model in this process, for compare
//
// D is a duration: 2s, 500ms, 1.5 (seconds), 250us, 1m (see gearbox/parse_duration.hpp).
// Registered on the app by the constructor; run() runs the one that was chosen.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

namespace gearbox::lab {

class ExperimentCommands {
public:
  explicit ExperimentCommands(CLI::App& app);
  // The exit code of the chosen command, or nullopt if none of these was chosen.
  std::optional<int> run() const;
  // The demonstration (what gearbox-lab does without a subcommand).
  int run_demo() const;

private:
  struct Compare {
    std::string work = "io";
    int tasks = 5;
    std::chrono::duration<double> wait{2.0};
    std::chrono::duration<double> cost{0.5};
    long queries = 1000;
    std::string models = "seq,threads,async,procs";
    bool json = false;
    bool timeline = false;
    std::filesystem::path trace;
    std::filesystem::path svg;
    std::filesystem::path html;
  };
  struct RunModel {
    std::string work;
    std::string model;
    int tasks = 0;
    int wait_ms = 0;
    std::uint64_t units = 0;
    int port = 0;
    unsigned cores = 1;
    std::filesystem::path trace;
  };

  int run_compare() const;
  int run_guide() const;

  CLI::App* m_compare = nullptr;
  CLI::App* m_guide = nullptr;
  CLI::App* m_run_model = nullptr;
  Compare m_compare_args;
  RunModel m_run_model_args;
  bool m_quick = false;
  std::filesystem::path m_html;  // the demonstration's page, if asked for
};

}  // namespace gearbox::lab
