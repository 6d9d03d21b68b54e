// Tests for gather (include/gearbox/combinators.hpp): variadic (eager starts in argument
// order, any awaitable, move-only results, the first failure cancels the others, later
// failures are reported, cancellation and timeout of the caller, deep nesting) and over a
// range (range order, void tasks, an empty range, failures in finishing order, ten
// thousand children). when_any and as_completed have files of their own (when_any_test,
// as_completed_test); the child tasks they share are in combinators_test_support.hpp.
//
// Every test runs on a loop with a manual clock that jumps to the next timer whenever
// every task waits, so timed interleavings are deterministic and nothing sleeps. Children
// write an event log ("<name> <event> @<ms since start>") that is compared as a whole, and
// hold a Tracked local whose constructions and destructions are counted, to prove that
// every child's frame was destroyed exactly once by the time a combinator returns.
#include <gearbox/combinators.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <gearbox/error.hpp>
#include <gearbox/join_handle.hpp>
#include <gearbox/loop.hpp>
#include <gearbox/spawn.hpp>
#include <gearbox/task.hpp>
#include <gearbox/time.hpp>

#include <gtest/gtest.h>

#include "child_tasks.hpp"
#include "support/env.hpp"
#include "support/lifetimes.hpp"

namespace gb = gearbox;
using namespace std::chrono_literals;
using std::chrono::milliseconds;

using namespace gearbox_test;

namespace {

// Throws without ever suspending.
gb::Task<int> fail_now(Env& env, std::string name) {
  Tracked alive{env.life};
  env.note(name + " throws");
  if (!name.empty()) throw Failure{name};
  co_return 0;
}

}  // namespace

// ---- gather, variadic ----

// For contrast with the combinators' eager starts.
TEST(Gather, unlike_its_children_a_task_from_spawn_first_runs_at_the_next_turn) {
  Env env;
  env.loop.run([&]() -> gb::Task<void> {
    auto handle = gb::spawn(noter(env, "child runs"));
    env.note("spawner continues");
    co_await gb::yield_now();
    env.note("spawner resumed");
    co_await handle;
  }());
  EXPECT_EQ(env.log, (Log{"spawner continues @0", "child runs @0", "spawner resumed @0"}));
}

TEST(Gather, children_start_eagerly_inside_the_call_in_argument_order) {
  Env env;
  std::tuple<int, int, int> results{};
  env.loop.run([&]() -> gb::Task<void> {
    auto other = gb::spawn(noter(env, "scheduled task runs"));
    env.note("gather called");
    results = co_await gb::gather(sleeper(env, "a", 30ms, 1), sleeper(env, "b", 10ms, 2), sleeper(env, "c", 20ms, 3));
    env.note("gather returned " + env.state());
    co_await other;
  }());
  EXPECT_EQ(env.log, (Log{"gather called @0", "a start @0", "b start @0", "c start @0", "scheduled task runs @0",
                          "b end @10", "c end @20", "a end @30", "gather returned (live 1, alive 0) @30"}));
  EXPECT_EQ(results, std::make_tuple(1, 2, 3));  // argument order, not finishing order
  EXPECT_EQ(env.life.constructed, 3);
  EXPECT_EQ(env.life.destroyed, 3);
  EXPECT_EQ(env.loop.live_tasks(), 0u);
}

TEST(Gather, five_two_second_sleeps_together_take_exactly_two_seconds) {
  Env env;
  std::size_t live_after = 0;
  env.loop.run([&]() -> gb::Task<void> {
    auto results = co_await gb::gather(gb::sleep_for(2s), gb::sleep_for(2s), gb::sleep_for(2s), gb::sleep_for(2s),
                                       gb::sleep_for(2s));
    static_assert(std::is_same_v<decltype(results), std::tuple<std::monostate, std::monostate, std::monostate,
                                                                std::monostate, std::monostate>>);
    live_after = env.loop.live_tasks();
  }());
  EXPECT_EQ(env.clock.now() - env.start, 2s);  // not 10 s
  EXPECT_EQ(live_after, 1u);                     // only the root task
  EXPECT_EQ(env.loop.live_tasks(), 0u);
}

