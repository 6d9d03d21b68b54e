// Tests for TaskGroup (include/gearbox/task_group.hpp), and a stress test that nests
// gathers and TaskGroups with failures injected at random.
//
// As in combinators_test.cpp: a manual clock that jumps to the next timer whenever every
// task waits, event logs compared as a whole ("<name> <event> @<ms since start>"), and
// lifetime counters held by the children to prove their frames were destroyed once.
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

#include "support/env.hpp"

namespace gb = gearbox;
using namespace std::chrono_literals;
using std::chrono::milliseconds;

namespace {

using gearbox_test::describe;
using gearbox_test::Env;
using gearbox_test::Failure;
using gearbox_test::Lifetimes;
using gearbox_test::Log;
using gearbox_test::Tracked;

gb::Task<void> noter(Env& env, std::string name) {
  env.note(name);
  co_return;
}

// Sleeps `delay`, then stores `value` in `out`; logs its start, end or cancellation.
gb::Task<void> worker(Env& env, std::string name, milliseconds delay, int value, int& out) {
  Tracked alive{env.life};
  env.note(name + " start");
  try {
    co_await gb::sleep_for(delay);
  } catch (const gb::Cancelled&) {
    env.note(name + " cancelled");
    throw;
  }
  env.note(name + " end");
  out = value;
}

gb::Task<void> failing_worker(Env& env, std::string name, milliseconds delay) {
  Tracked alive{env.life};
  env.note(name + " start");
  try {
    co_await gb::sleep_for(delay);
  } catch (const gb::Cancelled&) {
    env.note(name + " cancelled");
    throw;
  }
  env.note(name + " throws");
  throw Failure{name};
}

// If cancelled while it sleeps, fails with another error (a clean-up that went wrong).
gb::Task<void> stubborn_worker(Env& env, std::string name, milliseconds delay) {
  Tracked alive{env.life};
  env.note(name + " start");
  bool cancelled = false;
  try {
    co_await gb::sleep_for(delay);
  } catch (const gb::Cancelled&) {
    cancelled = true;
  }
  if (cancelled) {
    env.note(name + " fails while cancelled");
    throw Failure{name + " cleanup failed"};
  }
  env.note(name + " end");
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

// ---- stress: gathers and groups nested four deep, failures injected at random ----

namespace {

struct LeafFailure : std::runtime_error {
  explicit LeafFailure(int leaf) : std::runtime_error("leaf " + std::to_string(leaf)), id(leaf) {}
  int id;
};

struct Node {
  enum class Kind { leaf, gather, group };
  Kind kind = Kind::leaf;
  int id = 0;
  long long delay_ms = 0;  // leaves: distinct across the tree, so no two leaves end together
  bool fails = false;      // leaves: throws LeafFailure after its sleep
  std::vector<Node> children;
};

enum class Outcome { none, completed, failed, cancelled };

struct StressWorld {
  Lifetimes life;
  std::vector<int> started;  // per node id
  std::vector<int> ended;    // per node id
  std::vector<Outcome> outcome;
  int unhandled = 0;
};

constexpr int k_levels = 4;  // combinator levels; leaves below them

// A tree of gathers and groups with leaves below them. The first child of every node on the
// `spine` is again a combinator, so every tree is k_levels deep; elsewhere a node may be a
// leaf early.
Node build_tree(std::mt19937& random, int depth, int& next_id, bool spine) {
  Node node;
  node.id = next_id++;
  std::uniform_int_distribution<int> percent{0, 99};
  if (depth == k_levels || (!spine && percent(random) < 15)) return node;  // a leaf
  node.kind = percent(random) < 50 ? Node::Kind::gather : Node::Kind::group;
  const int fan_out = std::uniform_int_distribution<int>{2, 4}(random);
  for (int i = 0; i < fan_out; ++i) node.children.push_back(build_tree(random, depth + 1, next_id, spine && i == 0));
  return node;
}

void collect_leaves(Node& node, std::vector<Node*>& leaves) {
  if (node.kind == Node::Kind::leaf) leaves.push_back(&node);
  for (Node& child : node.children) collect_leaves(child, leaves);
}

// Counts the start of a node now and its end when the frame unwinds, however it ends.
class EndMark {
public:
  EndMark(StressWorld& world, int id) : m_world(&world), m_id(id) { ++world.started[id]; }
  EndMark(const EndMark&) = delete;
  EndMark& operator=(const EndMark&) = delete;
  ~EndMark() { ++m_world->ended[m_id]; }

private:
  StressWorld* m_world;
  int m_id;
};

gb::Task<long long> run_node(StressWorld& world, const Node& node);

gb::Task<void> run_into(StressWorld& world, const Node& node, long long& out) { out = co_await run_node(world, node); }

gb::Task<long long> run_node(StressWorld& world, const Node& node) {
  Tracked alive{world.life};
  EndMark mark{world, node.id};
  if (node.kind == Node::Kind::leaf) {
    try {
      co_await gb::sleep_for(milliseconds(node.delay_ms));
    } catch (const gb::Cancelled&) {
      world.outcome[node.id] = Outcome::cancelled;
      throw;
    }
    if (node.fails) {
      world.outcome[node.id] = Outcome::failed;
      throw LeafFailure{node.id};
    }
    world.outcome[node.id] = Outcome::completed;
    co_return node.id + 1;
  }
  std::vector<long long> values(node.children.size());
  if (node.kind == Node::Kind::gather) {
    std::vector<gb::Task<long long>> tasks;
    for (const Node& child : node.children) tasks.push_back(run_node(world, child));
    values = co_await gb::gather(std::move(tasks));
  } else {
    gb::TaskGroup group;
    for (std::size_t i = 0; i < node.children.size(); ++i) group.spawn(run_into(world, node.children[i], values[i]));
    co_await group.join();
  }
  co_return std::accumulate(values.begin(), values.end(), 0LL);
}

}  // namespace

TEST(NestedStress, gathers_and_groups_four_deep_with_random_failures_end_every_child_once_and_rethrow_the_first) {
  int runs_with_failure = 0;
  int runs_without_failure = 0;
  for (unsigned seed = 1; seed <= 60; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937 random{seed};
    int node_count = 0;
    Node root = build_tree(random, 0, node_count, /*spine=*/true);
    std::vector<Node*> leaves;
    collect_leaves(root, leaves);

    // Distinct delays, and failures with a probability that varies between runs.
    std::vector<long long> pool(leaves.size() * 3);
    std::iota(pool.begin(), pool.end(), 1LL);
    std::shuffle(pool.begin(), pool.end(), random);
    const int failure_percent = std::vector<int>{0, 1, 3, 10}[seed % 4];
    std::uniform_int_distribution<int> percent{0, 99};
    for (std::size_t i = 0; i < leaves.size(); ++i) {
      leaves[i]->delay_ms = pool[i];
      leaves[i]->fails = percent(random) < failure_percent;
    }

    // What must happen: the earliest failing leaf (if any) fails everything at its time;
    // leaves due before it complete, leaves due after it are cancelled.
    const Node* first_failure = nullptr;
    long long expected_sum = 0;
    long long last_delay = 0;
    for (const Node* leaf : leaves) {
      expected_sum += leaf->id + 1;
      last_delay = std::max(last_delay, leaf->delay_ms);
      if (leaf->fails && (!first_failure || leaf->delay_ms < first_failure->delay_ms)) first_failure = leaf;
    }
    const long long end_ms = first_failure ? first_failure->delay_ms : last_delay;

    StressWorld world;
    world.started.assign(node_count, 0);
    world.ended.assign(node_count, 0);
    world.outcome.assign(node_count, Outcome::none);
    gb::ManualClock clock;
    const auto start = clock.now();
    gb::Loop loop{{.clock = &clock, .auto_advance = true, .on_unhandled_exception = [&](std::exception_ptr) {
                     ++world.unhandled;
                   }}};
    std::string outcome;
    long long sum = -1;
    try {
      sum = loop.run(run_node(world, root));
      outcome = "value";
    } catch (const LeafFailure& failure) {
      outcome = "leaf " + std::to_string(failure.id);
    } catch (const std::exception& e) {
      outcome = std::string("unexpected: ") + e.what();
    }

    if (first_failure) {
      ++runs_with_failure;
      EXPECT_EQ(outcome, "leaf " + std::to_string(first_failure->id));
    } else {
      ++runs_without_failure;
      EXPECT_EQ(outcome, "value");
      EXPECT_EQ(sum, expected_sum);
    }
    EXPECT_EQ(clock.now() - start, milliseconds(end_ms));
    EXPECT_EQ(loop.live_tasks(), 0u);
    EXPECT_EQ(world.unhandled, 0);
    EXPECT_EQ(world.life.constructed, node_count);
    EXPECT_EQ(world.life.destroyed, node_count);
    for (int id = 0; id < node_count; ++id) {
      EXPECT_EQ(world.started[id], 1) << "node " << id;
      EXPECT_EQ(world.ended[id], 1) << "node " << id;
    }
    for (const Node* leaf : leaves) {
      const Outcome expected = leaf->delay_ms < end_ms    ? Outcome::completed
                               : leaf == first_failure     ? Outcome::failed
                               : leaf->delay_ms == end_ms ? Outcome::completed  // the last one, no failure
                                                          : Outcome::cancelled;
      EXPECT_EQ(world.outcome[leaf->id], expected) << "leaf " << leaf->id << " due at " << leaf->delay_ms;
    }
  }
  EXPECT_GT(runs_with_failure, 0);
  EXPECT_GT(runs_without_failure, 0);
}
