// gearbox-lab: see and measure sequential vs threads vs async vs processes.
//
//   gearbox-lab                                   the demonstration (see experiment_commands.hpp)
//   gearbox-lab compare --work io|cpu|mixed|sleep|db  the same work under several models
//   gearbox-lab guide                             when to use which, with this machine's figures
//   gearbox-lab profile [--json] -- CMD ARGS...   where did CMD's time go, and which model fits
//   gearbox-lab scale [--max-coroutines N] [--max-threads N] [--max-processes N] [--json]
//   gearbox-lab switch [--iterations N] [--json]
//   gearbox-lab share [--units N] [--increments N] [--json]   who shares memory, where switches happen
//   gearbox-lab timeline FILE.json [--rows auto|units|threads] [--svg OUT.svg] ...  who ran when
//
// Bad input is one line on stderr and exit code 2 (CLI11's own errors: its usual codes).
#include <unistd.h>

#include <cstdio>
#include <exception>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <gearbox/process/init.hpp>

#include "experiment_commands.hpp"
#include "lab_format.hpp"
#include "measure_commands.hpp"
#include "profile.hpp"
#include "timeline_command.hpp"

namespace lab = gearbox::lab;
using gearbox::lab::wrap;

namespace {

int run_profile(const std::vector<std::string>& command, bool as_json) {
  const lab::ProcessProfile p = lab::profile_command(command);
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const lab::Verdict v = lab::classify(p, cores);
  if (as_json) {
    const nlohmann::json report = {{"command", command},
                                   {"wall_s", p.wall_s},
                                   {"user_s", p.user_s},
                                   {"system_s", p.system_s},
                                   {"busy_cores", p.busy_cores()},
                                   {"voluntary_switches", p.voluntary_switches},
                                   {"involuntary_switches", p.involuntary_switches},
                                   {"peak_rss_kb", p.peak_rss_kb},
                                   {"exit_code", p.exit_code},
                                   {"signal", p.signal},
                                   {"kind", lab::to_string(v.kind)},
                                   {"model", v.model},
                                   {"reasons", v.reasons}};
    std::printf("%s\n", report.dump().c_str());
  } else {
    std::printf("\n  wall time            %10.3f s\n", p.wall_s);
    std::printf("  CPU time (user+sys)  %10.3f s  (%.3f + %.3f)\n", p.cpu_s(), p.user_s, p.system_s);
    std::printf("  cores busy, average  %10.2f    of %u\n", p.busy_cores(), cores);
    std::printf("  context switches     %10ld    voluntary (waited)\n", p.voluntary_switches);
    std::printf("                       %10ld    involuntary (preempted)\n", p.involuntary_switches);
    std::printf("  peak memory          %10.1f MB\n", static_cast<double>(p.peak_rss_kb) / 1024);
    if (p.signal != 0) std::printf("  ended by signal      %10d\n", p.signal);
    else std::printf("  exit code            %10d\n", p.exit_code);
    const std::string verdict = std::string(lab::to_string(v.kind)) + " -> " + v.model;
    std::printf("\n%s%s\n", wrap(verdict, 78, 2).c_str(), wrap(v.reasons, 78, 2).c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  gearbox::init(argc, argv);  // the process pools' workers are this program: they stop here
  CLI::App app{"gearbox-lab: see and measure sequential vs threads vs async vs processes"};
  app.require_subcommand(0, 1);
  bool as_json = false;
  std::vector<std::string> command;
  CLI::App* profile = app.add_subcommand("profile", "run a command, measure wall vs CPU time, and recommend a model");
  profile->add_flag("--json", as_json, "print one JSON object");
  profile->add_option("command", command, "the command and its arguments (after --)")->required();
  profile->prefix_command(false);
  const lab::ExperimentCommands experiments(app);  // the demonstration, compare, guide
  const lab::MeasureCommands measure(app);          // scale, switch, share
  const lab::TimelineCommand timeline(app);         // timeline
  CLI11_PARSE(app, argc, argv);
  try {
    if (*profile) return run_profile(command, as_json);
    if (const auto code = experiments.run()) return *code;
    if (const auto code = measure.run()) return *code;
    if (const auto code = timeline.run()) return *code;
    return experiments.run_demo();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gearbox-lab: %s\n", e.what());
    return 2;
  }
}
