// gearbox-cache: the same lookups and writes against a local Redis, sequentially, on
// threads, as async tasks on one thread and on every core, with and without pipelining;
// a table and a verdict. See README.md.
//
//   gearbox-cache                                 starts its own redis-server, runs every engine
//   gearbox-cache --ops 100000 --concurrency 16 --batch 128
//   gearbox-cache --server 127.0.0.1:6379        a server of yours (keys gearbox-cache:*)
//
// Bad input is one line on stderr and CLI11's exit code (105 for a value out of range, 2
// for a malformed --server); a server that cannot be reached is one line and exit code 1.
#include <cstdio>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cache_run.hpp"
#include "redis_server.hpp"

int main(int argc, char** argv) {
  CLI::App app{"gearbox-cache: a local Redis, queried sequentially, with threads and with async tasks"};
  cache::Workload work;
  cache::EngineOptions options;
  std::string server;
  std::vector<std::string> engine_names;
  long timeout_ms = 2000;
  app.add_option("--ops", work.operations, "operations in all (default 50,000)")->check(CLI::Range(1L, 100'000'000L));
  app.add_option("--keys", work.keys, "keys preloaded (default 1,000)")->check(CLI::Range(1, 10'000'000));
  app.add_option("--value-bytes", work.value_bytes, "bytes per value (default 64)")->check(CLI::Range(1, 1 << 20));
  app.add_option("--writes", work.write_percent, "percent of operations that are SETs (default 20)")
      ->check(CLI::Range(0, 100));
  app.add_option("--concurrency", options.concurrency, "threads or tasks, one connection each (default 8)")
      ->check(CLI::Range(1, 10'000));
  app.add_option("--batch", options.batch, "commands per round trip when pipelined (default 64)")
      ->check(CLI::Range(1, 100'000));
  app.add_option("--workers", options.workers, "the runtime's workers (default: one per core)")->check(CLI::Range(1, 1024));
  app.add_option("--timeout-ms", timeout_ms, "for the connect and each reply (default 2000)")->check(CLI::Range(1L, 600'000L));
  app.add_option("--server", server, "HOST:PORT of a running Redis (default: start one)");
  std::vector<std::string> all;
  for (const cache::Engine engine : cache::k_engines) all.push_back(cache::to_string(engine));
  app.add_option("--engines", engine_names, "which to run (default all)")->delimiter(',')->check(CLI::IsMember(all));
  CLI11_PARSE(app, argc, argv);
  options.client.timeout = std::chrono::milliseconds(timeout_ms);

  try {
    std::unique_ptr<cache::RedisServer> own;
    std::string host;
    int port = 0;
    if (server.empty()) {
      own = std::make_unique<cache::RedisServer>();
      host = own->host();
      port = own->port();
    } else {
      const auto colon = server.rfind(':');
      if (colon == std::string::npos || colon + 1 == server.size()) {
        std::fprintf(stderr, "gearbox-cache: --server: \"%s\" is not HOST:PORT\n", server.c_str());
        return 2;
      }
      host = server.substr(0, colon);
      port = std::stoi(server.substr(colon + 1));
    }
    std::printf("gearbox-cache: %s operations (%d%% SET) on %s keys of %d bytes, Redis at %s:%d\n",
                std::to_string(work.operations).c_str(), work.write_percent, std::to_string(work.keys).c_str(),
                work.value_bytes, host.c_str(), port);
    std::fflush(stdout);
    cache::preload(host, port, work);
    std::vector<cache::EngineRun> runs;
    int failed = 0;
    for (const cache::Engine engine : cache::k_engines) {
      if (!engine_names.empty() && std::find(engine_names.begin(), engine_names.end(), cache::to_string(engine)) ==
                                       engine_names.end())
        continue;
      runs.push_back(cache::run_engine(engine, host, port, work, options));
      failed += !runs.back().error.empty() || runs.back().tally != cache::expected_tally(work);
    }
    std::printf("%s", cache::render(runs, work, options).c_str());
    return failed == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gearbox-cache: %s\n", e.what());
    return 1;
  }
}
