#include "experiment_commands.hpp"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "cli/duration_option.hpp"
#include "experiment.hpp"
#include "guide.hpp"
#include "html_page.hpp"
#include "lab_format.hpp"
#include "redis_server.hpp"  // examples/07_cache
#include "results_cache.hpp"
#include "share.hpp"
#include "slow_service.hpp"
#include "timeline.hpp"
#include "timeline_render.hpp"

namespace gearbox::lab {
namespace {

unsigned machine_cores() { return std::max(1u, std::thread::hardware_concurrency()); }

bool stdout_is_terminal() { return ::isatty(STDOUT_FILENO) == 1; }

// A progress line redrawn in place on a terminal; nothing when piped (the caller prints
// a plain line per finished model instead).
void draw_progress(Model model, double elapsed_s, double expected_s) {
  constexpr int width = 30;
  const double fraction = expected_s > 0 ? std::min(elapsed_s / expected_s, 1.0) : 1.0;
  const int filled = static_cast<int>(fraction * width);
  std::printf("\r  %-12s [%s%s] %5.1f s of ~%.1f s ", to_string(model), std::string(filled, '#').c_str(),
              std::string(width - filled, '.').c_str(), elapsed_s, expected_s);
  std::fflush(stdout);
}

RunOptions run_options(const std::filesystem::path& trace_dir) {
  RunOptions options;
  options.trace_dir = trace_dir;
  if (stdout_is_terminal()) options.progress = draw_progress;
  return options;
}

// Runs the experiment, printing one line per model as it finishes.
Experiment run_and_report_progress(const WorkSpec& spec, double cost_s, const std::vector<Model>& models,
                                   const std::filesystem::path& trace_dir) {
  Experiment experiment{spec, cost_s, {}};
  const RunOptions options = run_options(trace_dir);
  for (Model model : models) {
    Experiment one = run_experiment(spec, cost_s, {model}, options);
    const ModelResult& r = one.results.front();
    if (options.progress) std::printf("\r%-72s\r", "");
    if (r.error.empty())
      std::printf("  %-12s done in %.2f s\n", to_string(model), r.wall_s);
    else
      std::printf("  %-12s failed: %s\n", to_string(model), r.error.c_str());
    std::fflush(stdout);
    experiment.results.push_back(r);
  }
  return experiment;
}

std::string timeline_text(const ModelResult& r) {
  if (r.trace.empty() || !r.error.empty()) return {};
  try {
    const Timeline timeline = task_timeline(r.trace);
    AsciiOptions options = ascii_options_for_stdout();
    options.max_rows = 8;
    std::string out = "  timeline: " + std::string(to_string(r.model)) + "\n";
    return out + render_ascii(timeline, options);
  } catch (const std::exception& e) {
    return "  (no timeline for " + std::string(to_string(r.model)) + ": " + e.what() + ")\n";
  }
}

void print_experiment(const Experiment& e, const std::vector<Model>& timelines) {
  const unsigned cores = machine_cores();
  std::printf("\n%s\n", render_table(e, cores).c_str());
  for (Model model : timelines)
    for (const auto& r : e.results)
      if (r.model == model) std::printf("%s\n", timeline_text(r).c_str());
  std::printf("%s", wrap("Verdict: " + verdict(e, cores), 78, 2).c_str());
}

std::filesystem::path make_trace_dir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string dir = std::string(tmp && *tmp ? tmp : "/tmp") + "/gearbox-lab-XXXXXX";
  if (!::mkdtemp(dir.data())) throw std::runtime_error("cannot make a directory for the traces in /tmp");
  return dir;
}

WorkSpec make_spec(Work work, int tasks, double wait_s, double cost_s, double units_per_second, std::uint16_t port) {
  WorkSpec spec;
  spec.work = work;
  spec.tasks = tasks;
  spec.wait_ms = static_cast<int>(std::lround(wait_s * 1000));
  spec.units = computes(work) ? static_cast<std::uint64_t>(std::max(1.0, cost_s * units_per_second)) : 0;
  spec.port = port;
  spec.cores = machine_cores();
  return spec;
}

// Writes `path` for one model, or <stem>-<model><ext> when there are several.
std::filesystem::path per_model_path(const std::filesystem::path& path, Model model, bool several) {
  if (!several) return path;
  std::filesystem::path out = path;
  out.replace_filename(path.stem().string() + "-" + to_string(model) + path.extension().string());
  return out;
}

}  // namespace

