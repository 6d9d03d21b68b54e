// Tests for TaskGroup (include/gearbox/task_group.hpp): eager starts and join, the first
// failure cancels the siblings and is rethrown by join, later failures are reported,
// cancellation of the parent, destruction without join, and failures that must not be
// lost. The stress test that nests gathers and TaskGroups with failures injected at random
// is in task_group_stress_test.
//
// As in the combinators' tests (gather_test.cpp and its siblings): a manual clock that
// jumps to the next timer whenever every task waits, event logs compared as a whole
// ("<name> <event> @<ms since start>"), and lifetime counters held by the children to
// prove their frames were destroyed once.
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

using gearbox_test::describe;
using gearbox_test::failer;
using gearbox_test::noter;
using gearbox_test::sleeper;
using gearbox_test::stubborn;
using gearbox_test::Env;
using gearbox_test::Failure;
using gearbox_test::Lifetimes;
using gearbox_test::Log;
using gearbox_test::Tracked;

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

}  // namespace

TEST(TaskGroup, children_start_eagerly_in_spawn_order_and_join_waits_for_all_of_them) {
  Env env;
  int a = 0, b = 0, c = 0;
  env.loop.run([&]() -> gb::Task<void> {
    auto other = gb::spawn(noter(env, "scheduled task runs"));
    gb::TaskGroup group;
    group.spawn(worker(env, "a", 3000ms, 1, a));
    group.spawn(worker(env, "b", 1000ms, 2, b));
    group.spawn(worker(env, "c", 2000ms, 3, c));
    env.note("spawned, running " + std::to_string(group.running()));
    co_await group.join();
    env.note("joined, running " + std::to_string(group.running()) + " " + env.state());
    co_await other;
  }());
  EXPECT_EQ(env.log, (Log{"a start @0", "b start @0", "c start @0", "spawned, running 3 @0", "scheduled task runs @0",
                          "b end @1000", "c end @2000", "a end @3000", "joined, running 0 (live 1, alive 0) @3000"}));
  EXPECT_EQ(a, 1);
  EXPECT_EQ(b, 2);
  EXPECT_EQ(c, 3);
  EXPECT_EQ(env.unhandled, Log{});
  EXPECT_EQ(env.life.constructed, 3);
  EXPECT_EQ(env.life.destroyed, 3);
  EXPECT_EQ(env.loop.live_tasks(), 0u);
}

TEST(TaskGroup, spawn_accepts_any_awaitable) {
  Env env;
  env.loop.run([&]() -> gb::Task<void> {
    gb::TaskGroup group;
    group.spawn(gb::sleep_for(2s));
    auto handle = gb::spawn(noter(env, "spawned task runs"));
    group.spawn(std::move(handle));
    co_await group.join();
    env.note("joined");
  }());
  EXPECT_EQ(env.log, (Log{"spawned task runs @0", "joined @2000"}));
}

TEST(TaskGroup, a_failing_child_cancels_its_siblings_and_join_rethrows_the_first_failure) {
  Env env;
  int a = 0, c = 0;
  env.loop.run([&]() -> gb::Task<void> {
    gb::TaskGroup group;
    group.spawn(worker(env, "a", 3000ms, 1, a));
    group.spawn(failing_worker(env, "b", 1000ms));
    group.spawn(worker(env, "c", 2000ms, 3, c));
    try {
      co_await group.join();
      env.note("joined");
    } catch (const Failure& failure) {
      env.note(std::string("caught ") + failure.what() + " " + env.state());
    }
  }());
  EXPECT_EQ(env.log, (Log{"a start @0", "b start @0", "c start @0", "b throws @1000", "a cancelled @1000",
                          "c cancelled @1000", "caught b (live 1, alive 0) @1000"}));
  EXPECT_EQ(a, 0);
  EXPECT_EQ(c, 0);
  EXPECT_EQ(env.unhandled, Log{});  // b is rethrown, the siblings' Cancelled is not reported
  EXPECT_EQ(env.life.constructed, 3);
  EXPECT_EQ(env.life.destroyed, 3);
}

namespace {
// A child whose cancellation takes more than one turn: it must first cancel its own children.
gb::Task<void> nested_gather(Env& env, int& x, int& y) {
  Tracked alive{env.life};
  try {
    co_await gb::gather(worker(env, "x", 5000ms, 1, x), worker(env, "y", 6000ms, 2, y));
  } catch (const gb::Cancelled&) {
    env.note("inner gather threw Cancelled");
    throw;
  }
}
}  // namespace

