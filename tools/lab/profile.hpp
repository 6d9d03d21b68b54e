// gearbox-lab profile: run any command, measure where its time went, and say which
// concurrency model fits it.
//
//   ProcessProfile p = gearbox::lab::profile_command({"make", "-j2"});
//   Verdict v = gearbox::lab::classify(p, std::thread::hardware_concurrency());
//   // v.kind == WorkKind::cpu_bound, v.model == "threads (or processes for isolation)"
//
// The figures come from the kernel (wait4's rusage, which includes the command's own
// children that it waited for): wall time, user and system CPU time, voluntary context
// switches (the command blocked: I/O, sleep, a lock) and involuntary ones (the scheduler
// took the CPU away: it wanted more CPU than it got), and peak resident memory.
//
// The rule is the primer's: CPU time / wall time is how many cores were busy on average.
// Near 0: the command mostly waited (I/O-bound): overlapping the waits helps (async, or
// threads for blocking libraries), more cores do not. Near 1 or more: it computed
// (CPU-bound): only more cores help (threads, or processes for isolation), async does
// not. In between: both, so offload the computing part from the waiting part.
#pragma once

#include <string>
#include <vector>

namespace gearbox::lab {

struct ProcessProfile {
  double wall_s = 0;
  double user_s = 0;
  double system_s = 0;
  long voluntary_switches = 0;
  long involuntary_switches = 0;
  long peak_rss_kb = 0;
  int exit_code = -1;  // -1 if a signal ended it
  int signal = 0;      // the signal that ended it, or 0

  double cpu_s() const noexcept { return user_s + system_s; }
  // Cores busy on average over the run: CPU time / wall time.
  double busy_cores() const noexcept { return wall_s > 0 ? cpu_s() / wall_s : 0; }
};

enum class WorkKind { io_bound, cpu_bound, mixed };
const char* to_string(WorkKind kind) noexcept;

struct Verdict {
  WorkKind kind = WorkKind::mixed;
  std::string model;    // the recommended model, in a few words
  std::string reasons;  // why, from the figures, in a sentence or two
};

// Runs argv (argv[0] looked up on PATH), with the caller's stdin, stdout and stderr, and
// waits for it. Throws std::runtime_error with a one-line reason if it cannot be started
// (no such program, not executable) or argv is empty. Blocks the calling thread.
ProcessProfile profile_command(const std::vector<std::string>& argv);

// The kind of work the figures show, with `cores` cores on the machine. Pure.
Verdict classify(const ProcessProfile& profile, unsigned cores);

}  // namespace gearbox::lab
