// gearbox-bench NAME [--n N] [--threads T] [--json] [--peers LIST|none] [--peer-timeout D]
//                    [--rounds R]
//
// Runs one benchmark: gearbox's version in this process, then each peer (the same work in
// Asio, Go, asyncio...) as a child process, side by side in the same invocation so that
// ratios hold on a noisy machine. Checks every result against the expected one.
//   --json   one JSON object per line: bench, n, ms, peak_rss_kb, result, expected, ok,
//            extra figures, and peers: {name: {ms, peak_rss_kb, result, ok}}.
//   --peer-timeout D   how long a peer may run before it is killed: 2s, 500ms, 1.5 (seconds),
//            5m... (default 5m)
//   --rounds R   server benchmarks: R rounds in a row, each every peer and gearbox, each
//            round starting one server further (the order rotates), and then gearbox's
//            speedup over each peer per round (its median, min and max):
//            on a VM whose speed drifts from minute to minute, alternating rounds keep
//            the ratio honest where one long run of each would not. With --json, one
//            report per round, then {"bench", "rounds", "speedup": {peer: {median, min,
//            max, each}}}.
// Exit status: 0 if gearbox's result is correct, 1 if not, 2 on bad arguments.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <cstdio>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <gearbox/process/init.hpp>

#include "cli/duration_option.hpp"
#include "peer_runner.hpp"
#include "registry.hpp"

namespace gb = gearbox::bench;
using nlohmann::json;

