// gb::Runtime (include/gearbox/runtime.hpp): the multi-thread flavor of the async engine.
// Outcomes only, never timings: results, every task ending once, destructors run, the
// scheduler's counters where a test builds the situation that must move them.
//
// Tests that need a situation (a steal, a migration) build it by construction: a task
// holds its worker busy until what the test waits for has happened elsewhere, bounded by
// the hang guard so that a scheduler that never does it fails instead of hanging.
#include <gearbox/runtime.hpp>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <pthread.h>
#include <unistd.h>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gearbox/combinators.hpp>
#include <gearbox/error.hpp>
#include <gearbox/future.hpp>
#include <gearbox/join_handle.hpp>
#include <gearbox/loop.hpp>
#include <gearbox/os/signal.hpp>
#include <gearbox/spawn.hpp>
#include <gearbox/sync/event.hpp>
#include <gearbox/task.hpp>
#include <gearbox/thread_pool.hpp>
#include <gearbox/time.hpp>
#include <gearbox/to_thread.hpp>

#include <gtest/gtest.h>

#include "support/hang_guard.hpp"
#include "support/runtime_threads.hpp"
#include "support/lifetimes.hpp"

namespace gb = gearbox;
using namespace std::chrono_literals;
using gearbox_test::k_hang_guard;
using gearbox_test::Lifetimes;
using gearbox_test::Tracked;

