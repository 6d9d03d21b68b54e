// Tests of the async core on one thread: Loop::run, spawn and the order in which tasks
// interleave, post() from other threads, shutdown, deadlock detection and misuse, and a
// seeded stress test of spawns and cancels. JoinHandle, sleeps and timeout() have files of
// their own (join_handle_test, sleep_test, timeout_test); their helpers are in
// loop_test_support.hpp.
//
// Time: every test but the post() ones uses a ManualClock with auto_advance, so a 5 s
// sleep takes no real time and ends at exactly start + 5 s; the tests check clock.now()
// exactly. The post() tests need a real clock (the eventfd path); they are bounded by a
// count and by the ctest timeout, never by a timing threshold.
//
// Every test here stays on the loop (the multi-thread flavor has its own in
// tests/runtime): they are about the Loop class (run, current, reentrancy, post, stats,
// shutdown, deadlock detection, Loop::spawn with Start::eager) or about the order in which
// one thread interleaves tasks, and the stress test checks each cancel against the virtual
// time it was made at. What they share with the runtime is asserted on both flavors
// elsewhere: a run's result and exception in task_test, spawning and awaiting tasks,
// cancelling them and their failures in join_handle_test.
#include <gearbox/error.hpp>
#include <gearbox/join_handle.hpp>
#include <gearbox/loop.hpp>
#include <gearbox/spawn.hpp>
#include <gearbox/task.hpp>
#include <gearbox/time.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "loop_test_support.hpp"

namespace gb = gearbox;
using namespace std::chrono_literals;
using namespace gearbox_test;

// =====================================================================================
// Loop::run
// =====================================================================================

TEST(LoopRun, run_returns_the_value_of_its_task) {
  gb::ManualClock clock;
  gb::Loop loop{{.clock = &clock, .auto_advance = true}};
  EXPECT_EQ(loop.run(answer()), 42);
  EXPECT_EQ(loop.run(value_after(2s, 7)), 7);
  EXPECT_EQ(gb::run(answer()), 42);
}

TEST(LoopRun, run_rethrows_the_exception_of_its_task_and_the_loop_stays_usable) {
  gb::ManualClock clock;
  gb::Loop loop{{.clock = &clock, .auto_advance = true}};
  try {
    loop.run(fail_after(1s, "failed in run"));
    ADD_FAILURE() << "no exception";
  } catch (const TestError& e) {
    EXPECT_STREQ(e.what(), "failed in run");
  }
  EXPECT_EQ(loop.run(answer()), 42);
  EXPECT_EQ(loop.live_tasks(), 0u);
}

TEST(LoopRun, current_is_the_running_loop_inside_a_task_and_null_outside) {
  gb::ManualClock clock;
  gb::Loop loop{{.clock = &clock, .auto_advance = true}};
  EXPECT_EQ(gb::Loop::current(), nullptr);
  EXPECT_THROW(gb::Loop::current_or_throw(), std::logic_error);
  gb::Loop* inside = loop.run([]() -> gb::Task<gb::Loop*> { co_return gb::Loop::current(); }());
  EXPECT_EQ(inside, &loop);
  EXPECT_EQ(gb::Loop::current(), nullptr);
}

// Regression: run() used to auto-advance the manual clock in the turn its task ended.
TEST(LoopRun, run_returns_when_its_task_ends_without_advancing_the_manual_clock_to_other_timers) {
  bool background_woke = false;
  gb::ManualClock clock;
  gb::Loop loop{{.clock = &clock, .auto_advance = true}};
  const TimePoint t0 = clock.now();
  loop.spawn([](bool& woke) -> gb::Task<void> {
    co_await gb::sleep_for(10s);
    woke = true;
  }(background_woke)).detach();
  loop.run(value_after(1s, 0));
  EXPECT_EQ(ms(clock.now() - t0), "1000ms");
  EXPECT_FALSE(background_woke);
  loop.run(value_after(9s, 0));
  EXPECT_EQ(ms(clock.now() - t0), "10000ms");
  EXPECT_TRUE(background_woke);
}