TEST(Gather, accepts_any_awaitable_a_join_handle_a_sleep_and_a_task) {
  Env env;
  int from_handle = 0;
  int from_task = 0;
  env.loop.run([&]() -> gb::Task<void> {
    auto handle = gb::spawn(sleeper(env, "spawned", 3000ms, 7));  // scheduled: runs next turn
    auto [x, pause, y] = co_await gb::gather(std::move(handle), gb::sleep_for(1s), sleeper(env, "task", 2000ms, 5));
    static_assert(std::is_same_v<decltype(pause), std::monostate>);
    from_handle = x;
    from_task = y;
    env.note("gathered " + env.state());
  }());
  EXPECT_EQ(env.log, (Log{"task start @0", "spawned start @0", "task end @2000", "spawned end @3000",
                          "gathered (live 1, alive 0) @3000"}));
  EXPECT_EQ(from_handle, 7);
  EXPECT_EQ(from_task, 5);
  EXPECT_EQ(env.clock.now() - env.start, 3s);
}

TEST(Gather, move_only_results_are_moved_out_in_argument_order) {
  Env env;
  std::unique_ptr<int> first, second;
  std::vector<std::unique_ptr<int>> range;
  env.loop.run([&]() -> gb::Task<void> {
    std::tie(first, second) = co_await gb::gather(boxed(env, 20ms, 1), boxed(env, 10ms, 2));
    std::vector<gb::Task<std::unique_ptr<int>>> tasks;
    tasks.push_back(boxed(env, 30ms, 10));
    tasks.push_back(boxed(env, 10ms, 20));
    tasks.push_back(boxed(env, 20ms, 30));
    range = co_await gb::gather(std::move(tasks));
  }());
  ASSERT_TRUE(first && second);
  EXPECT_EQ(*first, 1);
  EXPECT_EQ(*second, 2);
  ASSERT_EQ(range.size(), 3u);
  ASSERT_TRUE(range[0] && range[1] && range[2]);
  EXPECT_EQ(*range[0], 10);
  EXPECT_EQ(*range[1], 20);
  EXPECT_EQ(*range[2], 30);
  EXPECT_EQ(env.clock.now() - env.start, 50ms);  // 20 ms, then 30 ms
  EXPECT_EQ(env.life.constructed, 5);
  EXPECT_EQ(env.life.destroyed, 5);
}

TEST(Gather, the_first_failure_cancels_the_other_children_and_is_rethrown_after_they_end) {
  Env env;
  env.loop.run([&]() -> gb::Task<void> {
    try {
      co_await gb::gather(sleeper(env, "a", 3000ms, 1), failer(env, "b", 1000ms), sleeper(env, "c", 2000ms, 3),
                          sleeper(env, "d", 500ms, 4));
      env.note("no exception");
    } catch (const Failure& failure) {
      env.note(std::string("caught ") + failure.what() + " " + env.state());
    }
  }());
  // a and c end (their sleeps throw Cancelled, destructors run) before b's failure shows.
  EXPECT_EQ(env.log, (Log{"a start @0", "b start @0", "c start @0", "d start @0", "d end @500", "b throws @1000",
                          "a cancelled @1000", "c cancelled @1000", "caught b (live 1, alive 0) @1000"}));
  EXPECT_EQ(env.unhandled, Log{});  // the rethrown failure is not reported; Cancelled never is
  EXPECT_EQ(env.life.constructed, 4);
  EXPECT_EQ(env.life.destroyed, 4);
  EXPECT_EQ(env.clock.now() - env.start, 1s);
}

TEST(Gather, a_second_failure_is_reported_to_the_loop_and_cancellations_are_not) {
  Env env;
  env.loop.run([&]() -> gb::Task<void> {
    try {
      co_await gb::gather(fail_now(env, "a"), fail_now(env, "b"), sleeper(env, "c", 1000ms, 3));
      env.note("no exception");
    } catch (const Failure& failure) {
      env.note(std::string("caught ") + failure.what() + " " + env.state());
    }
  }());
  // The variadic form starts every child eagerly, even after a has failed during its start.
  EXPECT_EQ(env.log, (Log{"a throws @0", "b throws @0", "c start @0", "c cancelled @0", "caught a (live 1, alive 0) @0"}));
  EXPECT_EQ(env.unhandled, Log{"b"});
  EXPECT_EQ(env.life.constructed, 3);
  EXPECT_EQ(env.life.destroyed, 3);
}

