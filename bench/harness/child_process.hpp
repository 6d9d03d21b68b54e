// Internal to gearbox_bench_harness: the pieces that run_peer (peer_runner.cpp) and
// ServerPeer (server_peer.cpp) share to start a peer as a child process, watch its stdout,
// and reap it. Not for gearbox-bench itself; use run_peer or ServerPeer.
//
// The child always leads a process group of its own (so that a kill reaches everything it
// started, as timeout(1) does), starts with an empty signal mask and the default
// disposition for the signals a caller commonly blocks or ignores, and inherits no
// descriptor of ours but the ones given: every descriptor here is close-on-exec.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gearbox::bench::detail {

using Clock = std::chrono::steady_clock;

// An owned file descriptor, closed on destruction.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : m_fd(fd) {}
  Fd(Fd&& other) noexcept : m_fd(std::exchange(other.m_fd, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      reset();
      m_fd = std::exchange(other.m_fd, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }

  int get() const { return m_fd; }
  bool valid() const { return m_fd >= 0; }
  void reset();

 private:
  int m_fd = -1;
};

// A pipe, both ends close-on-exec; invalid ends (and errno set) if it could not be made.
struct Pipe {
  Fd read_end;
  Fd write_end;
};
[[nodiscard]] Pipe make_pipe();

// A spawned child process, leader of its own process group, with a pidfd (where the
// kernel has pidfd_open) that becomes readable when it exits. Whoever owns it guarantees
// it is reaped: if it has not been reaped when this is destroyed (an early return, an
// exception), it is killed and reaped.
class Child {
 public:
  explicit Child(pid_t pid);
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() {
    if (!m_reaped) kill_and_reap();
  }

  pid_t pid() const { return m_pid; }
  bool reaped() const { return m_reaped; }
  // Valid once reaped(); nullopt if the status was lost (another waiter reaped it).
  const std::optional<int>& status() const { return m_status; }
  // Valid once reaped(): the child's (and its reaped descendants') resource usage.
  const rusage& usage() const { return m_usage; }

  // Reaps the child if it has exited; returns reaped().
  bool try_reap() { return wait(WNOHANG); }

  // Sends `signal` to the child's whole process group (and to the child, in case it left
  // the group). Only before the reap: until then the pid cannot be reused.
  void signal_group(int signal);

  // Kills the child's whole process group with SIGKILL, then reaps the child.
  void kill_and_reap();

  // The pidfd to poll for the exit, or -1 (no pidfd_open, or it fired already: a pidfd
  // that reported an exit wait4 cannot see yet would make a poll loop spin, so from then
  // on the caller polls the child with a short tick instead).
  int exit_fd() const { return m_pidfd.get(); }
  void exit_fd_fired() { m_pidfd.reset(); }

 private:
  bool wait(int options);

  pid_t m_pid;
  Fd m_pidfd;
  bool m_reaped = false;
  std::optional<int> m_status;
  rusage m_usage{};
};

// How a child's stdin and stdout are connected: each a descriptor to dup2 into place
// (it may be close-on-exec; the dup is not), or -1 for /dev/null.
struct ChildStdio {
  int stdin_fd = -1;
  int stdout_fd = -1;
};

// Starts argv (argv[0] looked up on PATH if it has no '/') as a child leading its own
// process group, with an empty signal mask and default dispositions for SIGPIPE, SIGINT,
// SIGTERM, SIGQUIT, SIGHUP, SIGCHLD, SIGALRM, SIGUSR1 and SIGUSR2 (a caller may block or
// ignore them: a loop that takes signals through signalfd, a server that ignores
// SIGPIPE). stderr is inherited. On success sets `pid` and returns 0; otherwise returns
// the error number and describes it in `error` ("peer program not found: ...").
// argv must not be empty.
int spawn_child(const std::vector<std::string>& argv, const ChildStdio& stdio, pid_t& pid, std::string& error);

// Keep at most about this much of a child's stdout (the tail).
inline constexpr std::size_t k_output_cap = 1 << 20;

// Appends what can be read from the non-blocking `fd` now, keeping the last ~k_output_cap
// bytes. Returns false at end of file or on a read error.
bool read_available(int fd, std::string& output);

enum class WaitOutcome {
  exited,        // the child was reaped
  output_ready,  // `ready(output)` returned true
  timed_out,     // the deadline passed first; the child still runs
  poll_failed,   // poll() failed; errno tells why
};

// Collects the child's stdout from `output_fd` (non-blocking; reset at end of file) into
// `output` until the child exits, `ready` (if given) accepts the output so far, or
// `deadline` passes. One poll() over the pipe and the child's pidfd, so a child that
// closes stdout early, or leaves a grandchild holding the pipe, is still seen to exit on
// time. After an exit, takes what is left in the pipe without waiting for an end of file.
// With `peak_kb`, also samples the child's peak_rss_kb() at every wake-up and at least
// every 10 ms, keeping the largest in *peak_kb (a high-water mark: only growth in the
// child's last 10 ms before it exits can be missed).
WaitOutcome wait_for_child(Child& child, Fd& output_fd, std::string& output, Clock::time_point deadline,
                           const std::function<bool(std::string_view)>& ready = {}, long* peak_kb = nullptr);

// The peak resident set of a running process's own memory, in KiB: VmHWM from
// /proc/<pid>/status; 0 if it cannot be read (no such process, or it has exited: a
// zombie has no memory left to report). Not wait4's ru_maxrss: Linux keeps in it the
// largest memory the process ever had, and a child spawned by posix_spawn (or fork)
// starts in its parent's memory until exec, so ru_maxrss reports at least the parent's
// peak at the time of the spawn.
long peak_rss_kb(pid_t pid);

// "signal 11 (SIGSEGV: Segmentation fault)".
std::string signal_name(int signal);

// "exited with code 3" or "killed by signal 9 (SIGKILL: Killed)", from a wait status.
std::string describe_status(int status);

// The command line as one readable string, for error messages.
std::string quoted_command(const std::vector<std::string>& argv);

// A short, single-line excerpt of a child's output (its tail), for error messages.
std::string excerpt(std::string_view text);

}  // namespace gearbox::bench::detail