ExperimentCommands::ExperimentCommands(CLI::App& app) {
  app.add_flag("--quick", m_quick, "a shorter demonstration (waits and computations scaled down)");
  app.add_option("--html", m_html, "also write the demonstration as one self-contained HTML page");

  m_compare = app.add_subcommand("compare", "run the same work under several models and compare them");
  Compare& c = m_compare_args;
  m_compare->add_option("--work", c.work, "io, cpu, mixed, sleep or db (a local redis-server) (default: io)")
      ->check(CLI::IsMember({"io", "cpu", "mixed", "sleep", "db"}));
  m_compare->add_option("--tasks", c.tasks, "how many tasks (default: 5)")->check(CLI::Range(1, 100000));
  const cli::DurationRange up_to_ten_minutes{std::chrono::seconds(0), std::chrono::minutes(10)};
  cli::add_duration_option(*m_compare, "--wait", c.wait, "how long each task waits, in io, sleep and mixed work", up_to_ten_minutes);
  cli::add_duration_option(*m_compare, "--cost", c.cost, "computing time per task, in cpu and mixed work", up_to_ten_minutes);
  m_compare->add_option("--queries", c.queries, "GETs per task, one at a time, in db work (default: 1000)")
      ->check(CLI::Range(1L, 10'000'000L));
  m_compare->add_option("--models", c.models, "comma-separated: seq,threads,async,procs,async+procs,async-cores");
  m_compare->add_flag("--json", c.json, "print one JSON object");
  m_compare->add_flag("--timeline", c.timeline, "draw each model's timeline");
  m_compare->add_option("--trace", c.trace, "write the trace(s): FILE, or FILE-<model>.json for several models");
  m_compare->add_option("--svg", c.svg, "write the timeline(s) as SVG: FILE, or FILE-<model>.svg");
  m_compare->add_option("--html", c.html, "write the table, every model's timeline and the verdict as one HTML page");

  m_guide = app.add_subcommand("guide", "when to use which model, with the figures measured on this machine");

  m_run_model = app.add_subcommand("run-model", "(internal) run one model in this process and print JSON");
  m_run_model->group("");  // hidden from --help
  RunModel& r = m_run_model_args;
  m_run_model->add_option("--work", r.work)->required();
  m_run_model->add_option("--model", r.model)->required();
  m_run_model->add_option("--tasks", r.tasks)->required()->check(CLI::Range(1, 100000));
  m_run_model->add_option("--wait-ms", r.wait_ms)->check(CLI::Range(0, 600000));
  m_run_model->add_option("--units", r.units);
  m_run_model->add_option("--port", r.port)->check(CLI::Range(0, 65535));
  m_run_model->add_option("--cores", r.cores)->check(CLI::Range(1, 4096));
  m_run_model->add_option("--trace", r.trace);
}

std::optional<int> ExperimentCommands::run() const {
  if (*m_compare) return run_compare();
  if (*m_guide) return run_guide();
  if (*m_run_model) {
    const RunModel& r = m_run_model_args;
    const auto work = parse_work(r.work);
    const auto model = parse_model(r.model);
    if (!work || !model) throw std::invalid_argument("run-model: unknown work or model");
    WorkSpec spec;
    spec.work = *work;
    spec.tasks = r.tasks;
    spec.wait_ms = r.wait_ms;
    spec.units = r.units;
    spec.port = static_cast<std::uint16_t>(r.port);
    spec.cores = r.cores;
    return run_model_command(spec, *model, r.trace);
  }
  return std::nullopt;
}

