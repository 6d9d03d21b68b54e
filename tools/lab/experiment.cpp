#include "experiment.hpp"

#include <poll.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

#include <gearbox/trace.hpp>

extern char** environ;

namespace gearbox::lab {
namespace {

using Clock = std::chrono::steady_clock;

// Resident memory of `pid` and of every process under it, in KiB (0 if it is gone).
long tree_rss_kb(pid_t pid) {
  static const long page_kb = ::sysconf(_SC_PAGESIZE) / 1024;
  long total = 0;
  std::ifstream statm("/proc/" + std::to_string(pid) + "/statm");
  long size = 0, resident = 0;
  if (statm >> size >> resident) total += resident * page_kb;
  // Children are listed under the thread that started them (a pool starts its workers
  // from its own thread), so every thread's list is read.
  std::error_code error;
  for (const auto& thread : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", error)) {
    std::ifstream children(thread.path() / "children");
    for (pid_t child; children >> child;) total += tree_rss_kb(child);
  }
  return total;
}

std::vector<std::string> child_argv(const WorkSpec& spec, Model model, const std::filesystem::path& trace) {
  std::vector<std::string> argv = {"gearbox-lab", "run-model",
                                   "--work", to_string(spec.work),
                                   "--model", to_string(model),
                                   "--tasks", std::to_string(spec.tasks),
                                   "--wait-ms", std::to_string(spec.wait_ms),
                                   "--units", std::to_string(spec.units),
                                   "--port", std::to_string(spec.port),
                                   "--cores", std::to_string(spec.cores)};
  if (!trace.empty()) {
    argv.push_back("--trace");
    argv.push_back(trace.string());
  }
  return argv;
}

void drain(int fd, std::string& into) {
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n > 0) {
      into.append(buffer, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return;  // EOF, EAGAIN or an error: nothing more now
  }
}

// Runs one model in a child and measures it.
ModelResult measure(const WorkSpec& spec, Model model, const std::filesystem::path& trace, double expected_s,
                    const RunOptions& options) {
  ModelResult result;
  result.model = model;
  result.trace = trace;
  result.units = model == Model::sequential || model == Model::async ? 1
                 : model == Model::async_processes || model == Model::async_cores ? std::max(spec.cores, 1u)
                                                                    : pool_size(spec);
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC | O_NONBLOCK) != 0) throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  if (::pipe2(err, O_CLOEXEC | O_NONBLOCK) != 0) {
    ::close(out[0]);
    ::close(out[1]);
    throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);
  const std::vector<std::string> args = child_argv(spec, model, trace);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int spawned = ::posix_spawn(&pid, options.program.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  ::close(err[1]);
  if (spawned != 0) {
    ::close(out[0]);
    ::close(err[0]);
    throw std::runtime_error(std::string("cannot start a measuring child: ") + std::strerror(spawned));
  }

  std::string output, errors;
  const auto start = Clock::now();
  int status = 0;
  rusage usage{};
  for (;;) {
    result.peak_rss_kb = std::max(result.peak_rss_kb, tree_rss_kb(pid));
    pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
    ::poll(fds, 2, 20);
    drain(out[0], output);
    drain(err[0], errors);
    const pid_t done = ::wait4(pid, &status, WNOHANG, &usage);
    if (done == pid) break;
    if (done < 0 && errno != EINTR) throw std::runtime_error(std::string("wait4: ") + std::strerror(errno));
    if (options.progress) options.progress(model, std::chrono::duration<double>(Clock::now() - start).count(), expected_s);
  }
  drain(out[0], output);
  drain(err[0], errors);
  ::close(out[0]);
  ::close(err[0]);

  result.user_s = static_cast<double>(usage.ru_utime.tv_sec) + static_cast<double>(usage.ru_utime.tv_usec) / 1e6;
  result.system_s = static_cast<double>(usage.ru_stime.tv_sec) + static_cast<double>(usage.ru_stime.tv_usec) / 1e6;
  result.voluntary_switches = usage.ru_nvcsw;
  result.involuntary_switches = usage.ru_nivcsw;
  result.peak_rss_kb = std::max(result.peak_rss_kb, usage.ru_maxrss);

  const auto first_line = [](const std::string& text) {
    const std::string line = text.substr(0, text.find('\n'));
    return line.empty() ? std::string("(no message)") : line;
  };
  if (WIFSIGNALED(status)) {
    result.error = "the " + std::string(to_string(model)) + " run was killed by signal " + std::to_string(WTERMSIG(status));
    return result;
  }
  const nlohmann::json answer = nlohmann::json::parse(output, nullptr, false);
  if (WEXITSTATUS(status) != 0 || !answer.is_object()) {
    result.error = "the " + std::string(to_string(model)) + " run failed: " + first_line(errors);
    return result;
  }
  result.wall_s = answer.value("wall_s", 0.0);
  result.tasks_done = answer.value("tasks_done", 0);
  if (const auto& e = answer["errors"]; e.is_array() && !e.empty())
    result.error = std::to_string(e.size()) + " task(s) failed: " + e[0].get<std::string>();
  return result;
}

std::string seconds(double s) {
  char text[32];
  std::snprintf(text, sizeof text, s < 10 ? "%.2f s" : "%.1f s", s);
  return text;
}

std::string megabytes(long kb) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f MB", static_cast<double>(kb) / 1024);
  return text;
}

}  // namespace

