// An experiment: the same work under several models, each in a fresh child process
// (`gearbox-lab run-model ...`), so that each model's figures are its own: wall time,
// user and system CPU time (from wait4, including the pool workers the child reaped),
// context switches, and peak memory of the child and every process under it (sampled
// from /proc while it runs, summed over the processes: a process pool's workers count).
//
//   Experiment e = run_experiment(spec, {Model::sequential, Model::async}, options);
//   std::puts(render_table(e, cores).c_str());
//   std::puts(verdict(e, cores).c_str());
//
// Blocking; one model at a time (a model measured while another runs would be measured
// wrong). The slow service (io, mixed) must already listen on spec.port.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "timeline.hpp"
#include "workload.hpp"

namespace gearbox::lab {

struct ModelResult {
  Model model = Model::sequential;
  std::string error = {};  // empty if the run succeeded
  double wall_s = 0;  // as the child measured it: from before its threads/loop/pool to after
  double user_s = 0;
  double system_s = 0;
  long voluntary_switches = 0;
  long involuntary_switches = 0;
  long peak_rss_kb = 0;  // summed over the child and its processes, at the sampled peak
  int tasks_done = 0;
  std::size_t units = 0;          // threads or workers the model used (1 for seq, async)
  std::filesystem::path trace = {};  // the model's trace file, if traced

  double cpu_s() const noexcept { return user_s + system_s; }
  // Share of the machine busy: CPU time / (wall time x cores).
  double utilisation(unsigned cores) const noexcept {
    return wall_s > 0 && cores > 0 ? cpu_s() / (wall_s * cores) : 0;
  }
};

struct Experiment {
  WorkSpec spec;
  double cost_s = 0;  // the asked compute time per task (cpu, mixed)
  std::vector<ModelResult> results;

  const ModelResult* find(Model model) const noexcept;
  // The sequential run's wall time over this one's (0 if either is missing).
  double speedup(const ModelResult& result) const noexcept;
};

struct RunOptions {
  std::filesystem::path trace_dir;  // empty: no traces; else <dir>/<work>-<model>.json
  // The program that understands `run-model` (gearbox-lab; this program by default).
  std::filesystem::path program = "/proc/self/exe";
  // Told about progress while a model runs: elapsed seconds, and the expected total.
  std::function<void(Model, double elapsed_s, double expected_s)> progress;
};

// How long `model` should take for `spec` (for a progress bar; a rough model of the
// machine: waits overlap where the model lets them, compute spreads over the units).
double expected_seconds(const WorkSpec& spec, Model model, double cost_s) noexcept;

Experiment run_experiment(const WorkSpec& spec, double cost_s, const std::vector<Model>& models,
                          const RunOptions& options);

// The table: model, wall, CPU, CPU use, peak memory, speedup. At most 80 columns.
std::string render_table(const Experiment& experiment, unsigned cores);
// One or two sentences that follow from the figures (which model to use, and why).
std::string verdict(const Experiment& experiment, unsigned cores);
nlohmann::json to_json(const Experiment& experiment, unsigned cores);

// The timeline of a model's trace with one row per task ("task 1", "task 2"...), in task
// order: the parts of a task recorded in different places (an async task on the loop and
// its computing offloaded to a worker process) are merged into its row, where running
// wins over waiting; the rest (the root task, pool threads, workers) is left out.
Timeline task_timeline(const std::filesystem::path& trace);

// The hidden subcommand the experiment starts: runs one model in this process and prints
// one JSON line ({"wall_s", "tasks_done", "checksum", "errors"}). Returns the exit code.
int run_model_command(const WorkSpec& spec, Model model, const std::filesystem::path& trace);

}  // namespace gearbox::lab