TEST(TaskGroup, the_failure_shows_only_after_siblings_that_take_several_turns_to_unwind_have_ended) {
  Env env;
  int x = 0, y = 0;
  env.loop.run([&]() -> gb::Task<void> {
    gb::TaskGroup group;
    group.spawn(nested_gather(env, x, y));
    group.spawn(failing_worker(env, "a", 1000ms));
    try {
      co_await group.join();
      env.note("joined");
    } catch (const Failure& failure) {
      env.note(std::string("caught ") + failure.what() + " " + env.state());
    }
  }());
  EXPECT_EQ(env.log, (Log{"x start @0", "y start @0", "a start @0", "a throws @1000", "x cancelled @1000",
                          "y cancelled @1000", "inner gather threw Cancelled @1000",
                          "caught a (live 1, alive 0) @1000"}));
  EXPECT_EQ(env.unhandled, Log{});
  EXPECT_EQ(env.life.constructed, 4);
  EXPECT_EQ(env.life.destroyed, 4);
}

namespace {
gb::Task<void> fail_now(Env& env, std::string name) {
  Tracked alive{env.life};
  env.note(name + " throws");
  if (!name.empty()) throw Failure{name};
  co_return;
}
}  // namespace

TEST(TaskGroup, a_child_that_fails_inside_spawn_cancels_the_children_spawned_before_it) {
  Env env;
  int a = 0;
  env.loop.run([&]() -> gb::Task<void> {
    gb::TaskGroup group;
    group.spawn(worker(env, "a", 5000ms, 1, a));
    group.spawn(fail_now(env, "b"));  // fails during its eager start, inside spawn()
    env.note("parent goes on, running " + std::to_string(group.running()));
    try {
      co_await group.join();
      env.note("joined");
    } catch (const Failure& failure) {
      env.note(std::string("caught ") + failure.what() + " " + env.state());
    }
  }());
  EXPECT_EQ(env.log, (Log{"a start @0", "b throws @0", "parent goes on, running 1 @0", "a cancelled @0",
                          "caught b (live 1, alive 0) @0"}));
  EXPECT_EQ(env.unhandled, Log{});
  EXPECT_EQ(env.life.constructed, 2);
  EXPECT_EQ(env.life.destroyed, 2);
}

TEST(TaskGroup, later_failures_are_reported_to_the_loop_and_cancellations_are_not) {
  Env env;
  int c = 0;
  env.loop.run([&]() -> gb::Task<void> {
    gb::TaskGroup group;
    group.spawn(failing_worker(env, "a", 1000ms));
    group.spawn(stubborn_worker(env, "b", 5000ms));
    group.spawn(worker(env, "c", 5000ms, 3, c));
    try {
      co_await group.join();
      env.note("joined");
    } catch (const Failure& failure) {
      env.note(std::string("caught ") + failure.what() + " " + env.state());
    }
  }());
  EXPECT_EQ(env.log, (Log{"a start @0", "b start @0", "c start @0", "a throws @1000", "b fails while cancelled @1000",
                          "c cancelled @1000", "caught a (live 1, alive 0) @1000"}));
  EXPECT_EQ(env.unhandled, Log{"b cleanup failed"});
}

TEST(TaskGroup, a_failure_does_not_interrupt_the_parent_before_join_and_shows_there) {
  Env env;
  int b = 0;
  env.loop.run([&]() -> gb::Task<void> {
    gb::TaskGroup group;
    group.spawn(failing_worker(env, "a", 1000ms));
    group.spawn(worker(env, "b", 5000ms, 2, b));
    co_await gb::sleep_for(2s);
    env.note("parent still running, running " + std::to_string(group.running()));
    try {
      co_await group.join();
      env.note("joined");
    } catch (const Failure& failure) {
      env.note(std::string("caught ") + failure.what());
    }
  }());
  EXPECT_EQ(env.log, (Log{"a start @0", "b start @0", "a throws @1000", "b cancelled @1000",
                          "parent still running, running 0 @2000", "caught a @2000"}));
  EXPECT_EQ(env.unhandled, Log{});
}

TEST(TaskGroup, children_spawned_after_a_failure_are_cancelled) {
  Env env;
  int late = 0;
  env.loop.run([&]() -> gb::Task<void> {
    gb::TaskGroup group;
    group.spawn(failing_worker(env, "a", 1000ms));
    co_await gb::sleep_for(2s);
    group.spawn(worker(env, "late", 1000ms, 1, late));
    env.note("spawned late");
    try {
      co_await group.join();
      env.note("joined");
    } catch (const Failure& failure) {
      env.note(std::string("caught ") + failure.what() + " " + env.state());
    }
  }());
  // The late child starts at the next turn (not eagerly) and is already cancelled: its
  // first suspension point throws Cancelled, so it never sleeps.
  EXPECT_EQ(env.log, (Log{"a start @0", "a throws @1000", "spawned late @2000", "late start @2000",
                          "late cancelled @2000", "caught a (live 1, alive 0) @2000"}));
  EXPECT_EQ(late, 0);
  EXPECT_EQ(env.unhandled, Log{});
  EXPECT_EQ(env.clock.now() - env.start, 2s);
}

namespace {
gb::Task<void> group_parent(Env& env, int& a, int& b) {
  gb::TaskGroup group;
  group.spawn(worker(env, "a", 5000ms, 1, a));
  group.spawn(worker(env, "b", 10000ms, 2, b));
  try {
    co_await group.join();
    env.note("joined");
  } catch (const gb::Cancelled&) {
    env.note("join threw Cancelled " + env.state());
    throw;
  }
}
}  // namespace

