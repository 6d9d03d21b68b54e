// Starts a server peer, reads its port, stops it and reaps it. See server_peer.hpp for
// the contract; the child-process pieces are child_process.hpp's, shared with run_peer.
#include "server_peer.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <string_view>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "child_process.hpp"

namespace gearbox::bench {

using detail::Clock;

namespace {

constexpr std::chrono::milliseconds k_destructor_stop_limit{2000};

// The port in the first complete line of `output` that is a JSON object with an integer
// "port" in 1..65535; nullopt if there is no such line yet. A line still being written
// (no '\n' yet) is not looked at.
std::optional<int> find_port_line(std::string_view output) {
  while (true) {
    const std::size_t newline = output.find('\n');
    if (newline == std::string_view::npos) return std::nullopt;
    const std::string_view line = output.substr(0, newline);
    output.remove_prefix(newline + 1);
    const std::size_t first = line.find_first_not_of(" \t\r");
    if (first == std::string_view::npos || line[first] != '{') continue;
    const auto parsed = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!parsed.is_object()) continue;
    const auto port = parsed.find("port");
    if (port == parsed.end() || !port->is_number_integer()) continue;
    const auto value = port->get<long long>();
    if (value >= 1 && value <= 65535) return static_cast<int>(value);
  }
}

double cpu_ms(const rusage& usage) {
  auto ms = [](const timeval& t) { return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_usec) / 1e3; };
  return ms(usage.ru_utime) + ms(usage.ru_stime);
}

}  // namespace

struct ServerPeer::State {
  std::string name;
  std::string command;  // for error messages
  std::string error;    // why the start failed
  int port = 0;
  std::optional<detail::Child> child;  // engaged from the spawn until the server is reaped
  detail::Fd stdin_write_end;          // closing it is the server's first cue to stop
  detail::Fd stdout_read_end;          // non-blocking
  std::string output;                  // its stdout, up to the port line (and after, at stop)
  std::optional<ServerStats> stats;    // set by the first stop()

  void start(const PeerSpec& spec, std::chrono::milliseconds startup_limit);
  ServerStats stop(std::chrono::milliseconds limit);
};

void ServerPeer::State::start(const PeerSpec& spec, std::chrono::milliseconds startup_limit) {
  name = spec.name;
  if (spec.argv.empty() || spec.argv.front().empty()) {
    error = "no program given (empty argv)";
    return;
  }
  command = detail::quoted_command(spec.argv);
  detail::Pipe stdin_pipe = detail::make_pipe();
  detail::Pipe stdout_pipe = detail::make_pipe();
  if (!stdin_pipe.read_end.valid() || !stdout_pipe.read_end.valid()) {
    error = fmt::format("cannot create a pipe: {}", std::strerror(errno));
    return;
  }
  // Non-blocking on our side only: the child's stdout stays blocking.
  ::fcntl(stdout_pipe.read_end.get(), F_SETFL, ::fcntl(stdout_pipe.read_end.get(), F_GETFL) | O_NONBLOCK);

  pid_t pid = 0;
  const Clock::time_point started = Clock::now();
  const detail::ChildStdio stdio{.stdin_fd = stdin_pipe.read_end.get(), .stdout_fd = stdout_pipe.write_end.get()};
  if (detail::spawn_child(spec.argv, stdio, pid, error) != 0) return;
  child.emplace(pid);
  // Only the child holds these ends now: its stdout reaches end of file when it exits,
  // and its stdin when we close stdin_write_end.
  stdin_pipe.read_end.reset();
  stdout_pipe.write_end.reset();
  stdin_write_end = std::move(stdin_pipe.write_end);
  stdout_read_end = std::move(stdout_pipe.read_end);

  std::optional<int> found;
  const auto outcome = detail::wait_for_child(*child, stdout_read_end, output, started + startup_limit,
                                              [&found](std::string_view text) {
                                                found = find_port_line(text);
                                                return found.has_value();
                                              });
  if (outcome == detail::WaitOutcome::output_ready) {
    port = *found;
    output.clear();
    return;
  }

  const std::string printed = output.empty() ? std::string("nothing")
                                             : fmt::format("'{}'", detail::excerpt(output));
  switch (outcome) {
    case detail::WaitOutcome::exited:
      error = child->status()
                  ? fmt::format("{} {} (a {{\"port\": N}} line); it printed {} ({})",
                                detail::describe_status(*child->status()),
                                find_port_line(output) ? "just after printing its port" : "before printing its port",
                                printed, command)
                  : fmt::format("exit status lost before it printed its port: the child was reaped elsewhere "
                                "(is SIGCHLD ignored?) ({})",
                                command);
      break;
    case detail::WaitOutcome::timed_out:
      child->kill_and_reap();
      error = fmt::format("did not print its port (a {{\"port\": N}} line) within the start-up limit of {} ms; "
                          "killed it and its process group; it printed {} ({})",
                          startup_limit.count(), printed, command);
      break;
    case detail::WaitOutcome::poll_failed:
      error = fmt::format("poll failed while waiting for its port: {}", std::strerror(errno));
      child->kill_and_reap();
      break;
    case detail::WaitOutcome::output_ready:
      break;
  }
  child.reset();
  stdin_write_end.reset();
  stdout_read_end.reset();
}

