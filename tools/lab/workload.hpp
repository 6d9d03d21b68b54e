// The lab's workloads and the four ways of running them. This is the part of the lab
// that runs inside the measured process (`gearbox-lab run-model`, started by the
// experiment for each model, so that each model's CPU time and memory are its own).
//
// One task of each kind:
//   io     connect to the slow service on 127.0.0.1, ask it to answer after `wait_ms`,
//          and wait for the answer (real network I/O);
//   sleep  sleep `wait_ms` (a timer, no socket);
//   cpu    count the primes among `units` numbers by trial division (real computation;
//          the experiment calibrates `units` so that it takes the asked time);
//   mixed  io, then cpu;
//   db     `units` GETs, one at a time, on a connection of its own to the local
//          redis-server on `port` (examples/07_cache's clients): fast I/O, a round trip
//          of tens of microseconds each (the seeds' "query on a local database").
// The keys a db task reads are k_db_keys keys named db_key(n), preloaded by the caller.
// The models:
//   sequential   one task after another on the main thread;
//   threads      a ThreadPool: one thread per task when tasks block (io, sleep, mixed),
//                one per core for cpu;
//   async        one gearbox Loop on one thread, every task a coroutine (the compute runs
//                on the loop's thread: one Loop does not add cores);
//   async-cores  the same coroutines on a gb::Runtime of one worker per core: C++ async
//                waits and computes on every core (Python's asyncio cannot);
//   processes    a ProcessPool: one worker per task when tasks block, one per core for cpu;
//   async+procs  async tasks whose compute part is offloaded to a ProcessPool (one
//                worker per core): waits overlap on the loop, computing uses every core.
// Every task is a trace unit named "task <i>" (a named async task, or a span on the thread
// or worker that runs it; blocking waits are `wait` spans), so the timeline has one row
// per task in every model.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gearbox::lab {

enum class Work { io, sleep, cpu, mixed, db };
enum class Model { sequential, threads, async, processes, async_processes, async_cores };

const char* to_string(Work work) noexcept;
const char* to_string(Model model) noexcept;
// Parsers for the command line; nullopt for an unknown name.
std::optional<Work> parse_work(std::string_view name) noexcept;
std::optional<Model> parse_model(std::string_view name) noexcept;
// "seq,threads,async,procs" -> the models; throws std::invalid_argument naming a bad one.
// Why `model` cannot run `work` (async+procs needs compute), or nullopt if it can.
std::optional<std::string> unfit(Model model, Work work);
std::vector<Model> parse_models(std::string_view list);

struct WorkSpec {
  Work work = Work::io;
  int tasks = 5;
  int wait_ms = 2000;            // io, sleep, mixed
  std::uint64_t units = 0;       // cpu, mixed: numbers tested per task; db: GETs per task
  std::uint16_t port = 0;        // io, mixed: the slow service; db: redis-server
  unsigned cores = 1;            // the machine's; sizes the pools for cpu work
};

bool waits(Work work) noexcept;     // io, sleep, mixed, db
bool computes(Work work) noexcept;  // cpu, mixed

// The keys of db work: "gearbox-lab:<n>" for n below k_db_keys, each holding db_value(n).
inline constexpr int k_db_keys = 100;
std::string db_key(int n);
std::string db_value(int n);
// The key the `query`th GET of task `task` reads (every task walks all of them).
int db_key_of_query(int task, std::uint64_t query);
// Writes every key db work reads into the redis-server on 127.0.0.1:`port` (one pipelined
// round trip); cache::RedisError if it cannot.
void preload_db_keys(std::uint16_t port);

// Threads (or workers) a model uses for `spec`.
std::size_t pool_size(const WorkSpec& spec) noexcept;

// The compute kernel: how many of the `units` numbers from a fixed base are prime.
std::uint64_t count_primes(std::uint64_t units) noexcept;
// Units per second of count_primes on this machine, measured for about `probe_ms`.
double calibrate_units_per_second(int probe_ms = 100);

struct ModelRun {
  double wall_s = 0;  // from before the threads/loop/pool exist to after they are gone
  int tasks_done = 0;
  std::uint64_t checksum = 0;  // primes counted, so the work cannot be optimised away
  std::vector<std::string> errors;
};

// Runs every task of `spec` under `model`, in this process. Never throws for a task's
// failure (it is counted in errors); throws std::invalid_argument for a model that does
// not fit the work (see unfit()).
ModelRun run_model(const WorkSpec& spec, Model model);

}  // namespace gearbox::lab