TEST(Gather, a_child_that_fails_while_being_cancelled_is_reported_once) {
  Env env;
  env.loop.run([&]() -> gb::Task<void> {
    std::vector<gb::Task<int>> tasks;
    tasks.push_back(failer(env, "a", 1000ms));
    tasks.push_back(stubborn(env, "b", 5000ms));
    tasks.push_back(sleeper(env, "c", 5000ms, 3));
    try {
      co_await gb::gather(std::move(tasks));
      env.note("no exception");
    } catch (const Failure& failure) {
      env.note(std::string("caught ") + failure.what() + " " + env.state());
    }
  }());
  EXPECT_EQ(env.log, (Log{"a start @0", "b start @0", "c start @0", "a throws @1000", "b fails while cancelled @1000",
                          "c cancelled @1000", "caught a (live 1, alive 0) @1000"}));
  EXPECT_EQ(env.unhandled, Log{"b cleanup failed"});
}

TEST(Gather, a_join_handle_child_that_is_cancelled_cancels_the_task_behind_it) {
  Env env;
  env.loop.run([&]() -> gb::Task<void> {
    auto handle = gb::spawn(sleeper(env, "spawned", 5000ms, 1));
    try {
      co_await gb::gather(std::move(handle), failer(env, "b", 1000ms));
      env.note("no exception");
    } catch (const Failure& failure) {
      env.note(std::string("caught ") + failure.what() + " " + env.state());
    }
  }());
  EXPECT_EQ(env.log, (Log{"b start @0", "spawned start @0", "b throws @1000", "spawned cancelled @1000",
                          "caught b (live 1, alive 0) @1000"}));
  EXPECT_EQ(env.unhandled, Log{});
}

namespace {
gb::Task<void> gather_parent(Env& env) {
  env.note("parent start");
  try {
    co_await gb::gather(sleeper(env, "a", 5000ms, 1), sleeper(env, "b", 10000ms, 2));
    env.note("gather returned");
  } catch (const gb::Cancelled&) {
    env.note("gather threw Cancelled " + env.state());
    throw;
  }
}

gb::Task<void> gather_parent_of_stubborn(Env& env) {
  co_await gb::gather(stubborn(env, "b", 10000ms));
}
}  // namespace

TEST(Gather, cancelling_the_awaiting_task_cancels_every_child_waits_for_them_and_throws_cancelled) {
  Env env;
  env.loop.run([&]() -> gb::Task<void> {
    auto parent = gb::spawn(gather_parent(env));
    co_await gb::sleep_for(1s);
    env.note("cancel parent");
    parent.cancel();
    try {
      co_await parent;
      env.note("parent returned");
    } catch (const gb::Cancelled&) {
      env.note("parent ended Cancelled " + env.state());
    }
  }());
  // "live 2": the root and the parent; both children have ended.
  EXPECT_EQ(env.log, (Log{"parent start @0", "a start @0", "b start @0", "cancel parent @1000", "a cancelled @1000",
                          "b cancelled @1000", "gather threw Cancelled (live 2, alive 0) @1000",
                          "parent ended Cancelled (live 1, alive 0) @1000"}));
  EXPECT_EQ(env.unhandled, Log{});
  EXPECT_EQ(env.life.constructed, 2);
  EXPECT_EQ(env.life.destroyed, 2);
}

TEST(Gather, a_child_that_fails_while_the_cancelled_caller_waits_for_it_is_reported) {
  Env env;
  env.loop.run([&]() -> gb::Task<void> {
    auto parent = gb::spawn(gather_parent_of_stubborn(env));
    co_await gb::sleep_for(1s);
    parent.cancel();
    try {
      co_await parent;
      env.note("parent returned");
    } catch (const gb::Cancelled&) {
      env.note("parent ended Cancelled");
    }
  }());
  EXPECT_EQ(env.log, (Log{"b start @0", "b fails while cancelled @1000", "parent ended Cancelled @1000"}));
  EXPECT_EQ(env.unhandled, Log{"b cleanup failed"});  // not rethrown (the caller throws Cancelled), so reported
}

TEST(Gather, a_timeout_around_gather_cancels_its_children_and_throws_timeout_error) {
  Env env;
  env.loop.run([&]() -> gb::Task<void> {
    try {
      co_await gb::timeout(1500ms, gb::gather(sleeper(env, "a", 1000ms, 1), sleeper(env, "b", 3000ms, 2)));
      env.note("no exception");
    } catch (const gb::TimeoutError&) {
      env.note("timed out " + env.state());
    }
  }());
  EXPECT_EQ(env.log, (Log{"a start @0", "b start @0", "a end @1000", "b cancelled @1500", "timed out (live 1, alive 0) @1500"}));
  EXPECT_EQ(env.unhandled, Log{});
}

