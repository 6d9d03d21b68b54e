// Tests for when_any (include/gearbox/combinators.hpp): the first child to finish wins
// and the losers have ended before it returns, a failed winner, the variadic form's
// variant, ranges of void tasks and empty ranges, a winner during the eager start, losers
// that fail while being cancelled, and cancellation of the caller. gather and as_completed
// have files of their own (gather_test, as_completed_test); the child tasks they share are
// in combinators_test_support.hpp.
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

// Returns without ever suspending.
gb::Task<int> immediate(Env& env, std::string name, int value) {
  Tracked alive{env.life};
  env.note(name + " done");
  co_return value;
}

}  // namespace

// ---- when_any ----

TEST(WhenAny, the_first_child_to_finish_wins_and_the_losers_have_ended_before_it_returns) {
  Env env;
  std::optional<gb::WhenAnyResult<int>> outcome;
  env.loop.run([&]() -> gb::Task<void> {
    auto other = gb::spawn(noter(env, "scheduled task runs"));
    std::vector<gb::Task<int>> tasks;
    tasks.push_back(sleeper(env, "a", 3000ms, 10));
    tasks.push_back(sleeper(env, "b", 1000ms, 20));
    tasks.push_back(sleeper(env, "c", 2000ms, 30));
    outcome = co_await gb::when_any(std::move(tasks));
    env.note("when_any returned " + env.state());
    co_await other;
  }());
  ASSERT_TRUE(outcome.has_value());
  EXPECT_EQ(outcome->index, 1u);
  EXPECT_EQ(outcome->value, 20);
  EXPECT_EQ(env.log, (Log{"a start @0", "b start @0", "c start @0", "scheduled task runs @0", "b end @1000", "a cancelled @1000",
                          "c cancelled @1000", "when_any returned (live 1, alive 0) @1000"}));
  EXPECT_EQ(env.unhandled, Log{});
  EXPECT_EQ(env.life.constructed, 3);
  EXPECT_EQ(env.life.destroyed, 3);
}

TEST(WhenAny, a_winner_that_failed_is_rethrown_after_the_losers_have_ended) {
  Env env;
  env.loop.run([&]() -> gb::Task<void> {
    std::vector<gb::Task<int>> tasks;
    tasks.push_back(sleeper(env, "a", 3000ms, 10));
    tasks.push_back(failer(env, "b", 1000ms));
    try {
      co_await gb::when_any(std::move(tasks));
      env.note("no exception");
    } catch (const Failure& failure) {
      env.note(std::string("caught ") + failure.what() + " " + env.state());
    }
  }());
  EXPECT_EQ(env.log, (Log{"a start @0", "b start @0", "b throws @1000", "a cancelled @1000",
                          "caught b (live 1, alive 0) @1000"}));
  EXPECT_EQ(env.unhandled, Log{});
}

TEST(WhenAny, the_variadic_form_returns_a_variant_whose_index_names_the_winner) {
  Env env;
  std::optional<std::variant<std::monostate, int, std::unique_ptr<int>>> first;
  std::optional<std::variant<std::monostate, int>> second;
  env.loop.run([&]() -> gb::Task<void> {
    first = co_await gb::when_any(gb::sleep_for(2s), sleeper(env, "x", 3000ms, 7), boxed(env, 1000ms, 9));
    env.note("first returned " + env.state());
    second = co_await gb::when_any(gb::sleep_for(1s), sleeper(env, "y", 2000ms, 8));
    env.note("second returned " + env.state());
  }());
  ASSERT_TRUE(first.has_value());
  ASSERT_EQ(first->index(), 2u);
  ASSERT_TRUE(std::get<2>(*first));
  EXPECT_EQ(*std::get<2>(*first), 9);
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->index(), 0u);  // the sleep won
  EXPECT_EQ(env.log, (Log{"x start @0", "x cancelled @1000", "first returned (live 1, alive 0) @1000", "y start @1000",
                          "y cancelled @2000", "second returned (live 1, alive 0) @2000"}));
}

