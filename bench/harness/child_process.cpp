// The child-process pieces shared by run_peer and ServerPeer. See child_process.hpp.
#include "child_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include <fmt/format.h>

extern char** environ;

namespace gearbox::bench::detail {
namespace {

// How often the child is checked when there is no pidfd to wake the poll.
constexpr std::chrono::milliseconds k_poll_tick{10};

// RAII for the posix_spawn attribute objects.
struct SpawnActions {
  posix_spawn_file_actions_t actions;
  SpawnActions() { posix_spawn_file_actions_init(&actions); }
  ~SpawnActions() { posix_spawn_file_actions_destroy(&actions); }
  SpawnActions(const SpawnActions&) = delete;
  SpawnActions& operator=(const SpawnActions&) = delete;
};
struct SpawnAttributes {
  posix_spawnattr_t attributes;
  SpawnAttributes() { posix_spawnattr_init(&attributes); }
  ~SpawnAttributes() { posix_spawnattr_destroy(&attributes); }
  SpawnAttributes(const SpawnAttributes&) = delete;
  SpawnAttributes& operator=(const SpawnAttributes&) = delete;
};

int poll_timeout_ms(Clock::duration remaining, bool have_pidfd, bool sampling) {
  auto wait = std::chrono::ceil<std::chrono::milliseconds>(remaining);
  if (!have_pidfd || sampling) wait = std::min(wait, k_poll_tick);
  wait = std::clamp(wait, std::chrono::milliseconds{0}, std::chrono::milliseconds{60'000});
  return static_cast<int>(wait.count());
}

}  // namespace

void Fd::reset() {
  if (m_fd >= 0) ::close(m_fd);
  m_fd = -1;
}

Pipe make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return {};
  return {Fd(fds[0]), Fd(fds[1])};
}

Child::Child(pid_t pid) : m_pid(pid), m_pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0))) {}
// (pidfd_open's descriptors are close-on-exec by default.)

void Child::signal_group(int signal) {
  if (m_reaped) return;
  ::kill(-m_pid, signal);  // harmless on a zombie
  ::kill(m_pid, signal);   // in case the child left its group
}

void Child::kill_and_reap() {
  if (m_reaped) return;
  signal_group(SIGKILL);
  wait(0);
}

bool Child::wait(int options) {
  if (m_reaped) return true;
  int status = 0;
  for (;;) {
    const pid_t rc = ::wait4(m_pid, &status, options, &m_usage);
    if (rc == m_pid) {
      m_status = status;
      m_reaped = true;
      return true;
    }
    if (rc == 0) return false;  // WNOHANG and still running
    if (errno == EINTR) continue;
    // ECHILD: someone else reaped it (waitpid(-1), or SIGCHLD set to SIG_IGN).
    m_usage = {};
    m_reaped = true;
    return true;
  }
}