TEST(LoopRun, run_is_not_reentrant) {
  gb::ManualClock clock;
  gb::Loop loop{{.clock = &clock, .auto_advance = true}};
  const bool rejected = loop.run([](gb::Loop& l) -> gb::Task<bool> {
    try {
      (void)l.run(answer());
    } catch (const std::logic_error&) {
      co_return true;
    }
    co_return false;
  }(loop));
  EXPECT_TRUE(rejected);
}

// Regression: a refused reentrant run() used to spawn (and so start) its task first.
TEST(LoopRun, a_rejected_reentrant_run_does_not_start_its_task) {
  bool started = false;
  gb::ManualClock clock;
  gb::Loop loop{{.clock = &clock, .auto_advance = true}};
  loop.run([](gb::Loop& l, bool& flag) -> gb::Task<void> {
    try {
      l.run(set_flag(flag));
    } catch (const std::logic_error&) {
    }
    co_await gb::sleep_for(1s);  // every chance for a wrongly started task to run
  }(loop, started));
  EXPECT_FALSE(started);
  EXPECT_EQ(loop.live_tasks(), 0u);
}

TEST(LoopRun, running_a_second_loop_from_a_task_of_the_first_throws_logic_error) {
  gb::ManualClock clock;
  gb::Loop other{{.clock = &clock, .auto_advance = true}};
  gb::Loop loop{{.clock = &clock, .auto_advance = true}};
  const bool rejected = loop.run([](gb::Loop& second) -> gb::Task<bool> {
    try {
      (void)second.run(answer());
    } catch (const std::logic_error&) {
      co_return true;
    }
    co_return false;
  }(other));
  EXPECT_TRUE(rejected);
}

TEST(LoopRun, auto_advance_needs_a_manual_clock) {
  EXPECT_THROW(gb::Loop loop{{.auto_advance = true}}, std::invalid_argument);
}

// =====================================================================================
// spawn and the order of a run
// =====================================================================================

TEST(Spawn, spawned_tasks_run_concurrently_and_interleave_at_each_co_await_in_a_deterministic_order) {
  Log log;
  gb::ManualClock clock;
  gb::Loop loop{{.clock = &clock, .auto_advance = true}};
  const TimePoint t0 = clock.now();
  loop.run([](Log& log, TimePoint t0) -> gb::Task<void> {
    auto a = gb::spawn(stepper("A", {3ms, 3ms}, log, t0));
    auto b = gb::spawn(stepper("B", {2ms, 2ms, 2ms}, log, t0));
    auto c = gb::spawn([](Log& log, TimePoint t0) -> gb::Task<void> {
      log.push_back("C0@" + now_since(t0));
      co_await gb::yield_now();
      log.push_back("C1@" + now_since(t0));
      co_await gb::sleep_for(5ms);
      log.push_back("C done@" + now_since(t0));
    }(log, t0));
    log.push_back("main spawned@" + now_since(t0));
    co_await a;
    log.push_back("main joined A@" + now_since(t0));
    co_await b;
    co_await c;
    log.push_back("main end@" + now_since(t0));
  }(log, t0));
  const Log expected = {
      "main spawned@0ms",  // spawned tasks start at the next turn
      "A0@0ms", "B0@0ms", "C0@0ms",
      "C1@0ms",            // C yielded; A and B wait for timers
      "B1@2ms", "A1@3ms", "B2@4ms",
      "C done@5ms",
      "A done@6ms", "B done@6ms",  // same deadline: fired in the order they were armed
      "main joined A@6ms",
      "main end@6ms",
  };
  EXPECT_EQ(log, expected);
  EXPECT_EQ(ms(clock.now() - t0), "6ms");
  EXPECT_EQ(loop.live_tasks(), 0u);
}