namespace {
// A chain of gathers `depth` deep with one sleeper at the bottom.
gb::Task<int> nest(Env& env, int depth, milliseconds delay) {
  Tracked alive{env.life};
  if (depth == 0) {
    co_await gb::sleep_for(delay);
    co_return 0;
  }
  auto [below] = co_await gb::gather(nest(env, depth - 1, delay));
  co_return below + 1;
}
}  // namespace

TEST(Gather, nesting_far_deeper_than_the_eager_start_limit_completes_and_cancels) {
  constexpr int k_depth = 1000;  // k_max_eager_depth is 64: the deeper starts are scheduled
  static_assert(k_depth > gb::k_max_eager_depth);
  Env env;
  int result = 0;
  std::string cancelled;
  env.loop.run([&]() -> gb::Task<void> {
    result = co_await nest(env, k_depth, 10ms);
    env.note("completed " + env.state());
    auto chain = gb::spawn(nest(env, k_depth, 10s));
    co_await gb::sleep_for(1s);
    env.note("cancelling, live " + std::to_string(env.loop.live_tasks()));
    chain.cancel();
    try {
      co_await chain;
    } catch (const gb::Cancelled&) {
      env.note("chain ended Cancelled " + env.state());
    }
  }());
  EXPECT_EQ(result, k_depth);
  // live: the root and one task per level (each gather runs its child as a task).
  EXPECT_EQ(env.log, (Log{"completed (live 1, alive 0) @10", "cancelling, live " + std::to_string(k_depth + 2) + " @1010",
                          "chain ended Cancelled (live 1, alive 0) @1010"}));
  EXPECT_EQ(env.life.constructed, 2 * (k_depth + 1));
  EXPECT_EQ(env.life.destroyed, 2 * (k_depth + 1));
  EXPECT_EQ(env.unhandled, Log{});
}

// ---- gather, over a range ----

TEST(Gather, a_range_gives_results_in_range_order_and_takes_as_long_as_its_longest_task) {
  Env env;
  std::vector<int> results;
  env.loop.run([&]() -> gb::Task<void> {
    auto other = gb::spawn(noter(env, "scheduled task runs"));
    std::vector<gb::Task<int>> tasks;
    tasks.push_back(sleeper(env, "a", 50ms, 0));
    tasks.push_back(sleeper(env, "b", 10ms, 1));
    tasks.push_back(sleeper(env, "c", 40ms, 2));
    tasks.push_back(sleeper(env, "d", 20ms, 3));
    tasks.push_back(sleeper(env, "e", 30ms, 4));
    results = co_await gb::gather(std::move(tasks));
    env.note("gathered " + env.state());
    co_await other;
  }());
  EXPECT_EQ(results, (std::vector<int>{0, 1, 2, 3, 4}));
  // The children start eagerly, in range order, before the task spawned earlier runs.
  EXPECT_EQ(env.log, (Log{"a start @0", "b start @0", "c start @0", "d start @0", "e start @0", "scheduled task runs @0",
                          "b end @10", "d end @20", "e end @30", "c end @40", "a end @50",
                          "gathered (live 1, alive 0) @50"}));
}

TEST(Gather, a_range_of_void_tasks_waits_for_all_of_them_and_returns_nothing) {
  Env env;
  static_assert(std::is_same_v<decltype(gb::gather(std::vector<gb::Task<void>>{})), gb::Task<void>>);
  env.loop.run([&]() -> gb::Task<void> {
    std::vector<gb::Task<void>> tasks;
    tasks.push_back(void_sleeper(env, "a", 2s));
    tasks.push_back(void_sleeper(env, "b", 1s));
    tasks.push_back(void_sleeper(env, "c", 2s));
    co_await gb::gather(std::move(tasks));
    env.note("gathered " + env.state());
  }());
  EXPECT_EQ(env.log, (Log{"a start @0", "b start @0", "c start @0", "b end @1000", "a end @2000", "c end @2000",
                          "gathered (live 1, alive 0) @2000"}));
}

TEST(Gather, an_empty_range_returns_no_results_without_suspending) {
  Env env;
  std::optional<std::size_t> size;
  env.loop.run([&]() -> gb::Task<void> {
    auto other = gb::spawn(noter(env, "scheduled task runs"));
    auto results = co_await gb::gather(std::vector<gb::Task<int>>{});
    size = results.size();
    env.note("gathered");  // before the scheduled task: gather did not yield to the loop
    co_await other;
  }());
  EXPECT_EQ(size, std::optional<std::size_t>{0});
  EXPECT_EQ(env.log, (Log{"gathered @0", "scheduled task runs @0"}));
}