namespace {

std::vector<gb::Benchmark> all_benchmarks() {
  std::vector<gb::Benchmark> all = gb::async_benchmarks();
  for (auto& b : gb::runtime_benchmarks()) all.push_back(std::move(b));
  for (auto& b : gb::thread_benchmarks()) all.push_back(std::move(b));
  for (auto& b : gb::chat_benchmarks()) all.push_back(std::move(b));
  for (auto& b : gb::net_benchmarks()) all.push_back(std::move(b));
  for (auto& b : gb::http_benchmarks()) all.push_back(std::move(b));
#ifdef GEARBOX_BENCH_HAS_CRAWL
  for (auto& b : gb::crawl_benchmarks()) all.push_back(std::move(b));
#endif
  for (auto& b : gb::process_benchmarks()) all.push_back(std::move(b));
  for (auto& b : gb::file_benchmarks()) all.push_back(std::move(b));
  return all;
}

long peak_rss_kb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

std::vector<std::string> split(const std::string& list) {
  std::vector<std::string> items;
  std::stringstream stream(list);
  for (std::string item; std::getline(stream, item, ',');)
    if (!item.empty()) items.push_back(item);
  return items;
}

// Server benchmarks: the throughput and what each server paid for it, and gearbox's ratio.
void print_server_table(const json& report) {
  const json& mine = report["extra"];
  if (!mine.is_object() || !mine.contains("requests_per_sec")) return;
  std::printf("\n  %-10s %12s %9s %9s %13s %12s\n", "server", "requests/s", "p50 us", "p99 us", "cpu us/req",
              "vs gearbox");
  const double gearbox_rps = mine.value("requests_per_sec", 0.0);
  auto row = [&](const std::string& name, const json& r) {
    const double rps = r.value("requests_per_sec", 0.0);
    std::printf("  %-10s %12.0f %9.1f %9.1f %13.2f %11.2fx\n", name.c_str(), rps, r.value("p50_us", 0.0),
                r.value("p99_us", 0.0), r.value("server_cpu_us_per_request", 0.0), rps > 0 ? gearbox_rps / rps : 0.0);
  };
  row("gearbox", mine);
  for (const auto& [name, peer] : report["peers"].items())
    if (peer.value("ok", false)) row(name, peer);
}

// chat_10k: the delivery rate and latency of each chat server under the same clients.
void print_chat_table(const json& report) {
  const json& mine = report["extra"];
  if (!mine.is_object() || !mine.contains("deliveries_per_s")) return;
  std::printf("\n  %-10s %14s %10s %10s %12s %12s\n", "server", "deliveries/s", "p50 ms", "p99 ms", "peak RSS MB",
              "vs gearbox");
  const double gearbox_rate = mine.value("deliveries_per_s", 0.0);
  auto row = [&](const std::string& name, const json& r, long rss_kb) {
    const double rate = r.value("deliveries_per_s", 0.0);
    std::printf("  %-10s %14.0f %10.1f %10.1f %12.1f %11.2fx\n", name.c_str(), rate, r.value("latency_p50_ms", 0.0),
                r.value("latency_p99_ms", 0.0), rss_kb / 1024.0, rate > 0 ? gearbox_rate / rate : 0.0);
  };
  row("gearbox", mine, report.value("peak_rss_kb", 0L));
  for (const auto& [name, peer] : report["peers"].items())
    if (peer.value("ok", false)) row(name, peer, peer.value("peak_rss_kb", 0L));
}

// How many times gearbox outran each peer that succeeded in `report`: the rate ratio for
// servers (requests or deliveries per second), else the ratio of times.
std::vector<std::pair<std::string, double>> speedups(const json& report) {
  std::vector<std::pair<std::string, double>> result;
  const json& mine = report["extra"];
  for (const auto& [name, peer] : report["peers"].items()) {
    if (!peer.value("ok", false) || !report.value("ok", false)) continue;
    double ratio = 0;
    for (const char* rate : {"requests_per_sec", "deliveries_per_s"})
      if (mine.is_object() && mine.contains(rate) && peer.value(rate, 0.0) > 0)
        ratio = mine.value(rate, 0.0) / peer.value(rate, 0.0);
    if (ratio == 0 && report.value("ms", 0.0) > 0) ratio = peer.value("ms", 0.0) / report.value("ms", 0.0);
    if (ratio > 0) result.emplace_back(name, ratio);
  }
  return result;
}

// Gearbox's speedup over each peer across rounds: {peer: {median, min, max, each}}.
json summarize_rounds(const std::vector<json>& reports) {
  std::map<std::string, std::vector<double>> by_peer;
  for (const json& report : reports)
    for (const auto& [name, ratio] : speedups(report)) by_peer[name].push_back(ratio);
  json summary = json::object();
  for (auto& [name, each] : by_peer) {
    std::vector<double> sorted = each;
    std::sort(sorted.begin(), sorted.end());
    const std::size_t n = sorted.size();
    const double median = n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    summary[name] = {{"median", median}, {"min", sorted.front()}, {"max", sorted.back()}, {"each", each}};
  }
  return summary;
}

void print_table(const json& report) {
  std::printf("%s  n=%ld\n", report["bench"].get<std::string>().c_str(), report["n"].get<long>());
  std::printf("  %-10s %12s %14s  %s\n", "runtime", "ms", "peak RSS MB", "result");
  auto row = [](const std::string& name, const json& r) {
    const std::string result = r.contains("result") ? r["result"].dump() : "-";
    const bool ok = r.value("ok", false);
    std::printf("  %-10s %12.1f %14.1f  %s%s\n", name.c_str(), r.value("ms", 0.0),
                r.value("peak_rss_kb", 0L) / 1024.0, result.c_str(), ok ? "" : "  (WRONG or failed)");
  };
  row("gearbox", report);
  for (const auto& [name, peer] : report["peers"].items()) {
    row(name, peer);
    if (peer.contains("error")) std::printf("             %s\n", peer["error"].get<std::string>().c_str());
  }
  for (const auto& [key, value] : report["extra"].items()) std::printf("  gearbox %s: %s\n", key.c_str(), value.dump().c_str());
  print_server_table(report);
  print_chat_table(report);
}

}  // namespace

std::string threaded_names(const std::vector<gb::Benchmark>& benchmarks) {
  std::string names;
  for (const auto& b : benchmarks)
    if (b.default_threads > 0) names += (names.empty() ? "" : ", ") + b.name;
  return names;
}