TEST(Spawn, a_spawned_task_first_runs_after_its_spawner_suspends) {
  Log log;
  gb::ManualClock clock;
  gb::Loop loop{{.clock = &clock, .auto_advance = true}};
  loop.run([](Log& log) -> gb::Task<void> {
    auto child = gb::spawn([](Log& log) -> gb::Task<void> {
      log.push_back("child runs");
      co_return;
    }(log));
    log.push_back("spawner continues");
    co_await gb::yield_now();
    log.push_back("spawner after yield");
    co_await child;
  }(log));
  EXPECT_EQ(log, (Log{"spawner continues", "child runs", "spawner after yield"}));
}

// Each turn runs the tasks that were ready when it began; what they wake (or re-schedule
// by yielding) runs in the next turn, after timers. A advances the manual clock by 1 ms so
// that C's timer is due at the end of the first turn: C then runs in the second turn
// between the tasks that were ready, instead of after A and B have finished yielding.
TEST(Spawn, a_turn_runs_the_tasks_ready_at_its_start_and_defers_those_woken_during_it) {
  Log log;
  gb::ManualClock clock;
  gb::Loop loop{{.clock = &clock, .auto_advance = true}};
  loop.run([](Log& log, gb::ManualClock& clock) -> gb::Task<void> {
    auto c = gb::spawn([](Log& log) -> gb::Task<void> {
      co_await gb::sleep_for(1ms);
      log.push_back("c");
    }(log));
    auto a = gb::spawn([](Log& log, gb::ManualClock& clock) -> gb::Task<void> {
      log.push_back("a1");
      clock.advance(1ms);  // C's timer is now due
      co_await gb::yield_now();
      log.push_back("a2");
      co_await gb::yield_now();
      log.push_back("a3");
    }(log, clock));
    auto b = gb::spawn(yielder("b", 3, log));
    co_await c;
    co_await a;
    co_await b;
  }(log, clock));
  EXPECT_EQ(log, (Log{"a1", "b0", "a2", "b1", "c", "a3", "b2"}));
}

TEST(Spawn, an_eager_spawn_runs_the_task_inside_spawn_until_its_first_suspension) {
  Log log;
  gb::ManualClock clock;
  gb::Loop loop{{.clock = &clock, .auto_advance = true}};
  loop.run([](Log& log) -> gb::Task<void> {
    auto child = gb::Loop::current_or_throw().spawn([](Log& log) -> gb::Task<void> {
      log.push_back("child before its first await");
      co_await gb::yield_now();
      log.push_back("child after its first await");
    }(log), gb::Start::eager);
    log.push_back("spawn returned");
    auto finished = gb::Loop::current_or_throw().spawn(answer(), gb::Start::eager);
    log.push_back(finished.done() ? "a task with no await is done when spawn returns" : "not done");
    co_await child;
    log.push_back("answer " + std::to_string(co_await finished));
  }(log));
  EXPECT_EQ(log, (Log{"child before its first await", "spawn returned",
                      "a task with no await is done when spawn returns", "child after its first await",
                      "answer 42"}));
}

namespace {
// Each level eagerly spawns the next; `inside_spawn` counts the spawn() calls on the stack
// when a level starts, i.e. how deeply eager starts are nested at that moment.
gb::Task<void> eager_chain(int level, int levels, int& inside_spawn, int& deepest) {
  deepest = std::max(deepest, inside_spawn);
  if (level == levels) co_return;
  ++inside_spawn;
  auto next = gb::Loop::current_or_throw().spawn(eager_chain(level + 1, levels, inside_spawn, deepest), gb::Start::eager);
  --inside_spawn;
  co_await next;
}
}  // namespace

TEST(Spawn, nested_eager_starts_stop_nesting_at_k_max_eager_depth_and_every_task_still_runs) {
  int inside_spawn = 0;
  int deepest = 0;
  gb::ManualClock clock;
  gb::Loop loop{{.clock = &clock, .auto_advance = true}};
  loop.run(eager_chain(0, 1000, inside_spawn, deepest));
  EXPECT_EQ(deepest, gb::k_max_eager_depth);
  EXPECT_EQ(inside_spawn, 0);
  EXPECT_EQ(loop.live_tasks(), 0u);
}

