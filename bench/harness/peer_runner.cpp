// Runs a peer as a child process (posix_spawn), captures its stdout, enforces a time
// limit, reaps it and parses its JSON report. See peer_runner.hpp for the contract.
//
// Starting, watching and reaping the child are child_process.hpp's (shared with
// ServerPeer): one poll() loop over the stdout pipe and a pidfd for the child, so a child
// that closes stdout early, or leaves a grandchild holding the pipe open, is still seen
// to exit on time. Where pidfd_open is unavailable the loop polls the child every 10 ms.
#include "peer_runner.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <utility>

#include <fmt/format.h>

#include "child_process.hpp"

namespace gearbox::bench {
namespace {

using detail::Child;
using detail::Clock;
using detail::Fd;

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

// Everything that can fail with an exception lives here; run_peer catches.
PeerResult run_peer_unguarded(const PeerSpec& spec, std::chrono::milliseconds limit) {
  PeerResult result;
  result.name = spec.name;
  if (spec.argv.empty() || spec.argv.front().empty()) {
    result.error = "no program given (empty argv)";
    return result;
  }

  detail::Pipe stdout_pipe = detail::make_pipe();
  if (!stdout_pipe.read_end.valid()) {
    result.error = fmt::format("cannot create a pipe: {}", std::strerror(errno));
    return result;
  }
  // Non-blocking on our side only: the child's stdout stays blocking.
  ::fcntl(stdout_pipe.read_end.get(), F_SETFL, ::fcntl(stdout_pipe.read_end.get(), F_GETFL) | O_NONBLOCK);

  pid_t pid = 0;
  const Clock::time_point started = Clock::now();
  if (detail::spawn_child(spec.argv, {.stdin_fd = -1, .stdout_fd = stdout_pipe.write_end.get()}, pid,
                          result.error) != 0) {
    return result;
  }
  Child child(pid);
  stdout_pipe.write_end.reset();  // so that the pipe reaches end of file when the child is done with it

  std::string output;
  bool timed_out = false;
  // Its peak memory is sampled while it runs (VmHWM): wait4's ru_maxrss would report at
  // least this process's peak, which a child started by posix_spawn inherits (see
  // detail::peak_rss_kb).
  switch (detail::wait_for_child(child, stdout_pipe.read_end, output, started + limit, {}, &result.peak_rss_kb)) {
    case detail::WaitOutcome::exited:
    case detail::WaitOutcome::output_ready:  // (no `ready` given)
      break;
    case detail::WaitOutcome::timed_out:
      timed_out = true;
      child.kill_and_reap();
      break;
    case detail::WaitOutcome::poll_failed:
      result.error = fmt::format("poll failed: {}", std::strerror(errno));
      return result;  // ~Child kills and reaps
  }

  const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);

  const nlohmann::json report = last_json_object(output);
  if (!report.is_discarded()) {
    result.extra = report;
    if (auto it = report.find("result"); it != report.end()) result.result = *it;
    if (auto it = report.find("ms"); it != report.end() && it->is_number()) result.ms = it->get<double>();
  }

  const std::string command = detail::quoted_command(spec.argv);
  if (timed_out) {
    result.error = fmt::format("timed out: still running after {} ms; killed it and its process group ({})",
                               limit.count(), command);
  } else if (!child.status()) {
    result.error = fmt::format("exit status lost: the child was reaped elsewhere (is SIGCHLD ignored?) ({})",
                               command);
  } else if (const int status = *child.status(); WIFSIGNALED(status)) {
    result.error = fmt::format("killed by {} after {} ms ({})", detail::signal_name(WTERMSIG(status)), elapsed.count(),
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
                                                detail::excerpt(output), command);
  } else if (auto ms = report.find("ms"); ms == report.end() || !ms->is_number()) {
    result.error = fmt::format("bad JSON: no numeric \"ms\" field in {} ({})", detail::excerpt(report.dump()), command);
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
