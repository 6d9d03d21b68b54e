// The table and the verdict of gearbox-cache (declared in cache_run.hpp).
#include <cmath>
#include <cstdio>
#include <string>

#include "cache_run.hpp"

namespace cache {
namespace {

template <class... Args>
std::string printf_string(const char* pattern, Args... args) {
  char text[256];
  std::snprintf(text, sizeof text, pattern, args...);
  return text;
}

std::string with_commas(long long value) {
  std::string digits = std::to_string(value < 0 ? -value : value);
  for (int at = static_cast<int>(digits.size()) - 3; at > 0; at -= 3) digits.insert(static_cast<std::size_t>(at), ",");
  return value < 0 ? "-" + digits : digits;
}

const EngineRun* find(const std::vector<EngineRun>& runs, Engine engine) {
  for (const EngineRun& run : runs)
    if (run.engine == engine && run.error.empty() && run.wall_s > 0) return &run;
  return nullptr;
}

double ops_per_second(const EngineRun& run, const Workload& work) {
  return static_cast<double>(work.operations) / run.wall_s;
}

std::string label(const EngineRun& run, const EngineOptions& options) {
  const std::string pipeline = " + pipeline " + std::to_string(options.batch);
  switch (run.engine) {
  case Engine::sequential: return "sequential";
  case Engine::threads: return std::to_string(run.units) + " threads";
  case Engine::threads_pipelined: return std::to_string(run.units) + " threads" + pipeline;
  case Engine::async: return std::to_string(run.units) + " tasks, 1 thread";
  case Engine::async_pipelined: return std::to_string(run.units) + " tasks, 1 thread" + pipeline;
  case Engine::async_cores: return std::to_string(run.units) + " tasks, " + std::to_string(run.workers) + " workers";
  case Engine::async_cores_pipelined:
    return std::to_string(run.units) + " tasks, " + std::to_string(run.workers) + " workers" + pipeline;
  }
  return "?";
}

std::string times(double ratio) { return printf_string("%.1f×", ratio); }

std::string verdict(const std::vector<EngineRun>& runs, const Workload& work, const EngineOptions& options) {
  const EngineRun* sequential = find(runs, Engine::sequential);
  const EngineRun* threads = find(runs, Engine::threads);
  const EngineRun* async = find(runs, Engine::async);
  if (!sequential || !threads || !async) return "Too few engines completed to compare.";
  const double rtt_us = sequential->wall_s / static_cast<double>(work.operations) * 1e6;
  const double seq = ops_per_second(*sequential, work);
  const double thr = ops_per_second(*threads, work);
  const double asy = ops_per_second(*async, work);
  std::string text = printf_string("A round trip to this Redis took about %.0f µs, so one connection used sequentially "
                                   "did ",
                                   rtt_us) +
                     with_commas(std::llround(seq)) + " operations a second. " + std::to_string(threads->units) +
                     " threads with a blocking connection each did " + with_commas(std::llround(thr)) + " (" +
                     times(thr / seq) + " sequential)";
  if (thr >= 2 * seq)
    text += ": threads are a fine fit for a local database, as the seeds say; the waits are short and a few threads "
            "cost little. ";
  else
    text += ", less than the seeds promise: the threads spend their time waking each other, not waiting. ";
  text += std::to_string(async->units) + " async tasks on one thread did " + with_commas(std::llround(asy)) + " (" +
          times(asy / thr) + " the threads, with " + printf_string("%.2f s of CPU against %.2f s)", async->cpu_s, threads->cpu_s);
  if (asy > 1.25 * thr)
    text += ": each reply wakes a blocked thread through the kernel's scheduler, where the loop collects the "
            "replies that are ready from one epoll_wait. ";
  else if (asy < 0.8 * thr)
    text += ": here the threads' parallel system calls beat one loop. ";
  else
    text += ": about the same; either model serves a local database well. ";
  if (const EngineRun* cores = find(runs, Engine::async_cores); cores && ops_per_second(*cores, work) < 0.9 * asy)
    text += "The same tasks on " + std::to_string(cores->workers) + " workers did " +
            with_commas(std::llround(ops_per_second(*cores, work))) +
            ": the server needs a core too, and more workers only compete with it. ";
  const EngineRun* threads_pipelined = find(runs, Engine::threads_pipelined);
  const EngineRun* async_pipelined = find(runs, Engine::async_pipelined);
  if (async_pipelined || threads_pipelined) {
    const EngineRun& best = !threads_pipelined ? *async_pipelined
                            : !async_pipelined ? *threads_pipelined
                            : ops_per_second(*async_pipelined, work) >= ops_per_second(*threads_pipelined, work)
                                ? *async_pipelined
                                : *threads_pipelined;
    text += "What goes further is fewer round trips: pipelining " + std::to_string(options.batch) +
            " commands per round trip, " + label(best, options) + " did " +
            with_commas(std::llround(ops_per_second(best, work))) + " (" +
            times(ops_per_second(best, work) / std::max(thr, asy)) + " the best without it).";
  }
  return text;
}

std::string wrap(const std::string& text, std::size_t width, std::size_t indent) {
  std::string out;
  std::string line;
  std::size_t columns = 0;
  auto flush = [&] {
    if (!line.empty()) out += std::string(indent, ' ') + line + "\n";
    line.clear();
    columns = 0;
  };
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find(' ', start);
    if (end == std::string::npos) end = text.size();
    const std::string word = text.substr(start, end - start);
    std::size_t word_columns = 0;
    for (const unsigned char c : word) word_columns += (c & 0xC0) != 0x80;
    if (columns > 0 && indent + columns + 1 + word_columns > width) flush();
    if (columns > 0) {
      line += ' ';
      ++columns;
    }
    line += word;
    columns += word_columns;
    start = end + 1;
  }
  flush();
  return out;
}

}  // namespace

std::string render(const std::vector<EngineRun>& runs, const Workload& work, const EngineOptions& options) {
  const Tally expected = expected_tally(work);
  std::string out = "\n" + printf_string("  %-34s %10s %10s %8s %8s  %s\n", "engine", "ops/s", "µs/op", "wall", "CPU",
                                         "results");
  for (const EngineRun& run : runs) {
    if (!run.error.empty()) {
      out += printf_string("  %-34s failed: ", label(run, options).c_str()) + run.error + "\n";
      continue;
    }
    const double ops = ops_per_second(run, work);
    out += printf_string("  %-34s %10s %9.1f %6.2f s %6.2f s  %s\n", label(run, options).c_str(),
                         with_commas(std::llround(ops)).c_str(), 1e6 / ops, run.wall_s, run.cpu_s,
                         run.tally == expected ? "agree" : "DIFFER");
  }
  out += "\n" + wrap(verdict(runs, work, options), 78, 2);
  return out;
}

}  // namespace cache