TEST(Spawn, spawning_an_empty_task_throws_invalid_argument) {
  gb::ManualClock clock;
  gb::Loop loop{{.clock = &clock, .auto_advance = true}};
  EXPECT_THROW((void)loop.spawn(gb::Task<int>{}), std::invalid_argument);
  EXPECT_EQ(loop.live_tasks(), 0u);
}

TEST(Spawn, gb_spawn_off_a_loop_throws_logic_error) {
  EXPECT_THROW((void)gb::spawn(answer()), std::logic_error);
}

// =====================================================================================
// post()
// =====================================================================================

TEST(Post, functions_posted_from_another_thread_all_run_on_the_loop_thread_in_order) {
  constexpr int k_posts = 10000;
  int ran = 0;            // touched only on the loop's thread (TSan checks that)
  int wrong_thread = 0;
  int out_of_order = 0;
  std::thread::id loop_thread;
  gb::Loop loop;  // real clock: the eventfd wake-up path
  std::jthread poster;
  loop.run([&]() -> gb::Task<void> {
    loop_thread = std::this_thread::get_id();
    poster = std::jthread([&] {
      for (int i = 0; i < k_posts; ++i) {
        loop.post([&, i] {
          if (std::this_thread::get_id() != loop_thread) ++wrong_thread;
          if (i != ran) ++out_of_order;
          ++ran;
        });
      }
    });
    // Bounded by the count (and the test's timeout), not by a time limit.
    while (ran < k_posts) co_await gb::sleep_for(1ms);
  }());
  poster.join();
  EXPECT_EQ(ran, k_posts);
  EXPECT_EQ(wrong_thread, 0);
  EXPECT_EQ(out_of_order, 0);
}

// The loop blocks in epoll_wait until a timer one hour away; only the post's eventfd write
// can wake it in time. If it did not, the test would hang until the ctest timeout.
TEST(Post, a_post_from_another_thread_wakes_a_loop_blocked_on_a_far_timer) {
  bool posted_ran = false;
  bool sleeper_cancelled = false;
  gb::Loop loop;  // real clock
  std::jthread poster;
  loop.run([&]() -> gb::Task<void> {
    auto sleeper = gb::spawn(value_after(1h, 0));
    poster = std::jthread([&] {
      loop.post([&] {
        posted_ran = true;
        sleeper.cancel();
      });
    });
    try {
      (void)co_await sleeper;
    } catch (const gb::Cancelled&) {
      sleeper_cancelled = true;
    }
  }());
  EXPECT_TRUE(posted_ran);
  EXPECT_TRUE(sleeper_cancelled);
}

// Regression: while tasks were ready, posted functions used to wait up to 61 turns.
TEST(Post, a_function_posted_from_the_loop_thread_runs_at_its_next_turn_not_inside_post) {
  Log log;
  gb::ManualClock clock;
  gb::Loop loop{{.clock = &clock, .auto_advance = true}};
  loop.run([&]() -> gb::Task<void> {
    loop.post([&] { log.push_back("posted"); });
    log.push_back("after post");
    co_await gb::yield_now();
    log.push_back("after yield 1");
    co_await gb::yield_now();
    log.push_back("after yield 2");
    co_await gb::yield_now();
    log.push_back("after yield 3");
  }());
  EXPECT_EQ(log, (Log{"after post", "after yield 1", "posted", "after yield 2", "after yield 3"}));
}

// Regression: a function posted just before a run ended used to be dropped by ~Loop.
TEST(Post, a_function_posted_while_the_loop_runs_is_not_dropped_when_the_run_ends_soon_after) {
  bool ran = false;
  {
    gb::ManualClock clock;
    gb::Loop loop{{.clock = &clock, .auto_advance = true}};
    loop.run([&]() -> gb::Task<void> {
      loop.post([&] { ran = true; });
      co_await gb::yield_now();
      co_await gb::yield_now();
      co_await gb::yield_now();
    }());
  }
  EXPECT_TRUE(ran);
}

