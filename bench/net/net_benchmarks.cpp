// The I/O engine's benchmarks: servers under the same load.
//
// tcp_echo: C connections doing request/response ping-pong (64-byte messages) over
// loopback against an echo server on --threads T threads (default 1: one loop). The same
// neutral load generator (bench/harness/echo_load.hpp: plain epoll, no gearbox) drives
// gearbox's server (bin/gearbox-echo-server: a Loop at T = 1, a Runtime of T workers
// above) and each peer server (bin/peer-asio-tcp_echo_server: T io_contexts, one per
// thread; bin/peer-go-tcp_echo_server: a goroutine per connection at GOMAXPROCS = T;
// bin/peer-uv-tcp_echo_server: one loop, so at T = 1 only; bin/peer-uring-tcp_echo_server:
// one io_uring used directly through liburing, at T = 1 only, what io_uring itself gives for
// sockets), one after another in the same run. Nothing is pinned: on a machine with T cores
// or fewer the load generator's thread competes with the server's for the same cores, alike
// for every server. Reported per server:
// requests/s, p50/p99 round trip, the server's CPU time per request and its peak RSS.
// Server and load generator share the machine's cores, so requests/s is bounded by both;
// the server's CPU per request is the figure that is the server's alone.
#include <filesystem>
#include <vector>

#include <gearbox/io_backend.hpp>
#include <string>

#include "echo_load.hpp"
#include "peer_runner.hpp"
#include "registry.hpp"
#include "server_peer.hpp"

namespace gearbox::bench {

namespace {

constexpr int k_default_connections = 100;

PeerSpec echo_server(const BenchArgs& args) {
  return {"gearbox", {(executable_dir() / "gearbox-echo-server").string(), "--threads", std::to_string(args.threads)}};
}

// Starts `server`, drives it with the echo load, stops it: the figures as a peer report.
nlohmann::json drive_echo_server(const PeerSpec& server, long requests, int connections, int threads) {
  using namespace std::chrono_literals;
  nlohmann::json report = {{"ok", false}};
  ServerPeer peer(server, 10s);
  if (!peer.started()) {
    report["error"] = peer.error();
    return report;
  }
  const EchoLoadResult load = run_echo_load(
      {.port = peer.port(), .connections = connections, .requests = requests, .message_bytes = 64, .time_limit = 120s});
  const ServerStats stats = peer.stop(5s);
  report = {{"ok", load.ok && stats.ok},
            {"ms", load.seconds * 1000},
            {"result", load.requests_done},
            {"peak_rss_kb", stats.peak_rss_kb},
            {"requests_per_sec", load.requests_per_sec},
            {"p50_us", load.p50_us},
            {"p99_us", load.p99_us},
            {"connections", connections},
            {"threads", threads},
            {"server_cpu_us_per_request", load.requests_done > 0 ? stats.cpu_ms * 1000 / load.requests_done : 0.0}};
  if (!load.ok) report["error"] = load.error;
  else if (!stats.ok) report["error"] = "server: " + stats.error;
  return report;
}

}  // namespace

std::vector<PeerSpec> variants_of_server(const PeerSpec& spec) {
  auto with_env = [&](std::string name, std::string assignment) {
    PeerSpec variant{std::move(name), {"/usr/bin/env", std::move(assignment)}};
    variant.argv.insert(variant.argv.end(), spec.argv.begin(), spec.argv.end());
    return variant;
  };
  std::vector<PeerSpec> variants{with_env("gearbox/epoll", "GEARBOX_IO_BACKEND=epoll")};
  if (io_uring_support().socket_completion)
    variants.push_back(with_env("gearbox/completion", "GEARBOX_SOCKET_IO=completion"));
  return variants;
}

BenchRun run_from_server_report(const nlohmann::json& report) {
  BenchRun run;
  run.ms = report.value("ms", 0.0);
  run.result = report.value("result", nlohmann::json());
  run.peak_rss_kb = report.value("peak_rss_kb", 0L);
  run.extra = report;
  run.extra.erase("ms");
  run.extra.erase("result");
  run.extra.erase("peak_rss_kb");
  return run;
}

std::vector<Benchmark> net_benchmarks() {
  std::vector<Benchmark> list;
  list.push_back(Benchmark{
      .name = "tcp_echo",
      .description = "n echo round trips over loopback on --connections connections (default 100), servers on --threads threads (default 1)",
      .default_n = 200'000,
      .valid_n = [](long n) { return n >= 1; },
      .expected = [](long n) { return nlohmann::json(n); },
      .run =
          [](const BenchArgs& args) {
            const int connections = args.connections > 0 ? args.connections : k_default_connections;
            return run_from_server_report(drive_echo_server(echo_server(args), args.n, connections, args.threads));
          },
      .peer_args = {},
      .peer_name = {},
      .default_threads = 1,
      .server_peers = {"asio", "uv", "uring", "go"},
      .threaded_server_peers = {"asio", "go"},
      .drive_server =
          [](const BenchArgs& args, const PeerSpec& server) {
            return drive_echo_server(server, args.n, args.connections > 0 ? args.connections : k_default_connections,
                                     args.threads);
          },
      .gearbox_server = echo_server,
  });
  return list;
}

}  // namespace gearbox::bench
