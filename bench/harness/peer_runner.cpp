// Runs a peer as a child process (posix_spawn), captures its stdout, enforces a time
// limit, reaps it and parses its JSON report. See peer_runner.hpp for the contract.
//
// The wait is one poll() loop over the stdout pipe and a pidfd for the child, so a child
// that closes stdout early, or leaves a grandchild holding the pipe open, is still seen
// to exit on time. Where pidfd_open is unavailable the loop polls the child every 10 ms.
#include "peer_runner.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string_view>
#include <utility>

#include <fmt/format.h>

extern char** environ;

namespace gearbox::bench {
namespace {

using Clock = std::chrono::steady_clock;

// Keep at most this much of a peer's stdout (the tail: the report is the last line).
constexpr std::size_t k_output_cap = 1 << 20;
// How often the child is checked when there is no pidfd to wake the poll.
constexpr std::chrono::milliseconds k_poll_tick{10};

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
  void reset() {
    if (m_fd >= 0) ::close(m_fd);
    m_fd = -1;
  }

 private:
  int m_fd = -1;
};

// A spawned child process, leader of its own process group. Whoever owns it guarantees it
// is reaped: if it has not been reaped when this is destroyed (an early return, an
// exception), it is killed and reaped.
class Child {
 public:
  explicit Child(pid_t pid) : m_pid(pid) {}
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() {
    if (!m_reaped) kill_and_reap();
  }

  pid_t pid() const { return m_pid; }
  bool reaped() const { return m_reaped; }
  // Valid once reaped(); nullopt if the status was lost (another waiter reaped it).
  const std::optional<int>& status() const { return m_status; }
  const rusage& usage() const { return m_usage; }

  // Reaps the child if it has exited; returns reaped().
  bool try_reap() { return wait(WNOHANG); }

  // Kills the child's whole process group (what it started too, as timeout(1) does),
  // then reaps the child. Only before the reap: until then the pid cannot be reused.
  void kill_and_reap() {
    if (m_reaped) return;
    ::kill(-m_pid, SIGKILL);  // harmless on a zombie
    ::kill(m_pid, SIGKILL);   // in case the child left its group
    wait(0);
  }