TEST(Post, an_exception_from_a_posted_function_is_reported_once_to_on_unhandled_exception) {
  std::vector<std::string> reported;
  bool ran = false;
  int turns_waited = 0;
  gb::ManualClock clock;
  gb::Loop loop{{.clock = &clock,
                 .auto_advance = true,
                 .on_unhandled_exception = [&](std::exception_ptr e) { reported.push_back(describe(e)); }}};
  loop.run([&]() -> gb::Task<void> {
    loop.post([&] {
      ran = true;
      throw TestError("posted failure");
    });
    while (!ran && turns_waited < 1000) {  // bounded by a count of turns, not by time
      ++turns_waited;
      co_await gb::yield_now();
    }
    co_await gb::yield_now();
  }());
  EXPECT_TRUE(ran);
  EXPECT_EQ(reported, std::vector<std::string>{"posted failure"});
}

TEST(Post, functions_posted_to_a_loop_that_never_ran_are_run_by_its_destructor) {
  Lifetimes lifetimes;
  bool ran = false;
  {
    gb::Loop loop;
    loop.post([counted = Tracked{lifetimes}, &ran] { ran = true; });
    EXPECT_EQ(lifetimes.alive(), 1);
    EXPECT_FALSE(ran);
  }
  EXPECT_TRUE(ran);
  EXPECT_EQ(lifetimes.alive(), 0);
}

// =====================================================================================
// stats(): the figures every engine reports (engine_stats.hpp)
// =====================================================================================

TEST(LoopStats, each_spawned_task_is_queued_then_running_then_ended_by_its_outcome) {
  gb::ManualClock clock;
  gb::Loop loop{{.clock = &clock, .auto_advance = true}};
  EXPECT_EQ(loop.stats().submitted, 0u);
  gb::EngineStats mid;
  gb::EngineStats before_first_run;
  loop.run([](gb::Loop& loop, gb::EngineStats& mid, gb::EngineStats& before_first_run) -> gb::Task<void> {
    auto ok = gb::spawn(value_after(1s, 7));
    auto bad = gb::spawn(fail_after(1s, "boom"));
    auto doomed = gb::spawn(value_after(10s, 1));
    auto asleep = gb::spawn(value_after(10s, 2));
    before_first_run = loop.stats();  // four spawned, not yet run; run()'s own task runs
    co_await gb::sleep_for(2s);       // ok and bad have ended; doomed and asleep wait
    doomed.cancel();
    EXPECT_THROW(co_await doomed, gb::Cancelled);
    EXPECT_EQ(co_await ok, 7);
    EXPECT_THROW(co_await bad, TestError);
    mid = loop.stats();
    asleep.cancel();
    EXPECT_THROW(co_await asleep, gb::Cancelled);
  }(loop, mid, before_first_run));
  EXPECT_EQ(before_first_run.submitted, 5u);
  EXPECT_EQ(before_first_run.queued, 4u);
  EXPECT_EQ(before_first_run.running, 1u);
  EXPECT_EQ(before_first_run.completed + before_first_run.failed + before_first_run.cancelled, 0u);

  EXPECT_EQ(mid.submitted, 5u);
  EXPECT_EQ(mid.queued, 0u);
  EXPECT_EQ(mid.running, 2u);  // run()'s task, and the one still asleep
  EXPECT_EQ(mid.completed, 1u);
  EXPECT_EQ(mid.failed, 1u);
  EXPECT_EQ(mid.cancelled, 1u);

  const gb::EngineStats end = loop.stats();
  EXPECT_EQ(end.submitted, 5u);
  EXPECT_EQ(end.queued + end.running, 0u);
  EXPECT_EQ(end.completed, 2u);  // ok, and run()'s task
  EXPECT_EQ(end.failed, 1u);
  EXPECT_EQ(end.cancelled, 2u);
}

// =====================================================================================
// Shutdown
// =====================================================================================

