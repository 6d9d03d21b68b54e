// Tests for as_completed (include/gearbox/combinators.hpp): outcomes in finishing order
// with their original index, failed children, failures nobody took, the end of the
// stream, destroying or moving the stream while its children run, and cancellation of the
// consumer inside next(). gather and when_any have files of their own (gather_test,
// when_any_test); the child tasks they share are in child_tasks.hpp.
//
// As in gather_test: the outcomes (every child delivered once with its index and its
// result or exception, the failures reported, every child's frame destroyed once) are
// asserted on both flavors (AsCompletedOnEveryFlavor), as sets where the finishing order
// would depend on timers; the event logs of the same scenarios, with the finishing order
// and exact times, are compared on the loop only (AsCompleted), on a manual clock that
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

class AsCompletedOnEveryFlavor : public EnvOnEveryFlavor {};

// Sorted: the same whatever order the children finished in.
Log sorted(Log lines) {
  std::sort(lines.begin(), lines.end());
  return lines;
}

// a, b and c end at 30, 10 and 20 ms; a task spawned before runs meanwhile. What was
// delivered, in delivery order ("index <i> value <v>").
gb::Task<Log> take_three_as_completed(Env& env) {
  auto other = gb::spawn(noter(env, "scheduled task runs"));
  std::vector<gb::Task<int>> tasks;
  tasks.push_back(sleeper(env, "a", 30ms, 0));
  tasks.push_back(sleeper(env, "b", 10ms, 10));
  tasks.push_back(sleeper(env, "c", 20ms, 20));
  auto stream = gb::as_completed(std::move(tasks));  // the children start here, eagerly
  Log delivered{"size " + std::to_string(stream.size())};
  while (auto done = co_await stream.next()) {
    delivered.push_back("index " + std::to_string(done->index) + " value " + std::to_string(done->result()));
    env.note("got " + delivered.back());
  }
  env.note("stream ended " + env.state());
  co_await other;
  co_return delivered;
}

// a ends at 20 ms, b fails at 10 ms: what was delivered, in delivery order.
gb::Task<Log> take_a_failure_as_completed(Env& env) {
  std::vector<gb::Task<int>> tasks;
  tasks.push_back(sleeper(env, "a", 20ms, 5));
  tasks.push_back(failer(env, "b", 10ms));
  auto stream = gb::as_completed(std::move(tasks));
  Log delivered;
  while (auto done = co_await stream.next()) {
    try {
      delivered.push_back("index " + std::to_string(done->index) + " value " + std::to_string(done->result()));
      env.note("got " + delivered.back());
    } catch (const Failure& failure) {
      delivered.push_back("index " + std::to_string(done->index) + " threw " + failure.what());
      env.note(delivered.back());
    }
  }
  co_return delivered;
}

// a fails at 10 ms; its outcome is delivered but nobody takes its result.
gb::Task<void> leave_a_failure_untaken(Env& env) {
  std::vector<gb::Task<int>> tasks;
  tasks.push_back(failer(env, "a", 10ms));
  auto stream = gb::as_completed(std::move(tasks));
  while (auto done = co_await stream.next()) env.note("got index " + std::to_string(done->index));
}

// Whether each of three next() on a stream of one child (10 ms) gave a child.
gb::Task<std::vector<bool>> call_next_past_the_end(Env& env) {
  std::vector<gb::Task<int>> tasks;
  tasks.push_back(sleeper(env, "a", 10ms, 1));
  auto stream = gb::as_completed(std::move(tasks));
  std::vector<bool> got;
  for (int i = 0; i < 3; ++i) got.push_back((co_await stream.next()).has_value());
  co_return got;
}

// Takes b (10 ms), then destroys the stream while a and c would sleep on: the index taken.
gb::Task<std::size_t> destroy_the_stream_early(Env& env) {
  std::size_t index = 99;
  {
    std::vector<gb::Task<int>> tasks;
    tasks.push_back(sleeper(env, "a", k_never, 0));
    tasks.push_back(sleeper(env, "b", 10ms, 1));
    tasks.push_back(sleeper(env, "c", k_never, 2));
    auto stream = gb::as_completed(std::move(tasks));
    auto done = co_await stream.next();
    index = done ? done->index : 98;
    env.note("got index " + std::to_string(index));
  }
  env.note("stream destroyed " + env.state());
  co_await gb::yield_now();  // on the loop: the cancelled children run first, then we resume
  env.note("after a turn " + env.state());
  co_return index;
}

// a and b end at 20 and 10 ms; the stream is moved before the first next(). The indexes
// delivered, in delivery order.
gb::Task<std::vector<std::size_t>> move_the_stream(Env& env) {
  std::vector<gb::Task<int>> tasks;
  tasks.push_back(sleeper(env, "a", 20ms, 0));
  tasks.push_back(sleeper(env, "b", 10ms, 1));
  auto stream = gb::as_completed(std::move(tasks));
  auto moved = std::move(stream);
  std::vector<std::size_t> order;
  while (auto done = co_await moved.next()) order.push_back(done->index);
  co_return order;
}

