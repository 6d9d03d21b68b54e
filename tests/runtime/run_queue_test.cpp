// RunQueue (src/runtime/run_queue.hpp): a Runtime worker's local queue. Its owner sees
// FIFO order; a thief takes half at a time; under concurrent stealing every task pushed is
// returned exactly once.
#include "runtime/run_queue.hpp"

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace {

using gearbox::detail::Runnable;
using gearbox::detail::RunQueue;

// Runnables that are never run: the tests only move them between queues.
struct Item : Runnable {
  Item() : Runnable([](Runnable*) noexcept {}) {}
  int id = 0;
};

std::vector<Item> make_items(int n) {
  std::vector<Item> items(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) items[static_cast<std::size_t>(i)].id = i;
  return items;
}

int id_of(Runnable* r) { return static_cast<Item*>(r)->id; }

TEST(RunQueue, the_owner_takes_tasks_in_the_order_it_pushed_them) {
  RunQueue queue;
  auto items = make_items(5);
  for (auto& item : items) ASSERT_TRUE(queue.push_back(&item));
  EXPECT_EQ(queue.size_hint(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(id_of(queue.pop()), i);
  EXPECT_EQ(queue.pop(), nullptr);
}

TEST(RunQueue, a_full_queue_refuses_a_push_and_keeps_what_it_holds) {
  RunQueue queue;
  auto items = make_items(static_cast<int>(RunQueue::k_capacity) + 1);
  for (std::uint64_t i = 0; i < RunQueue::k_capacity; ++i) ASSERT_TRUE(queue.push_back(&items[i]));
  EXPECT_FALSE(queue.push_back(&items.back()));
  EXPECT_EQ(queue.size_hint(), RunQueue::k_capacity);
  EXPECT_EQ(id_of(queue.pop()), 0);
  EXPECT_TRUE(queue.push_back(&items.back()));  // a pop made room
}

TEST(RunQueue, the_ring_wraps_around_many_times_in_order) {
  RunQueue queue;
  auto items = make_items(1000);
  int next_out = 0;
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(queue.push_back(&items[static_cast<std::size_t>(i)]));
    if (i % 4 != 0) {  // the queue grows by one in four: 250 at most
      EXPECT_EQ(id_of(queue.pop()), next_out++);
    }
  }
  while (Runnable* r = queue.pop()) EXPECT_EQ(id_of(r), next_out++);
  EXPECT_EQ(next_out, 1000);
}

TEST(RunQueue, a_thief_takes_the_older_half_rounded_up_and_runs_the_last_it_took) {
  RunQueue victim;
  RunQueue thief;
  auto items = make_items(5);
  for (auto& item : items) ASSERT_TRUE(victim.push_back(&item));
  std::uint64_t moved = 0;
  Runnable* run_now = victim.steal_into(thief, &moved);
  ASSERT_NE(run_now, nullptr);
  EXPECT_EQ(moved, 3u);
  EXPECT_EQ(id_of(run_now), 2);
  EXPECT_EQ(id_of(thief.pop()), 0);
  EXPECT_EQ(id_of(thief.pop()), 1);
  EXPECT_EQ(thief.pop(), nullptr);
  EXPECT_EQ(id_of(victim.pop()), 3);
  EXPECT_EQ(id_of(victim.pop()), 4);
}

TEST(RunQueue, stealing_from_an_empty_queue_takes_nothing) {
  RunQueue victim;
  RunQueue thief;
  EXPECT_EQ(victim.steal_into(thief), nullptr);
  EXPECT_EQ(thief.size_hint(), 0u);
}

TEST(RunQueue, a_thief_takes_no_more_than_it_has_room_for) {
  RunQueue victim;
  RunQueue thief;
  auto items = make_items(static_cast<int>(RunQueue::k_capacity) * 2);
  for (std::uint64_t i = 0; i < RunQueue::k_capacity; ++i) ASSERT_TRUE(victim.push_back(&items[i]));
  for (std::uint64_t i = 0; i < RunQueue::k_capacity - 2; ++i) ASSERT_TRUE(thief.push_back(&items[RunQueue::k_capacity + i]));
  std::uint64_t moved = 0;
  ASSERT_NE(victim.steal_into(thief, &moved), nullptr);
  EXPECT_EQ(moved, 2u);  // one queued, one returned to run: the thief's queue is full now
  EXPECT_EQ(thief.size_hint(), RunQueue::k_capacity - 1);
  EXPECT_EQ(victim.size_hint(), RunQueue::k_capacity - 2);
}

// The owner pushes and pops while thieves steal into queues of their own and drain them:
// every task is taken exactly once, whatever the interleaving.
class RunQueueStress : public testing::TestWithParam<int> {};

TEST_P(RunQueueStress, every_task_is_taken_exactly_once) {
  const int thieves = GetParam();
  constexpr int k_tasks = 100'000;
  auto items = make_items(k_tasks);
  std::vector<std::atomic<int>> taken(k_tasks);
  RunQueue victim;
  std::atomic<bool> done{false};
  auto take = [&](Runnable* r) { taken[static_cast<std::size_t>(id_of(r))].fetch_add(1, std::memory_order_relaxed); };

  std::vector<std::thread> threads;
  for (int t = 0; t < thieves; ++t) {
    threads.emplace_back([&] {
      RunQueue own;
      while (!done.load(std::memory_order_acquire)) {
        if (Runnable* r = victim.steal_into(own)) {
          take(r);
          while (Runnable* mine = own.pop()) take(mine);
        }
      }
      while (Runnable* r = victim.steal_into(own)) {
        take(r);
        while (Runnable* mine = own.pop()) take(mine);
      }
    });
  }
  int pushed = 0;
  while (pushed < k_tasks) {
    // Bursts of pushes, then a pop: the owner and the thieves meet at both ends.
    for (int burst = 0; burst < 7 && pushed < k_tasks; ++burst) {
      if (!victim.push_back(&items[static_cast<std::size_t>(pushed)])) break;
      ++pushed;
    }
    if (Runnable* r = victim.pop()) take(r);
  }
  while (Runnable* r = victim.pop()) take(r);
  done.store(true, std::memory_order_release);
  for (auto& thread : threads) thread.join();

  int missing = 0;
  int twice = 0;
  for (auto& count : taken) {
    if (count.load() == 0) ++missing;
    if (count.load() > 1) ++twice;
  }
  EXPECT_EQ(missing, 0);
  EXPECT_EQ(twice, 0);
}

INSTANTIATE_TEST_SUITE_P(Thieves, RunQueueStress, testing::Values(1, 2, 4),
                         [](const auto& info) { return "thieves_" + std::to_string(info.param); });

}  // namespace
