// A stress test of TaskGroup (include/gearbox/task_group.hpp) and gather
// (include/gearbox/combinators.hpp) together: trees of gathers and groups nested four
// deep, with failures injected at random, must end every child once and rethrow the first
// failure. The other tests of TaskGroup are in task_group_test.
//
// As in the combinators' tests: a manual clock that jumps to the next timer whenever every
// task waits, and lifetime counters held by the children to prove their frames were
// destroyed once.
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

#include "support/lifetimes.hpp"

namespace gb = gearbox;
using namespace std::chrono_literals;
using std::chrono::milliseconds;

// ---- stress: gathers and groups nested four deep, failures injected at random ----

namespace {

using gearbox_test::Lifetimes;
using gearbox_test::Tracked;

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