int spawn_child(const std::vector<std::string>& argv, const ChildStdio& stdio, pid_t& pid, std::string& error) {
  const std::string& program = argv.front();
  SpawnActions actions;
  // adddup2 clears close-on-exec on the copy, so the child gets exactly these two.
  if (stdio.stdin_fd >= 0) {
    posix_spawn_file_actions_adddup2(&actions.actions, stdio.stdin_fd, STDIN_FILENO);
  } else {
    posix_spawn_file_actions_addopen(&actions.actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  }
  if (stdio.stdout_fd >= 0) {
    posix_spawn_file_actions_adddup2(&actions.actions, stdio.stdout_fd, STDOUT_FILENO);
  } else {
    posix_spawn_file_actions_addopen(&actions.actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  }

  // The caller may block or ignore signals (a loop that takes them through signalfd, a
  // server that ignores SIGPIPE); the peer should start with the defaults.
  SpawnAttributes attributes;
  sigset_t empty_mask;
  sigemptyset(&empty_mask);
  sigset_t defaults;
  sigemptyset(&defaults);
  for (int signal : {SIGPIPE, SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGCHLD, SIGALRM, SIGUSR1, SIGUSR2}) {
    sigaddset(&defaults, signal);
  }
  posix_spawnattr_setsigmask(&attributes.attributes, &empty_mask);
  posix_spawnattr_setsigdefault(&attributes.attributes, &defaults);
  // Its own process group, so that a kill reaches everything the peer started.
  posix_spawnattr_setpgroup(&attributes.attributes, 0);
  posix_spawnattr_setflags(&attributes.attributes,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);

  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);

  const int rc = ::posix_spawnp(&pid, program.c_str(), &actions.actions, &attributes.attributes, args.data(),
                                environ);
  if (rc != 0) {
    error = rc == ENOENT ? fmt::format("peer program not found: {}", program)
                         : fmt::format("cannot start {}: {}", program, std::strerror(rc));
  }
  return rc;
}

bool read_available(int fd, std::string& output) {
  char buffer[16384];
  for (;;) {
    const ssize_t got = ::read(fd, buffer, sizeof buffer);
    if (got > 0) {
      output.append(buffer, static_cast<std::size_t>(got));
      if (output.size() > 2 * k_output_cap) output.erase(0, output.size() - k_output_cap);
      continue;
    }
    if (got == 0) return false;
    if (errno == EINTR) continue;
    return errno == EAGAIN || errno == EWOULDBLOCK;
  }
}

WaitOutcome wait_for_child(Child& child, Fd& output_fd, std::string& output, Clock::time_point deadline,
                           const std::function<bool(std::string_view)>& ready, long* peak_kb) {
  // Before try_reap: once reaped (or a zombie) the child has no memory left to report.
  const auto sample = [&] {
    if (peak_kb) *peak_kb = std::max(*peak_kb, peak_rss_kb(child.pid()));
  };
  for (sample(); !child.try_reap(); sample()) {
    if (ready && ready(output)) return WaitOutcome::output_ready;
    const Clock::duration remaining = deadline - Clock::now();
    if (remaining <= Clock::duration::zero()) return WaitOutcome::timed_out;
    pollfd fds[2];
    nfds_t count = 0;
    if (output_fd.valid()) fds[count++] = {output_fd.get(), POLLIN, 0};
    if (child.exit_fd() >= 0) fds[count++] = {child.exit_fd(), POLLIN, 0};
    const int polled = ::poll(fds, count, poll_timeout_ms(remaining, child.exit_fd() >= 0, peak_kb != nullptr));
    if (polled < 0 && errno != EINTR) return WaitOutcome::poll_failed;
    if (polled <= 0) continue;
    if (output_fd.valid() && fds[0].revents != 0 && !read_available(output_fd.get(), output)) {
      output_fd.reset();  // end of file: keep waiting for the exit alone
    }
    if (child.exit_fd() >= 0 && fds[count - 1].revents != 0) child.exit_fd_fired();
  }
  // The child is gone, so all it wrote is in the pipe. Take that, but do not wait for an
  // end of file that a grandchild still holding the pipe could delay.
  if (output_fd.valid()) read_available(output_fd.get(), output);
  return WaitOutcome::exited;
}

long peak_rss_kb(pid_t pid) {
  const std::string path = fmt::format("/proc/{}/status", pid);
  std::FILE* status = std::fopen(path.c_str(), "re");
  if (status == nullptr) return 0;
  long kb = 0;
  char line[256];
  while (std::fgets(line, sizeof line, status) != nullptr) {
    if (std::sscanf(line, "VmHWM: %ld kB", &kb) == 1) break;
  }
  std::fclose(status);
  return kb;
}

std::string signal_name(int signal) {
  const char* abbrev = ::sigabbrev_np(signal);
  const char* description = ::strsignal(signal);
  if (abbrev == nullptr) return fmt::format("signal {}", signal);
  return fmt::format("signal {} (SIG{}: {})", signal, abbrev, description != nullptr ? description : "?");
}

std::string describe_status(int status) {
  if (WIFSIGNALED(status)) return fmt::format("killed by {}", signal_name(WTERMSIG(status)));
  if (WIFEXITED(status)) return fmt::format("exited with code {}", WEXITSTATUS(status));
  return fmt::format("ended with wait status {:#x}", status);
}

std::string quoted_command(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& arg : argv) {
    if (!out.empty()) out += ' ';
    const bool plain = !arg.empty() && arg.find_first_of(" \t\n'\"\\$") == std::string::npos;
    out += plain ? arg : fmt::format("'{}'", arg);
  }
  return out;
}

std::string excerpt(std::string_view text) {
  constexpr std::size_t k_max = 200;
  std::string out;
  if (text.size() > k_max) {
    out = "...";
    text.remove_prefix(text.size() - k_max);
  }
  for (char c : text) out += (c == '\n' || c == '\r') ? ' ' : c;
  return out;
}

}  // namespace gearbox::bench::detail
