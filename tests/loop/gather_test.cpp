// Tests for gather (include/gearbox/combinators.hpp): variadic (eager starts in argument
// order, any awaitable, move-only results, the first failure cancels the others, later
// failures are reported, cancellation and timeout of the caller, deep nesting) and over a
// range (range order, void tasks, an empty range, failures in finishing order, ten
// thousand children). when_any and as_completed have files of their own (when_any_test,
// as_completed_test); the child tasks they share are in child_tasks.hpp.
//
// The outcomes (results in argument or range order, the exception rethrown, the failures
// reported, every child's frame destroyed once and none alive when gather returns or
// throws) are asserted on both flavors (GatherOnEveryFlavor); a child that must be
// cancelled sleeps for an hour (k_never), so that no outcome depends on how late a timer
// fires on the runtime. The event logs of the same scenarios ("<name> <event> @<ms since
// start>"), which show the order of events and their exact times, are compared as a whole
// on the loop only (Gather), on a manual clock that jumps to the next timer whenever every
// task waits; so are the cases that are only about order or virtual time (a spawned task
// runs a turn later, five sleeps take as long as one, the first failure in finishing
// order wins, ten thousand sleepers end in deadline order).
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

class GatherOnEveryFlavor : public EnvOnEveryFlavor {};

// Throws without ever suspending.
gb::Task<int> fail_now(Env& env, std::string name) {
  Tracked alive{env.life};
  env.note(name + " throws");
  if (!name.empty()) throw Failure{name};
  co_return 0;
}

// a, b and c sleep 30, 10 and 20 ms; a task spawned before the gather runs meanwhile.
gb::Task<std::tuple<int, int, int>> gather_three(Env& env) {
  auto other = gb::spawn(noter(env, "scheduled task runs"));
  env.note("gather called");
  auto results = co_await gb::gather(sleeper(env, "a", 30ms, 1), sleeper(env, "b", 10ms, 2), sleeper(env, "c", 20ms, 3));
  env.note("gather returned " + env.state());
  co_await other;
  co_return results;
}

// A spawned task's handle (30 ms), a sleep (10 ms) and a task (20 ms) gathered.
gb::Task<std::pair<int, int>> gather_a_handle_a_sleep_and_a_task(Env& env) {
  auto handle = gb::spawn(sleeper(env, "spawned", 30ms, 7));  // scheduled: runs next turn
  auto [x, pause, y] = co_await gb::gather(std::move(handle), gb::sleep_for(10ms), sleeper(env, "task", 20ms, 5));
  static_assert(std::is_same_v<decltype(pause), std::monostate>);
  env.note("gathered " + env.state());
  co_return std::pair<int, int>(x, y);
}

// Two boxes gathered variadically (20 and 10 ms), then three over a range (30, 10, 20 ms).
gb::Task<std::vector<int>> gather_boxes(Env& env) {
  std::unique_ptr<int> first, second;
  std::tie(first, second) = co_await gb::gather(boxed(env, 20ms, 1), boxed(env, 10ms, 2));
  std::vector<gb::Task<std::unique_ptr<int>>> tasks;
  tasks.push_back(boxed(env, 30ms, 10));
  tasks.push_back(boxed(env, 10ms, 20));
  tasks.push_back(boxed(env, 20ms, 30));
  std::vector<std::unique_ptr<int>> range = co_await gb::gather(std::move(tasks));
  std::vector<int> values;
  values.push_back(first ? *first : -1);
  values.push_back(second ? *second : -1);
  for (const auto& box : range) values.push_back(box ? *box : -1);
  co_return values;
}

// d ends at 5 ms, b fails at 10 ms, a and c would sleep on.
gb::Task<std::string> gather_with_a_failure(Env& env) {
  co_return co_await outcome_of(env, gb::gather(sleeper(env, "a", k_never, 1), failer(env, "b", 10ms),
                                                sleeper(env, "c", k_never, 3), sleeper(env, "d", 5ms, 4)));
}

// a and b fail during their eager starts; c would sleep on.
gb::Task<std::string> gather_two_failures(Env& env) {
  co_return co_await outcome_of(env, gb::gather(fail_now(env, "a"), fail_now(env, "b"), sleeper(env, "c", k_never, 3)));
}

