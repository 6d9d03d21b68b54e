#include "profile.hpp"

#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <stdexcept>

extern char** environ;

namespace gearbox::lab {

namespace {

double seconds(const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; }

std::string format(const char* pattern, double a, double b = 0) {
  char text[256];
  std::snprintf(text, sizeof text, pattern, a, b);
  return text;
}

// Below this many busy cores on average the command mostly waited; above the upper one it
// mostly computed (on one core or more).
constexpr double k_waiting_below = 0.25;
constexpr double k_computing_above = 0.75;

}  // namespace

const char* to_string(WorkKind kind) noexcept {
  switch (kind) {
  case WorkKind::io_bound: return "I/O-bound";
  case WorkKind::cpu_bound: return "CPU-bound";
  case WorkKind::mixed: return "mixed";
  }
  return "?";
}

ProcessProfile profile_command(const std::vector<std::string>& argv) {
  if (argv.empty()) throw std::runtime_error("no command given (gearbox-lab profile -- CMD ARGS...)");
  std::vector<std::string> args = argv;
  std::vector<char*> pointers;
  for (std::string& arg : args) pointers.push_back(arg.data());
  pointers.push_back(nullptr);

  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attributes, &none);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK);
  const auto start = std::chrono::steady_clock::now();
  pid_t pid = -1;
  const int error = ::posix_spawnp(&pid, pointers[0], nullptr, &attributes, pointers.data(), environ);
  posix_spawnattr_destroy(&attributes);
  if (error != 0) throw std::runtime_error("cannot run '" + argv[0] + "': " + std::strerror(error));

  int status = 0;
  rusage usage{};
  while (::wait4(pid, &status, 0, &usage) < 0) {
    if (errno != EINTR) throw std::runtime_error(std::string("wait4: ") + std::strerror(errno));
  }
  ProcessProfile profile;
  profile.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  profile.user_s = seconds(usage.ru_utime);
  profile.system_s = seconds(usage.ru_stime);
  profile.voluntary_switches = usage.ru_nvcsw;
  profile.involuntary_switches = usage.ru_nivcsw;
  profile.peak_rss_kb = usage.ru_maxrss;
  if (WIFEXITED(status)) profile.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) profile.signal = WTERMSIG(status);
  return profile;
}

// Pre-empted far more often than it waited: it was ready to compute all along, and the
// low share of a core it got says how busy the machine was, not how much it waited.
bool starved(const ProcessProfile& profile) noexcept {
  return profile.involuntary_switches >= 10 && profile.involuntary_switches > 4 * profile.voluntary_switches;
}

Verdict classify(const ProcessProfile& profile, unsigned cores) {
  const double busy = profile.busy_cores();
  const double waiting = std::max(0.0, 1.0 - std::min(busy, 1.0));
  Verdict verdict;
  if (busy < k_waiting_below) {
    verdict.kind = WorkKind::io_bound;
    verdict.model = "async tasks on one loop (threads if it must call blocking libraries)";
    verdict.reasons = format("It waited %.0f%% of the time (%.2f cores busy on average): overlapping the waits "
                             "speeds it up; more cores would not.",
                             waiting * 100, busy);
  } else if (busy >= k_computing_above || starved(profile)) {
    verdict.kind = WorkKind::cpu_bound;
    if (busy >= 1.5) {
      verdict.model = "threads, as it already does (processes where a crash must stay isolated)";
      verdict.reasons = format("It kept %.1f cores busy of %.0f: it computes in parallel already; only more "
                               "cores speed it up, async would not.",
                               busy, static_cast<double>(cores));
    } else {
      verdict.model = cores > 1 ? "threads (processes where a crash must stay isolated)" : "sequential: one core";
      verdict.reasons = format("It kept %.2f cores busy of %.0f: it computes; splitting the work across cores "
                               "speeds it up, overlapping waits (async) would not.",
                               busy, static_cast<double>(cores));
    }
  } else {
    verdict.kind = WorkKind::mixed;
    verdict.model = "async for the waits, with the computing part offloaded to a thread or process pool";
    verdict.reasons = format("It computed %.0f%% of the time and waited the rest (%.2f cores busy on average): "
                             "overlap the waits and move the computing off the loop.",
                             std::min(busy, 1.0) * 100, busy);
  }
  if (busy < k_computing_above && verdict.kind == WorkKind::cpu_bound)
    verdict.reasons += format(" It was pre-empted %.0f times and waited only %.0f: it wanted more CPU than this busy "
                              "machine gave it.",
                              static_cast<double>(profile.involuntary_switches),
                              static_cast<double>(profile.voluntary_switches));
  if (profile.wall_s < 0.05)
    verdict.reasons += " (The run lasted under 50 ms: start-up dominates; profile a longer run to be sure.)";
  return verdict;
}

}  // namespace gearbox::lab
