// Tests for when_any (include/gearbox/combinators.hpp): the first child to finish wins
// and the losers have ended before it returns, a failed winner, the variadic form's
// variant, ranges of void tasks and empty ranges, a winner during the eager start, losers
// that fail while being cancelled, and cancellation of the caller. gather and as_completed
// have files of their own (gather_test, as_completed_test); the child tasks they share are
// in child_tasks.hpp.
//
// As in gather_test: the outcomes (which child won, with what, the failures reported, no
// loser alive when when_any returns) are asserted on both flavors (WhenAnyOnEveryFlavor),
// with every loser sleeping for an hour (k_never) so that the winner does not depend on
// how late a timer fires on the runtime; the event logs of the same scenarios, with their
// order and exact times, are compared on the loop only (WhenAny), on a manual clock that
// jumps to the next timer whenever every task waits.
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

class WhenAnyOnEveryFlavor : public EnvOnEveryFlavor {};

// Returns without ever suspending.
gb::Task<int> immediate(Env& env, std::string name, int value) {
  Tracked alive{env.life};
  env.note(name + " done");
  co_return value;
}

// "<index> <value>, alive <n>" of the winner.
std::string describe_winner(Env& env, const gb::WhenAnyResult<int>& winner) {
  return env.outcome("when_any returned " + std::to_string(winner.index) + " " + std::to_string(winner.value));
}

// b wins at 10 ms; a and c would sleep on; a task spawned before when_any runs meanwhile.
gb::Task<std::string> race_three(Env& env) {
  auto other = gb::spawn(noter(env, "scheduled task runs"));
  std::vector<gb::Task<int>> tasks;
  tasks.push_back(sleeper(env, "a", k_never, 10));
  tasks.push_back(sleeper(env, "b", 10ms, 20));
  tasks.push_back(sleeper(env, "c", k_never, 30));
  const gb::WhenAnyResult<int> winner = co_await gb::when_any(std::move(tasks));
  co_await other;
  co_return describe_winner(env, winner);
}

// b fails at 10 ms; a would sleep on.
gb::Task<std::string> race_a_failure(Env& env) {
  std::vector<gb::Task<int>> tasks;
  tasks.push_back(sleeper(env, "a", k_never, 10));
  tasks.push_back(failer(env, "b", 10ms));
  co_return co_await outcome_of(env, gb::when_any(std::move(tasks)));
}

// Two variadic races: a box (10 ms) against a sleep and a sleeper that would go on, then a
// sleep (10 ms) against a sleeper that would go on. "<first's index>:<its box> <second's index>".
gb::Task<std::string> race_variadic(Env& env) {
  auto first = co_await gb::when_any(gb::sleep_for(k_never), sleeper(env, "x", k_never, 7), boxed(env, 10ms, 9));
  static_assert(std::is_same_v<decltype(first), std::variant<std::monostate, int, std::unique_ptr<int>>>);
  const std::string box = first.index() == 2 && std::get<2>(first) ? std::to_string(*std::get<2>(first)) : "none";
  env.note("first returned " + env.state());
  auto second = co_await gb::when_any(gb::sleep_for(10ms), sleeper(env, "y", k_never, 8));
  static_assert(std::is_same_v<decltype(second), std::variant<std::monostate, int>>);
  env.note("second returned " + env.state());
  co_return std::to_string(first.index()) + ":" + box + " " + std::to_string(second.index());
}

// c wins at 10 ms; a and b would sleep on.
gb::Task<std::size_t> race_void_tasks(Env& env) {
  std::vector<gb::Task<void>> tasks;
  tasks.push_back(void_sleeper(env, "a", k_never));
  tasks.push_back(void_sleeper(env, "b", k_never));
  tasks.push_back(void_sleeper(env, "c", 10ms));
  gb::WhenAnyResult<void> result = co_await gb::when_any(std::move(tasks));
  co_return result.index;
}

// a finishes during its eager start; b would sleep on.
gb::Task<std::string> race_an_immediate_winner(Env& env) {
  std::vector<gb::Task<int>> tasks;
  tasks.push_back(immediate(env, "a", 5));
  tasks.push_back(sleeper(env, "b", k_never, 6));
  const gb::WhenAnyResult<int> winner = co_await gb::when_any(std::move(tasks));
  co_return describe_winner(env, winner);
}

// a wins at 10 ms; b fails when it is cancelled.
gb::Task<std::size_t> race_a_stubborn_loser(Env& env) {
  std::vector<gb::Task<int>> tasks;
  tasks.push_back(sleeper(env, "a", 10ms, 1));
  tasks.push_back(stubborn(env, "b", k_never));
  co_return (co_await gb::when_any(std::move(tasks))).index;
}