TEST(Gather, in_a_range_the_first_failure_in_finishing_order_wins_not_the_first_in_range_order) {
  Env env;
  env.loop.run([&]() -> gb::Task<void> {
    std::vector<gb::Task<int>> tasks;
    tasks.push_back(failer(env, "a", 3000ms));
    tasks.push_back(sleeper(env, "b", 2000ms, 1));
    tasks.push_back(failer(env, "c", 1000ms));
    try {
      co_await gb::gather(std::move(tasks));
      env.note("no exception");
    } catch (const Failure& failure) {
      env.note(std::string("caught ") + failure.what() + " " + env.state());
    }
  }());
  EXPECT_EQ(env.log, (Log{"a start @0", "b start @0", "c start @0", "c throws @1000", "a cancelled @1000",
                          "b cancelled @1000", "caught c (live 1, alive 0) @1000"}));
  EXPECT_EQ(env.unhandled, Log{});
}

TEST(Gather, in_a_range_children_after_one_that_failed_during_its_start_are_cancelled_at_their_first_wait) {
  Env env;
  env.loop.run([&]() -> gb::Task<void> {
    std::vector<gb::Task<int>> tasks;
    tasks.push_back(fail_now(env, "a"));
    tasks.push_back(sleeper(env, "b", 1000ms, 1));
    tasks.push_back(sleeper(env, "c", 1000ms, 2));
    try {
      co_await gb::gather(std::move(tasks));
      env.note("no exception");
    } catch (const Failure& failure) {
      env.note(std::string("caught ") + failure.what() + " " + env.state());
    }
  }());
  // b and c are started at the next turn, already cancelled: cancellation shows at a
  // suspension point, so their code before the first co_await still runs.
  EXPECT_EQ(env.log, (Log{"a throws @0", "b start @0", "b cancelled @0", "c start @0", "c cancelled @0",
                          "caught a (live 1, alive 0) @0"}));
  EXPECT_EQ(env.life.constructed, 3);
  EXPECT_EQ(env.life.destroyed, 3);
}

namespace {
gb::Task<int> quiet_sleeper(Lifetimes& life, std::vector<int>& finished, int index, milliseconds delay) {
  Tracked alive{life};
  co_await gb::sleep_for(delay);
  finished.push_back(index);
  co_return index * 7 + 1;
}
}  // namespace

TEST(Gather, ten_thousand_children_with_random_sleeps_keep_their_order_and_end_with_the_longest) {
  constexpr int k_children = 10'000;
  std::mt19937 random{20240607};
  std::uniform_int_distribution<int> delay_ms{1, 10'000};
  std::vector<milliseconds> delays;
  for (int i = 0; i < k_children; ++i) delays.push_back(milliseconds(delay_ms(random)));
  const milliseconds longest = *std::max_element(delays.begin(), delays.end());

  Env env;
  std::vector<int> finished;
  std::vector<int> results;
  std::size_t live_after = 0;
  env.loop.run([&]() -> gb::Task<void> {
    std::vector<gb::Task<int>> tasks;
    for (int i = 0; i < k_children; ++i) tasks.push_back(quiet_sleeper(env.life, finished, i, delays[i]));
    results = co_await gb::gather(std::move(tasks));
    live_after = env.loop.live_tasks();
  }());

  EXPECT_EQ(live_after, 1u);  // only the root task
  EXPECT_EQ(env.clock.now() - env.start, longest);
  ASSERT_EQ(results.size(), static_cast<std::size_t>(k_children));
  for (int i = 0; i < k_children; ++i) EXPECT_EQ(results[i], i * 7 + 1) << "child " << i;
  // Each child finished once, and never before a child with a shorter sleep.
  ASSERT_EQ(finished.size(), static_cast<std::size_t>(k_children));
  std::vector<int> sorted = finished;
  std::sort(sorted.begin(), sorted.end());
  for (int i = 0; i < k_children; ++i) ASSERT_EQ(sorted[i], i);
  for (std::size_t i = 1; i < finished.size(); ++i)
    ASSERT_LE(delays[finished[i - 1]], delays[finished[i]]) << "position " << i;
  EXPECT_EQ(env.life.constructed, k_children);
  EXPECT_EQ(env.life.destroyed, k_children);
  EXPECT_EQ(env.loop.live_tasks(), 0u);
  EXPECT_EQ(env.unhandled, Log{});
}
