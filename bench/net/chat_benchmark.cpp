// chat_10k: the chat server of examples/02_chat with n clients (10,000 by default).
//
// Runs gearbox-chat-load --spawn gearbox-chat (both next to gearbox-bench in bin/) as a
// child process, so the server, the load generator and gearbox-bench are three processes
// and the server's figures are its own. The load generator connects n clients, has
// min(n, 100) of them send 10 messages each, and checks that each of the other n - 1
// clients got every one exactly once and in order; see examples/02_chat/load.cpp for the
// scheme. The result is the number of deliveries, checked against
// talkers * 10 * (n - 1). Figures in `extra`: messages and deliveries per second, p50 /
// p99 delivery latency, the server's peak RSS (VmHWM), the time to connect everyone.
// The server runs on --threads T (default 1: gearbox-chat on one loop; more: on a
// gb::Runtime of T workers). The peer: bin/peer-go-chat_server (bench/peers/go/
// chat_server.go: the same protocol, a goroutine per client, GOMAXPROCS = T), spawned by
// the same load generator, so both servers face the very same clients and checks. On 2
// cores a 2-thread server competes with the load generator for them, every peer alike:
// nothing is pinned.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "peer_runner.hpp"
#include "registry.hpp"

namespace gearbox::bench {
namespace {

constexpr long k_messages = 10;  // per talker
constexpr long k_max_talkers = 100;

long talkers_for(long n) { return std::min(n, k_max_talkers); }

// Runs gearbox-chat-load against the server `server` (argv[0] a chat server program, the
// rest its extra arguments).
BenchRun run_chat(const BenchArgs& args, const PeerSpec& server) {
  const std::filesystem::path dir = executable_dir();
  PeerSpec spec{"gearbox-chat-load",
                {(dir / "gearbox-chat-load").string(), "--spawn", server.argv.at(0), "--clients", std::to_string(args.n),
                 "--talkers", std::to_string(talkers_for(args.n)), "--messages", std::to_string(k_messages),
                 "--time-limit", "120", "--json"}};
  std::string extra;
  for (std::size_t i = 1; i < server.argv.size(); ++i) extra += (extra.empty() ? "" : " ") + server.argv[i];
  if (!extra.empty()) {
    spec.argv.push_back("--server-args");
    spec.argv.push_back(extra);
  }
  const PeerResult load = run_peer(spec, std::chrono::minutes{3});
  BenchRun run;
  if (!load.extra.is_object()) {
    run.result = nullptr;
    run.extra["error"] = load.error.empty() ? "gearbox-chat-load printed no report" : load.error;
    return run;
  }
  const nlohmann::json& r = load.extra;
  run.ms = r.value("ms", 0.0);
  // A failed check (a lost, duplicated or echoed message, a bad exit) makes the result
  // wrong even when the count happens to match.
  run.result = load.ok && r.value("ok", false) ? r["delivered"] : nlohmann::json(nullptr);
  for (const char* key : {"messages_per_s", "deliveries_per_s", "latency_p50_ms", "latency_p99_ms", "latency_max_ms",
                          "server_peak_rss_kb", "connect_s", "talkers", "missing", "duplicates", "server_exit"})
    if (r.contains(key)) run.extra[key] = r[key];
  run.peak_rss_kb = r.value("server_peak_rss_kb", 0L);  // the server's, not gearbox-bench's
  if (!load.ok) run.extra["error"] = load.error;
  return run;
}

}  // namespace

std::vector<Benchmark> chat_benchmarks() {
  return {
      Benchmark{
          .name = "chat_10k",
          .description = "chat server (examples/02_chat) on --threads T (default 1), n clients, 100 talkers x 10 messages: deliveries/s, p99, server RSS",
          .default_n = 10000,
          .valid_n = [](long n) { return n >= 2 && n <= 100000; },
          .expected = [](long n) { return nlohmann::json(talkers_for(n) * k_messages * (n - 1)); },
          .run =
              [](const BenchArgs& args) {
                return run_chat(args, {"gearbox", {(executable_dir() / "gearbox-chat").string(), "--threads",
                                                   std::to_string(args.threads)}});
              },
          .peer_args = {},
          .peer_name = "chat",
          .default_threads = 1,
          .server_peers = {"go"},
          .threaded_server_peers = {"go"},
          .drive_server =
              [](const BenchArgs& args, const PeerSpec& server) {
                const BenchRun run = run_chat(args, server);
                nlohmann::json report = run.extra;
                report["ok"] = !run.result.is_null() && !run.extra.contains("error");
                report["ms"] = run.ms;
                report["result"] = run.result;
                report["peak_rss_kb"] = run.peak_rss_kb;
                return report;
              },
      },
  };
}

}  // namespace gearbox::bench