// a fails at 10 ms; b fails when it is cancelled; c would sleep on.
gb::Task<std::string> gather_a_failure_and_a_stubborn_child(Env& env) {
  std::vector<gb::Task<int>> tasks;
  tasks.push_back(failer(env, "a", 10ms));
  tasks.push_back(stubborn(env, "b", k_never));
  tasks.push_back(sleeper(env, "c", k_never, 3));
  co_return co_await outcome_of(env, gb::gather(std::move(tasks)));
}

// The handle of a spawned task that would sleep on, and b, which fails at 10 ms.
gb::Task<std::string> gather_a_handle_and_a_failure(Env& env) {
  auto handle = gb::spawn(sleeper(env, "spawned", k_never, 1));
  co_return co_await outcome_of(env, gb::gather(std::move(handle), failer(env, "b", 10ms)));
}

gb::Task<void> gather_parent(Env& env) {
  env.note("parent start");
  try {
    co_await gb::gather(sleeper(env, "a", k_never, 1), sleeper(env, "b", k_never, 2));
    env.note("gather returned");
  } catch (const gb::Cancelled&) {
    env.note("gather threw Cancelled " + env.state());
    throw;
  }
}

gb::Task<void> gather_parent_of_stubborn(Env& env) {
  co_await gb::gather(stubborn(env, "b", k_never));
}

// a ends at 10 ms, b would sleep on, the limit is 20 ms.
gb::Task<std::string> gather_under_a_timeout(Env& env) {
  try {
    co_await gb::timeout(20ms, gb::gather(sleeper(env, "a", 10ms, 1), sleeper(env, "b", k_never, 2)));
  } catch (const gb::TimeoutError&) {
    co_return env.outcome("timed out");
  }
  co_return "no exception";
}

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

constexpr int k_depth = 1000;  // k_max_eager_depth is 64: the deeper starts are scheduled
static_assert(k_depth > gb::k_max_eager_depth);

// A chain k_depth deep that completes (10 ms), then one that is cancelled after 10 ms:
// "<first chain's result>; <how the second ended>".
gb::Task<std::string> nest_then_cancel(Env& env) {
  const int result = co_await nest(env, k_depth, 10ms);
  env.note("completed " + env.state());
  auto chain = gb::spawn(nest(env, k_depth, k_never));
  co_await gb::sleep_for(10ms);
  env.note("cancelling " + env.state());
  chain.cancel();
  std::string outcome = "chain returned";
  try {
    co_await chain;
  } catch (const gb::Cancelled&) {
    outcome = env.outcome("chain ended Cancelled");
  }
  co_return std::to_string(result) + "; " + outcome;
}

// Five children of 50, 10, 40, 20 and 30 ms; a task spawned before the gather runs meanwhile.
gb::Task<std::vector<int>> gather_a_range(Env& env) {
  auto other = gb::spawn(noter(env, "scheduled task runs"));
  std::vector<gb::Task<int>> tasks;
  tasks.push_back(sleeper(env, "a", 50ms, 0));
  tasks.push_back(sleeper(env, "b", 10ms, 1));
  tasks.push_back(sleeper(env, "c", 40ms, 2));
  tasks.push_back(sleeper(env, "d", 20ms, 3));
  tasks.push_back(sleeper(env, "e", 30ms, 4));
  std::vector<int> results = co_await gb::gather(std::move(tasks));
  env.note("gathered " + env.state());
  co_await other;
  co_return results;
}

// Three void children of 20, 10 and 20 ms.
gb::Task<std::string> gather_void_tasks(Env& env) {
  static_assert(std::is_same_v<decltype(gb::gather(std::vector<gb::Task<void>>{})), gb::Task<void>>);
  std::vector<gb::Task<void>> tasks;
  tasks.push_back(void_sleeper(env, "a", 20ms));
  tasks.push_back(void_sleeper(env, "b", 10ms));
  tasks.push_back(void_sleeper(env, "c", 20ms));
  co_await gb::gather(std::move(tasks));
  co_return env.outcome("gathered");
}