namespace {

using Clock = std::chrono::steady_clock;

// Spins (without awaiting: it holds its worker) until `flag` is set; false after the
// hang guard.
bool spin_until(const std::atomic<bool>& flag) {
  const auto deadline = Clock::now() + k_hang_guard;
  while (!flag.load(std::memory_order_acquire))
    if (Clock::now() > deadline) return false;
  return true;
}

gb::Task<int> answer() { co_return 42; }

gb::Task<int> fail_with(std::string message) {
  co_await gb::yield_now();
  throw std::runtime_error(message);
}

gb::Task<std::int64_t> tree_sum(std::int64_t number, std::int64_t size) {
  if (size == 1) co_return number;
  const std::int64_t child = size / 10;
  std::vector<gb::JoinHandle<std::int64_t>> children;
  children.reserve(10);
  for (std::int64_t i = 0; i < 10; ++i) children.push_back(gb::spawn(tree_sum(number + i * child, child)));
  std::int64_t sum = 0;
  for (auto& handle : children) sum += co_await handle;
  co_return sum;
}

// Waits (bounded) until every task of `rt` has ended; false after the hang guard.
bool wait_until_idle(const gb::Runtime& rt) {
  const auto deadline = Clock::now() + k_hang_guard;
  while (rt.live_tasks() > 0) {
    if (Clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

class RuntimeThreads : public testing::TestWithParam<unsigned> {};

TEST_P(RuntimeThreads, run_returns_the_result_of_its_task) {
  gb::Runtime rt{{.threads = GetParam()}};
  EXPECT_EQ(rt.threads(), GetParam());
  EXPECT_EQ(rt.run(answer()), 42);
}

TEST_P(RuntimeThreads, run_rethrows_the_exception_of_its_task) {
  gb::Runtime rt{{.threads = GetParam()}};
  try {
    rt.run(fail_with("boom"));
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "boom");
  }
}

TEST_P(RuntimeThreads, a_tree_of_spawned_and_joined_tasks_sums_correctly) {
  gb::Runtime rt{{.threads = GetParam()}};
  // 0 + 1 + ... + 9999: every leaf ran once and every join saw its child's result.
  EXPECT_EQ(rt.run(tree_sum(0, 10'000)), std::int64_t{10'000} * 9'999 / 2);
  const gb::EngineStats stats = rt.stats();
  EXPECT_EQ(stats.submitted, 11'111u);  // 1 + 10 + 100 + 1000 + 10000 tasks, run()'s included
  EXPECT_EQ(stats.completed, 11'111u);
  EXPECT_EQ(stats.queued + stats.running + stats.failed + stats.cancelled, 0u);
  EXPECT_EQ(rt.live_tasks(), 0u);
}

gb::Task<int> count_yields(int yields, std::atomic<int>* total) {
  for (int i = 0; i < yields; ++i) {
    co_await gb::yield_now();
    total->fetch_add(1, std::memory_order_relaxed);
  }
  co_return yields;
}

gb::Task<int> many_yielders(int tasks, int yields, std::atomic<int>* total) {
  std::vector<gb::JoinHandle<int>> handles;
  for (int i = 0; i < tasks; ++i) handles.push_back(gb::spawn(count_yields(yields, total)));
  int sum = 0;
  for (auto& handle : handles) sum += co_await handle;
  co_return sum;
}

TEST_P(RuntimeThreads, tasks_that_yield_all_finish) {
  gb::Runtime rt{{.threads = GetParam()}};
  std::atomic<int> total{0};
  EXPECT_EQ(rt.run(many_yielders(200, 100, &total)), 20'000);
  EXPECT_EQ(total.load(), 20'000);
}

gb::Task<int> sleep_then(std::chrono::milliseconds delay, int value) {
  co_await gb::sleep_for(delay);
  co_return value;
}

gb::Task<int> many_sleepers(int tasks) {
  std::vector<gb::JoinHandle<int>> handles;
  for (int i = 0; i < tasks; ++i) handles.push_back(gb::spawn(sleep_then(std::chrono::milliseconds(1 + i % 5), i)));
  int sum = 0;
  for (auto& handle : handles) sum += co_await handle;
  co_return sum;
}

TEST_P(RuntimeThreads, sleeping_tasks_wake_on_their_worker_and_finish) {
  gb::Runtime rt{{.threads = GetParam()}};
  EXPECT_EQ(rt.run(many_sleepers(500)), 499 * 500 / 2);
}

gb::Task<int> add_one_later(int value, std::atomic<int>* ran) {
  co_await gb::yield_now();
  ran->fetch_add(1, std::memory_order_relaxed);
  co_return value + 1;
}

gb::Task<long> join_all(std::vector<gb::JoinHandle<int>>* handles) {
  long sum = 0;
  for (auto& handle : *handles) sum += co_await handle;
  co_return sum;
}

TEST_P(RuntimeThreads, a_burst_spawned_from_outside_runs_every_task_once) {
  gb::Runtime rt{{.threads = GetParam()}};
  constexpr int k_tasks = 10'000;
  std::atomic<int> ran{0};
  std::vector<gb::JoinHandle<int>> handles;
  handles.reserve(k_tasks);
  for (int i = 0; i < k_tasks; ++i) handles.push_back(rt.spawn(add_one_later(i, &ran)));
  EXPECT_EQ(rt.run(join_all(&handles)), long{k_tasks} * (k_tasks + 1) / 2);
  EXPECT_EQ(ran.load(), k_tasks);
  EXPECT_EQ(rt.stats().completed, static_cast<std::uint64_t>(k_tasks) + 1);
}

gb::Task<int> await_future(gb::Future<int> future) { co_return co_await future; }

TEST_P(RuntimeThreads, a_task_woken_from_another_thread_resumes) {
  gb::Runtime rt{{.threads = GetParam()}};
  // Each promise is kept by a plain thread while its task waits (or before it waits: the
  // future is then ready when awaited). Every wake-up crosses threads.
  constexpr int k_waits = 200;
  std::vector<gb::Promise<int>> promises(k_waits);
  std::vector<gb::JoinHandle<int>> handles;
  for (auto& promise : promises) handles.push_back(rt.spawn(await_future(promise.get_future())));
  std::thread keeper([&] {
    for (int i = 0; i < k_waits; ++i) promises[static_cast<std::size_t>(i)].set_value(i);
  });
  EXPECT_EQ(rt.run(join_all(&handles)), long{k_waits} * (k_waits - 1) / 2);
  keeper.join();
}

int square_on_a_thread(int x) { return x * x; }

gb::Task<int> offload(gb::ThreadPool* pool) {
  const int a = co_await gb::to_thread(square_on_a_thread, 7);
  const int b = co_await pool->submit(square_on_a_thread, 5);
  co_return a + b;
}

TEST_P(RuntimeThreads, to_thread_and_a_thread_pool_future_are_awaited_on_the_runtime) {
  gb::ThreadPool pool{{.workers = 2}};
  gb::Runtime rt{{.threads = GetParam()}};
  EXPECT_EQ(rt.run(offload(&pool)), 49 + 25);
}

gb::Task<void> wait_forever(Lifetimes* lifetimes, std::atomic<int>* cancelled) {
  Tracked held{*lifetimes};
  try {
    co_await gb::sleep_for(24h);
  } catch (const gb::Cancelled&) {
    cancelled->fetch_add(1);
    throw;
  }
}

gb::Task<void> park_everywhere(int tasks, Lifetimes* lifetimes, std::atomic<int>* cancelled) {
  for (int i = 0; i < tasks; ++i) gb::spawn(wait_forever(lifetimes, cancelled)).detach();
  co_return;
}

TEST_P(RuntimeThreads, destruction_cancels_tasks_parked_on_every_worker_and_runs_their_destructors) {
  Lifetimes lifetimes;
  std::atomic<int> cancelled{0};
  {
    gb::Runtime rt{{.threads = GetParam()}};
    rt.run(park_everywhere(300, &lifetimes, &cancelled));
    for (int i = 0; i < 100; ++i) rt.spawn(wait_forever(&lifetimes, &cancelled)).detach();  // from outside
    EXPECT_EQ(rt.live_tasks(), 400u);
  }
  EXPECT_EQ(cancelled.load(), 400);
  EXPECT_EQ(lifetimes.alive(), 0);
  EXPECT_EQ(lifetimes.corrupt.load(), 0);
}

gb::Task<int> yield_n_times(int n, Lifetimes* lifetimes) {
  Tracked held{*lifetimes, n};
  for (int i = 0; i < n; ++i) co_await gb::yield_now();
  co_return held.value();
}

TEST_P(RuntimeThreads, cancellation_racing_completion_ends_every_task_exactly_once) {
  Lifetimes lifetimes;
  std::atomic<int> outcomes{0};
  {
    gb::Runtime rt{{.threads = GetParam()}};
    constexpr int k_tasks = 2'000;
    std::vector<gb::JoinHandle<int>> handles;
    for (int i = 0; i < k_tasks; ++i) handles.push_back(rt.spawn(yield_n_times(i % 7, &lifetimes)));
    // Cancel every other task while the workers run them: some are done, some running,
    // some queued, some suspended.
    for (int i = 0; i < k_tasks; i += 2) handles[static_cast<std::size_t>(i)].cancel();
    ASSERT_TRUE(wait_until_idle(rt));
    for (int i = 0; i < k_tasks; ++i) {
      auto& handle = handles[static_cast<std::size_t>(i)];
      ASSERT_TRUE(handle.done());
      try {
        EXPECT_EQ(handle.result(), i % 7);
        ++outcomes;
      } catch (const gb::Cancelled&) {
        EXPECT_EQ(i % 2, 0) << "task " << i << " was never cancelled";
        ++outcomes;
      }
    }
    const gb::EngineStats stats = rt.stats();
    EXPECT_EQ(stats.completed + stats.cancelled, static_cast<std::uint64_t>(k_tasks));
    EXPECT_EQ(stats.failed, 0u);
  }
  EXPECT_EQ(outcomes.load(), 2'000);
  EXPECT_EQ(lifetimes.alive(), 0);
  EXPECT_EQ(lifetimes.corrupt.load(), 0);
}

gb::Task<void> fail_detached() {
  co_await gb::yield_now();
  throw std::runtime_error("nobody awaits me");
}

gb::Task<void> spawn_failures(int n) {
  for (int i = 0; i < n; ++i) gb::spawn(fail_detached()).detach();
  co_return;
}

TEST_P(RuntimeThreads, failures_nobody_awaits_reach_the_handler) {
  std::mutex mutex;
  std::vector<std::string> messages;
  {
    gb::Runtime rt{{.threads = GetParam(), .on_unhandled_exception = [&](std::exception_ptr error) {
                      try {
                        std::rethrow_exception(error);
                      } catch (const std::exception& e) {
                        std::lock_guard lock(mutex);
                        messages.emplace_back(e.what());
                      }
                    }}};
    rt.run(spawn_failures(50));
    ASSERT_TRUE(wait_until_idle(rt));  // before ~Runtime, which would cancel them
  }
  ASSERT_EQ(messages.size(), 50u);
  EXPECT_EQ(messages.front(), "nobody awaits me");
}

INSTANTIATE_TEST_SUITE_P(Runtime, RuntimeThreads, gearbox_test::runtime_threads(), gearbox_test::threads_name);

// ---- what only several workers can show -------------------------------------------------

gb::Task<std::thread::id> note_thread(std::atomic<bool>* ran) {
  ran->store(true, std::memory_order_release);
  co_return std::this_thread::get_id();
}

gb::Task<bool> spawn_then_hold_the_worker(int children) {
  // The children go to this worker's queue; this task then holds the worker until one of
  // them has run. Only another worker can run it, and only by stealing.
  std::atomic<bool> ran{false};
  std::vector<gb::JoinHandle<std::thread::id>> handles;
  for (int i = 0; i < children; ++i) handles.push_back(gb::spawn(note_thread(&ran)));
  const std::thread::id here = std::this_thread::get_id();
  if (!spin_until(ran)) co_return false;
  bool elsewhere = false;
  for (auto& handle : handles) elsewhere |= (co_await handle) != here;
  co_return elsewhere;
}

TEST(Runtime, an_idle_worker_steals_from_a_busy_one) {
  gb::Runtime rt{{.threads = 2}};
  EXPECT_TRUE(rt.run(spawn_then_hold_the_worker(100)));
  const gb::RuntimeCounters counters = rt.counters();
  EXPECT_GE(counters.steals, 1u);
  EXPECT_GE(counters.stolen_tasks, counters.steals);
}

gb::Task<void> hold_until(std::atomic<bool>* flag, std::atomic<bool>* ok) {
  ok->store(spin_until(*flag));
  co_return;
}

struct Migration {
  bool moved = false;
  int attempts = 0;
  bool state_intact = true;
  bool guard_ok = true;
};

gb::Task<Migration> migrate() {
  Migration result;
  // Each attempt: spawn a task that will hold a worker, then yield. The holder and this
  // task sit in one queue; when the other worker steals this task (while the holder keeps
  // our worker busy) we resume on a new thread. When it steals the holder instead, we stay
  // and try again. The holder lets go as soon as we have resumed, wherever.
  while (!result.moved && result.attempts < 1000) {
    ++result.attempts;
    std::vector<int> local(64, result.attempts);  // state carried across the move
    std::atomic<bool> resumed{false};
    std::atomic<bool> ok{true};
    gb::JoinHandle<void> holder = gb::spawn(hold_until(&resumed, &ok));
    const std::thread::id before = std::this_thread::get_id();
    co_await gb::yield_now();
    result.moved = std::this_thread::get_id() != before;
    resumed.store(true, std::memory_order_release);
    co_await holder;
    result.guard_ok &= ok.load();
    for (int v : local) result.state_intact &= v == result.attempts;
  }
  co_return result;
}

TEST(Runtime, a_task_stolen_between_awaits_resumes_on_the_thief_with_its_state) {
  gb::Runtime rt{{.threads = 2}};
  const Migration result = rt.run(migrate());
  EXPECT_TRUE(result.moved) << "no migration in " << result.attempts << " attempts";
  EXPECT_TRUE(result.state_intact);
  EXPECT_TRUE(result.guard_ok);
}

// Waits for `go`, then holds whichever worker runs it until tasks have run on two
// threads; returns whether they did before the hang guard.
gb::Task<bool> wait_then_hold(gb::Event* go, std::mutex* mutex, std::vector<std::thread::id>* threads,
                              std::atomic<bool>* two) {
  co_await go->wait();
  {
    std::lock_guard lock(*mutex);
    threads->push_back(std::this_thread::get_id());
    if (std::count(threads->begin(), threads->end(), threads->front()) != std::ssize(*threads))
      two->store(true, std::memory_order_release);
  }
  co_return spin_until(*two);
}

// A function posted to this worker's loop wakes four tasks between two slices: four tasks
// ready here, made so by this worker's own loop (as readiness and timers are), while the
// other worker is parked. That wakes nobody by itself; the first of them then holds this
// worker until another thread has run one of the rest, which only a hand-over of the
// stranded queue to the parked worker can bring about. (gather starts its children
// eagerly, on this worker, so each is waiting before the loop runs the post.)
gb::Task<bool> strand_posted_wakeups_behind_a_long_slice() {
  gb::Event go;
  std::mutex mutex;
  std::vector<std::thread::id> threads;
  std::atomic<bool> two{false};
  gb::Loop::current()->post([&go] { go.set(); });
  std::vector<gb::Task<bool>> holders;
  for (int i = 0; i < 4; ++i) holders.push_back(wait_then_hold(&go, &mutex, &threads, &two));
  const std::vector<bool> held = co_await gb::gather(std::move(holders));
  co_return std::all_of(held.begin(), held.end(), [](bool ok) { return ok; });
}

TEST(Runtime, tasks_its_own_loop_woke_behind_a_long_slice_are_handed_to_a_parked_worker) {
  gb::Runtime rt{{.threads = 2}};
  EXPECT_TRUE(rt.run(strand_posted_wakeups_behind_a_long_slice()));
  EXPECT_GE(rt.counters().steals, 1u);
}

gb::Task<int> run_on_own_runtime(gb::Runtime* rt) {
  try {
    (void)rt->run(answer());
  } catch (const std::logic_error&) {
    co_return 1;
  }
  co_return 0;
}

TEST(Runtime, run_from_one_of_its_own_workers_is_refused) {
  gb::Runtime rt{{.threads = 2}};
  EXPECT_EQ(rt.run(run_on_own_runtime(&rt)), 1);
}

// Raises `signal_number` for the whole process once the waiter has had a turn.
gb::Task<void> raise_soon(int signal_number) {
  for (int i = 0; i < 3; ++i) co_await gb::yield_now();
  ::kill(::getpid(), signal_number);
}

gb::Task<int> wait_for_signal(gb::os::SignalSet& set, int signal_number) {
  auto raiser = gb::spawn(raise_soon(signal_number));
  const int got = co_await set.wait();
  co_await std::move(raiser);
  co_return got;
}

TEST(Runtime, a_signal_set_made_before_run_is_waited_for_by_a_task_on_any_worker) {
  gb::os::SignalSet set{SIGUSR2};  // blocks SIGUSR2 in this thread; the workers block all
  gb::Runtime rt{{.threads = 2}};
  for (int round = 0; round < 20; ++round) EXPECT_EQ(rt.run(wait_for_signal(set, SIGUSR2)), SIGUSR2) << "round " << round;
}

bool blocked_here(int signal_number) {
  sigset_t mask;
  pthread_sigmask(SIG_BLOCK, nullptr, &mask);
  return sigismember(&mask, signal_number) == 1;
}

// Makes a SignalSet on a worker, moves between workers while it waits, ends it wherever
// the task then is.
gb::Task<int> signal_set_made_in_a_task(int signal_number) {
  gb::os::SignalSet set{signal_number};
  co_await gb::yield_now();
  const int got = co_await wait_for_signal(set, signal_number);
  co_await gb::yield_now();
  co_return got;
}

gb::Task<int> workers_still_blocking(int signal_number, int probes) {
  std::vector<gb::JoinHandle<int>> checks;
  for (int i = 0; i < probes; ++i)
    checks.push_back(gb::spawn([](int s) -> gb::Task<int> { co_return blocked_here(s) ? 1 : 0; }(signal_number)));
  int blocking = 0;
  for (auto& check : checks) blocking += co_await std::move(check);
  co_return blocking;
}

TEST(Runtime, a_signal_set_made_in_a_task_leaves_every_workers_mask_as_it_was) {
  gb::os::SignalSet guard{SIGUSR1};  // this thread must block it too, or it takes SIGUSR1
  gb::Runtime rt{{.threads = 2}};
  for (int round = 0; round < 20; ++round) EXPECT_EQ(rt.run(signal_set_made_in_a_task(SIGUSR1)), SIGUSR1) << "round " << round;
  // Had a set been destroyed on another worker than its maker with the maker's
  // bookkeeping, that worker would now take SIGUSR1 instead of the signalfd.
  EXPECT_EQ(rt.run(workers_still_blocking(SIGUSR1, 64)), 64);
  EXPECT_TRUE(blocked_here(SIGUSR1));
}

// Spins on the clock without awaiting: holds its worker for `hold` of wall time.
gb::Task<int> hold_the_worker(std::chrono::milliseconds hold) {
  const auto end = Clock::now() + hold;
  long spins = 0;
  while (Clock::now() < end) ++spins;
  co_return spins > 0 ? 1 : 0;
}

gb::Task<int> hold_then_yield(std::chrono::milliseconds hold) {
  co_await gb::yield_now();
  co_return co_await hold_the_worker(hold);  // inline: one slice of the caller
}

TEST(Runtime, a_task_that_holds_its_worker_past_the_threshold_is_counted) {
  gb::Runtime rt{{.threads = 2, .blocking_threshold = 10ms}};
  // 300 ms is 30 thresholds: the monitor looks every millisecond, so even a monitor that
  // the machine starves for most of that time sees the slice more than a threshold long.
  EXPECT_EQ(rt.run(hold_then_yield(300ms)), 1);
  EXPECT_GE(rt.counters().blocking_slices, 1u);
}

TEST(Runtime, a_zero_blocking_threshold_reports_no_slice) {
  gb::Runtime rt{{.threads = 2, .blocking_threshold = 0ms}};
  EXPECT_EQ(rt.run(hold_then_yield(50ms)), 1);
  EXPECT_EQ(rt.counters().blocking_slices, 0u);
}

// An idle runtime makes no wake-ups: with every worker parked the monitor has nothing to
// look at and sleeps (it looked every millisecond), and the next task wakes it in time to
// report a slice that holds a worker.
TEST(Runtime, the_monitor_sleeps_while_every_worker_is_parked_and_wakes_for_the_next_task) {
  gb::Runtime rt{{.threads = 2, .blocking_threshold = 10ms}};
  EXPECT_EQ(rt.run(answer()), 42);
  // Wait until the workers have parked: the looks stay unchanged for five reads in a row,
  // 100 ms (bounded: 5 s). One quiet read is not enough under a sanitizer on a loaded
  // machine: a monitor still looking may be kept off the CPU for 20 ms.
  std::uint64_t looks = rt.counters().monitor_looks;
  for (int i = 0, quiet = 0; i < 250 && quiet < 5; ++i) {
    std::this_thread::sleep_for(20ms);
    const std::uint64_t now = rt.counters().monitor_looks;
    quiet = now == looks ? quiet + 1 : 0;
    looks = now;
  }
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(rt.counters().monitor_looks, looks);  // would be ~50 more had it kept looking
  EXPECT_EQ(rt.run(hold_then_yield(300ms)), 1);
  EXPECT_GT(rt.counters().monitor_looks, looks);
  EXPECT_GE(rt.counters().blocking_slices, 1u);
}

TEST(Runtime, zero_threads_means_one_per_core) {
  gb::Runtime rt;
  EXPECT_EQ(rt.threads(), std::max(1u, std::thread::hardware_concurrency()));
  EXPECT_EQ(rt.run(answer()), 42);
}

TEST(Runtime, an_absurd_thread_count_is_refused) {
  EXPECT_THROW(gb::Runtime({.threads = 100'000}), std::invalid_argument);
}

// Many short runs back to back: start-up, parking, wake-ups and shutdown over and over.
TEST(RuntimeStress, repeated_runtimes_over_thread_counts_end_cleanly) {
  for (unsigned threads : {1u, 2u, 4u, 8u}) {
    for (int round = 0; round < 20; ++round) {
      gb::Runtime rt{{.threads = threads}};
      std::atomic<int> total{0};
      ASSERT_EQ(rt.run(many_yielders(20, 5, &total)), 100) << threads << " threads, round " << round;
      ASSERT_EQ(rt.run(tree_sum(0, 100)), 4950);
    }
  }
}

}  // namespace