 private:
  bool wait(int options) {
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

  pid_t m_pid;
  bool m_reaped = false;
  std::optional<int> m_status;
  rusage m_usage{};
};

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

std::string signal_name(int signal) {
  const char* abbrev = ::sigabbrev_np(signal);
  const char* description = ::strsignal(signal);
  if (abbrev == nullptr) return fmt::format("signal {}", signal);
  return fmt::format("signal {} (SIG{}: {})", signal, abbrev, description != nullptr ? description : "?");
}

// The command line as one readable string, for error messages.
std::string quoted_command(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& arg : argv) {
    if (!out.empty()) out += ' ';
    const bool plain = !arg.empty() && arg.find_first_of(" \t\n'\"\\$") == std::string::npos;
    out += plain ? arg : fmt::format("'{}'", arg);
  }
  return out;
}

// A short, single-line excerpt of a peer's output for error messages.
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

// Appends what can be read from `fd` now. Returns false at end of file or on a read error.
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

// The last line of `output` that parses as a JSON object, or a discarded value.
nlohmann::json last_json_object(std::string_view output) {
  while (!output.empty()) {
    std::size_t end = output.size();
    while (end > 0 && (output[end - 1] == '\n' || output[end - 1] == '\r')) --end;
    const std::size_t start = output.rfind('\n', end == 0 ? 0 : end - 1);
    const std::size_t begin = start == std::string_view::npos ? 0 : start + 1;
    const std::string_view line = output.substr(begin, end - begin);
    const std::size_t first = line.find_first_not_of(" \t");
    if (first != std::string_view::npos && line[first] == '{') {
      auto parsed = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (parsed.is_object()) return parsed;
    }
    output = output.substr(0, begin);
  }
  return nlohmann::json::value_t::discarded;
}

int poll_timeout_ms(Clock::duration remaining, bool have_pidfd) {
  auto wait = std::chrono::ceil<std::chrono::milliseconds>(remaining);
  if (!have_pidfd) wait = std::min(wait, k_poll_tick);
  wait = std::clamp(wait, std::chrono::milliseconds{0}, std::chrono::milliseconds{60'000});
  return static_cast<int>(wait.count());
}

// Everything that can fail with an exception lives here; run_peer catches.
PeerResult run_peer_unguarded(const PeerSpec& spec, std::chrono::milliseconds limit) {
  PeerResult result;
  result.name = spec.name;
  if (spec.argv.empty() || spec.argv.front().empty()) {
    result.error = "no program given (empty argv)";
    return result;
  }
  const std::string& program = spec.argv.front();

  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    result.error = fmt::format("cannot create a pipe: {}", std::strerror(errno));
    return result;
  }
  Fd read_end(pipe_fds[0]);
  Fd write_end(pipe_fds[1]);
  // Non-blocking on our side only: the child's stdout stays blocking.
  ::fcntl(read_end.get(), F_SETFL, ::fcntl(read_end.get(), F_GETFL) | O_NONBLOCK);

  SpawnActions actions;
  posix_spawn_file_actions_addopen(&actions.actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions.actions, write_end.get(), STDOUT_FILENO);  // clears CLOEXEC

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
  // Its own process group, so that a timeout can kill everything the peer started.
  posix_spawnattr_setpgroup(&attributes.attributes, 0);
  posix_spawnattr_setflags(&attributes.attributes,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);

  std::vector<char*> argv;
  argv.reserve(spec.argv.size() + 1);
  for (const auto& arg : spec.argv) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);

  pid_t pid = 0;
  const Clock::time_point started = Clock::now();
  const int spawn_error = ::posix_spawnp(&pid, program.c_str(), &actions.actions, &attributes.attributes,
                                         argv.data(), environ);
  if (spawn_error != 0) {
    result.error = spawn_error == ENOENT
                       ? fmt::format("peer program not found: {}", program)
                       : fmt::format("cannot start {}: {}", program, std::strerror(spawn_error));
    return result;
  }
  Child child(pid);
  write_end.reset();  // so that the pipe reaches end of file when the child is done with it

  Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));  // close-on-exec by default
  const Clock::time_point deadline = started + limit;
  std::string output;
  bool timed_out = false;

  bool pidfd_fired = false;
  while (!child.try_reap()) {
    // A pidfd that reported an exit wait4 cannot see yet would make this loop spin: from
    // then on, fall back to polling the child.
    if (pidfd_fired) pidfd.reset();
    const Clock::duration remaining = deadline - Clock::now();
    if (remaining <= Clock::duration::zero()) {
      timed_out = true;
      child.kill_and_reap();
      break;
    }
    pollfd fds[2];
    nfds_t count = 0;
    if (read_end.valid()) fds[count++] = {read_end.get(), POLLIN, 0};
    if (pidfd.valid()) fds[count++] = {pidfd.get(), POLLIN, 0};
    const int ready = ::poll(fds, count, poll_timeout_ms(remaining, pidfd.valid()));
    if (ready < 0 && errno != EINTR) {
      result.error = fmt::format("poll failed: {}", std::strerror(errno));
      return result;  // ~Child kills and reaps
    }
    if (ready <= 0) continue;
    if (read_end.valid() && fds[0].revents != 0 && !read_available(read_end.get(), output)) {
      read_end.reset();  // end of file: keep waiting for the exit alone
    }
    if (pidfd.valid() && fds[count - 1].revents != 0) pidfd_fired = true;
  }
  // The child is gone, so all it wrote is in the pipe. Take that, but do not wait for an
  // end of file that a grandchild still holding the pipe could delay.
  if (read_end.valid()) read_available(read_end.get(), output);

  const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
  result.peak_rss_kb = child.usage().ru_maxrss;

  const nlohmann::json report = last_json_object(output);
  if (!report.is_discarded()) {
    result.extra = report;
    if (auto it = report.find("result"); it != report.end()) result.result = *it;
    if (auto it = report.find("ms"); it != report.end() && it->is_number()) result.ms = it->get<double>();
  }

  const std::string command = quoted_command(spec.argv);
  if (timed_out) {
    result.error = fmt::format("timed out: still running after {} ms; killed it and its process group ({})",
                               limit.count(), command);
  } else if (!child.status()) {
    result.error = fmt::format("exit status lost: the child was reaped elsewhere (is SIGCHLD ignored?) ({})",
                               command);
  } else if (const int status = *child.status(); WIFSIGNALED(status)) {
    result.error = fmt::format("killed by {} after {} ms ({})", signal_name(WTERMSIG(status)), elapsed.count(),
                               command);
  } else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
    // A peer that refuses a size it cannot run says why in its report's "error".
    const auto reason = report.find("error");  // end() unless the report is an object with one
    result.error = reason != report.end() && reason->is_string()
                       ? fmt::format("exited with code {}: {} ({})", WEXITSTATUS(status), reason->get<std::string>(),
                                     command)
                       : fmt::format("exited with code {} ({})", WEXITSTATUS(status), command);
  } else if (report.is_discarded()) {
    result.error = output.empty() ? fmt::format("printed nothing on stdout, expected a JSON line ({})", command)
                                  : fmt::format("bad JSON: no line of stdout is a JSON object; stdout ends '{}' ({})",
                                                excerpt(output), command);
  } else if (auto ms = report.find("ms"); ms == report.end() || !ms->is_number()) {
    result.error = fmt::format("bad JSON: no numeric \"ms\" field in {} ({})", excerpt(report.dump()), command);
  } else {
    result.ok = true;
  }
  return result;
}