// The size of what gather returns for an empty range; a task spawned before it runs meanwhile.
gb::Task<std::size_t> gather_an_empty_range(Env& env) {
  auto other = gb::spawn(noter(env, "scheduled task runs"));
  std::vector<gb::Task<int>> none;
  const std::vector<int> results = co_await gb::gather(std::move(none));
  env.note("gathered");  // before the scheduled task: gather did not yield to the loop
  co_await other;
  co_return results.size();
}

// a fails during its eager start; b and c would sleep on.
gb::Task<std::string> gather_a_range_whose_first_child_fails_at_once(Env& env) {
  std::vector<gb::Task<int>> tasks;
  tasks.push_back(fail_now(env, "a"));
  tasks.push_back(sleeper(env, "b", k_never, 1));
  tasks.push_back(sleeper(env, "c", k_never, 2));
  co_return co_await outcome_of(env, gb::gather(std::move(tasks)));
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(Gather, GatherOnEveryFlavor, gearbox_test::every_flavor(), gearbox_test::flavor_name);

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

TEST_P(GatherOnEveryFlavor, results_come_in_argument_order_not_finishing_order) {
  EXPECT_EQ(env.run(gather_three(env)), std::make_tuple(1, 2, 3));
  EXPECT_TRUE(env.noted("scheduled task runs"));
  expect_each_child_destroyed_once(env, 3);
}

TEST(Gather, children_start_eagerly_inside_the_call_in_argument_order) {
  Env env;
  env.run(gather_three(env));
  EXPECT_EQ(env.log, (Log{"gather called @0", "a start @0", "b start @0", "c start @0", "scheduled task runs @0",
                          "b end @10", "c end @20", "a end @30", "gather returned (live 1, alive 0) @30"}));
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

TEST_P(GatherOnEveryFlavor, accepts_any_awaitable_a_join_handle_a_sleep_and_a_task) {
  EXPECT_EQ(env.run(gather_a_handle_a_sleep_and_a_task(env)), std::make_pair(7, 5));
  expect_each_child_destroyed_once(env, 2);
}

TEST(Gather, accepts_any_awaitable_a_join_handle_a_sleep_and_a_task) {
  Env env;
  env.run(gather_a_handle_a_sleep_and_a_task(env));
  EXPECT_EQ(env.log, (Log{"task start @0", "spawned start @0", "task end @20", "spawned end @30",
                          "gathered (live 1, alive 0) @30"}));
  EXPECT_EQ(env.clock.now() - env.start, 30ms);
}

TEST_P(GatherOnEveryFlavor, move_only_results_are_moved_out_in_argument_order) {
  EXPECT_EQ(env.run(gather_boxes(env)), (std::vector<int>{1, 2, 10, 20, 30}));
  expect_each_child_destroyed_once(env, 5);
}

TEST(Gather, each_gather_of_move_only_results_takes_as_long_as_its_longest_child) {
  Env env;
  env.run(gather_boxes(env));
  EXPECT_EQ(env.clock.now() - env.start, 50ms);  // 20 ms, then 30 ms
}

TEST_P(GatherOnEveryFlavor, the_first_failure_cancels_the_other_children_and_is_rethrown_after_they_end) {
  EXPECT_EQ(env.run(gather_with_a_failure(env)), "caught b, alive 0");
  EXPECT_EQ(env.unhandled, Log{});  // the rethrown failure is not reported; Cancelled never is
  expect_each_child_destroyed_once(env, 4);
}

TEST(Gather, the_first_failure_cancels_the_other_children_and_is_rethrown_after_they_end) {
  Env env;
  env.run(gather_with_a_failure(env));
  // a and c end (their sleeps throw Cancelled, destructors run) before b's failure shows.
  EXPECT_EQ(env.log, (Log{"a start @0", "b start @0", "c start @0", "d start @0", "d end @5", "b throws @10",
                          "a cancelled @10", "c cancelled @10", "caught b (live 1, alive 0) @10"}));
  EXPECT_EQ(env.clock.now() - env.start, 10ms);
}

TEST_P(GatherOnEveryFlavor, a_second_failure_is_reported_to_the_loop_and_cancellations_are_not) {
  EXPECT_EQ(env.run(gather_two_failures(env)), "caught a, alive 0");
  EXPECT_EQ(env.unhandled, Log{"b"});
  expect_each_child_destroyed_once(env, 3);
}

TEST(Gather, a_second_failure_is_reported_to_the_loop_and_cancellations_are_not) {
  Env env;
  env.run(gather_two_failures(env));
  // The variadic form starts every child eagerly, even after a has failed during its start.
  EXPECT_EQ(env.log, (Log{"a throws @0", "b throws @0", "c start @0", "c cancelled @0", "caught a (live 1, alive 0) @0"}));
}

TEST_P(GatherOnEveryFlavor, a_child_that_fails_while_being_cancelled_is_reported_once) {
  EXPECT_EQ(env.run(gather_a_failure_and_a_stubborn_child(env)), "caught a, alive 0");
  EXPECT_EQ(env.unhandled, Log{"b cleanup failed"});
}

TEST(Gather, a_child_that_fails_while_being_cancelled_is_reported_once) {
  EXPECT_EQ(log_on_the_loop(gather_a_failure_and_a_stubborn_child),
            (Log{"a start @0", "b start @0", "c start @0", "a throws @10", "b fails while cancelled @10",
                 "c cancelled @10", "caught a (live 1, alive 0) @10"}));
}

TEST_P(GatherOnEveryFlavor, a_join_handle_child_that_is_cancelled_cancels_the_task_behind_it) {
  EXPECT_EQ(env.run(gather_a_handle_and_a_failure(env)), "caught b, alive 0");
  EXPECT_TRUE(env.noted("spawned cancelled"));
  EXPECT_EQ(env.unhandled, Log{});
}

TEST(Gather, a_join_handle_child_that_is_cancelled_cancels_the_task_behind_it) {
  EXPECT_EQ(log_on_the_loop(gather_a_handle_and_a_failure),
            (Log{"b start @0", "spawned start @0", "b throws @10", "spawned cancelled @10",
                 "caught b (live 1, alive 0) @10"}));
}

TEST_P(GatherOnEveryFlavor, cancelling_the_awaiting_task_cancels_every_child_waits_for_them_and_throws_cancelled) {
  EXPECT_EQ(env.run(cancel_after_a_while(env, gather_parent(env))), "parent ended Cancelled, alive 0");
  EXPECT_TRUE(env.noted("gather threw Cancelled"));
  EXPECT_EQ(env.unhandled, Log{});
  expect_each_child_destroyed_once(env, 2);
}

TEST(Gather, cancelling_the_awaiting_task_cancels_every_child_waits_for_them_and_throws_cancelled) {
  // "live 2": the root and the parent; both children have ended.
  EXPECT_EQ(log_on_the_loop([](Env& env) { return cancel_after_a_while(env, gather_parent(env)); }),
            (Log{"parent start @0", "a start @0", "b start @0", "cancel parent @10", "a cancelled @10",
                 "b cancelled @10", "gather threw Cancelled (live 2, alive 0) @10",
                 "parent ended Cancelled (live 1, alive 0) @10"}));
}

TEST_P(GatherOnEveryFlavor, a_child_that_fails_while_the_cancelled_caller_waits_for_it_is_reported) {
  EXPECT_EQ(env.run(cancel_after_a_while(env, gather_parent_of_stubborn(env))), "parent ended Cancelled, alive 0");
  EXPECT_EQ(env.unhandled, Log{"b cleanup failed"});  // not rethrown (the caller throws Cancelled), so reported
}

TEST(Gather, a_child_that_fails_while_the_cancelled_caller_waits_for_it_is_reported) {
  EXPECT_EQ(log_on_the_loop([](Env& env) { return cancel_after_a_while(env, gather_parent_of_stubborn(env)); }),
            (Log{"b start @0", "cancel parent @10", "b fails while cancelled @10",
                 "parent ended Cancelled (live 1, alive 0) @10"}));
}

TEST_P(GatherOnEveryFlavor, a_timeout_around_gather_cancels_its_children_and_throws_timeout_error) {
  EXPECT_EQ(env.run(gather_under_a_timeout(env)), "timed out, alive 0");
  EXPECT_EQ(env.unhandled, Log{});
}

TEST(Gather, a_timeout_around_gather_cancels_its_children_and_throws_timeout_error) {
  EXPECT_EQ(log_on_the_loop(gather_under_a_timeout),
            (Log{"a start @0", "b start @0", "a end @10", "b cancelled @20", "timed out (live 1, alive 0) @20"}));
}

TEST_P(GatherOnEveryFlavor, nesting_far_deeper_than_the_eager_start_limit_completes_and_cancels) {
  EXPECT_EQ(env.run(nest_then_cancel(env)), std::to_string(k_depth) + "; chain ended Cancelled, alive 0");
  expect_each_child_destroyed_once(env, 2 * (k_depth + 1));
  EXPECT_EQ(env.unhandled, Log{});
}

TEST(Gather, nesting_far_deeper_than_the_eager_start_limit_completes_and_cancels) {
  // live: the root and one task per level (each gather runs its child as a task).
  EXPECT_EQ(log_on_the_loop(nest_then_cancel),
            (Log{"completed (live 1, alive 0) @10",
                 "cancelling (live " + std::to_string(k_depth + 2) + ", alive " + std::to_string(k_depth + 1) + ") @20",
                 "chain ended Cancelled (live 1, alive 0) @20"}));
}

// ---- gather, over a range ----

TEST_P(GatherOnEveryFlavor, a_range_gives_results_in_range_order) {
  EXPECT_EQ(env.run(gather_a_range(env)), (std::vector<int>{0, 1, 2, 3, 4}));
  expect_each_child_destroyed_once(env, 5);
}

TEST(Gather, a_range_gives_results_in_range_order_and_takes_as_long_as_its_longest_task) {
  // The children start eagerly, in range order, before the task spawned earlier runs.
  EXPECT_EQ(log_on_the_loop(gather_a_range),
            (Log{"a start @0", "b start @0", "c start @0", "d start @0", "e start @0", "scheduled task runs @0",
                 "b end @10", "d end @20", "e end @30", "c end @40", "a end @50", "gathered (live 1, alive 0) @50"}));
}

TEST_P(GatherOnEveryFlavor, a_range_of_void_tasks_waits_for_all_of_them_and_returns_nothing) {
  EXPECT_EQ(env.run(gather_void_tasks(env)), "gathered, alive 0");
  EXPECT_EQ(env.life.destroyed, 3);
}

TEST(Gather, a_range_of_void_tasks_waits_for_all_of_them_and_returns_nothing) {
  EXPECT_EQ(log_on_the_loop(gather_void_tasks),
            (Log{"a start @0", "b start @0", "c start @0", "b end @10", "a end @20", "c end @20",
                 "gathered (live 1, alive 0) @20"}));
}

TEST_P(GatherOnEveryFlavor, an_empty_range_returns_no_results) {
  EXPECT_EQ(env.run(gather_an_empty_range(env)), 0u);
}

TEST(Gather, an_empty_range_returns_no_results_without_suspending) {
  EXPECT_EQ(log_on_the_loop(gather_an_empty_range),
            (Log{"gathered @0", "scheduled task runs @0"}));
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

TEST_P(GatherOnEveryFlavor, in_a_range_children_after_one_that_failed_during_its_start_are_cancelled) {
  EXPECT_EQ(env.run(gather_a_range_whose_first_child_fails_at_once(env)), "caught a, alive 0");
  expect_each_child_destroyed_once(env, 3);
}

TEST(Gather, in_a_range_children_after_one_that_failed_during_its_start_are_cancelled_at_their_first_wait) {
  // b and c are started at the next turn, already cancelled: cancellation shows at a
  // suspension point, so their code before the first co_await still runs.
  EXPECT_EQ(log_on_the_loop(gather_a_range_whose_first_child_fails_at_once),
            (Log{"a throws @0", "b start @0", "b cancelled @0", "c start @0", "c cancelled @0",
                 "caught a (live 1, alive 0) @0"}));
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
  expect_each_child_destroyed_once(env, k_children);
  EXPECT_EQ(env.loop.live_tasks(), 0u);
  EXPECT_EQ(env.unhandled, Log{});
}
