// Tests for as_completed (include/gearbox/combinators.hpp): outcomes in finishing order
// with their original index, failed children, failures nobody took, the end of the
// stream, destroying or moving the stream while its children run, and cancellation of the
// consumer inside next(). gather and when_any have files of their own (gather_test,
// when_any_test); the child tasks they share are in combinators_test_support.hpp.
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

}  // namespace

// ---- as_completed ----

TEST(AsCompleted, yields_outcomes_in_finishing_order_with_their_original_index) {
  Env env;
  std::size_t size = 0;
  env.loop.run([&]() -> gb::Task<void> {
    auto other = gb::spawn(noter(env, "scheduled task runs"));
    std::vector<gb::Task<int>> tasks;
    tasks.push_back(sleeper(env, "a", 3000ms, 0));
    tasks.push_back(sleeper(env, "b", 1000ms, 10));
    tasks.push_back(sleeper(env, "c", 2000ms, 20));
    auto stream = gb::as_completed(std::move(tasks));  // the children start here, eagerly
    size = stream.size();
    while (auto done = co_await stream.next())
      env.note("got index " + std::to_string(done->index) + " value " + std::to_string(done->result()));
    env.note("stream ended " + env.state());
    co_await other;
  }());
  EXPECT_EQ(size, 3u);
  EXPECT_EQ(env.log, (Log{"a start @0", "b start @0", "c start @0", "scheduled task runs @0", "b end @1000", "got index 1 value 10 @1000",
                          "c end @2000", "got index 2 value 20 @2000", "a end @3000", "got index 0 value 0 @3000",
                          "stream ended (live 1, alive 0) @3000"}));
}

TEST(AsCompleted, result_rethrows_the_exception_of_a_failed_child_and_the_others_go_on) {
  Env env;
  env.loop.run([&]() -> gb::Task<void> {
    std::vector<gb::Task<int>> tasks;
    tasks.push_back(sleeper(env, "a", 2000ms, 5));
    tasks.push_back(failer(env, "b", 1000ms));
    auto stream = gb::as_completed(std::move(tasks));
    while (auto done = co_await stream.next()) {
      try {
        env.note("got index " + std::to_string(done->index) + " value " + std::to_string(done->result()));
      } catch (const Failure& failure) {
        env.note("index " + std::to_string(done->index) + " threw " + failure.what());
      }
    }
  }());
  EXPECT_EQ(env.log, (Log{"a start @0", "b start @0", "b throws @1000", "index 1 threw b @1000", "a end @2000",
                          "got index 0 value 5 @2000"}));
  EXPECT_EQ(env.unhandled, Log{});  // b's failure was observed through result()
}

TEST(AsCompleted, a_failure_whose_result_nobody_took_is_reported) {
  Env env;
  env.loop.run([&]() -> gb::Task<void> {
    std::vector<gb::Task<int>> tasks;
    tasks.push_back(failer(env, "a", 1000ms));
    auto stream = gb::as_completed(std::move(tasks));
    while (auto done = co_await stream.next()) env.note("got index " + std::to_string(done->index));
  }());
  EXPECT_EQ(env.log, (Log{"a start @0", "a throws @1000", "got index 0 @1000"}));
  EXPECT_EQ(env.unhandled, Log{"a"});
}

TEST(AsCompleted, next_gives_nullopt_once_every_child_was_delivered_and_again_after_that) {
  Env env;
  std::vector<bool> got;
  env.loop.run([&]() -> gb::Task<void> {
    std::vector<gb::Task<int>> tasks;
    tasks.push_back(sleeper(env, "a", 1000ms, 1));
    auto stream = gb::as_completed(std::move(tasks));
    for (int i = 0; i < 3; ++i) got.push_back((co_await stream.next()).has_value());
  }());
  EXPECT_EQ(got, (std::vector<bool>{true, false, false}));
  EXPECT_EQ(env.clock.now() - env.start, 1s);
}

TEST(AsCompleted, an_empty_range_gives_nullopt_at_once) {
  Env env;
  std::optional<bool> got;
  env.loop.run([&]() -> gb::Task<void> {
    auto stream = gb::as_completed(std::vector<gb::Task<int>>{});
    got = (co_await stream.next()).has_value();
  }());
  EXPECT_EQ(got, std::optional<bool>{false});
}

TEST(AsCompleted, destroying_the_stream_early_cancels_the_children_not_yet_finished) {
  Env env;
  env.loop.run([&]() -> gb::Task<void> {
    {
      std::vector<gb::Task<int>> tasks;
      tasks.push_back(sleeper(env, "a", 3000ms, 0));
      tasks.push_back(sleeper(env, "b", 1000ms, 1));
      tasks.push_back(sleeper(env, "c", 2000ms, 2));
      auto stream = gb::as_completed(std::move(tasks));
      auto done = co_await stream.next();
      env.note("got index " + std::to_string(done->index));
    }
    env.note("stream destroyed " + env.state());
    co_await gb::yield_now();  // the cancelled children run first, then we resume
    env.note("after a turn " + env.state());
  }());
  EXPECT_EQ(env.log, (Log{"a start @0", "b start @0", "c start @0", "b end @1000", "got index 1 @1000",
                          "stream destroyed (live 3, alive 2) @1000", "a cancelled @1000", "c cancelled @1000",
                          "after a turn (live 1, alive 0) @1000"}));
  EXPECT_EQ(env.unhandled, Log{});
  EXPECT_EQ(env.loop.live_tasks(), 0u);
}

TEST(AsCompleted, a_stream_can_be_moved_while_its_children_run) {
  Env env;
  std::vector<std::size_t> order;
  env.loop.run([&]() -> gb::Task<void> {
    std::vector<gb::Task<int>> tasks;
    tasks.push_back(sleeper(env, "a", 2000ms, 0));
    tasks.push_back(sleeper(env, "b", 1000ms, 1));
    auto stream = gb::as_completed(std::move(tasks));
    auto moved = std::move(stream);
    while (auto done = co_await moved.next()) order.push_back(done->index);
  }());
  EXPECT_EQ(order, (std::vector<std::size_t>{1, 0}));
  EXPECT_EQ(env.life.destroyed, 2);
}

namespace {
gb::Task<void> consumer_of_stream(Env& env) {
  std::vector<gb::Task<int>> tasks;
  tasks.push_back(sleeper(env, "a", 5000ms, 0));
  tasks.push_back(sleeper(env, "b", 10000ms, 1));
  auto stream = gb::as_completed(std::move(tasks));
  try {
    co_await stream.next();
    env.note("next returned");
  } catch (const gb::Cancelled&) {
    env.note("next threw Cancelled " + env.state());  // the children still run
    throw;  // destroys the stream, which cancels them
  }
}
}  // namespace

TEST(AsCompleted, cancelling_the_consumer_inside_next_throws_cancelled_there_and_the_stream_then_cancels_the_children) {
  Env env;
  env.loop.run([&]() -> gb::Task<void> {
    auto consumer = gb::spawn(consumer_of_stream(env));
    co_await gb::sleep_for(1s);
    consumer.cancel();
    try {
      co_await consumer;
      env.note("consumer returned");
    } catch (const gb::Cancelled&) {
      env.note("consumer ended Cancelled " + env.state());
    }
  }());
  // live 4: root, consumer, a and b.
  EXPECT_EQ(env.log, (Log{"a start @0", "b start @0", "next threw Cancelled (live 4, alive 2) @1000",
                          "a cancelled @1000", "b cancelled @1000", "consumer ended Cancelled (live 1, alive 0) @1000"}));
  EXPECT_EQ(env.unhandled, Log{});
}