gb::Task<void> consumer_of_stream(Env& env) {
  std::vector<gb::Task<int>> tasks;
  tasks.push_back(sleeper(env, "a", k_never, 0));
  tasks.push_back(sleeper(env, "b", k_never, 1));
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

INSTANTIATE_TEST_SUITE_P(AsCompleted, AsCompletedOnEveryFlavor, gearbox_test::every_flavor(), gearbox_test::flavor_name);

// ---- as_completed ----

TEST_P(AsCompletedOnEveryFlavor, yields_every_outcome_once_with_its_original_index) {
  EXPECT_EQ(sorted(env.run(take_three_as_completed(env))),
            (Log{"index 0 value 0", "index 1 value 10", "index 2 value 20", "size 3"}));
  EXPECT_EQ(env.life.destroyed, 3);
}

TEST(AsCompleted, yields_outcomes_in_finishing_order_with_their_original_index) {
  Env env;
  EXPECT_EQ(env.run(take_three_as_completed(env)),
            (Log{"size 3", "index 1 value 10", "index 2 value 20", "index 0 value 0"}));
  EXPECT_EQ(env.log, (Log{"a start @0", "b start @0", "c start @0", "scheduled task runs @0", "b end @10",
                          "got index 1 value 10 @10", "c end @20", "got index 2 value 20 @20", "a end @30",
                          "got index 0 value 0 @30", "stream ended (live 1, alive 0) @30"}));
}

TEST_P(AsCompletedOnEveryFlavor, result_rethrows_the_exception_of_a_failed_child_and_the_others_go_on) {
  EXPECT_EQ(sorted(env.run(take_a_failure_as_completed(env))), (Log{"index 0 value 5", "index 1 threw b"}));
  EXPECT_EQ(env.unhandled, Log{});  // b's failure was observed through result()
}

TEST(AsCompleted, result_rethrows_the_exception_of_a_failed_child_and_the_others_go_on) {
  EXPECT_EQ(log_on_the_loop(take_a_failure_as_completed),
            (Log{"a start @0", "b start @0", "b throws @10", "index 1 threw b @10", "a end @20",
                 "got index 0 value 5 @20"}));
}

TEST_P(AsCompletedOnEveryFlavor, a_failure_whose_result_nobody_took_is_reported) {
  env.run(leave_a_failure_untaken(env));
  EXPECT_TRUE(env.noted("got index 0"));
  EXPECT_EQ(env.unhandled, Log{"a"});
}

TEST(AsCompleted, a_failure_whose_result_nobody_took_is_reported) {
  EXPECT_EQ(log_on_the_loop(leave_a_failure_untaken),
            (Log{"a start @0", "a throws @10", "got index 0 @10"}));
}

TEST_P(AsCompletedOnEveryFlavor, next_gives_nullopt_once_every_child_was_delivered_and_again_after_that) {
  EXPECT_EQ(env.run(call_next_past_the_end(env)), (std::vector<bool>{true, false, false}));
}

TEST(AsCompleted, next_gives_nullopt_as_soon_as_the_last_child_was_delivered) {
  Env env;
  env.run(call_next_past_the_end(env));
  EXPECT_EQ(env.clock.now() - env.start, 10ms);
}

TEST_P(AsCompletedOnEveryFlavor, an_empty_range_gives_nullopt_at_once) {
  EXPECT_EQ(env.run([]() -> gb::Task<bool> {
    std::vector<gb::Task<int>> none;
    auto stream = gb::as_completed(std::move(none));
    co_return (co_await stream.next()).has_value();
  }()), false);
}

TEST_P(AsCompletedOnEveryFlavor, destroying_the_stream_early_cancels_the_children_not_yet_finished) {
  EXPECT_EQ(env.run(destroy_the_stream_early(env)), 1u);
  expect_each_child_destroyed_once(env, 3);
  EXPECT_EQ(env.unhandled, Log{});
}

TEST(AsCompleted, destroying_the_stream_early_cancels_the_children_not_yet_finished) {
  Env env;
  env.run(destroy_the_stream_early(env));
  EXPECT_EQ(env.log, (Log{"a start @0", "b start @0", "c start @0", "b end @10", "got index 1 @10",
                          "stream destroyed (live 3, alive 2) @10", "a cancelled @10", "c cancelled @10",
                          "after a turn (live 1, alive 0) @10"}));
  EXPECT_EQ(env.loop.live_tasks(), 0u);
}

TEST_P(AsCompletedOnEveryFlavor, a_stream_can_be_moved_while_its_children_run) {
  std::vector<std::size_t> order = env.run(move_the_stream(env));
  std::sort(order.begin(), order.end());
  EXPECT_EQ(order, (std::vector<std::size_t>{0, 1}));
  EXPECT_EQ(env.life.destroyed, 2);
}

TEST(AsCompleted, a_moved_stream_delivers_in_finishing_order) {
  Env env;
  EXPECT_EQ(env.run(move_the_stream(env)), (std::vector<std::size_t>{1, 0}));
}

TEST_P(AsCompletedOnEveryFlavor, cancelling_the_consumer_inside_next_throws_cancelled_there_and_the_stream_then_cancels_the_children) {
  // The stream cancels its children as it is destroyed but does not wait for them: on the
  // runtime they may still be ending when the consumer has ended.
  EXPECT_TRUE(env.run(cancel_after_a_while(env, consumer_of_stream(env))).starts_with("parent ended Cancelled"));
  EXPECT_TRUE(env.noted("next threw Cancelled"));
  EXPECT_EQ(env.unhandled, Log{});
  EXPECT_EQ(env.life.destroyed, 2);  // once the engine is gone
}

TEST(AsCompleted, cancelling_the_consumer_inside_next_throws_cancelled_there_and_the_stream_then_cancels_the_children) {
  // live 4: root, consumer, a and b.
  EXPECT_EQ(log_on_the_loop([](Env& env) { return cancel_after_a_while(env, consumer_of_stream(env)); }),
            (Log{"a start @0", "b start @0", "cancel parent @10", "next threw Cancelled (live 4, alive 2) @10",
                 "a cancelled @10", "b cancelled @10", "parent ended Cancelled (live 1, alive 0) @10"}));
}
