// Tests for TaskGroup (include/gearbox/task_group.hpp): eager starts and join, the first
// failure cancels the siblings and is rethrown by join, later failures are reported,
// cancellation of the parent, destruction without join, and failures that must not be
// lost. The stress test that nests gathers and TaskGroups with failures injected at random
// is in task_group_stress_test.
//
// As in the combinators' tests (gather_test.cpp and its siblings): the outcomes (the
// children's results, the failure join rethrows, the failures reported, every child's
// frame destroyed once and none alive when join returns or throws) are asserted on both
// flavors (TaskGroupOnEveryFlavor), with every child that must be cancelled sleeping for
// an hour (k_never) so that no outcome depends on how late a timer fires on the runtime.
// The event logs of the same scenarios ("<name> <event> @<ms since start>"), with their
// order and exact times, are compared on the loop only (TaskGroup), on a manual clock that
// jumps to the next timer whenever every task waits; so are the cases that are about order
// or about the Loop itself (an empty group joins without yielding, a loop destroyed while
// a group waits) and the regressions whose failure must land before the parent is
// cancelled or throws, which only the manual clock can order.
#include <gearbox/task_group.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <exception>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <gearbox/combinators.hpp>
#include <gearbox/error.hpp>
#include <gearbox/join_handle.hpp>
#include <gearbox/loop.hpp>
#include <gearbox/spawn.hpp>
#include <gearbox/task.hpp>
#include <gearbox/time.hpp>

#include <gtest/gtest.h>

#include "child_tasks.hpp"
#include "support/env.hpp"

namespace gb = gearbox;
using namespace std::chrono_literals;
using std::chrono::milliseconds;

