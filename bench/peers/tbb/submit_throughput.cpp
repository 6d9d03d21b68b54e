// Peer for `gearbox-bench submit_throughput`: how many empty tasks per second oneTBB can
// take in and run, submitted from outside the pool and from inside it.
//
// How it maps to gearbox: gearbox submits n empty tasks to a ThreadPool of T workers
// (a) from one thread outside the pool (they go through its global injection queue), then
// waits for all of them, and (b) from a root task running on a worker, which submits n
// children (they go to that worker's own deque, where the others steal them) and waits
// for them. Each task only counts itself. Here the pool is a tbb::task_arena of T
// threads with no slot kept for the main thread (task_arena(T, 0)), so that, as in
// gearbox, T workers run the tasks while the main thread stays outside:
//  (a) outside: the main thread calls arena.enqueue(group.defer(task)) n times: the
//      oneTBB way to hand work to an arena from a thread that is not in it (enqueue puts
//      it in the arena's shared FIFO queue; defer ties it to a task_group so that it can
//      be waited for; plain arena.enqueue(f) is fire-and-forget with no way to wait).
//      Then it waits with arena.execute([&] { group.wait(); }).
//  (b) inside: T root tasks, enqueued the same way (one per worker), each make a
//      tbb::task_group, call run(task) for their share of the n tasks (spawns into the
//      running worker's own deque) and wait().
// A tbb::global_control lets oneTBB start T workers even if T is the core count or more
// (its default limit is cores - 1 workers). While the main thread waits in
// arena.execute() it may take a free slot and run tasks too; there are never more than T
// threads in the arena.
//
// Measured and not chosen for (a) (n = 10M, T = 2, a 2-core VM): plain arena.enqueue(f)
// with the main thread polling the counters ran at the same rate as enqueue(defer(f))
// (~2M tasks/s). task_group::run() from the main thread inside arena.execute() ran at
// ~4.5M tasks/s, but that is (b) again: the main thread joins the arena as one of its
// threads and spawns into its own deque. Note on (b): the root spawns faster than the
// thieves take, so most of the n children wait in its deque at once (oneTBB's deques
// grow without bound): ~650 MB peak RSS at n = 10M.
//
// Each task adds one to a counter of its own arena slot (this_task_arena::
// current_thread_index()), so counting costs no shared cache line; result is the number
// of tasks that ran in each case (n when both are right).
//
// Timed (steady_clock), after all T workers have been started: (a) from the first
// enqueue to the end of the wait; (b) from enqueueing the root to the end of its wait.
// Prints one JSON line: {"ms": <(b)>, "result": n, "outside_tasks_per_s": ...,
// "inside_tasks_per_s": ..., "outside_ms": ..., "threads": T}.
#include "peer_options.hpp"
#include "tbb_arena.hpp"

#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <vector>

namespace {

// One counter per arena slot, each on its own cache line.
// Memory ordering: a slot is held by one thread at a time, so each counter has one
// writer at a time and needs no read-modify-write; relaxed is enough because the reader
// (the main thread, after task_group::wait()) is ordered after every task by the wait
// itself, and a slot changing hands is ordered by oneTBB's own slot acquisition.
struct alignas(64) SlotCounter {
  std::atomic<long> value{0};
};

class TaskCounter {
 public:
  explicit TaskCounter(int slots) : m_slots(static_cast<std::size_t>(slots)) {}

  void count_one() {
    const int slot = tbb::this_task_arena::current_thread_index();
    if (slot >= 0 && static_cast<std::size_t>(slot) < m_slots.size()) {
      auto& counter = m_slots[static_cast<std::size_t>(slot)].value;
      counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    } else {
      m_other.fetch_add(1);  // never expected: a task outside the arena's slots
    }
  }

  // Returns the count so far and starts again from zero. Only after a wait for all tasks.
  long take() {
    long total = m_other.exchange(0);
    for (auto& slot : m_slots) total += slot.value.exchange(0, std::memory_order_relaxed);
    return total;
  }

 private:
  std::vector<SlotCounter> m_slots;
  std::atomic<long> m_other{0};
};

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// (a) n tasks handed to the arena from this thread, which is not in it.
double submit_from_outside(tbb::task_arena& arena, long n, TaskCounter& counter) {
  tbb::task_group group;
  const auto start = Clock::now();
  for (long i = 0; i < n; ++i) arena.enqueue(group.defer([&counter] { counter.count_one(); }));
  arena.execute([&group] { group.wait(); });
  return ms_since(start);
}

// (b) n tasks spawned from inside the arena: T root tasks (one per worker, as the workers
// pick them up), each making a tbb::task_group, running its share of the n children into
// its worker's own deque, and waiting for them.
double submit_from_inside(tbb::task_arena& arena, long n, int threads, TaskCounter& counter) {
  tbb::task_group root_group;
  const auto start = Clock::now();
  for (int r = 0; r < threads; ++r) {
    const long share = n / threads + (r < n % threads ? 1 : 0);
    arena.enqueue(root_group.defer([share, &counter] {
      tbb::task_group children;
      for (long i = 0; i < share; ++i) children.run([&counter] { counter.count_one(); });
      children.wait();
    }));
  }
  arena.execute([&root_group] { root_group.wait(); });
  return ms_since(start);
}

}  // namespace

int main(int argc, char** argv) {
  const auto options =
      gearbox_peer::parse_options(argc, argv, {.default_n = 10'000'000, .min_n = 1, .max_n = 1'000'000'000},
                                  "peer-tbb-submit_throughput [--n N] [--threads T]   (N >= 1)");
  const int threads = options.threads;
  const long n = options.n;

  // T workers plus the main thread, which only submits and waits.
  tbb::global_control parallelism(tbb::global_control::max_allowed_parallelism,
                                  static_cast<std::size_t>(threads) + 1);
  tbb::task_arena arena(threads, /*reserved_for_masters=*/0);
  arena.initialize();
  gearbox_peer::start_workers(arena, threads);

  TaskCounter counter(arena.max_concurrency());
  const double outside_ms = submit_from_outside(arena, n, counter);
  const long outside_ran = counter.take();
  const double inside_ms = submit_from_inside(arena, n, threads, counter);
  const long inside_ran = counter.take();
  // Right only if each case ran exactly n tasks; otherwise the first wrong count.
  const long result = outside_ran != n ? outside_ran : inside_ran;

  std::printf(
      "{\"ms\": %.3f, \"result\": %ld, \"outside_tasks_per_s\": %.0f, \"inside_tasks_per_s\": %.0f, "
      "\"outside_ms\": %.3f, \"threads\": %d}\n",
      inside_ms, result, n / (outside_ms / 1e3), n / (inside_ms / 1e3), outside_ms, threads);
  return 0;
}