TEST(LoopShutdown, destroying_the_loop_cancels_every_live_task_and_runs_their_destructors) {
  Lifetimes lifetimes;
  Log log;
  gb::ManualClock clock;
  TimePoint before_destruction;
  {
    gb::Loop loop{{.clock = &clock, .auto_advance = true}};
    loop.run([](Lifetimes& lifetimes, Log& log) -> gb::Task<void> {
      for (int i = 0; i < 3; ++i) gb::spawn(sleeper_with_local(lifetimes, log)).detach();
      co_await gb::sleep_for(1s);
    }(lifetimes, log));
    loop.spawn(sleeper_with_local(lifetimes, log)).detach();  // spawned, never run
    EXPECT_EQ(loop.live_tasks(), 4u);
    EXPECT_EQ(lifetimes.alive(), 3);
    before_destruction = clock.now();
  }
  EXPECT_EQ(lifetimes.alive(), 0);
  EXPECT_EQ(log, Log(4, "sleeper: Cancelled at its sleep"));
  EXPECT_EQ(ms(clock.now() - before_destruction), "0ms") << "shutdown must not wait for the sleepers' deadlines";
}

TEST(LoopShutdown, gb_run_cancels_and_awaits_the_tasks_its_task_leaves_behind) {
  Lifetimes lifetimes;
  Log log;
  gb::ManualClock clock;
  const int result = gb::run(
      [](Lifetimes& lifetimes, Log& log) -> gb::Task<int> {
        gb::spawn(sleeper_with_local(lifetimes, log)).detach();
        co_await gb::yield_now();
        co_return 7;
      }(lifetimes, log),
      {.clock = &clock, .auto_advance = true});
  EXPECT_EQ(result, 7);
  EXPECT_EQ(lifetimes.alive(), 0);
  EXPECT_EQ(log, Log{"sleeper: Cancelled at its sleep"});
}

// =====================================================================================
// Deadlock detection
// =====================================================================================

TEST(Deadlock, auto_advance_reports_with_logic_error_when_every_task_waits_and_no_timer_is_left) {
  Lifetimes lifetimes;
  Log log;
  gb::ManualClock clock;
  TimePoint t0;
  {
    gb::Loop loop{{.clock = &clock, .auto_advance = true}};
    t0 = clock.now();
    std::string message;
    try {
      loop.run([](Lifetimes& lifetimes, Log& log) -> gb::Task<void> {
        auto a = gb::spawn(wait_forever(lifetimes, log));
        auto b = gb::spawn(wait_forever(lifetimes, log));
        auto timed = gb::spawn(value_after(5s, 0));  // time must run out first
        co_await a;
      }(lifetimes, log));
      ADD_FAILURE() << "no deadlock reported";
    } catch (const std::logic_error& e) {
      message = e.what();
    }
    EXPECT_NE(message.find("deadlock"), std::string::npos) << message;
    EXPECT_EQ(ms(clock.now() - t0), "5000ms") << "reported only after the last timer";
    EXPECT_EQ(lifetimes.alive(), 2);
  }
  // ~Loop cancels the waiters and lets them unwind.
  EXPECT_EQ(lifetimes.alive(), 0);
  EXPECT_EQ(log, Log(2, "waiter: Cancelled"));
}

// =====================================================================================
// Stress
// =====================================================================================

namespace {
struct WorkerRecord {
  Duration deadline{};
  std::optional<Duration> cancelled_at;  // when main called cancel() (first time)
  bool cancelled_before_start = false;
  int finished = 0;         // the worker returned its value
  int ended_cancelled = 0;  // the worker saw Cancelled
  int outcomes = 0;         // results delivered through the handle
  bool got_value = false;
  int value = -1;
};

gb::Task<int> worker(int id, WorkerRecord& record, Lifetimes& lifetimes) {
  Tracked local{lifetimes};
  try {
    co_await gb::sleep_for(record.deadline);
  } catch (const gb::Cancelled&) {
    ++record.ended_cancelled;
    throw;
  }
  ++record.finished;
  co_return id;
}
}  // namespace