namespace {

// Sorted, disjoint intervals covering the same time as `intervals`. Touching intervals of
// two threads stay two (the hover names each one's thread); overlapping ones become one,
// of no one thread.
std::vector<Interval> merged(std::vector<Interval> intervals, SliceState state) {
  std::sort(intervals.begin(), intervals.end(), [](const Interval& a, const Interval& b) { return a.begin_us < b.begin_us; });
  std::vector<Interval> out;
  for (const Interval& i : intervals) {
    const bool overlaps = !out.empty() && i.begin_us < out.back().end_us;
    const bool continues = !out.empty() && i.begin_us == out.back().end_us && i.tid == out.back().tid;
    if (overlaps || continues) {
      out.back().end_us = std::max(out.back().end_us, i.end_us);
      if (i.tid != out.back().tid) out.back().tid = 0;
    } else {
      out.push_back({i.begin_us, i.end_us, state, i.tid});
    }
  }
  return out;
}

// `waiting` minus `running` (both sorted and disjoint), plus `running`, in order.
std::vector<Interval> running_over_waiting(const std::vector<Interval>& running, const std::vector<Interval>& waiting) {
  std::vector<Interval> out = running;
  for (Interval w : waiting) {
    for (const Interval& r : running) {
      if (r.end_us <= w.begin_us || r.begin_us >= w.end_us) continue;
      if (r.begin_us > w.begin_us) out.push_back({w.begin_us, r.begin_us, SliceState::waiting, 0});
      w.begin_us = std::max(w.begin_us, r.end_us);
    }
    if (w.end_us > w.begin_us) out.push_back(w);
  }
  std::sort(out.begin(), out.end(), [](const Interval& a, const Interval& b) { return a.begin_us < b.begin_us; });
  return out;
}

}  // namespace

Timeline task_timeline(const std::filesystem::path& trace) {
  Timeline all = load_timeline(trace, RowMode::units);
  std::map<long, std::pair<std::vector<Interval>, std::vector<Interval>>> tasks;  // number -> running, waiting
  for (const TimelineRow& row : all.rows) {
    if (row.label.rfind("task ", 0) != 0) continue;
    char* end = nullptr;
    const long number = std::strtol(row.label.c_str() + 5, &end, 10);
    if (!end || *end != '\0') continue;
    for (const Interval& i : row.intervals)
      (i.state == SliceState::running ? tasks[number].first : tasks[number].second).push_back(i);
  }
  Timeline out;
  out.mode = RowMode::units;
  out.begin_us = all.begin_us;
  out.end_us = all.end_us;
  for (auto& [number, parts] : tasks) {
    TimelineRow row;
    row.label = "task " + std::to_string(number);
    row.intervals = running_over_waiting(merged(parts.first, SliceState::running), merged(parts.second, SliceState::waiting));
    row.first_us = row.intervals.empty() ? all.begin_us : row.intervals.front().begin_us;
    out.rows.push_back(std::move(row));
  }
  return out;
}

