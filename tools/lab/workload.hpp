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
//   mixed  io, then cpu.
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

enum class Work { io, sleep, cpu, mixed };
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
  std::uint64_t units = 0;       // cpu, mixed: numbers tested per task
  std::uint16_t port = 0;        // io, mixed: the slow service
  unsigned cores = 1;            // the machine's; sizes the pools for cpu work
};

bool waits(Work work) noexcept;     // io, sleep, mixed
bool computes(Work work) noexcept;  // cpu, mixed

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