TEST(WhenAny, a_range_of_void_tasks_gives_only_the_index_of_the_winner) {
  Env env;
  std::optional<std::size_t> winner;
  env.loop.run([&]() -> gb::Task<void> {
    std::vector<gb::Task<void>> tasks;
    tasks.push_back(void_sleeper(env, "a", 2s));
    tasks.push_back(void_sleeper(env, "b", 3s));
    tasks.push_back(void_sleeper(env, "c", 1s));
    gb::WhenAnyResult<void> result = co_await gb::when_any(std::move(tasks));
    winner = result.index;
  }());
  EXPECT_EQ(winner, std::optional<std::size_t>{2});
  EXPECT_EQ(env.log, (Log{"a start @0", "b start @0", "c start @0", "c end @1000", "a cancelled @1000",
                          "b cancelled @1000"}));
}

TEST(WhenAny, an_empty_range_throws_invalid_argument) {
  Env env;
  std::string caught;
  env.loop.run([&]() -> gb::Task<void> {
    try {
      co_await gb::when_any(std::vector<gb::Task<int>>{});
      caught = "nothing";
    } catch (const std::invalid_argument&) {
      caught = "invalid_argument";
    }
  }());
  EXPECT_EQ(caught, "invalid_argument");
}

TEST(WhenAny, a_child_that_finishes_during_its_eager_start_wins_at_once) {
  Env env;
  std::optional<gb::WhenAnyResult<int>> outcome;
  env.loop.run([&]() -> gb::Task<void> {
    std::vector<gb::Task<int>> tasks;
    tasks.push_back(immediate(env, "a", 5));
    tasks.push_back(sleeper(env, "b", 1000ms, 6));
    outcome = co_await gb::when_any(std::move(tasks));
    env.note("when_any returned " + env.state());
  }());
  ASSERT_TRUE(outcome.has_value());
  EXPECT_EQ(outcome->index, 0u);
  EXPECT_EQ(outcome->value, 5);
  EXPECT_EQ(env.log, (Log{"a done @0", "b start @0", "b cancelled @0", "when_any returned (live 1, alive 0) @0"}));
  EXPECT_EQ(env.clock.now(), env.start);
}

TEST(WhenAny, losers_that_fail_while_being_cancelled_are_reported) {
  Env env;
  std::optional<std::size_t> winner;
  env.loop.run([&]() -> gb::Task<void> {
    std::vector<gb::Task<int>> tasks;
    tasks.push_back(sleeper(env, "a", 1000ms, 1));
    tasks.push_back(stubborn(env, "b", 5000ms));
    winner = (co_await gb::when_any(std::move(tasks))).index;
  }());
  EXPECT_EQ(winner, std::optional<std::size_t>{0});
  EXPECT_EQ(env.log, (Log{"a start @0", "b start @0", "a end @1000", "b fails while cancelled @1000"}));
  EXPECT_EQ(env.unhandled, Log{"b cleanup failed"});
}

namespace {
gb::Task<void> when_any_parent(Env& env) {
  try {
    std::vector<gb::Task<int>> tasks;
    tasks.push_back(sleeper(env, "a", 5000ms, 1));
    tasks.push_back(sleeper(env, "b", 10000ms, 2));
    co_await gb::when_any(std::move(tasks));
    env.note("when_any returned");
  } catch (const gb::Cancelled&) {
    env.note("when_any threw Cancelled " + env.state());
    throw;
  }
}
}  // namespace

TEST(WhenAny, cancelling_the_awaiting_task_cancels_every_child_waits_for_them_and_throws_cancelled) {
  Env env;
  env.loop.run([&]() -> gb::Task<void> {
    auto parent = gb::spawn(when_any_parent(env));
    co_await gb::sleep_for(1s);
    parent.cancel();
    try {
      co_await parent;
      env.note("parent returned");
    } catch (const gb::Cancelled&) {
      env.note("parent ended Cancelled " + env.state());
    }
  }());
  EXPECT_EQ(env.log, (Log{"a start @0", "b start @0", "a cancelled @1000", "b cancelled @1000",
                          "when_any threw Cancelled (live 2, alive 0) @1000",
                          "parent ended Cancelled (live 1, alive 0) @1000"}));
  EXPECT_EQ(env.unhandled, Log{});
}