const ModelResult* Experiment::find(Model model) const noexcept {
  for (const auto& r : results)
    if (r.model == model && r.error.empty()) return &r;
  return nullptr;
}

double Experiment::speedup(const ModelResult& result) const noexcept {
  const ModelResult* seq = find(Model::sequential);
  return seq && result.wall_s > 0 ? seq->wall_s / result.wall_s : 0;
}

double expected_seconds(const WorkSpec& spec, Model model, double cost_s) noexcept {
  const double tasks = spec.tasks;
  const double wait = waits(spec.work) ? spec.wait_ms / 1000.0 : 0;
  const double compute = computes(spec.work) ? cost_s : 0;
  const double cores = std::max(spec.cores, 1u);
  switch (model) {
    case Model::sequential: return tasks * (wait + compute);
    case Model::async: return wait + tasks * compute;
    case Model::threads:
    case Model::processes: {
      const double units = static_cast<double>(pool_size(spec));
      return std::ceil(tasks / units) * wait + tasks * compute / std::min(units, cores);
    }
    case Model::async_processes:
    case Model::async_cores: return wait + tasks * compute / cores;
  }
  return 0;
}

Experiment run_experiment(const WorkSpec& spec, double cost_s, const std::vector<Model>& models,
                          const RunOptions& options) {
  Experiment experiment{spec, cost_s, {}};
  for (Model model : models) {
    std::filesystem::path trace;
    if (!options.trace_dir.empty())
      trace = options.trace_dir / (std::string(to_string(spec.work)) + "-" + to_string(model) + ".json");
    experiment.results.push_back(measure(spec, model, trace, expected_seconds(spec, model, cost_s), options));
  }
  return experiment;
}

std::string render_table(const Experiment& e, unsigned cores) {
  std::string out;
  char line[128];
  std::snprintf(line, sizeof line, "  %-12s %9s %9s %8s %10s %8s\n", "model", "wall", "CPU", "CPU use", "peak mem",
                "speedup");
  out += line;
  for (const auto& r : e.results) {
    if (!r.error.empty()) {
      std::snprintf(line, sizeof line, "  %-12s failed: %.56s\n", to_string(r.model), r.error.c_str());
      out += line;
      continue;
    }
    const double speedup = e.speedup(r);
    char speed[16] = "-";
    if (speedup > 0) std::snprintf(speed, sizeof speed, "%.2fx", speedup);
    std::snprintf(line, sizeof line, "  %-12s %9s %9s %7.0f%% %10s %8s\n", to_string(r.model), seconds(r.wall_s).c_str(),
                  seconds(r.cpu_s()).c_str(), r.utilisation(cores) * 100, megabytes(r.peak_rss_kb).c_str(), speed);
    out += line;
  }
  return out;
}