int main(int argc, char** argv) {
  gearbox::init(argc, argv);  // the process benchmarks' workers are this program: they never return from here
  const auto benchmarks = all_benchmarks();
  std::string names;
  for (const auto& b : benchmarks) names += (names.empty() ? "" : ", ") + b.name;

  CLI::App app{"gearbox-bench: runs one benchmark in gearbox and in its peers, side by side"};
  std::string name;
  long n = 0;
  int threads = 0;
  int connections = 0;
  bool as_json = false;
  bool list = false;
  std::string peers = "all";
  std::chrono::milliseconds peer_timeout = std::chrono::minutes(5);
  int rounds = 1;
  app.add_option("name", name, "benchmark: " + names);
  app.add_option("--n", n, "size of the work (default: the benchmark's)")->check(CLI::PositiveNumber);
  app.add_option("--threads", threads, "threads, for multi-threaded engines")->check(CLI::NonNegativeNumber);
  app.add_option("--connections", connections, "connections, for server benchmarks")->check(CLI::PositiveNumber);
  app.add_flag("--json", as_json, "print one JSON object per line");
  app.add_option("--peers", peers, "peers to run: all, none, or a list such as asio,go,python");
  gearbox::cli::add_duration_option(app, "--peer-timeout", peer_timeout, "how long a peer may run before it is killed",
                                    {std::chrono::milliseconds(1), std::chrono::hours(24)});
  app.add_option("--rounds", rounds, "server benchmarks: rounds of every peer then gearbox, and the speedups' median")
      ->check(CLI::Range(1, 100));
  app.add_flag("--list", list, "list the benchmarks");
  CLI11_PARSE(app, argc, argv);

  if (list || name.empty()) {
    for (const auto& b : benchmarks) std::printf("%-18s %s (default n=%ld)\n", b.name.c_str(), b.description.c_str(), b.default_n);
    return name.empty() && !list ? 2 : 0;
  }
  auto found = std::find_if(benchmarks.begin(), benchmarks.end(), [&](const gb::Benchmark& b) { return b.name == name; });
  if (found == benchmarks.end()) {
    std::fprintf(stderr, "gearbox-bench: unknown benchmark '%s' (known: %s)\n", name.c_str(), names.c_str());
    return 2;
  }
  const gb::Benchmark& bench = *found;
  if (n == 0) n = bench.default_n;
  // A benchmark uses the threads it reports: one that runs on one thread refuses --threads.
  if (threads > 0 && bench.default_threads == 0) {
    std::fprintf(stderr, "gearbox-bench: %s runs on one thread and takes no --threads (the multi-threaded ones do: %s)\n",
                 bench.name.c_str(), threaded_names(benchmarks).c_str());
    return 2;
  }
  if (threads == 0) threads = bench.default_threads;
  if (!bench.valid_n(n)) {
    std::fprintf(stderr, "gearbox-bench: n=%ld is not a valid size for %s\n", n, bench.name.c_str());
    return 2;
  }

  // Later rounds of an in-process benchmark would start their peers from a process that
  // has grown, and a child inherits its parent's peak RSS as its own starting figure.
  if (rounds > 1 && !bench.drive_server) {
    std::fprintf(stderr, "gearbox-bench: --rounds is for the server benchmarks (%s runs gearbox in this process)\n",
                 bench.name.c_str());
    return 2;
  }

  const json expected = bench.expected(n);
  std::vector<json> reports;
  for (int round = 0; round < rounds; ++round) {
    json report = {{"bench", bench.name}, {"n", n}, {"expected", expected}, {"peers", json::object()}};
    if (threads > 0) report["threads"] = threads;

    const gb::BenchArgs args{.n = n, .threads = threads, .connections = connections};
    // The servers of a server benchmark, in the order they run this round.
    std::vector<gb::PeerSpec> servers;
    if (peers != "none" && bench.drive_server) {
      const std::vector<std::string> wanted = split(peers);
      const std::string program = (bench.peer_name.empty() ? bench.name : bench.peer_name) + "_server";
      for (const std::string& runtime : bench.server_peers) {
        if (peers != "all" && std::find(wanted.begin(), wanted.end(), runtime) == wanted.end()) continue;
        const auto path = gb::executable_dir() / ("peer-" + runtime + "-" + program);
        if (!std::filesystem::exists(path)) continue;  // that runtime was not installed at build time
        gb::PeerSpec spec{runtime, {path.string()}};
        const auto& threaded = bench.threaded_server_peers;
        if (std::find(threaded.begin(), threaded.end(), runtime) != threaded.end()) {
          spec.argv.push_back("--threads");
          spec.argv.push_back(std::to_string(threads));
        } else if (threads > 1) {
          continue;  // a one-thread server is no peer for a server on several threads
        }
        servers.push_back(std::move(spec));
      }
      if (bench.gearbox_server)
        for (gb::PeerSpec& variant : gb::variants_of_server(bench.gearbox_server(args)))
          if (peers == "all" || std::find(wanted.begin(), wanted.end(), variant.name) != wanted.end())
            servers.push_back(std::move(variant));
    } else if (peers != "none") {
      const std::vector<std::string> wanted = split(peers);
      std::vector<std::string> peer_args = bench.peer_args;
      if (bench.default_threads > 0) {
        peer_args.push_back("--threads");
        peer_args.push_back(std::to_string(threads));
      }
      for (const auto& spec : gb::find_peers(bench.peer_name.empty() ? bench.name : bench.peer_name, n, peer_args)) {
        if (peers != "all" && std::find(wanted.begin(), wanted.end(), spec.name) == wanted.end()) continue;
        gb::PeerResult peer = gb::run_peer(spec, peer_timeout);
        json j = peer;
        // A peer too slow for the full size may run a smaller one and say so ("n_used").
        const json peer_expected = peer.extra.is_object() && peer.extra.contains("n_used")
                                       ? bench.expected(peer.extra["n_used"].get<long>())
                                       : expected;
        j["ok"] = peer.ok && peer.result == peer_expected;
        if (peer.ok && !j["ok"].get<bool>()) j["error"] = "wrong result";
        report["peers"][spec.name] = j;
      }
    }

    auto run_server = [&](const gb::PeerSpec& server) {
      json j = bench.drive_server(args, server);
      if (j.value("ok", false) && j["result"] != expected) {
        j["ok"] = false;
        j["error"] = "wrong result";
      }
      report["peers"][server.name] = j;
    };
    auto run_gearbox = [&] {
      const gb::BenchRun run = bench.run(args);
      report.update({{"ms", run.ms},
                     {"peak_rss_kb", run.peak_rss_kb > 0 ? run.peak_rss_kb : peak_rss_kb()},
                     {"result", run.result},
                     {"ok", run.result == expected},
                     {"extra", run.extra}});
    };
    // gearbox runs after the peers (its figures then are not disturbed by theirs), except
    // in later rounds of a server benchmark, which start one server further each time:
    // on this VM the server that runs first in a round measured up to 15% apart from the
    // same server run later (an order effect), and a fixed order would bias every median.
    const std::size_t first = rounds > 1 ? static_cast<std::size_t>(round) % (servers.size() + 1) : 0;
    json order = json::array();
    for (std::size_t i = 0; i <= servers.size(); ++i) {
      const std::size_t at = (first + i) % (servers.size() + 1);
      order.push_back(at == servers.size() ? std::string("gearbox") : servers[at].name);
      if (at == servers.size())
        run_gearbox();
      else
        run_server(servers[at]);
    }
    if (!servers.empty()) report["order"] = order;

    if (as_json)
      std::cout << report.dump() << std::endl;
    else
      print_table(report);
    reports.push_back(std::move(report));
  }

  if (rounds > 1) {
    const json summary = summarize_rounds(reports);
    if (as_json) {
      std::cout << json{{"bench", bench.name}, {"rounds", rounds}, {"speedup", summary}}.dump() << std::endl;
    } else {
      std::printf("\ngearbox's speedup over each peer, %d alternating rounds:\n", rounds);
      for (const auto& [name, s] : summary.items())
        std::printf("  %-10s median %.2fx (%.2f-%.2fx)\n", name.c_str(), s["median"].get<double>(),
                    s["min"].get<double>(), s["max"].get<double>());
    }
  }
  const bool all_ok = std::all_of(reports.begin(), reports.end(), [](const json& r) { return r["ok"].get<bool>(); });
  return all_ok ? 0 : 1;
}
