// gather, when_any, as_completed and TaskGroup on gb::Runtime: the children end on any
// worker and tell their parent from there. Outcomes only, never timings, over 1, 2, 4 and
// 8 workers: every result arrives once, a failure cancels the siblings and is rethrown
// once they have ended, a cancelled parent returns only after all of its children have
// ended (structured: none left running), and nothing leaks (ASan) or races (TSan).
#include <gearbox/runtime.hpp>

#include <atomic>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include <gearbox/combinators.hpp>
#include <gearbox/error.hpp>
#include <gearbox/join_handle.hpp>
#include <gearbox/spawn.hpp>
#include <gearbox/sync/event.hpp>
#include <gearbox/task.hpp>
#include <gearbox/task_group.hpp>
#include <gearbox/time.hpp>

#include <gtest/gtest.h>

#include "support/runtime_threads.hpp"

namespace gb = gearbox;

namespace {

class RuntimeCombinators : public gearbox_test::OnRuntimeThreads {};

// Children in flight right now, and the most ever seen.
struct Census {
  std::atomic<int> running{0};
  std::atomic<int> started{0};
  std::atomic<int> ended{0};
};

struct Counted {
  explicit Counted(Census& census) : m_census(&census) {
    census.running.fetch_add(1, std::memory_order_relaxed);
    census.started.fetch_add(1, std::memory_order_relaxed);
  }
  Counted(const Counted&) = delete;
  Counted& operator=(const Counted&) = delete;
  ~Counted() {
    m_census->running.fetch_sub(1, std::memory_order_relaxed);
    m_census->ended.fetch_add(1, std::memory_order_relaxed);
  }
  Census* m_census;
};

gb::Task<int> yield_then_return(int value, int yields) {
  for (int i = 0; i < yields; ++i) co_await gb::yield_now();
  co_return value;
}

gb::Task<long> gather_many(int children) {
  std::vector<gb::Task<int>> tasks;
  for (int i = 0; i < children; ++i) tasks.push_back(yield_then_return(i, i % 4));
  long sum = 0;
  const std::vector<int> results = co_await gb::gather(std::move(tasks));
  for (std::size_t i = 0; i < results.size(); ++i) {
    if (results[i] != static_cast<int>(i)) co_return -1;  // results keep the children's order
    sum += results[i];
  }
  co_return sum;
}

TEST_P(RuntimeCombinators, gather_returns_every_result_in_order_from_children_on_every_worker) {
  EXPECT_EQ(rt.run(gather_many(2'000)), 1'999L * 2'000 / 2);
}

gb::Task<std::string> word_later() {
  co_await gb::yield_now();
  co_return std::string("seven");
}

gb::Task<std::string> mixed_gather() {
  auto [number, text] = co_await gb::gather(yield_then_return(7, 3), word_later());
  co_return std::to_string(number) + " " + text;
}

TEST_P(RuntimeCombinators, gather_of_a_tuple_of_types_returns_each_result) {
  EXPECT_EQ(rt.run(mixed_gather()), "7 seven");
}

gb::Task<std::int64_t> skynet(std::int64_t number, std::int64_t size) {
  if (size == 1) co_return number;
  std::vector<gb::Task<std::int64_t>> children;
  for (std::int64_t i = 0; i < 10; ++i) children.push_back(skynet(number + i * (size / 10), size / 10));
  std::int64_t sum = 0;
  for (std::int64_t value : co_await gb::gather(std::move(children))) sum += value;
  co_return sum;
}

TEST_P(RuntimeCombinators, a_tree_of_gathers_sums_correctly) {
  EXPECT_EQ(rt.run(skynet(0, 100'000)), std::int64_t{100'000} * 99'999 / 2);
  EXPECT_EQ(rt.live_tasks(), 0u);
}

// Loops until cancelled, holding a Counted.
gb::Task<int> run_until_cancelled(Census& census) {
  Counted alive{census};
  for (;;) co_await gb::yield_now();
}

gb::Task<int> fail_after(int yields) {
  for (int i = 0; i < yields; ++i) co_await gb::yield_now();
  throw std::runtime_error("child failed");
}

// Returns the number of children still running when gather's failure reached the parent.
gb::Task<int> gather_with_a_failure(Census& census) {
  std::vector<gb::Task<int>> tasks;
  for (int i = 0; i < 20; ++i) tasks.push_back(run_until_cancelled(census));
  tasks.push_back(fail_after(10));
  try {
    (void)co_await gb::gather(std::move(tasks));
  } catch (const std::runtime_error&) {
    co_return census.running.load();
  }
  co_return -1;
}

TEST_P(RuntimeCombinators, a_failing_child_cancels_its_siblings_and_is_rethrown_once_they_have_ended) {
  Census census;
  EXPECT_EQ(rt.run(gather_with_a_failure(census)), 0);
  EXPECT_EQ(census.started.load(), 20);
  EXPECT_EQ(census.ended.load(), 20);
}

gb::Task<int> first_of(Census& census) {
  std::vector<gb::Task<int>> tasks;
  for (int i = 0; i < 10; ++i) tasks.push_back(run_until_cancelled(census));
  tasks.push_back(yield_then_return(99, 5));
  const gb::WhenAnyResult<int> first = co_await gb::when_any(std::move(tasks));
  co_return census.running.load() == 0 && first.index == 10 ? first.value : -1;
}

TEST_P(RuntimeCombinators, when_any_returns_the_first_result_after_the_losers_have_ended) {
  Census census;
  EXPECT_EQ(rt.run(first_of(census)), 99);
  EXPECT_EQ(census.ended.load(), 10);
}

gb::Task<long> consume_as_completed(int children, std::vector<int>* delivered) {
  std::vector<gb::Task<int>> tasks;
  for (int i = 0; i < children; ++i) tasks.push_back(yield_then_return(i, (i * 7) % 5));
  auto stream = gb::as_completed(std::move(tasks));
  long sum = 0;
  while (auto done = co_await stream.next()) {
    ++(*delivered)[done->index];
    sum += done->result();
  }
  co_return sum;
}

TEST_P(RuntimeCombinators, as_completed_delivers_every_child_once) {
  std::vector<int> delivered(500, 0);
  EXPECT_EQ(rt.run(consume_as_completed(500, &delivered)), 499L * 500 / 2);
  for (std::size_t i = 0; i < delivered.size(); ++i) EXPECT_EQ(delivered[i], 1) << "child " << i;
}

gb::Task<void> add_later(std::atomic<long>& total, int value) {
  co_await gb::yield_now();
  total.fetch_add(value, std::memory_order_relaxed);
}

gb::Task<void> group_of(int children, std::atomic<long>& total) {
  gb::TaskGroup group;
  for (int i = 0; i < children; ++i) group.spawn(add_later(total, i));
  co_await group.join();
}

TEST_P(RuntimeCombinators, a_task_group_joins_children_that_ran_on_every_worker) {
  std::atomic<long> total{0};
  rt.run(group_of(1'000, total));
  EXPECT_EQ(total.load(), 999L * 1'000 / 2);
}

gb::Task<int> group_with_a_failure(Census& census) {
  gb::TaskGroup group;
  for (int i = 0; i < 16; ++i) group.spawn(run_until_cancelled(census));
  group.spawn(fail_after(20));
  try {
    co_await group.join();
  } catch (const std::runtime_error&) {
    co_return census.running.load();
  }
  co_return -1;
}

TEST_P(RuntimeCombinators, a_task_group_cancels_the_siblings_of_a_failure_and_rethrows_it_after_they_end) {
  Census census;
  EXPECT_EQ(rt.run(group_with_a_failure(census)), 0);
  EXPECT_EQ(census.ended.load(), 16);
}

// The parent is cancelled from outside while its children run on other workers: gather
// must not return before every child has ended.
gb::Task<int> gather_forever(Census& census, std::atomic<bool>& waiting, std::atomic<int>& running_at_cancel) {
  std::vector<gb::Task<int>> tasks;
  for (int i = 0; i < 32; ++i) tasks.push_back(run_until_cancelled(census));
  waiting.store(true, std::memory_order_release);
  try {
    (void)co_await gb::gather(std::move(tasks));
  } catch (const gb::Cancelled&) {
    running_at_cancel.store(census.running.load());
    throw;
  }
  co_return 0;
}

gb::Task<int> cancel_a_gathering_parent(Census& census, std::atomic<int>& running_at_cancel) {
  std::atomic<bool> waiting{false};
  auto parent = gb::spawn(gather_forever(census, waiting, running_at_cancel));
  while (!waiting.load(std::memory_order_acquire)) co_await gb::yield_now();
  for (int i = 0; i < 20; ++i) co_await gb::yield_now();  // let the children spread
  parent.cancel();
  try {
    co_await parent;
  } catch (const gb::Cancelled&) {
    co_return 1;
  }
  co_return 0;
}

TEST_P(RuntimeCombinators, a_parent_cancelled_in_gather_returns_only_after_every_child_has_ended) {
  Census census;
  std::atomic<int> running_at_cancel{-1};
  EXPECT_EQ(rt.run(cancel_a_gathering_parent(census, running_at_cancel)), 1);
  EXPECT_EQ(running_at_cancel.load(), 0);
  EXPECT_EQ(census.started.load(), 32);
  EXPECT_EQ(census.ended.load(), 32);
}

// Cancels nested gathers at every point of their lives; whatever is cancelled, no task
// is left behind and every child's destructor runs.
gb::Task<int> nested(Census& census, int depth) {
  Counted alive{census};
  if (depth == 0) co_return co_await yield_then_return(1, 3);
  std::vector<gb::Task<int>> tasks;
  for (int i = 0; i < 4; ++i) tasks.push_back(nested(census, depth - 1));
  int sum = 0;
  for (int value : co_await gb::gather(std::move(tasks))) sum += value;
  co_return sum;
}

gb::Task<int> cancel_at_every_point(Census& census, int rounds) {
  int completed = 0;
  for (int round = 0; round < rounds; ++round) {
    auto tree = gb::spawn(nested(census, 3));
    for (int i = 0; i < round % 12; ++i) co_await gb::yield_now();
    tree.cancel();
    try {
      completed += (co_await tree) == 64 ? 1 : 0;
    } catch (const gb::Cancelled&) {
    }
  }
  co_return completed;
}

TEST_P(RuntimeCombinators, cancelling_nested_gathers_at_any_point_leaves_nothing_running) {
  Census census;
  (void)rt.run(cancel_at_every_point(census, 150));
  EXPECT_EQ(census.running.load(), 0);
  EXPECT_EQ(census.started.load(), census.ended.load());
  EXPECT_EQ(rt.live_tasks(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Runtime, RuntimeCombinators, gearbox_test::runtime_threads(), gearbox_test::threads_name);

}  // namespace
