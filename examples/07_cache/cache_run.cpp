#include "cache_run.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <thread>

#include <gearbox/combinators.hpp>
#include <gearbox/loop.hpp>
#include <gearbox/runtime.hpp>
#include <gearbox/task.hpp>

#include "async_client.hpp"

namespace gb = gearbox;

namespace cache {

const char* to_string(Engine engine) noexcept {
  switch (engine) {
  case Engine::sequential: return "sequential";
  case Engine::threads: return "threads";
  case Engine::threads_pipelined: return "threads_pipelined";
  case Engine::async: return "async";
  case Engine::async_pipelined: return "async_pipelined";
  case Engine::async_cores: return "async_cores";
  case Engine::async_cores_pipelined: return "async_cores_pipelined";
  }
  return "?";
}

void Tally::add(const Tally& other) {
  gets += other.gets;
  hits += other.hits;
  misses += other.misses;
  sets += other.sets;
  checksum += other.checksum;
}

std::string key_name(int key) { return "gearbox-cache:" + std::to_string(key); }

std::string value_of(int key, int value_bytes) {
  std::string value = "value-" + std::to_string(key) + "-";
  value.resize(static_cast<std::size_t>(std::max(value_bytes, 1)), 'x');
  return value;
}

namespace {

struct Op {
  bool set = false;
  int key = 0;
};

std::uint64_t mix(std::uint64_t x) {  // splitmix64's finaliser: a well-spread hash of i
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::uint64_t hash_of(std::string_view text) {  // FNV-1a
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (const unsigned char c : text) h = (h ^ c) * 0x100000001b3ULL;
  return h;
}

Op op_at(long i, const Workload& work) {
  const std::uint64_t x = mix(static_cast<std::uint64_t>(i));
  const std::uint64_t span = static_cast<std::uint64_t>(work.keys) + static_cast<std::uint64_t>(std::max(1, work.keys / 4));
  Op op;
  op.set = static_cast<int>(x % 100) < work.write_percent;
  op.key = static_cast<int>((x >> 8) % span);
  if (op.set) op.key %= work.keys;  // writes only the preloaded keys, so no GET depends on order
  return op;
}

Command command_for(const Op& op, const Workload& work) {
  if (op.set) return {"SET", key_name(op.key), value_of(op.key, work.value_bytes)};
  return {"GET", key_name(op.key)};
}

void account(const Op& op, const Reply& reply, Tally& tally) {
  const std::string key = key_name(op.key);
  if (op.set) {
    check_set(reply, key);
    ++tally.sets;
    return;
  }
  ++tally.gets;
  if (const std::optional<std::string> value = value_of_get(reply, key)) {
    ++tally.hits;
    tally.checksum += hash_of(*value);
  } else {
    ++tally.misses;
  }
}

// One unit's share of the operations (i = unit, unit + units, ...) in batches of `batch`
// (1: a round trip per operation). The ops of a batch and its commands, built together.
struct Batch {
  std::vector<Op> ops;
  std::vector<Command> commands;
  void add(long i, const Workload& work) {
    ops.push_back(op_at(i, work));
    commands.push_back(command_for(ops.back(), work));
  }
  void account_all(const std::vector<Reply>& replies, Tally& tally) {
    for (std::size_t k = 0; k < ops.size(); ++k) account(ops[k], replies[k], tally);
    ops.clear();
    commands.clear();
  }
};

Tally run_blocking_unit(const std::string& host, int port, const Workload& work, int unit, int units, int batch,
                        ClientOptions client_options) {
  BlockingClient client(host, port, client_options);
  Tally tally;
  Batch pending;
  for (long i = unit; i < work.operations; i += units) {
    pending.add(i, work);
    if (static_cast<int>(pending.ops.size()) == batch) pending.account_all(client.pipeline(pending.commands), tally);
  }
  if (!pending.ops.empty()) pending.account_all(client.pipeline(pending.commands), tally);
  return tally;
}

// Parameters by value: a coroutine's frame must own what it reads after suspending.
gb::Task<Tally> run_async_unit(std::string host, int port, Workload work, int unit, int units, int batch,
                               ClientOptions client_options) {
  AsyncClient client = co_await AsyncClient::connect(host, static_cast<std::uint16_t>(port), client_options);
  Tally tally;
  Batch pending;
  for (long i = unit; i < work.operations; i += units) {
    pending.add(i, work);
    if (static_cast<int>(pending.ops.size()) == batch) {
      const std::vector<Reply> replies = co_await client.pipeline(pending.commands);
      pending.account_all(replies, tally);
    }
  }
  if (!pending.ops.empty()) {
    const std::vector<Reply> replies = co_await client.pipeline(pending.commands);
    pending.account_all(replies, tally);
  }
  co_return tally;
}

gb::Task<Tally> run_async_units(std::string host, int port, Workload work, int units, int batch,
                                ClientOptions client_options) {
  std::vector<gb::Task<Tally>> tasks;
  for (int unit = 0; unit < units; ++unit)
    tasks.push_back(run_async_unit(host, port, work, unit, units, batch, client_options));
  const std::vector<Tally> tallies = co_await gb::gather(std::move(tasks));
  Tally total;
  for (const Tally& tally : tallies) total.add(tally);
  co_return total;
}

Tally run_threads(const std::string& host, int port, const Workload& work, int units, int batch,
                  ClientOptions client_options) {
  std::mutex mutex;
  Tally total;
  std::exception_ptr first_error;
  {
    std::vector<std::jthread> threads;
    for (int unit = 0; unit < units; ++unit)
      threads.emplace_back([&, unit] {
        try {
          const Tally tally = run_blocking_unit(host, port, work, unit, units, batch, client_options);
          const std::lock_guard lock(mutex);
          total.add(tally);
        } catch (...) {
          const std::lock_guard lock(mutex);
          if (!first_error) first_error = std::current_exception();
        }
      });
  }  // joins
  if (first_error) std::rethrow_exception(first_error);
  return total;
}

double cpu_seconds() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

bool pipelined(Engine engine) {
  return engine == Engine::threads_pipelined || engine == Engine::async_pipelined ||
         engine == Engine::async_cores_pipelined;
}

void check(const Workload& work, const EngineOptions& options) {
  if (work.operations < 0 || work.keys < 1 || work.value_bytes < 1 || work.write_percent < 0 ||
      work.write_percent > 100)
    throw std::invalid_argument("cache: a workload needs operations >= 0, keys >= 1, value_bytes >= 1, "
                                "write_percent 0 to 100");
  if (options.concurrency < 1 || options.concurrency > 10'000 || options.batch < 1 || options.workers < 0)
    throw std::invalid_argument("cache: concurrency must be 1 to 10,000, batch at least 1, workers at least 0");
}

}  // namespace

void preload(const std::string& host, int port, const Workload& work) {
  BlockingClient client(host, port);
  std::vector<Command> commands;
  for (int key = 0; key < work.keys; ++key) {
    commands.push_back({"SET", key_name(key), value_of(key, work.value_bytes)});
    if (commands.size() == 1000 || key + 1 == work.keys) {
      for (const Reply& reply : client.pipeline(commands)) check_set(reply, "(preload)");
      commands.clear();
    }
  }
  // The keys beyond the preloaded ones must be missing (a server of yours may hold them
  // from a run with more keys).
  for (int key = work.keys; key < work.keys + std::max(1, work.keys / 4); ++key) commands.push_back({"DEL", key_name(key)});
  client.pipeline(commands);
}

Tally expected_tally(const Workload& work) {
  Tally tally;
  for (long i = 0; i < work.operations; ++i) {
    const Op op = op_at(i, work);
    if (op.set) {
      ++tally.sets;
    } else if (++tally.gets; op.key < work.keys) {
      ++tally.hits;
      tally.checksum += hash_of(value_of(op.key, work.value_bytes));
    } else {
      ++tally.misses;
    }
  }
  return tally;
}

EngineRun run_engine(Engine engine, const std::string& host, int port, const Workload& work,
                     const EngineOptions& options) {
  check(work, options);
  EngineRun run;
  run.engine = engine;
  run.units = engine == Engine::sequential ? 1 : options.concurrency;
  const int batch = pipelined(engine) ? options.batch : 1;
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const auto began = std::chrono::steady_clock::now();
  const double cpu_began = cpu_seconds();
  try {
    switch (engine) {
    case Engine::sequential: run.tally = run_blocking_unit(host, port, work, 0, 1, 1, options.client); break;
    case Engine::threads:
    case Engine::threads_pipelined:
      run.workers = run.units;
      run.tally = run_threads(host, port, work, run.units, batch, options.client);
      break;
    case Engine::async:
    case Engine::async_pipelined: {
      gb::Loop loop;
      run.tally = loop.run(run_async_units(host, port, work, run.units, batch, options.client));
      break;
    }
    case Engine::async_cores:
    case Engine::async_cores_pipelined: {
      run.workers = options.workers > 0 ? options.workers : cores;
      gb::Runtime runtime{{.threads = static_cast<unsigned>(run.workers)}};
      run.tally = runtime.run(run_async_units(host, port, work, run.units, batch, options.client));
      break;
    }
    }
  } catch (const std::exception& e) {
    run.error = e.what();
  }
  run.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
  run.cpu_s = cpu_seconds() - cpu_began;
  return run;
}

}  // namespace cache