int ExperimentCommands::run_compare() const {
  const Compare& c = m_compare_args;
  const Work work = *parse_work(c.work);
  const std::vector<Model> models = parse_models(c.models);
  for (Model m : models)
    if (const std::optional<std::string> why = unfit(m, work)) throw std::invalid_argument(*why);
  const double units_per_second = computes(work) ? calibrate_units_per_second() : 0;
  std::optional<SlowService> service;
  if (work == Work::io || work == Work::mixed) service.emplace();
  std::optional<cache::RedisServer> redis;  // RedisError, saying how to install it, if it is not
  if (work == Work::db) {
    redis.emplace();
    preload_db_keys(static_cast<std::uint16_t>(redis->port()));
  }
  const double cost_s = c.cost.count();
  const std::uint16_t port = service ? service->port() : redis ? static_cast<std::uint16_t>(redis->port()) : 0;
  WorkSpec spec = make_spec(work, c.tasks, c.wait.count(), cost_s, units_per_second, port);
  if (work == Work::db) {
    spec.units = static_cast<std::uint64_t>(c.queries);
    spec.wait_ms = 0;
  }
  const bool traced = c.timeline || !c.trace.empty() || !c.svg.empty() || !c.html.empty();
  const std::filesystem::path dir = traced ? make_trace_dir() : std::filesystem::path{};
  const unsigned cores = machine_cores();

  Experiment e;
  if (c.json) {
    RunOptions options;
    options.trace_dir = dir;
    e = run_experiment(spec, cost_s, models, options);
  } else {
    std::printf("%d %s task(s) on %u cores\n", c.tasks, c.work.c_str(), cores);
    e = run_and_report_progress(spec, cost_s, models, dir);
  }
  const bool several = models.size() > 1;
  for (const auto& r : e.results) {
    if (r.trace.empty() || !r.error.empty()) continue;
    if (!c.trace.empty()) std::filesystem::copy_file(r.trace, per_model_path(c.trace, r.model, several),
                                                     std::filesystem::copy_options::overwrite_existing);
    if (!c.svg.empty()) {
      SvgOptions svg;
      svg.title = std::string(to_string(r.model)) + ": " + std::to_string(c.tasks) + " " + c.work + " tasks";
      const std::string picture = render_svg(task_timeline(r.trace), svg);
      const std::filesystem::path out = per_model_path(c.svg.string(), r.model, several);
      std::FILE* file = std::fopen(out.c_str(), "w");
      if (!file || std::fwrite(picture.data(), 1, picture.size(), file) != picture.size())
        throw std::runtime_error("cannot write " + out.string());
      std::fclose(file);
    }
  }
  if (c.json) {
    std::printf("%s\n", to_json(e, cores).dump().c_str());
  } else {
    print_experiment(e, c.timeline ? models : std::vector<Model>{});
  }
  save_result("compare." + c.work, to_json(e, cores));
  if (!c.html.empty()) {
    HtmlPage page("gearbox-lab compare: " + std::to_string(c.tasks) + " " + c.work + " task(s)");
    add_experiment(page, std::to_string(c.tasks) + " " + c.work + " task(s) on " + std::to_string(cores) + " cores", e,
                   cores);
    add_guide(page, load_results(), cores);
    page.write(c.html);
    if (!c.json) std::printf("wrote %s\n", c.html.c_str());
  }
  if (traced) std::filesystem::remove_all(dir);
  for (const auto& r : e.results)
    if (!r.error.empty()) return 1;
  return 0;
}

int ExperimentCommands::run_guide() const {
  std::printf("%s", render_guide(load_results(), machine_cores()).c_str());
  std::printf("%s", render_io_backend(default_io_backend(), io_uring_support()).c_str());
  return 0;
}

