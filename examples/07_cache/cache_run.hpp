// The cache workload and the engines that run it: the same lookups and writes against a
// local Redis, sequentially, on threads, as async tasks on one loop and on a multi-thread
// runtime, each with and without pipelining. For gearbox-cache and its tests.
//
//   cache::RedisServer server;
//   const cache::Workload work{.operations = 50'000};
//   cache::preload(server.host(), server.port(), work);
//   cache::EngineRun run = cache::run_engine(cache::Engine::threads, server.host(), server.port(), work, {});
//   assert(run.tally == cache::expected_tally(work));
//
// Operation i is a GET or a SET of a key chosen from i alone, so every engine, whatever
// order its units run in, must arrive at the same tally: GETs of the preloaded keys hit
// and return their value, GETs of the keys beyond them miss, SETs write a preloaded key's
// own value again. expected_tally() computes it without a server.
//
// Keys are "gearbox-cache:<n>": the workload touches nothing else on a server of yours.
//
// Thread-safety: run_engine blocks the caller and joins what it starts before it returns.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "blocking_client.hpp"

namespace cache {

struct Workload {
  long operations = 50'000;
  int keys = 1'000;        // preloaded; GETs also ask for a quarter as many that are missing
  int value_bytes = 64;
  int write_percent = 20;  // SETs, of a preloaded key, to the value it already holds
};

struct Tally {
  long gets = 0;
  long hits = 0;
  long misses = 0;
  long sets = 0;
  std::uint64_t checksum = 0;  // sum of the values' hashes: independent of their order
  void add(const Tally& other);
  friend bool operator==(const Tally&, const Tally&) = default;
};

enum class Engine { sequential, threads, threads_pipelined, async, async_pipelined, async_cores, async_cores_pipelined };
inline constexpr Engine k_engines[] = {Engine::sequential,      Engine::threads,     Engine::threads_pipelined,
                                       Engine::async,           Engine::async_pipelined, Engine::async_cores,
                                       Engine::async_cores_pipelined};
const char* to_string(Engine engine) noexcept;  // "threads_pipelined": the name on the command line

struct EngineOptions {
  int concurrency = 8;  // threads (one connection each) or tasks (one connection each)
  int batch = 64;       // commands per round trip, for the pipelined engines
  int workers = 0;      // the runtime's, for async_cores: 0 is one per core
  ClientOptions client;
};

struct EngineRun {
  Engine engine = Engine::sequential;
  int units = 1;      // threads or tasks
  int workers = 1;    // threads that ran them: the runtime's workers for async_cores
  Tally tally;
  double wall_s = 0;
  double cpu_s = 0;   // this process's user + system time (not the server's)
  std::string error;  // empty when every operation completed
};

// The value SET and expected for key n.
std::string value_of(int key, int value_bytes);
std::string key_name(int key);
// Writes every key's value (pipelined); RedisError if the server cannot be reached.
void preload(const std::string& host, int port, const Workload& work);
Tally expected_tally(const Workload& work);

// One engine over the whole workload. Errors (a server that is down or stops answering)
// end up in EngineRun::error, never as a hang: each exchange has the client's timeout.
// std::invalid_argument for options out of range.
EngineRun run_engine(Engine engine, const std::string& host, int port, const Workload& work,
                     const EngineOptions& options);

// The table (operations per second, time per operation, wall and CPU time, whether the
// results agree) and a verdict from the numbers.
std::string render(const std::vector<EngineRun>& runs, const Workload& work, const EngineOptions& options);

}  // namespace cache
