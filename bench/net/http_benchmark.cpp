// http_server: wrk against GET /health, keep-alive, on gearbox-api (examples/03_api_server:
// one loop, or a Runtime of --threads T workers) and on nginx answering the same "ok\n"
// (bench/peers/nginx: T worker processes), one after the other in the same run. At T = 1
// each server is pinned to CPU 0 and wrk to CPU 1 (with taskset), so "on one core" is
// literal and the load generator does not steal the server's core. At T > 1 nothing is
// pinned: on a machine with T cores or fewer, wrk's thread competes with the server's T
// for the same cores, alike for both servers.
// --n is the seconds each server is loaded (default 5); --connections, wrk's connections
// (default 50). Reported per server: requests/s, p50/p99 latency (wrk's), the server's
// CPU time per request and its peak RSS. The result is "all 2xx" when every response was
// 2xx and no socket errored; otherwise it says how many were not.
#include <sched.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <regex>
#include <string>
#include <thread>

#include "peer_runner.hpp"
#include "registry.hpp"
#include "server_peer.hpp"

namespace gearbox::bench {

namespace {

constexpr int k_default_connections = 50;
constexpr const char* k_all_ok = "all 2xx";

// Whether this process may run on CPUs 0 and 1 (where the server and wrk are pinned).
bool can_pin() {
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  return ::sched_getaffinity(0, sizeof cpus, &cpus) == 0 && CPU_ISSET(0, &cpus) && CPU_ISSET(1, &cpus);
}

// The server's argv, run on CPU 0 only (unchanged on a machine without CPUs 0 and 1, or
// for a server on several threads).
PeerSpec pinned_to_cpu0(const PeerSpec& server, int threads) {
  if (threads > 1 || !can_pin()) return server;
  PeerSpec pinned{server.name, {"taskset", "-c", "0"}};
  pinned.argv.insert(pinned.argv.end(), server.argv.begin(), server.argv.end());
  return pinned;
}

// Waits until 127.0.0.1:port accepts a connection (a peer may print its port before it
// listens), at most `limit`.
bool accepting(int port, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool connected = fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
    if (fd >= 0) ::close(fd);
    if (connected) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

// wrk's "1.23ms" / "456.78us" / "1.2s" in microseconds.
double wrk_duration_us(const std::string& number, const std::string& unit) {
  const double value = std::stod(number);
  if (unit == "us") return value;
  if (unit == "ms") return value * 1e3;
  if (unit == "s") return value * 1e6;
  return value * 60e6;  // "m"
}

struct WrkResult {
  bool ok = false;
  std::string error;
  long requests = 0;
  double seconds = 0;
  double requests_per_sec = 0;
  double p50_us = 0;
  double p99_us = 0;
  long non_2xx = 0;
  long socket_errors = 0;
};

// Runs wrk (pinned to CPU 1 where it can be, if the server is on one thread) against
// http://127.0.0.1:port/health and reads its report.
WrkResult run_wrk(int port, long seconds, int connections, int threads) {
  WrkResult result;
  const std::string command = std::string(threads == 1 && can_pin() ? "taskset -c 1 " : "") + "wrk -t1 -c" +
                              std::to_string(connections) + " -d" + std::to_string(seconds) +
                              "s --latency http://127.0.0.1:" + std::to_string(port) + "/health 2>&1";
  std::FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) {
    result.error = "cannot run wrk";
    return result;
  }
  std::string output;
  char buffer[4096];
  while (const std::size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, n);
  const int status = ::pclose(pipe);
  std::smatch m;
  if (status != 0 || !std::regex_search(output, m, std::regex(R"((\d+) requests in ([\d.]+)(\w+))"))) {
    result.error = "wrk failed (is it installed? scripts/setup installs it): " + output.substr(0, 300);
    return result;
  }
  result.requests = std::stol(m[1]);
  result.seconds = wrk_duration_us(m[2], m[3]) / 1e6;
  if (std::regex_search(output, m, std::regex(R"(Requests/sec:\s+([\d.]+))"))) result.requests_per_sec = std::stod(m[1]);
  if (std::regex_search(output, m, std::regex(R"(\n\s+50%\s+([\d.]+)(\w+))"))) result.p50_us = wrk_duration_us(m[1], m[2]);
  if (std::regex_search(output, m, std::regex(R"(\n\s+99%\s+([\d.]+)(\w+))"))) result.p99_us = wrk_duration_us(m[1], m[2]);
  if (std::regex_search(output, m, std::regex(R"(Non-2xx or 3xx responses: (\d+))"))) result.non_2xx = std::stol(m[1]);
  if (std::regex_search(output, m,
                        std::regex(R"(Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+))")))
    result.socket_errors = std::stol(m[1]) + std::stol(m[2]) + std::stol(m[3]) + std::stol(m[4]);
  result.ok = result.requests > 0;
  if (!result.ok) result.error = "wrk made no request: " + output.substr(0, 300);
  return result;
}

PeerSpec api_server(const BenchArgs& args) {
  return {"gearbox",
          {(executable_dir() / "gearbox-api").string(), "--port", "0", "--workers", "1", "--quiet", "--port-json", "--threads",
           std::to_string(args.threads)}};
}

nlohmann::json drive_http_server(const PeerSpec& server, long seconds, int connections, int threads) {
  using namespace std::chrono_literals;
  nlohmann::json report = {{"ok", false}};
  ServerPeer peer(pinned_to_cpu0(server, threads), 10s);
  if (!peer.started()) {
    report["error"] = peer.error();
    return report;
  }
  if (!accepting(peer.port(), 5s)) {
    report["error"] = "the server printed its port but did not accept connections";
    return report;
  }
  const WrkResult load = run_wrk(peer.port(), seconds, connections, threads);
  const ServerStats stats = peer.stop(5s);
  const bool all_ok = load.non_2xx == 0 && load.socket_errors == 0;
  report = {{"ok", load.ok && stats.ok},
            {"ms", load.seconds * 1000},
            {"result", all_ok ? std::string(k_all_ok)
                              : std::to_string(load.non_2xx) + " non-2xx, " + std::to_string(load.socket_errors) +
                                    " socket errors"},
            {"peak_rss_kb", stats.peak_rss_kb},
            {"requests", load.requests},
            {"requests_per_sec", load.requests_per_sec},
            {"p50_us", load.p50_us},
            {"p99_us", load.p99_us},
            {"connections", connections},
            {"threads", threads},
            {"server_cpu_us_per_request", load.requests > 0 ? stats.cpu_ms * 1000 / static_cast<double>(load.requests) : 0.0}};
  if (!load.ok) report["error"] = load.error;
  else if (!stats.ok) report["error"] = "server: " + stats.error;
  return report;
}

}  // namespace

std::vector<Benchmark> http_benchmarks() {
  std::vector<Benchmark> list;
  list.push_back(Benchmark{
      .name = "http_server",
      .description = "wrk on GET /health for n seconds (default 5), keep-alive, server on --threads cores (default 1): gearbox-api vs nginx",
      .default_n = 5,
      .valid_n = [](long n) { return n >= 1 && n <= 600; },
      .expected = [](long) { return nlohmann::json(k_all_ok); },
      .run =
          [](const BenchArgs& args) {
            const int connections = args.connections > 0 ? args.connections : k_default_connections;
            return run_from_server_report(drive_http_server(api_server(args), args.n, connections, args.threads));
          },
      .peer_args = {},
      .peer_name = "http",
      .default_threads = 1,
      .server_peers = {"nginx"},
      .threaded_server_peers = {"nginx"},
      .drive_server =
          [](const BenchArgs& args, const PeerSpec& server) {
            return drive_http_server(server, args.n, args.connections > 0 ? args.connections : k_default_connections,
                                     args.threads);
          },
      .gearbox_server = api_server,
  });
  return list;
}

}  // namespace gearbox::bench