ServerStats ServerPeer::State::stop(std::chrono::milliseconds limit) {
  if (stats) return *stats;
  ServerStats result;
  if (port == 0) {
    result.error = error.empty() ? std::string("the server did not start") : error;
    stats = result;
    return result;
  }

  // A server that is already gone did not wait to be stopped: a crash, or an early exit.
  const bool exited_early = child->try_reap();
  bool timed_out = false;
  bool poll_failed = false;
  long peak_rss_kb = 0;
  if (!exited_early) {
    // Its peak memory so far, taken while it still has memory to report; stopping does
    // not add to it.
    peak_rss_kb = detail::peak_rss_kb(child->pid());
    stdin_write_end.reset();
    child->signal_group(SIGTERM);
    // Drain its stdout meanwhile, so that a server that prints on its way out cannot
    // block on a full pipe.
    switch (detail::wait_for_child(*child, stdout_read_end, output, Clock::now() + limit)) {
      case detail::WaitOutcome::exited:
      case detail::WaitOutcome::output_ready:  // (no `ready` given)
        break;
      case detail::WaitOutcome::timed_out:
        timed_out = true;
        break;
      case detail::WaitOutcome::poll_failed:
        poll_failed = true;
        result.error = fmt::format("poll failed while waiting for it to exit: {}; killed it and its process group",
                                   std::strerror(errno));
        break;
    }
    if (timed_out || poll_failed) child->kill_and_reap();
  }

  result.cpu_ms = cpu_ms(child->usage());
  result.peak_rss_kb = peak_rss_kb;
  const std::optional<int> status = child->status();
  result.exit = status ? detail::describe_status(*status) : "exit status lost";

  if (poll_failed) {
    // error set above
  } else if (!status) {
    result.error = fmt::format("exit status lost: the child was reaped elsewhere (is SIGCHLD ignored?) ({})",
                               command);
  } else if (exited_early) {
    result.error = fmt::format("the server had already ended before it was stopped: {} ({})", result.exit, command);
  } else if (timed_out) {
    result.error = fmt::format("did not exit within {} ms of its stdin closing and SIGTERM; killed it and its "
                               "process group with SIGKILL ({})",
                               limit.count(), command);
  } else if (const bool clean = (WIFEXITED(*status) && WEXITSTATUS(*status) == 0) ||
                                (WIFSIGNALED(*status) && WTERMSIG(*status) == SIGTERM);
             !clean) {
    result.error = fmt::format("{} when stopped ({})", result.exit, command);
  } else {
    result.ok = true;
  }

  child.reset();
  stdout_read_end.reset();
  stats = result;
  return result;
}

ServerPeer::ServerPeer(const PeerSpec& spec, std::chrono::milliseconds startup_limit) {
  try {
    m_state = std::make_unique<State>();
    m_state->start(spec, startup_limit);
  } catch (...) {
    // Only allocations can throw in there.
    if (m_state) {
      m_state->child.reset();  // kills and reaps it, if it was started
      m_state->port = 0;
      m_state->error = "internal error (out of memory?) while starting the server";
    }
  }
}

ServerPeer::~ServerPeer() {
  if (m_state) stop(k_destructor_stop_limit);
}

ServerPeer::ServerPeer(ServerPeer&&) noexcept = default;

ServerPeer& ServerPeer::operator=(ServerPeer&& other) noexcept {
  if (this != &other) {
    if (m_state) stop(k_destructor_stop_limit);
    m_state = std::move(other.m_state);
  }
  return *this;
}

bool ServerPeer::started() const { return m_state && m_state->port != 0; }

const std::string& ServerPeer::error() const {
  static const std::string k_moved_from = "no server: this ServerPeer was moved from, or could not be set up";
  if (!m_state) return k_moved_from;
  return m_state->error;
}

int ServerPeer::port() const { return m_state ? m_state->port : 0; }

pid_t ServerPeer::pid() const {
  return m_state && m_state->child && !m_state->child->reaped() ? m_state->child->pid() : 0;
}

const std::string& ServerPeer::name() const {
  static const std::string k_none;
  return m_state ? m_state->name : k_none;
}

ServerStats ServerPeer::stop(std::chrono::milliseconds limit) {
  if (!m_state) {
    ServerStats moved;
    moved.error = error();
    return moved;
  }
  try {
    return m_state->stop(limit);
  } catch (...) {
    // Only allocations can throw in there. Kill and reap the server; a later stop()
    // then reports it as not started.
    m_state->child.reset();
    m_state->port = 0;
    ServerStats failed;
    failed.error = "internal error (out of memory?) while stopping the server; killed it";
    return failed;
  }
}

}  // namespace gearbox::bench