namespace {

using gearbox_test::cancel_after_a_while;
using gearbox_test::describe;
using gearbox_test::expect_each_child_destroyed_once;
using gearbox_test::failer;
using gearbox_test::k_never;
using gearbox_test::log_on_the_loop;
using gearbox_test::noter;
using gearbox_test::outcome_of;
using gearbox_test::sleeper;
using gearbox_test::stubborn;
using gearbox_test::Env;
using gearbox_test::Failure;
using gearbox_test::Lifetimes;
using gearbox_test::Log;
using gearbox_test::Tracked;

class TaskGroupOnEveryFlavor : public gearbox_test::EnvOnEveryFlavor {};

// TaskGroup children return nothing: the shared children (child_tasks.hpp), with their
// value stored in `out` where there is one.
gb::Task<void> worker(Env& env, std::string name, milliseconds delay, int value, int& out) {
  out = co_await sleeper(env, std::move(name), delay, value);
}

gb::Task<void> failing_worker(Env& env, std::string name, milliseconds delay) {
  co_await failer(env, std::move(name), delay);
}

gb::Task<void> stubborn_worker(Env& env, std::string name, milliseconds delay) {
  co_await stubborn(env, std::move(name), delay);
}

// What three workers stored, as "<a> <b> <c>".
std::string values(int a, int b, int c) {
  return std::to_string(a) + " " + std::to_string(b) + " " + std::to_string(c);
}

// a, b and c end at 30, 10 and 20 ms; a task spawned before the group runs meanwhile.
gb::Task<std::string> join_three(Env& env) {
  auto other = gb::spawn(noter(env, "scheduled task runs"));
  int a = 0, b = 0, c = 0;
  gb::TaskGroup group;
  group.spawn(worker(env, "a", 30ms, 1, a));
  group.spawn(worker(env, "b", 10ms, 2, b));
  group.spawn(worker(env, "c", 20ms, 3, c));
  env.note("spawned, running " + std::to_string(group.running()));
  co_await group.join();
  const std::string joined = env.outcome("joined, running " + std::to_string(group.running()));
  co_await other;
  co_return values(a, b, c) + "; " + joined;
}

// A sleep (20 ms) and the handle of a spawned task, joined.
gb::Task<void> join_a_sleep_and_a_handle(Env& env) {
  gb::TaskGroup group;
  group.spawn(gb::sleep_for(20ms));
  auto handle = gb::spawn(noter(env, "spawned task runs"));
  group.spawn(std::move(handle));
  co_await group.join();
  env.note("joined");
}

// b fails at 10 ms; a and c would sleep on.
gb::Task<std::string> join_a_failure(Env& env) {
  int a = 0, c = 0;
  gb::TaskGroup group;
  group.spawn(worker(env, "a", k_never, 1, a));
  group.spawn(failing_worker(env, "b", 10ms));
  group.spawn(worker(env, "c", k_never, 3, c));
  const std::string outcome = co_await outcome_of(env, group.join());
  co_return values(a, 0, c) + "; " + outcome;
}

// A child whose cancellation takes more than one turn: it must first cancel its own children.
gb::Task<void> nested_gather(Env& env, int& x, int& y) {
  Tracked alive{env.life};
  try {
    co_await gb::gather(worker(env, "x", k_never, 1, x), worker(env, "y", k_never, 2, y));
  } catch (const gb::Cancelled&) {
    env.note("inner gather threw Cancelled");
    throw;
  }
}

// a fails at 10 ms; its sibling is a gather of two children that would sleep on.
gb::Task<std::string> join_a_failure_beside_a_nested_gather(Env& env) {
  int x = 0, y = 0;
  gb::TaskGroup group;
  group.spawn(nested_gather(env, x, y));
  group.spawn(failing_worker(env, "a", 10ms));
  co_return co_await outcome_of(env, group.join());
}

gb::Task<void> fail_now(Env& env, std::string name) {
  Tracked alive{env.life};
  env.note(name + " throws");
  if (!name.empty()) throw Failure{name};
  co_return;
}

// a would sleep on; b fails during its eager start, inside spawn().
gb::Task<std::string> join_a_failure_inside_spawn(Env& env) {
  int a = 0;
  gb::TaskGroup group;
  group.spawn(worker(env, "a", k_never, 1, a));
  group.spawn(fail_now(env, "b"));
  env.note("parent goes on, running " + std::to_string(group.running()));
  co_return co_await outcome_of(env, group.join());
}

// a fails at 10 ms; b fails when it is cancelled; c would sleep on.
gb::Task<std::string> join_a_failure_and_a_stubborn_child(Env& env) {
  int c = 0;
  gb::TaskGroup group;
  group.spawn(failing_worker(env, "a", 10ms));
  group.spawn(stubborn_worker(env, "b", k_never));
  group.spawn(worker(env, "c", k_never, 3, c));
  co_return co_await outcome_of(env, group.join());
}

// a fails at 10 ms, b would sleep on; the parent sleeps 20 ms before it joins.
gb::Task<std::string> join_late_after_a_failure(Env& env) {
  int b = 0;
  gb::TaskGroup group;
  group.spawn(failing_worker(env, "a", 10ms));
  group.spawn(worker(env, "b", k_never, 2, b));
  co_await gb::sleep_for(20ms);
  env.note("parent still running, running " + std::to_string(group.running()));
  co_return "parent slept; " + co_await outcome_of(env, group.join());
}

// a fails at 10 ms; at 20 ms the parent spawns a child that would sleep on, then joins.
gb::Task<std::string> spawn_after_a_failure(Env& env) {
  int late = 0;
  gb::TaskGroup group;
  group.spawn(failing_worker(env, "a", 10ms));
  co_await gb::sleep_for(20ms);
  group.spawn(worker(env, "late", k_never, 1, late));
  env.note("spawned late");
  const std::string outcome = co_await outcome_of(env, group.join());
  co_return std::to_string(late) + "; " + outcome;
}

gb::Task<void> group_parent(Env& env, int& a, int& b) {
  gb::TaskGroup group;
  group.spawn(worker(env, "a", k_never, 1, a));
  group.spawn(worker(env, "b", k_never, 2, b));
  try {
    co_await group.join();
    env.note("joined");
  } catch (const gb::Cancelled&) {
    env.note("join threw Cancelled " + env.state());
    throw;
  }
}

// spawn() on a group that joined, and on one whose join failed: what each step gave.
gb::Task<Log> spawn_after_join(Env& env) {
  Log outcomes;
  gb::TaskGroup joined;
  co_await joined.join();
  try {
    joined.spawn(noter(env, "never runs"));
    outcomes.push_back("spawned");
  } catch (const std::logic_error&) {
    outcomes.push_back("logic_error");
  }

  gb::TaskGroup failed;
  failed.spawn(failing_worker(env, "a", 10ms));
  try {
    co_await failed.join();
  } catch (const Failure&) {
    outcomes.push_back("join failed");
  }
  try {
    failed.spawn(noter(env, "never runs either"));
    outcomes.push_back("spawned");
  } catch (const std::logic_error&) {
    outcomes.push_back("logic_error");
  }
  co_await gb::yield_now();  // on the loop, a child spawned by mistake would have run by now
  co_return outcomes;
}

// Destroys a group of two children that would sleep on, 10 ms after spawning them.
gb::Task<void> drop_a_group(Env& env, int& a, int& b) {
  {
    gb::TaskGroup group;
    group.spawn(worker(env, "a", k_never, 1, a));
    group.spawn(worker(env, "b", k_never, 2, b));
    co_await gb::sleep_for(10ms);
  }
  env.note("group destroyed " + env.state());
  co_await gb::yield_now();  // on the loop: the cancelled children run first, then we resume
  env.note("after a turn " + env.state());
}

// Destroys a group whose one child fails when it is cancelled, 10 ms after spawning it.
gb::Task<void> drop_a_group_of_stubborn(Env& env) {
  {
    gb::TaskGroup group;
    group.spawn(stubborn_worker(env, "a", k_never));
    co_await gb::sleep_for(10ms);
  }
  co_await gb::yield_now();
  env.note("after a turn " + env.state());
}

gb::Task<void> spawning_worker(Env& env, gb::TaskGroup& group, int& out) {
  Tracked alive{env.life};
  env.note("spawner start");
  co_await gb::sleep_for(10ms);
  group.spawn(worker(env, "grandchild", 20ms, 9, out));
  env.note("spawner end");
}

// A child that spawns a grandchild into the group while the parent waits in join: what
// the grandchild stored.
gb::Task<std::string> join_a_child_that_spawns(Env& env) {
  int out = 0;
  gb::TaskGroup group;
  group.spawn(spawning_worker(env, group, out));
  env.note("joining");
  co_await group.join();
  co_return std::to_string(out) + "; " + env.outcome("joined");
}

gb::Task<void> group_parent_of_stubborn(Env& env) {
  gb::TaskGroup group;
  group.spawn(stubborn_worker(env, "b", k_never));
  co_await group.join();
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(TaskGroup, TaskGroupOnEveryFlavor, gearbox_test::every_flavor(), gearbox_test::flavor_name);

TEST_P(TaskGroupOnEveryFlavor, join_waits_for_every_child) {
  EXPECT_EQ(env.run(join_three(env)), "1 2 3; joined, running 0, alive 0");
  EXPECT_EQ(env.unhandled, Log{});
  expect_each_child_destroyed_once(env, 3);
}

TEST(TaskGroup, children_start_eagerly_in_spawn_order_and_join_waits_for_all_of_them) {
  Env env;
  env.run(join_three(env));
  EXPECT_EQ(env.log, (Log{"a start @0", "b start @0", "c start @0", "spawned, running 3 @0", "scheduled task runs @0",
                          "b end @10", "c end @20", "a end @30", "joined, running 0 (live 1, alive 0) @30"}));
  EXPECT_EQ(env.loop.live_tasks(), 0u);
}

TEST_P(TaskGroupOnEveryFlavor, spawn_accepts_any_awaitable) {
  env.run(join_a_sleep_and_a_handle(env));
  EXPECT_TRUE(env.noted("spawned task runs"));
  EXPECT_TRUE(env.noted("joined"));
}

TEST(TaskGroup, spawn_accepts_any_awaitable) {
  Env env;
  env.run(join_a_sleep_and_a_handle(env));
  EXPECT_EQ(env.log, (Log{"spawned task runs @0", "joined @20"}));
}

TEST_P(TaskGroupOnEveryFlavor, a_failing_child_cancels_its_siblings_and_join_rethrows_the_first_failure) {
  EXPECT_EQ(env.run(join_a_failure(env)), "0 0 0; caught b, alive 0");
  EXPECT_EQ(env.unhandled, Log{});  // b is rethrown, the siblings' Cancelled is not reported
  expect_each_child_destroyed_once(env, 3);
}

TEST(TaskGroup, a_failing_child_cancels_its_siblings_and_join_rethrows_the_first_failure) {
  EXPECT_EQ(log_on_the_loop(join_a_failure),
            (Log{"a start @0", "b start @0", "c start @0", "b throws @10", "a cancelled @10", "c cancelled @10",
                 "caught b (live 1, alive 0) @10"}));
}

TEST_P(TaskGroupOnEveryFlavor, the_failure_shows_only_after_siblings_that_take_several_turns_to_unwind_have_ended) {
  EXPECT_EQ(env.run(join_a_failure_beside_a_nested_gather(env)), "caught a, alive 0");
  EXPECT_TRUE(env.noted("inner gather threw Cancelled"));
  EXPECT_EQ(env.unhandled, Log{});
  expect_each_child_destroyed_once(env, 4);
}

TEST(TaskGroup, the_failure_shows_only_after_siblings_that_take_several_turns_to_unwind_have_ended) {
  EXPECT_EQ(log_on_the_loop(join_a_failure_beside_a_nested_gather),
            (Log{"x start @0", "y start @0", "a start @0", "a throws @10", "x cancelled @10", "y cancelled @10",
                 "inner gather threw Cancelled @10", "caught a (live 1, alive 0) @10"}));
}

TEST_P(TaskGroupOnEveryFlavor, a_child_that_fails_inside_spawn_cancels_the_children_spawned_before_it) {
  EXPECT_EQ(env.run(join_a_failure_inside_spawn(env)), "caught b, alive 0");
  EXPECT_EQ(env.unhandled, Log{});
  expect_each_child_destroyed_once(env, 2);
}

TEST(TaskGroup, a_child_that_fails_inside_spawn_cancels_the_children_spawned_before_it) {
  EXPECT_EQ(log_on_the_loop(join_a_failure_inside_spawn),
            (Log{"a start @0", "b throws @0", "parent goes on, running 1 @0", "a cancelled @0",
                 "caught b (live 1, alive 0) @0"}));
}

TEST_P(TaskGroupOnEveryFlavor, later_failures_are_reported_to_the_loop_and_cancellations_are_not) {
  EXPECT_EQ(env.run(join_a_failure_and_a_stubborn_child(env)), "caught a, alive 0");
  EXPECT_EQ(env.unhandled, Log{"b cleanup failed"});
}

TEST(TaskGroup, later_failures_are_reported_to_the_loop_and_cancellations_are_not) {
  EXPECT_EQ(log_on_the_loop(join_a_failure_and_a_stubborn_child),
            (Log{"a start @0", "b start @0", "c start @0", "a throws @10", "b fails while cancelled @10",
                 "c cancelled @10", "caught a (live 1, alive 0) @10"}));
}

TEST_P(TaskGroupOnEveryFlavor, a_failure_does_not_interrupt_the_parent_before_join_and_shows_there) {
  EXPECT_EQ(env.run(join_late_after_a_failure(env)), "parent slept; caught a, alive 0");
  EXPECT_EQ(env.unhandled, Log{});
}

TEST(TaskGroup, a_failure_does_not_interrupt_the_parent_before_join_and_shows_there) {
  EXPECT_EQ(log_on_the_loop(join_late_after_a_failure),
            (Log{"a start @0", "b start @0", "a throws @10", "b cancelled @10", "parent still running, running 0 @20",
                 "caught a (live 1, alive 0) @20"}));
}

TEST_P(TaskGroupOnEveryFlavor, children_spawned_after_a_failure_are_cancelled) {
  EXPECT_EQ(env.run(spawn_after_a_failure(env)), "0; caught a, alive 0");
  EXPECT_EQ(env.unhandled, Log{});
}

TEST(TaskGroup, children_spawned_after_a_failure_are_cancelled_at_their_first_wait) {
  Env env;
  env.run(spawn_after_a_failure(env));
  // The late child starts at the next turn (not eagerly) and is already cancelled: its
  // first suspension point throws Cancelled, so it never sleeps.
  EXPECT_EQ(env.log, (Log{"a start @0", "a throws @10", "spawned late @20", "late start @20",
                          "late cancelled @20", "caught a (live 1, alive 0) @20"}));
  EXPECT_EQ(env.clock.now() - env.start, 20ms);
}

TEST_P(TaskGroupOnEveryFlavor, cancelling_the_parent_inside_join_cancels_the_children_and_throws_cancelled) {
  int a = 0, b = 0;
  EXPECT_EQ(env.run(cancel_after_a_while(env, group_parent(env, a, b))), "parent ended Cancelled, alive 0");
  EXPECT_TRUE(env.noted("join threw Cancelled"));
  EXPECT_EQ(a, 0);
  EXPECT_EQ(b, 0);
  EXPECT_EQ(env.unhandled, Log{});
}

TEST(TaskGroup, cancelling_the_parent_inside_join_cancels_the_children_and_throws_cancelled) {
  Env env;
  int a = 0, b = 0;
  env.run(cancel_after_a_while(env, group_parent(env, a, b)));
  EXPECT_EQ(env.log, (Log{"a start @0", "b start @0", "cancel parent @10", "a cancelled @10", "b cancelled @10",
                          "join threw Cancelled (live 2, alive 0) @10",
                          "parent ended Cancelled (live 1, alive 0) @10"}));
}

TEST_P(TaskGroupOnEveryFlavor, spawn_after_join_throws_logic_error) {
  EXPECT_EQ(env.run(spawn_after_join(env)), (Log{"logic_error", "join failed", "logic_error"}));
  EXPECT_FALSE(env.noted("never runs"));
}

TEST(TaskGroup, spawn_after_join_throws_logic_error) {
  EXPECT_EQ(log_on_the_loop(spawn_after_join),
            (Log{"a start @0", "a throws @10"}));
}

TEST_P(TaskGroupOnEveryFlavor, destroying_a_group_without_join_cancels_its_children) {
  int a = 0, b = 0;
  env.run(drop_a_group(env, a, b));
  EXPECT_EQ(a, 0);
  EXPECT_EQ(b, 0);
  expect_each_child_destroyed_once(env, 2);
  EXPECT_EQ(env.unhandled, Log{});
}

TEST(TaskGroup, destroying_a_group_without_join_cancels_its_children) {
  Env env;
  int a = 0, b = 0;
  env.run(drop_a_group(env, a, b));
  EXPECT_EQ(env.log, (Log{"a start @0", "b start @0", "group destroyed (live 3, alive 2) @10", "a cancelled @10",
                          "b cancelled @10", "after a turn (live 1, alive 0) @10"}));
  EXPECT_EQ(env.clock.now() - env.start, 10ms);
}

TEST_P(TaskGroupOnEveryFlavor, children_of_a_group_destroyed_without_join_that_then_fail_are_reported) {
  env.run(drop_a_group_of_stubborn(env));
  EXPECT_EQ(env.unhandled, Log{"a cleanup failed"});
}

TEST(TaskGroup, children_of_a_group_destroyed_without_join_that_then_fail_are_reported) {
  EXPECT_EQ(log_on_the_loop(drop_a_group_of_stubborn),
            (Log{"a start @0", "a fails while cancelled @10", "after a turn (live 1, alive 0) @10"}));
}

TEST(TaskGroup, a_group_with_no_children_joins_at_once) {
  Env env;
  env.loop.run([&]() -> gb::Task<void> {
    auto other = gb::spawn(noter(env, "scheduled task runs"));
    gb::TaskGroup group;
    co_await group.join();
    env.note("joined");  // before the scheduled task: join did not yield to the loop
    co_await other;
  }());
  EXPECT_EQ(env.log, (Log{"joined @0", "scheduled task runs @0"}));
}

TEST_P(TaskGroupOnEveryFlavor, join_also_waits_for_children_spawned_by_children_while_it_waits) {
  EXPECT_EQ(env.run(join_a_child_that_spawns(env)), "9; joined, alive 0");
}

TEST(TaskGroup, join_also_waits_for_children_spawned_by_children_while_it_waits) {
  EXPECT_EQ(log_on_the_loop(join_a_child_that_spawns),
            (Log{"spawner start @0", "joining @0", "grandchild start @10", "spawner end @10", "grandchild end @30",
                 "joined (live 1, alive 0) @30"}));
}

namespace {
gb::Task<void> detached_group_parent(Log& log, Lifetimes& life) {
  Tracked alive{life};
  gb::TaskGroup group;
  group.spawn(gb::sleep_for(5s));
  group.spawn(gb::sleep_for(10s));
  try {
    co_await group.join();
    log.push_back("joined");
  } catch (const gb::Cancelled&) {
    log.push_back("join threw Cancelled");
    throw;
  }
}
}  // namespace

TEST(TaskGroup, a_loop_destroyed_while_a_group_waits_in_join_ends_every_child_and_the_parent) {
  Log log;
  Log unhandled;
  Lifetimes life;
  std::size_t live_before_destruction = 0;
  {
    gb::ManualClock clock;
    gb::Loop loop{{.clock = &clock,
                   .auto_advance = true,
                   .on_unhandled_exception = [&](std::exception_ptr e) { unhandled.push_back(describe(e)); }}};
    loop.run([&]() -> gb::Task<void> {
      gb::spawn(detached_group_parent(log, life)).detach();
      co_await gb::sleep_for(1s);
    }());
    live_before_destruction = loop.live_tasks();
  }
  EXPECT_EQ(live_before_destruction, 3u);  // the parent and its two children
  EXPECT_EQ(log, Log{"join threw Cancelled"});
  EXPECT_EQ(life.constructed, 1);
  EXPECT_EQ(life.destroyed, 1);
  EXPECT_EQ(unhandled, Log{});
}

// ---- failures that must not be lost ----

// Regression: a child failure while the cancelled parent waited in join() used to vanish.
TEST_P(TaskGroupOnEveryFlavor, a_child_that_fails_while_the_cancelled_parent_waits_in_join_is_reported) {
  EXPECT_EQ(env.run(cancel_after_a_while(env, group_parent_of_stubborn(env))), "parent ended Cancelled, alive 0");
  EXPECT_EQ(env.unhandled, Log{"b cleanup failed"});
}

TEST(TaskGroup, a_child_that_fails_while_the_cancelled_parent_waits_in_join_is_reported) {
  EXPECT_EQ(log_on_the_loop([](Env& env) { return cancel_after_a_while(env, group_parent_of_stubborn(env)); }),
            (Log{"b start @0", "cancel parent @10", "b fails while cancelled @10",
                 "parent ended Cancelled (live 1, alive 0) @10"}));
}

namespace {
gb::Task<void> group_parent_that_sleeps_before_join(Env& env, bool throw_before_join) {
  gb::TaskGroup group;
  int b = 0;
  group.spawn(failing_worker(env, "a", 1000ms));
  group.spawn(worker(env, "b", 10000ms, 2, b));
  co_await gb::sleep_for(2s);
  if (throw_before_join) throw Failure{"parent"};
  co_await gb::sleep_for(5s);
  co_await group.join();
}
}  // namespace

// Regression: a failure used to vanish when the parent was cancelled before join().
TEST(TaskGroup, a_failure_is_reported_when_the_parent_is_cancelled_before_it_reaches_join) {
  Env env;
  env.loop.run([&]() -> gb::Task<void> {
    auto parent = gb::spawn(group_parent_that_sleeps_before_join(env, false));
    co_await gb::sleep_for(3s);
    parent.cancel();
    try {
      co_await parent;
      env.note("parent returned");
    } catch (const gb::Cancelled&) {
      env.note("parent ended Cancelled");
    }
  }());
  EXPECT_EQ(env.log, (Log{"a start @0", "b start @0", "a throws @1000", "b cancelled @1000",
                          "parent ended Cancelled @3000"}));
  EXPECT_EQ(env.unhandled, Log{"a"});
}

// Regression: a failure used to vanish when the parent threw before reaching join().
TEST(TaskGroup, a_failure_is_reported_when_the_parent_throws_before_it_reaches_join) {
  Env env;
  std::string caught;
  env.loop.run([&]() -> gb::Task<void> {
    try {
      co_await group_parent_that_sleeps_before_join(env, true);
    } catch (const Failure& failure) {
      caught = failure.what();
    }
  }());
  EXPECT_EQ(caught, "parent");
  EXPECT_EQ(env.log, (Log{"a start @0", "b start @0", "a throws @1000", "b cancelled @1000"}));
  EXPECT_EQ(env.unhandled, Log{"a"});
}