gb::Task<void> when_any_parent(Env& env) {
  try {
    std::vector<gb::Task<int>> tasks;
    tasks.push_back(sleeper(env, "a", k_never, 1));
    tasks.push_back(sleeper(env, "b", k_never, 2));
    co_await gb::when_any(std::move(tasks));
    env.note("when_any returned");
  } catch (const gb::Cancelled&) {
    env.note("when_any threw Cancelled " + env.state());
    throw;
  }
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(WhenAny, WhenAnyOnEveryFlavor, gearbox_test::every_flavor(), gearbox_test::flavor_name);

// ---- when_any ----

TEST_P(WhenAnyOnEveryFlavor, the_first_child_to_finish_wins_and_the_losers_have_ended_before_it_returns) {
  EXPECT_EQ(env.run(race_three(env)), "when_any returned 1 20, alive 0");
  EXPECT_EQ(env.unhandled, Log{});
  expect_each_child_destroyed_once(env, 3);
}

TEST(WhenAny, the_first_child_to_finish_wins_and_the_losers_have_ended_before_it_returns) {
  EXPECT_EQ(log_on_the_loop(race_three),
            (Log{"a start @0", "b start @0", "c start @0", "scheduled task runs @0", "b end @10", "a cancelled @10",
                 "c cancelled @10", "when_any returned 1 20 (live 1, alive 0) @10"}));
}

TEST_P(WhenAnyOnEveryFlavor, a_winner_that_failed_is_rethrown_after_the_losers_have_ended) {
  EXPECT_EQ(env.run(race_a_failure(env)), "caught b, alive 0");
  EXPECT_EQ(env.unhandled, Log{});
}

TEST(WhenAny, a_winner_that_failed_is_rethrown_after_the_losers_have_ended) {
  EXPECT_EQ(log_on_the_loop(race_a_failure),
            (Log{"a start @0", "b start @0", "b throws @10", "a cancelled @10", "caught b (live 1, alive 0) @10"}));
}

TEST_P(WhenAnyOnEveryFlavor, the_variadic_form_returns_a_variant_whose_index_names_the_winner) {
  EXPECT_EQ(env.run(race_variadic(env)), "2:9 0");  // the box won, then the sleep
  EXPECT_EQ(env.life.alive(), 0);
}

TEST(WhenAny, the_variadic_form_returns_a_variant_whose_index_names_the_winner) {
  EXPECT_EQ(log_on_the_loop(race_variadic),
            (Log{"x start @0", "x cancelled @10", "first returned (live 1, alive 0) @10", "y start @10",
                 "y cancelled @20", "second returned (live 1, alive 0) @20"}));
}

TEST_P(WhenAnyOnEveryFlavor, a_range_of_void_tasks_gives_only_the_index_of_the_winner) {
  EXPECT_EQ(env.run(race_void_tasks(env)), 2u);
  EXPECT_EQ(env.life.destroyed, 3);
}

TEST(WhenAny, a_range_of_void_tasks_gives_only_the_index_of_the_winner) {
  EXPECT_EQ(log_on_the_loop(race_void_tasks),
            (Log{"a start @0", "b start @0", "c start @0", "c end @10", "a cancelled @10", "b cancelled @10"}));
}

TEST_P(WhenAnyOnEveryFlavor, an_empty_range_throws_invalid_argument) {
  EXPECT_THROW(env.run([]() -> gb::Task<void> {
    std::vector<gb::Task<int>> none;
    co_await gb::when_any(std::move(none));
  }()), std::invalid_argument);
}

TEST_P(WhenAnyOnEveryFlavor, a_child_that_finishes_during_its_eager_start_wins_at_once) {
  EXPECT_EQ(env.run(race_an_immediate_winner(env)), "when_any returned 0 5, alive 0");
}

TEST(WhenAny, a_child_that_finishes_during_its_eager_start_wins_at_once) {
  Env env;
  env.run(race_an_immediate_winner(env));
  EXPECT_EQ(env.log, (Log{"a done @0", "b start @0", "b cancelled @0", "when_any returned 0 5 (live 1, alive 0) @0"}));
  EXPECT_EQ(env.clock.now(), env.start);
}

TEST_P(WhenAnyOnEveryFlavor, losers_that_fail_while_being_cancelled_are_reported) {
  EXPECT_EQ(env.run(race_a_stubborn_loser(env)), 0u);
  EXPECT_EQ(env.unhandled, Log{"b cleanup failed"});
}

TEST(WhenAny, losers_that_fail_while_being_cancelled_are_reported) {
  Env env;
  env.run(race_a_stubborn_loser(env));
  EXPECT_EQ(env.log, (Log{"a start @0", "b start @0", "a end @10", "b fails while cancelled @10"}));
}

TEST_P(WhenAnyOnEveryFlavor, cancelling_the_awaiting_task_cancels_every_child_waits_for_them_and_throws_cancelled) {
  EXPECT_EQ(env.run(cancel_after_a_while(env, when_any_parent(env))), "parent ended Cancelled, alive 0");
  EXPECT_TRUE(env.noted("when_any threw Cancelled"));
  EXPECT_EQ(env.unhandled, Log{});
}

TEST(WhenAny, cancelling_the_awaiting_task_cancels_every_child_waits_for_them_and_throws_cancelled) {
  EXPECT_EQ(log_on_the_loop([](Env& env) { return cancel_after_a_while(env, when_any_parent(env)); }),
            (Log{"a start @0", "b start @0", "cancel parent @10", "a cancelled @10", "b cancelled @10",
                 "when_any threw Cancelled (live 2, alive 0) @10", "parent ended Cancelled (live 1, alive 0) @10"}));
}
