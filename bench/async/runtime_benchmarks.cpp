// Benchmarks of the multi-thread runtime (gb::Runtime): Tokio's four scheduler benchmarks
// (tokio/benches/rt_multi_threaded.rs): spawning from outside (rt_spawn_many), a chain of
// tasks each spawning the next (rt_chained_spawn), many tasks yielding (rt_yield_many)
// and spawn-and-reply pairs (rt_ping_pong); and skynet on T threads (rt_skynet,
// rt_skynet_scheduled); and CPU-bound tasks on 1 worker, then on T (rt_cpu_scaling).
// Peers: bench/peers/go, with GOMAXPROCS = T.
//
// Each benchmark runs its work once untimed on the same runtime before the timed run, as
// Tokio's criterion warms up: the workers have started and parked, and their allocator
// caches hold task frames, so the timed run measures the scheduler, not thread start-up.
// Runtime construction is not timed (the Go peers' process start is not timed either).
// `extra` has the cost of one operation and the runtime's steals and parks during the
// timed run (RuntimeCounters).
#include <atomic>
#include <chrono>
#include <cstdint>
#include <vector>

#include <gearbox/join_handle.hpp>
#include <gearbox/runtime.hpp>
#include <gearbox/spawn.hpp>
#include <gearbox/task.hpp>
#include <gearbox/time.hpp>

#include "registry.hpp"
#include "async/skynet_tree.hpp"
#include "cpu_kernels.hpp"