std::string verdict(const Experiment& e, unsigned cores) {
  std::vector<const ModelResult*> ok;
  for (const auto& r : e.results)
    if (r.error.empty()) ok.push_back(&r);
  if (ok.empty()) return "No model completed: see the errors above.";
  const ModelResult* fastest = *std::min_element(ok.begin(), ok.end(), [](auto* a, auto* b) { return a->wall_s < b->wall_s; });
  // Within 10% of the fastest counts as "as fast"; among those, the least memory wins.
  const ModelResult* best = fastest;
  for (const ModelResult* r : ok)
    if (r->wall_s <= fastest->wall_s * 1.10 && r->peak_rss_kb < best->peak_rss_kb) best = r;
  char text[512];
  const ModelResult* seq = e.find(Model::sequential);
  const ModelResult* async = e.find(Model::async);
  const ModelResult* async_cores = e.find(Model::async_cores);
  std::string out;
  if (seq && best != seq) {
    std::snprintf(text, sizeof text, "%s: %.1fx faster than sequential, with %s.", to_string(best->model),
                  e.speedup(*best), megabytes(best->peak_rss_kb).c_str());
    out = text;
  } else {
    std::snprintf(text, sizeof text, "%s was fastest (%s).", to_string(best->model), seconds(best->wall_s).c_str());
    out = text;
  }
  if (e.spec.work == Work::cpu && async && seq) {
    std::snprintf(text, sizeof text,
                  " Async gained nothing on computing (%.2fx: one thread); the work needs cores, and %u were there.",
                  e.speedup(*async), cores);
    out += text;
    if (async_cores && async_cores->error.empty()) {
      std::snprintf(text, sizeof text,
                    " The same async tasks on a gb::Runtime of %u workers used them: %.2fx (C++ async can compute "
                    "on every core; Python's asyncio cannot).",
                    cores, e.speedup(*async_cores));
      out += text;
    }
  } else if (e.spec.work == Work::db && async && seq) {
    const double round_trips = static_cast<double>(e.spec.tasks) * static_cast<double>(e.spec.units);
    std::snprintf(text, sizeof text,
                  " Each GET is a round trip to a local redis-server, %.0f us one after another: so short that"
                  " sequentially the client was busy %.2f s of its %.2f s.",
                  seq->wall_s / std::max(round_trips, 1.0) * 1e6, seq->cpu_s(), seq->wall_s);
    out += text;
    if (const ModelResult* threads = e.find(Model::threads)) {
      if (e.speedup(*threads) > 1.2)
        std::snprintf(text, sizeof text,
                      " Threads overlapped them (%.1fx), as the seeds say they do for a local database; async tasks"
                      " on one thread did %.1fx.",
                      e.speedup(*threads), e.speedup(*async));
      else
        std::snprintf(text, sizeof text,
                      " Too few to overlap: starting the threads cost what they saved (%.1fx), and async tasks did"
                      " %.1fx. Give each task more --queries.",
                      e.speedup(*threads), e.speedup(*async));
      out += text;
    }
  } else if (waits(e.spec.work) && !computes(e.spec.work) && async && seq) {
    std::snprintf(text, sizeof text, " The tasks mostly waited (%.0f%% CPU use), so overlapping the waits is all that helps.",
                  async->utilisation(cores) * 100);
    out += text;
  } else if (e.spec.work == Work::mixed && async && seq && best != async) {
    std::snprintf(text, sizeof text,
                  " Async alone overlapped the waits (%.2fx) but computed on one thread; spreading the computing "
                  "over the cores took it to %.1fx.",
                  e.speedup(*async), e.speedup(*best));
    out += text;
    if (async_cores && async_cores->error.empty()) {
      std::snprintf(text, sizeof text, " The same async tasks on a gb::Runtime of %u workers did both: %.2fx.", cores,
                    e.speedup(*async_cores));
      out += text;
    }
  }
  return out;
}

nlohmann::json to_json(const Experiment& e, unsigned cores) {
  nlohmann::json models = nlohmann::json::array();
  for (const auto& r : e.results) {
    nlohmann::json m = {{"model", to_string(r.model)},       {"wall_s", r.wall_s},
                        {"user_s", r.user_s},                 {"system_s", r.system_s},
                        {"cpu_use", r.utilisation(cores)},   {"peak_rss_kb", r.peak_rss_kb},
                        {"voluntary_switches", r.voluntary_switches},
                        {"involuntary_switches", r.involuntary_switches},
                        {"tasks_done", r.tasks_done},         {"units", r.units},
                        {"speedup", e.speedup(r)}};
    if (!r.error.empty()) m["error"] = r.error;
    if (!r.trace.empty()) m["trace"] = r.trace.string();
    models.push_back(std::move(m));
  }
  return {{"work", to_string(e.spec.work)},
          {"tasks", e.spec.tasks},
          {"wait_ms", e.spec.wait_ms},
          {"cost_s", e.cost_s},
          {"cores", cores},
          {"models", std::move(models)},
          {"verdict", verdict(e, cores)}};
}

int run_model_command(const WorkSpec& spec, Model model, const std::filesystem::path& trace) {
  if (!trace.empty()) trace::start();
  const ModelRun run = run_model(spec, model);
  if (!trace.empty()) {
    trace::stop();
    trace::write_json(trace);
  }
  const nlohmann::json answer = {
      {"wall_s", run.wall_s}, {"tasks_done", run.tasks_done}, {"checksum", run.checksum}, {"errors", run.errors}};
  std::printf("%s\n", answer.dump().c_str());
  return 0;
}

}  // namespace gearbox::lab
