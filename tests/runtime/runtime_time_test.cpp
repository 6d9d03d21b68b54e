// timeout() on gb::Runtime: the limit is a SharedDeadline (a timer armed on the caller's
// worker that may be disarmed from another, as the caller may resume there), so these tests check what
// users see: a result in time, TimeoutError after the child has ended, Cancelled for a
// cancelled caller, and nothing left behind (live tasks, destructors), over 1, 2, 4 and 8
// workers. Outcomes only: the limits are either far above or far below the work.
#include <gearbox/runtime.hpp>

#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <gearbox/error.hpp>
#include <gearbox/join_handle.hpp>
#include <gearbox/spawn.hpp>
#include <gearbox/sync/channel.hpp>
#include <gearbox/task.hpp>
#include <gearbox/time.hpp>

#include <gtest/gtest.h>

#include "support/runtime_threads.hpp"

namespace gb = gearbox;
using namespace std::chrono_literals;

namespace {

class RuntimeTime : public gearbox_test::OnRuntimeThreads {};

struct Alive {
  explicit Alive(std::atomic<int>& count) : m_count(&count) { count.fetch_add(1); }
  Alive(const Alive&) = delete;
  Alive& operator=(const Alive&) = delete;
  ~Alive() { m_count->fetch_sub(1); }
  std::atomic<int>* m_count;
};

gb::Task<int> quick(int value) {
  co_await gb::yield_now();
  co_return value;
}

gb::Task<int> forever(std::atomic<int>& alive) {
  Alive guard{alive};
  co_await gb::sleep_for(1h);
  co_return -1;
}

gb::Task<int> quick_under_a_generous_limit() { co_return co_await gb::timeout(1h, quick(5)); }

TEST_P(RuntimeTime, a_child_that_ends_in_time_returns_its_result) {
  EXPECT_EQ(rt.run(quick_under_a_generous_limit()), 5);
  EXPECT_EQ(rt.live_tasks(), 0u);
}

gb::Task<std::string> slow_under_a_short_limit(std::atomic<int>& alive, std::atomic<int>& alive_at_timeout) {
  try {
    (void)co_await gb::timeout(5ms, forever(alive));
  } catch (const gb::TimeoutError&) {
    alive_at_timeout.store(alive.load());
    co_return "timed out";
  }
  co_return "returned";
}

TEST_P(RuntimeTime, a_child_past_its_limit_is_cancelled_and_has_ended_when_timeout_error_is_thrown) {
  std::atomic<int> alive{0};
  std::atomic<int> alive_at_timeout{-1};
  EXPECT_EQ(rt.run(slow_under_a_short_limit(alive, alive_at_timeout)), "timed out");
  EXPECT_EQ(alive_at_timeout.load(), 0);
  EXPECT_EQ(rt.live_tasks(), 0u);
}

gb::Task<int> wait_in_timeout(std::atomic<int>& alive, std::atomic<bool>& waiting) {
  waiting.store(true, std::memory_order_release);
  co_return co_await gb::timeout(1h, forever(alive));
}

gb::Task<int> cancel_a_caller_in_timeout(std::atomic<int>& alive) {
  std::atomic<bool> waiting{false};
  auto caller = gb::spawn(wait_in_timeout(alive, waiting));
  while (!waiting.load(std::memory_order_acquire)) co_await gb::yield_now();
  co_await gb::sleep_for(1ms);
  caller.cancel();
  try {
    co_await caller;
  } catch (const gb::Cancelled&) {
    co_return alive.load() == 0 ? 1 : 2;
  }
  co_return 0;
}

TEST_P(RuntimeTime, cancelling_the_caller_cancels_the_child_and_disarms_its_limit) {
  std::atomic<int> alive{0};
  EXPECT_EQ(rt.run(cancel_a_caller_in_timeout(alive)), 1);
  EXPECT_EQ(rt.live_tasks(), 0u);
}

gb::Task<std::optional<int>> receive_with_a_limit(gb::Channel<int>& channel) {
  co_return co_await gb::timeout(5ms, channel.receive());
}

gb::Task<std::string> time_out_a_receive(gb::Channel<int>& channel) {
  try {
    (void)co_await receive_with_a_limit(channel);
  } catch (const gb::TimeoutError&) {
    co_return "timed out";
  }
  co_return "received";
}

TEST_P(RuntimeTime, a_receive_can_be_given_a_timeout_and_the_channel_stays_intact) {
  gb::Channel<int> channel{1};
  EXPECT_EQ(rt.run(time_out_a_receive(channel)), "timed out");
  EXPECT_TRUE(channel.try_send(3));  // no receiver left behind
  EXPECT_EQ(channel.try_receive(), 3);
}

// Many timeouts whose limits and work end at about the same time: each either returns the
// value or throws TimeoutError, and nothing is left behind either way.
gb::Task<int> finish_around(std::chrono::milliseconds work, std::atomic<int>& alive) {
  Alive guard{alive};
  co_await gb::sleep_for(work);
  co_return 1;
}

gb::Task<int> one_race(std::chrono::milliseconds work, std::chrono::milliseconds limit, std::atomic<int>& alive) {
  try {
    co_return co_await gb::timeout(limit, finish_around(work, alive));
  } catch (const gb::TimeoutError&) {
    co_return 0;
  }
}

gb::Task<int> many_races(int count, std::atomic<int>& alive) {
  std::vector<gb::JoinHandle<int>> races;
  for (int i = 0; i < count; ++i)
    races.push_back(gb::spawn(one_race(std::chrono::milliseconds(1 + i % 3), std::chrono::milliseconds(1 + (i / 3) % 3), alive)));
  int outcomes = 0;
  for (auto& race : races) outcomes += (co_await race) >= 0 ? 1 : 0;
  co_return outcomes;
}

TEST_P(RuntimeTime, timeouts_racing_their_childs_end_always_give_one_outcome_and_leave_nothing) {
  std::atomic<int> alive{0};
  EXPECT_EQ(rt.run(many_races(300, alive)), 300);
  EXPECT_EQ(alive.load(), 0);
  EXPECT_EQ(rt.live_tasks(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Runtime, RuntimeTime, gearbox_test::runtime_threads(), gearbox_test::threads_name);

}  // namespace