namespace gearbox::bench {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// The timed run's result and time, its cost per operation (`per_op_name`: ns per one of
// `ops`), and what the scheduler did meanwhile (counters taken around the timed run).
BenchRun report(double ms, long result, const char* per_op_name, double ops, const RuntimeCounters& before,
                const RuntimeCounters& after) {
  BenchRun run{ms, result};
  run.extra[per_op_name] = ms * 1e6 / ops;
  run.extra["steals"] = after.steals - before.steals;
  run.extra["stolen_tasks"] = after.stolen_tasks - before.stolen_tasks;
  run.extra["parks"] = after.parks - before.parks;
  return run;
}

RuntimeOptions runtime_options(const BenchArgs& args) { return {.threads = static_cast<unsigned>(args.threads)}; }

// rt_spawn_many (Tokio's spawn_many_remote_idle): the benchmark's thread, outside the
// runtime, spawns n tasks with rt.spawn (each goes through the injection queue); each
// task counts itself. Then one rt.run awaits every handle. Timed: from the first spawn to
// the last join. Result: the count, n when every task ran.
//
// Memory ordering of `completed`: relaxed, because it is read only after every task has
// been joined, and each join orders the task's end before the joiner (and rt.run's return
// orders the joiner before this thread).
Task<void> count_one(std::atomic<long>& completed) {
  completed.fetch_add(1, std::memory_order_relaxed);
  co_return;
}

Task<void> join_all(std::vector<JoinHandle<void>>& handles) {
  for (auto& handle : handles) co_await handle;
}

long spawn_many(Runtime& rt, long n) {
  std::atomic<long> completed{0};
  std::vector<JoinHandle<void>> handles;
  handles.reserve(static_cast<std::size_t>(n));
  for (long i = 0; i < n; ++i) handles.push_back(rt.spawn(count_one(completed)));
  rt.run(join_all(handles));
  return completed.load(std::memory_order_relaxed);
}

BenchRun run_rt_spawn_many(const BenchArgs& args) {
  Runtime rt{runtime_options(args)};
  (void)spawn_many(rt, args.n);  // warm-up
  const RuntimeCounters before = rt.counters();
  const auto start = Clock::now();
  const long completed = spawn_many(rt, args.n);
  const double ms = ms_since(start);
  return report(ms, completed, "ns_per_task", static_cast<double>(args.n), before, rt.counters());
}

// rt_chained_spawn (Tokio's chained_spawn): a chain of n tasks, each spawning the next
// and ending at once without waiting for it (detached), as in Tokio, so there is never
// more than one or two links alive: a spawning chain, not a call chain. The benchmark's
// thread spawns the first link (rt.spawn, as Tokio's block_on thread does) and blocks
// until the last one signals, as Tokio's block_on blocks on a std channel; no worker
// waits. Timed: from the first spawn to the signal. Result: the links that ran, n.
//
// Memory ordering: each link counts itself in `ran` (relaxed) before it spawns the next,
// and a spawn orders the spawner before the spawned task, so every count happens before
// the last link's release store of `done`, which pairs with the waiter's acquire wait:
// the waiter then reads all n counts. `done` holds false until the last link stores true.
struct Chain {
  std::atomic<long> ran{0};
  std::atomic<bool> done{false};
};

Task<void> chain_link(Chain& chain, long remaining) {
  chain.ran.fetch_add(1, std::memory_order_relaxed);
  if (remaining > 1) {
    spawn(chain_link(chain, remaining - 1)).detach();
  } else {
    chain.done.store(true, std::memory_order_release);
    chain.done.notify_one();
  }
  co_return;
}

// `chain` must outlive the runtime: the last link may still be inside notify_one() when
// the waiter returns, and only ~Runtime waits for it to end.
long chained_spawn(Runtime& rt, Chain& chain, long n) {
  rt.spawn(chain_link(chain, n)).detach();
  chain.done.wait(false, std::memory_order_acquire);
  return chain.ran.load(std::memory_order_relaxed);
}

BenchRun run_rt_chained_spawn(const BenchArgs& args) {
  Chain warm_up_chain;  // both declared before the runtime, so that they outlive it
  Chain timed_chain;
  Runtime rt{runtime_options(args)};
  (void)chained_spawn(rt, warm_up_chain, args.n);
  const RuntimeCounters before = rt.counters();
  const auto start = Clock::now();
  const long ran = chained_spawn(rt, timed_chain, args.n);
  const double ms = ms_since(start);
  return report(ms, ran, "ns_per_spawn", static_cast<double>(args.n), before, rt.counters());
}

// rt_yield_many (Tokio's yield_many): 200 tasks, spawned from inside rt.run, each
// awaiting yield_now() n times (each yield puts the task back in the run queue behind
// the others), all awaited. Tokio spawns them from outside and counts them through a std
// channel; spawning from a task here keeps the join on the runtime. Timed: the rt.run.
// Result: the yields done, 200 * n.
constexpr long k_yielding_tasks = 200;

Task<long> yield_times(long n) {
  long yields = 0;
  for (; yields < n; ++yields) co_await yield_now();
  co_return yields;
}

Task<long> yield_many(long n) {
  std::vector<JoinHandle<long>> handles;
  handles.reserve(k_yielding_tasks);
  for (long i = 0; i < k_yielding_tasks; ++i) handles.push_back(spawn(yield_times(n)));
  long yields = 0;
  for (auto& handle : handles) yields += co_await handle;
  co_return yields;
}

BenchRun run_rt_yield_many(const BenchArgs& args) {
  Runtime rt{runtime_options(args)};
  (void)rt.run(yield_many(args.n));  // warm-up
  const RuntimeCounters before = rt.counters();
  const auto start = Clock::now();
  const long yields = rt.run(yield_many(args.n));
  const double ms = ms_since(start);
  return report(ms, yields, "ns_per_yield", static_cast<double>(k_yielding_tasks * args.n), before, rt.counters());
}

// rt_ping_pong (Tokio's ping_pong, adapted): n pings, all started at once from inside
// rt.run and all awaited. In Tokio each ping is a task that spawns a pong task and
// exchanges two oneshot messages with it (ping -> pong, pong -> ping), then counts
// itself down. Channels do not run on a Runtime yet, so here each message is a spawn
// and join hop instead: the ping task spawns a relay task and awaits its JoinHandle;
// the relay spawns an answer task and awaits it; the answer's end wakes the relay, the
// relay's end wakes the ping. Per ping that is 3 tasks spawned and 2 hand-offs by join
// (plus the root's join of the ping), where Tokio spawns 2 tasks and hands off by 2
// oneshot messages (plus an atomic count-down): one task more per ping than Tokio, the
// same number of hand-offs. Timed: the rt.run. Result: the pings answered, n.
Task<long> ping_answer() { co_return 1; }

Task<long> ping_relay() {
  JoinHandle<long> answer = spawn(ping_answer());
  co_return co_await answer;
}

Task<long> ping() {
  JoinHandle<long> relay = spawn(ping_relay());
  co_return co_await relay;
}

Task<long> ping_pong(long n) {
  std::vector<JoinHandle<long>> pings;
  pings.reserve(static_cast<std::size_t>(n));
  for (long i = 0; i < n; ++i) pings.push_back(spawn(ping()));
  long answered = 0;
  for (auto& handle : pings) answered += co_await handle;
  co_return answered;
}

BenchRun run_rt_ping_pong(const BenchArgs& args) {
  Runtime rt{runtime_options(args)};
  (void)rt.run(ping_pong(args.n));  // warm-up
  const RuntimeCounters before = rt.counters();
  const auto start = Clock::now();
  const long answered = rt.run(ping_pong(args.n));
  const double ms = ms_since(start);
  return report(ms, answered, "ns_per_ping", static_cast<double>(args.n), before, rt.counters());
}

// rt_skynet: skynet on a Runtime of T workers, the same task code as the one-thread
// skynet (skynet_tree.hpp: every node gathers its 10 children, which start eagerly).
// rt_skynet_scheduled: skynet_scheduled's tree (children spawned scheduled and joined by
// their handles). Timed: the rt.run of the tree (the runtime is built first, untimed).
// Result: n*(n-1)/2.
BenchRun run_rt_tree(const BenchArgs& args, Task<std::int64_t> (*tree)(std::int64_t, std::int64_t)) {
  Runtime rt{runtime_options(args)};
  const RuntimeCounters before = rt.counters();
  const auto start = Clock::now();
  const std::int64_t sum = rt.run(tree(0, args.n));
  const double ms = ms_since(start);
  double tasks = 0;
  for (long level = args.n; level >= 1; level /= 10) tasks += static_cast<double>(level);
  return report(ms, static_cast<long>(sum), "ns_per_task", tasks, before, rt.counters());
}

BenchRun run_rt_skynet(const BenchArgs& args) { return run_rt_tree(args, skynet_node); }
BenchRun run_rt_skynet_scheduled(const BenchArgs& args) { return run_rt_tree(args, skynet_spawned); }

// rt_cpu_scaling: n CPU-bound async tasks (proc_cpu_scaling's Collatz blocks), each
// computing its block in 10 chunks with a yield between them (as a cooperative task
// should: no slice holds its worker for long), on a Runtime of 1 worker, then of T.
// Timed: each rt.run (the runtimes are built first, untimed). Result: the total steps.
Task<std::int64_t> collatz_task(std::int64_t first) {
  constexpr std::int64_t chunk = k_collatz_block / 10;
  std::int64_t steps = 0;
  for (std::int64_t at = first; at < first + k_collatz_block; at += chunk) {
    steps += collatz_steps(at, chunk);
    co_await yield_now();
  }
  co_return steps;
}

Task<std::int64_t> collatz_all(long tasks) {
  std::vector<JoinHandle<std::int64_t>> handles;
  handles.reserve(static_cast<std::size_t>(tasks));
  for (long i = 0; i < tasks; ++i) handles.push_back(spawn(collatz_task(1 + i * k_collatz_block)));
  std::int64_t total = 0;
  for (auto& handle : handles) total += co_await handle;
  co_return total;
}

BenchRun run_rt_cpu_scaling(const BenchArgs& args) {
  auto timed = [&](unsigned threads, std::int64_t& total, RuntimeCounters& counters) {
    Runtime rt{{.threads = threads}};
    const auto start = Clock::now();
    total = rt.run(collatz_all(args.n));
    const double ms = ms_since(start);
    counters = rt.counters();
    return ms;
  };
  std::int64_t one_total = 0;
  std::int64_t many_total = 0;
  RuntimeCounters one_counters;
  RuntimeCounters many_counters;
  const double one_ms = timed(1, one_total, one_counters);
  const double many_ms = timed(static_cast<unsigned>(args.threads), many_total, many_counters);
  BenchRun run{many_ms, many_total};
  run.extra["ms_1_worker"] = one_ms;
  run.extra["speedup"] = one_ms / many_ms;
  run.extra["steals"] = static_cast<double>(many_counters.steals);
  run.extra["blocking_slices"] = static_cast<double>(one_counters.blocking_slices + many_counters.blocking_slices);
  if (one_total != many_total) run.result = "1 and T workers disagree";
  return run;
}

bool is_power_of_ten(long n) {
  if (n < 1) return false;
  while (n % 10 == 0) n /= 10;
  return n == 1;
}

}  // namespace