TEST(Stress, many_spawns_with_random_cancels_each_end_exactly_once_with_a_value_or_Cancelled) {
  constexpr int k_tasks = 5000;
  std::mt19937 rng{4242};
  std::vector<WorkerRecord> records(k_tasks);
  for (auto& r : records) r.deadline = std::chrono::milliseconds(std::uniform_int_distribution<int>{0, 2000}(rng));
  Lifetimes lifetimes;
  gb::ManualClock clock;
  gb::Loop loop{{.clock = &clock, .auto_advance = true}};
  const TimePoint t0 = clock.now();
  const std::size_t live_while_joining = loop.run(
      [](std::vector<WorkerRecord>& records, Lifetimes& lifetimes, std::mt19937& rng, TimePoint t0) -> gb::Task<std::size_t> {
        const int n = static_cast<int>(records.size());
        auto pick = [&] { return std::uniform_int_distribution<int>{0, n - 1}(rng); };
        std::vector<gb::JoinHandle<int>> handles;
        for (int i = 0; i < n; ++i) handles.push_back(gb::spawn(worker(i, records[static_cast<std::size_t>(i)], lifetimes)));
        for (int k = 0; k < n / 20; ++k) {  // some before they ever run
          const int id = pick();
          auto& r = records[static_cast<std::size_t>(id)];
          if (!r.cancelled_at) {
            r.cancelled_at = Duration::zero();
            r.cancelled_before_start = true;
          }
          handles[static_cast<std::size_t>(id)].cancel();
        }
        for (int round = 0; round < 300; ++round) {  // the rest at random times
          co_await gb::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>{0, 10}(rng)));
          for (int k = 0; k < 8; ++k) {
            const int id = pick();
            auto& r = records[static_cast<std::size_t>(id)];
            if (!r.cancelled_at) r.cancelled_at = gb::Loop::current_or_throw().now() - t0;
            handles[static_cast<std::size_t>(id)].cancel();  // again, sometimes: no effect
          }
        }
        for (int i = 0; i < n; ++i) {
          auto& r = records[static_cast<std::size_t>(i)];
          try {
            r.value = co_await handles[static_cast<std::size_t>(i)];
            r.got_value = true;
            ++r.outcomes;
          } catch (const gb::Cancelled&) {
            ++r.outcomes;
          }
        }
        co_return gb::Loop::current_or_throw().live_tasks();
      }(records, lifetimes, rng, t0));

  EXPECT_EQ(live_while_joining, 1u) << "only the main task should be alive once every handle was awaited";
  EXPECT_EQ(loop.live_tasks(), 0u);
  EXPECT_EQ(lifetimes.alive(), 0);
  int problems = 0;
  int values = 0;
  int cancels = 0;
  auto problem = [&](int id, const std::string& what) {
    if (++problems <= 20) ADD_FAILURE() << "task " << id << ": " << what;
  };
  for (int i = 0; i < k_tasks; ++i) {
    const auto& r = records[static_cast<std::size_t>(i)];
    if (r.outcomes != 1 || r.finished + r.ended_cancelled != 1) {
      problem(i, "outcomes " + std::to_string(r.outcomes) + ", finished " + std::to_string(r.finished) +
                     ", ended_cancelled " + std::to_string(r.ended_cancelled));
      continue;
    }
    if (r.got_value) {
      ++values;
      if (r.value != i || r.finished != 1) problem(i, "wrong value " + std::to_string(r.value));
      if (r.cancelled_before_start || (r.cancelled_at && *r.cancelled_at < r.deadline))
        problem(i, "cancelled before its deadline, yet it gave a value");
    } else {
      ++cancels;
      if (r.ended_cancelled != 1) problem(i, "Cancelled through the handle, but the task never saw Cancelled");
      if (!r.cancelled_at)
        problem(i, "Cancelled without a cancel()");
      else if (!r.cancelled_before_start && *r.cancelled_at > r.deadline)
        problem(i, "cancelled after it had finished, yet no value");
    }
  }
  EXPECT_EQ(problems, 0);
  EXPECT_GT(values, 0) << "the test should exercise both outcomes";
  EXPECT_GT(cancels, 0) << "the test should exercise both outcomes";
}