int ExperimentCommands::run_demo() const {
  const unsigned cores = machine_cores();
  const double scale = m_quick ? 0.1 : 1.0;
  std::printf("gearbox-lab: the same work, run sequentially, with threads, with async tasks\n"
              "and with processes, measured on this machine (%u cores).\n",
              cores);
  std::fflush(stdout);
  const double units_per_second = calibrate_units_per_second();
  SlowService service;
  const std::filesystem::path dir = make_trace_dir();
  HtmlPage page("gearbox-lab: the same work, sequentially, with threads, with async tasks and with processes");
  page.paragraph("Measured on this machine (" + std::to_string(cores) + " cores)" +
                     (m_quick ? ", scaled down (--quick)." : ".") +
                     " Each part runs the same tasks under each model, in a process of its own, and shows wall "
                     "time, CPU time, memory and a timeline of who ran when.",
                 "lead");

  struct Step {
    const char* title;
    Work work;
    int tasks;
    double wait_s;
    double cost_s;
    std::vector<Model> models;
    std::vector<Model> timelines;
  };
  const int cpu_tasks = static_cast<int>(2 * cores);
  const Step steps[] = {
      {"I/O-bound: 5 tasks, each waits %.1f s for a slow service on 127.0.0.1", Work::io, 5, 2.0 * scale, 0,
       {Model::sequential, Model::threads, Model::async, Model::processes},
       {Model::sequential, Model::async}},
      {"CPU-bound: %d tasks (2 per core), each computes for about %.2f s", Work::cpu, cpu_tasks, 0, 0.5 * scale,
       {Model::sequential, Model::threads, Model::async, Model::async_cores, Model::processes},
       {Model::async, Model::async_cores}},
      {"Mixed: %d tasks, each waits %.1f s, then computes for about %.2f s", Work::mixed, cpu_tasks, 1.0 * scale,
       0.5 * scale, {Model::sequential, Model::async, Model::threads, Model::async_cores, Model::async_processes},
       {Model::async, Model::async_cores}},
  };
  int number = 0;
  for (const Step& step : steps) {
    char title[160];
    if (step.work == Work::io)
      std::snprintf(title, sizeof title, step.title, step.wait_s);
    else if (step.work == Work::cpu)
      std::snprintf(title, sizeof title, step.title, step.tasks, step.cost_s);
    else
      std::snprintf(title, sizeof title, step.title, step.tasks, step.wait_s, step.cost_s);
    std::printf("\n%d. %s\n\n", ++number, title);
    std::fflush(stdout);
    const WorkSpec spec = make_spec(step.work, step.tasks, step.wait_s, step.cost_s, units_per_second, service.port());
    const Experiment e = run_and_report_progress(spec, step.cost_s, step.models, dir);
    print_experiment(e, step.timelines);
    if (!m_html.empty()) add_experiment(page, std::to_string(number) + ". " + title, e, cores);
    save_result(std::string(m_quick ? "demo.quick." : "demo.") + to_string(step.work), to_json(e, cores));
  }
  std::filesystem::remove_all(dir);
  const ShareSpec share{4, m_quick ? 100'000 : 1'000'000};
  std::printf("\n%d. Who shares memory, and where a switch can happen: x = x + 1 in every model\n", ++number);
  std::fflush(stdout);
  const std::vector<ShareRun> shared = run_share(share);
  std::printf("%s", render_share(shared, share).c_str());
  if (!m_html.empty()) {
    add_share(page, shared, share);
    add_guide(page, load_results(), cores);
    page.write(m_html);
    std::printf("\nWrote the page %s: the tables, every model's timeline, the verdicts and the guide.\n",
                m_html.c_str());
  }
  if (m_quick)
    std::printf("\nA quick run is saved as one: gearbox-lab guide shows its times, marked\n"
                "quick, until a full run replaces them. The demonstration measures neither\n"
                "switches nor how many units fit at once: gearbox-lab switch and scale do.\n");
  std::printf("\nNext: gearbox-lab guide (when to use which), gearbox-lab compare --help,\n"
              "gearbox-lab scale, switch and share, gearbox-lab profile -- CMD.\n");
  return 0;
}

}  // namespace gearbox::lab