std::vector<Benchmark> runtime_benchmarks() {
  const auto at_least_one = [](long n) { return n >= 1; };
  return {
      Benchmark{
          .name = "rt_spawn_many",
          .description = "N tasks spawned into a Runtime from outside it, then all awaited (Tokio spawn_many_remote_idle)",
          .default_n = 10'000,
          .valid_n = at_least_one,
          .expected = [](long n) { return nlohmann::json(n); },
          .run = run_rt_spawn_many,
          .peer_args = {},
          .peer_name = {},
          .default_threads = 2,
      },
      Benchmark{
          .name = "rt_chained_spawn",
          .description = "a chain of N tasks on a Runtime, each spawning the next and ending (Tokio chained_spawn)",
          .default_n = 1'000,
          .valid_n = at_least_one,
          .expected = [](long n) { return nlohmann::json(n); },
          .run = run_rt_chained_spawn,
          .peer_args = {},
          .peer_name = {},
          .default_threads = 2,
      },
      Benchmark{
          .name = "rt_yield_many",
          .description = "200 tasks on a Runtime each yielding N times, all awaited (Tokio yield_many)",
          .default_n = 1'000,
          .valid_n = at_least_one,
          .expected = [](long n) { return nlohmann::json(k_yielding_tasks * n); },
          .run = run_rt_yield_many,
          .peer_args = {},
          .peer_name = {},
          .default_threads = 2,
      },
      Benchmark{
          .name = "rt_ping_pong",
          .description = "N pings at once on a Runtime, each a task spawning and joining a relay that spawns and "
                         "joins an answer (Tokio ping_pong with joins for its oneshot channels)",
          .default_n = 1'000,
          .valid_n = at_least_one,
          .expected = [](long n) { return nlohmann::json(n); },
          .run = run_rt_ping_pong,
          .peer_args = {},
          .peer_name = {},
          .default_threads = 2,
      },
      Benchmark{
          .name = "rt_skynet",
          .description = "skynet on a Runtime of T workers: a task per tree node, children gathered",
          .default_n = 1'000'000,
          .valid_n = is_power_of_ten,
          .expected = [](long n) { return nlohmann::json(static_cast<std::int64_t>(n) * (n - 1) / 2); },
          .run = run_rt_skynet,
          .peer_args = {},
          .peer_name = {},  // peer-go-rt_skynet: skynet.go with --threads (GOMAXPROCS)
          .default_threads = 2,
      },
      Benchmark{
          .name = "rt_skynet_scheduled",
          .description = "skynet on a Runtime of T workers: a task per tree node, children spawned and joined",
          .default_n = 1'000'000,
          .valid_n = is_power_of_ten,
          .expected = [](long n) { return nlohmann::json(static_cast<std::int64_t>(n) * (n - 1) / 2); },
          .run = run_rt_skynet_scheduled,
          .peer_args = {},
          .peer_name = "rt_skynet",  // the same Go program as rt_skynet's
          .default_threads = 2,
      },
      Benchmark{
          .name = "rt_cpu_scaling",
          .description = "N CPU-bound async tasks (proc_cpu_scaling's Collatz blocks, yielding between chunks) on "
                         "a Runtime of 1 worker, then of T; speedup",
          .default_n = 16,
          .valid_n = [](long n) { return n >= 1 && n <= 10'000; },
          .expected = [](long n) { return nlohmann::json(collatz_blocks_total(n)); },
          .run = run_rt_cpu_scaling,
          .peer_args = {},
          .peer_name = {},
          .default_threads = 2,
      },
  };
}

}  // namespace gearbox::bench