// The first executable called `name` in the directories of $PATH, or `name` itself.
std::string find_on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string_view dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  while (true) {
    const std::size_t colon = dirs.find(':');
    const std::string_view dir = dirs.substr(0, colon);
    if (!dir.empty()) {
      const std::string candidate = fmt::format("{}/{}", dir, name);
      if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    if (colon == std::string_view::npos) break;
    dirs.remove_prefix(colon + 1);
  }
  return name;
}

bool is_file(const std::filesystem::path& path) {
  std::error_code error;
  return std::filesystem::is_regular_file(path, error);
}

}  // namespace

PeerResult run_peer(const PeerSpec& spec, std::chrono::milliseconds limit) {
  try {
    return run_peer_unguarded(spec, limit);
  } catch (const std::exception& error) {
    PeerResult result;
    result.name = spec.name;
    result.error = fmt::format("internal error while running the peer: {}", error.what());
    return result;
  } catch (...) {
    PeerResult result;
    result.name = spec.name;
    result.error = "internal error while running the peer";
    return result;
  }
}

std::filesystem::path executable_dir() {
  std::error_code error;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", error);
  if (error) return {};
  return self.parent_path();
}

std::vector<PeerSpec> find_peers_in(const std::filesystem::path& dir, const std::string& bench, long n,
                                    const std::vector<std::string>& extra_args) {
  std::vector<PeerSpec> peers;
  if (dir.empty()) return peers;
  auto add = [&](std::string name, std::vector<std::string> argv) {
    argv.push_back("--n");
    argv.push_back(std::to_string(n));
    argv.insert(argv.end(), extra_args.begin(), extra_args.end());
    peers.push_back({std::move(name), std::move(argv)});
  };
  if (const auto asio = dir / ("peer-asio-" + bench); is_file(asio)) add("asio", {asio.string()});
  if (const auto go = dir / ("peer-go-" + bench); is_file(go)) add("go", {go.string()});
  if (const auto python = dir / "peers" / "python" / (bench + ".py"); is_file(python)) {
    add("python", {find_on_path("python3"), python.string()});
  }
  if (const auto tbb = dir / ("peer-tbb-" + bench); is_file(tbb)) add("tbb", {tbb.string()});
  if (const auto stdasync = dir / ("peer-stdasync-" + bench); is_file(stdasync)) add("std::async", {stdasync.string()});
  return peers;
}

std::vector<PeerSpec> find_peers(const std::string& bench, long n, const std::vector<std::string>& extra_args) {
  return find_peers_in(executable_dir(), bench, n, extra_args);
}

void to_json(nlohmann::json& j, const PeerResult& peer) {
  j = nlohmann::json::object();
  if (peer.extra.is_object()) {
    for (const auto& [key, value] : peer.extra.items()) j[key] = value;
  }
  j["ok"] = peer.ok;
  j["ms"] = peer.ms;
  j["peak_rss_kb"] = peer.peak_rss_kb;
  j["result"] = peer.result;
  if (!peer.ok) j["error"] = peer.error;
}

}  // namespace gearbox::bench
