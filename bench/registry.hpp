// The benchmarks gearbox-bench knows. Each engine contributes its own list; a benchmark
// runs gearbox's version in-process and names the arguments its peers take.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace gearbox::bench {

struct BenchArgs {
  long n = 0;        // the size of the work (0: the benchmark's default)
  int threads = 0;   // for multi-threaded engines (0: the benchmark's default)
  int connections = 0;  // for server benchmarks (0: the benchmark's default)
};

struct BenchRun {
  double ms = 0;             // wall time of the work itself
  nlohmann::json result;     // what the work computed, checked against `expected`
  nlohmann::json extra = nlohmann::json::object();  // further figures (ns_per_switch, ...)
  long peak_rss_kb = 0;      // >0: report this instead of gearbox-bench's own (a server's)
};

struct PeerSpec;

struct Benchmark {
  std::string name;
  std::string description;
  long default_n;
  std::function<bool(long n)> valid_n;                  // false: the size is rejected
  std::function<nlohmann::json(long n)> expected;       // the correct result for size n
  std::function<BenchRun(const BenchArgs&)> run;        // gearbox's version
  std::vector<std::string> peer_args;                   // extra arguments for every peer
  std::string peer_name = {};                           // the peers' benchmark, if not `name`
  int default_threads = 0;                              // >0: a threaded benchmark; peers get --threads
  // A server benchmark: the same load is driven against each peer's server program,
  // bin/peer-<runtime>-<peer name>_server for each runtime listed, by drive_server, which
  // returns the peer's report (ok, ms, result, peak_rss_kb and its own figures).
  std::vector<std::string> server_peers = {};
  // Of server_peers, those that serve on several threads: they get --threads, and only
  // they run when --threads is above 1 (the others run at 1 only).
  std::vector<std::string> threaded_server_peers = {};
  std::function<nlohmann::json(const BenchArgs&, const PeerSpec&)> drive_server = {};
  // gearbox's own server in other configurations (I/O back ends), run like peers by
  // drive_server and reported as peers named "gearbox/...": variants_of_server(spec) below.
  std::function<PeerSpec(const BenchArgs&)> gearbox_server = {};
};

// gearbox's server `spec` under each I/O back end that is not the default (io_backend.hpp):
// "gearbox/epoll" (GEARBOX_IO_BACKEND=epoll) and, where the kernel has it,
// "gearbox/completion" (GEARBOX_SOCKET_IO=completion), each started through env(1).
std::vector<PeerSpec> variants_of_server(const PeerSpec& spec);

std::vector<Benchmark> async_benchmarks();
// The multi-thread runtime (gb::Runtime): Tokio's scheduler benchmarks.
std::vector<Benchmark> runtime_benchmarks();
std::vector<Benchmark> thread_benchmarks();
std::vector<Benchmark> chat_benchmarks();
std::vector<Benchmark> net_benchmarks();
std::vector<Benchmark> http_benchmarks();
// crawl: only in a build with the examples (GEARBOX_BENCH_HAS_CRAWL; see examples/06_crawler).
std::vector<Benchmark> crawl_benchmarks();

// A server benchmark's report (a drive_server result: ms, result, peak_rss_kb and further
// figures) as gearbox's own BenchRun.
BenchRun run_from_server_report(const nlohmann::json& report);
std::vector<Benchmark> process_benchmarks();
// Files on the loop: the blocking pool (epoll back end) vs io_uring, and cp.
std::vector<Benchmark> file_benchmarks();

}  // namespace gearbox::bench