TEST(TaskGroup, cancelling_the_parent_inside_join_cancels_the_children_and_throws_cancelled) {
  Env env;
  int a = 0, b = 0;
  env.loop.run([&]() -> gb::Task<void> {
    auto parent = gb::spawn(group_parent(env, a, b));
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
  EXPECT_EQ(env.log, (Log{"a start @0", "b start @0", "cancel parent @1000", "a cancelled @1000", "b cancelled @1000",
                          "join threw Cancelled (live 2, alive 0) @1000",
                          "parent ended Cancelled (live 1, alive 0) @1000"}));
  EXPECT_EQ(a, 0);
  EXPECT_EQ(b, 0);
  EXPECT_EQ(env.unhandled, Log{});
}

TEST(TaskGroup, spawn_after_join_throws_logic_error) {
  Env env;
  Log outcomes;
  env.loop.run([&]() -> gb::Task<void> {
    gb::TaskGroup joined;
    co_await joined.join();
    try {
      joined.spawn(noter(env, "never runs"));
      outcomes.push_back("spawned");
    } catch (const std::logic_error&) {
      outcomes.push_back("logic_error");
    }

    gb::TaskGroup failed;
    failed.spawn(failing_worker(env, "a", 1000ms));
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
    co_await gb::yield_now();  // a child spawned by mistake would have run by now
  }());
  EXPECT_EQ(outcomes, (Log{"logic_error", "join failed", "logic_error"}));
  EXPECT_EQ(env.log, (Log{"a start @0", "a throws @1000"}));
}

TEST(TaskGroup, destroying_a_group_without_join_cancels_its_children) {
  Env env;
  int a = 0, b = 0;
  env.loop.run([&]() -> gb::Task<void> {
    {
      gb::TaskGroup group;
      group.spawn(worker(env, "a", 5000ms, 1, a));
      group.spawn(worker(env, "b", 10000ms, 2, b));
      co_await gb::sleep_for(1s);
    }
    env.note("group destroyed " + env.state());
    co_await gb::yield_now();  // the cancelled children run first, then we resume
    env.note("after a turn " + env.state());
  }());
  EXPECT_EQ(env.log, (Log{"a start @0", "b start @0", "group destroyed (live 3, alive 2) @1000", "a cancelled @1000",
                          "b cancelled @1000", "after a turn (live 1, alive 0) @1000"}));
  EXPECT_EQ(a, 0);
  EXPECT_EQ(b, 0);
  EXPECT_EQ(env.unhandled, Log{});
  EXPECT_EQ(env.clock.now() - env.start, 1s);
}

TEST(TaskGroup, children_of_a_group_destroyed_without_join_that_then_fail_are_reported) {
  Env env;
  env.loop.run([&]() -> gb::Task<void> {
    {
      gb::TaskGroup group;
      group.spawn(stubborn_worker(env, "a", 5000ms));
      co_await gb::sleep_for(1s);
    }
    co_await gb::yield_now();
    env.note("after a turn " + env.state());
  }());
  EXPECT_EQ(env.log, (Log{"a start @0", "a fails while cancelled @1000", "after a turn (live 1, alive 0) @1000"}));
  EXPECT_EQ(env.unhandled, Log{"a cleanup failed"});
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

namespace {
gb::Task<void> spawning_worker(Env& env, gb::TaskGroup& group, int& out) {
  Tracked alive{env.life};
  env.note("spawner start");
  co_await gb::sleep_for(1s);
  group.spawn(worker(env, "grandchild", 2000ms, 9, out));
  env.note("spawner end");
}
}  // namespace

TEST(TaskGroup, join_also_waits_for_children_spawned_by_children_while_it_waits) {
  Env env;
  int out = 0;
  env.loop.run([&]() -> gb::Task<void> {
    gb::TaskGroup group;
    group.spawn(spawning_worker(env, group, out));
    env.note("joining");
    co_await group.join();
    env.note("joined " + env.state());
  }());
  EXPECT_EQ(env.log, (Log{"spawner start @0", "joining @0", "grandchild start @1000", "spawner end @1000",
                          "grandchild end @3000", "joined (live 1, alive 0) @3000"}));
  EXPECT_EQ(out, 9);
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

namespace {
gb::Task<void> group_parent_of_stubborn(Env& env) {
  gb::TaskGroup group;
  group.spawn(stubborn_worker(env, "b", 10000ms));
  co_await group.join();
}

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

// Regression: a child failure while the cancelled parent waited in join() used to vanish.
TEST(TaskGroup, a_child_that_fails_while_the_cancelled_parent_waits_in_join_is_reported) {
  Env env;
  env.loop.run([&]() -> gb::Task<void> {
    auto parent = gb::spawn(group_parent_of_stubborn(env));
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
  EXPECT_EQ(env.unhandled, Log{"b cleanup failed"});
}

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
