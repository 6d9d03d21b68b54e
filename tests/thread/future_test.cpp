// Tests of Future<T>/Promise<T> (include/gearbox/future.hpp): the kinds of result (value,
// void, reference, move-only, exception); the one-consumer rules (get takes the result;
// a second get, a second get_future, a second set are std::logic_error); wait_for; a
// broken promise (an error, never a hang); failures nobody took are reported once on
// stderr, and taken or cancelled ones are not. co_await on a future (from a task on a
// Loop, and from coroutines that are not on a loop) and the stress tests are in
// future_await_test; the helpers they share are in thread_test_support.hpp.
//
// No test sleeps to make an interleaving happen: a producer thread waits for a count that
// only the loop can advance, or for a flag the consumer sets. A hang is caught by the
// ctest timeout; a blocking get() on a result that should be there is guarded by
// wait_for(k_hang_guard), which turns a lost wake-up into a failure instead of a hang
// (the bound is never reached by a correct run; it is not a timing threshold).
#include <gearbox/future.hpp>

#include <gearbox/error.hpp>
#include <gearbox/join_handle.hpp>
#include <gearbox/loop.hpp>
#include <gearbox/spawn.hpp>
#include <gearbox/task.hpp>
#include <gearbox/thread_pool.hpp>
#include <gearbox/time.hpp>

#include <gtest/gtest.h>

#include "support/describe.hpp"
#include "support/env.hpp"
#include "support/hang_guard.hpp"
#include "support/lifetimes.hpp"
#include "thread_test_support.hpp"

#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace gb = gearbox;
using namespace std::chrono_literals;

namespace {

using gearbox_test::count_of;
using gearbox_test::Failure;
using gearbox_test::k_hang_guard;
using gearbox_test::wait_until;

}  // namespace

// ---------------------------------------------------------------------------------------
// Results of every kind, on a plain thread
// ---------------------------------------------------------------------------------------

TEST(Future, get_returns_a_value_set_on_another_thread) {
  gb::Promise<int> promise;
  gb::Future<int> future = promise.get_future();
  EXPECT_TRUE(future.valid());
  EXPECT_FALSE(future.ready());
  std::jthread producer([&] { promise.set_value(42); });
  ASSERT_TRUE(future.wait_for(k_hang_guard));
  EXPECT_TRUE(future.ready());
  EXPECT_EQ(future.get(), 42);
}

TEST(Future, a_void_promise_completes_its_future) {
  gb::Promise<void> promise;
  gb::Future<void> future = promise.get_future();
  std::jthread producer([&] { promise.set_value(); });
  ASSERT_TRUE(future.wait_for(k_hang_guard));
  EXPECT_NO_THROW(future.get());
  EXPECT_FALSE(future.valid());
}

TEST(Future, a_reference_result_refers_to_the_producers_object) {
  int target = 5;
  gb::Promise<int&> promise;
  gb::Future<int&> future = promise.get_future();
  promise.set_value(target);
  int& result = future.get();
  EXPECT_EQ(&result, &target);
  result = 9;
  EXPECT_EQ(target, 9);
}

TEST(Future, a_move_only_result_is_moved_out_to_the_consumer) {
  gb::Promise<std::unique_ptr<int>> promise;
  gb::Future<std::unique_ptr<int>> future = promise.get_future();
  auto value = std::make_unique<int>(17);
  int* const address = value.get();
  promise.set_value(std::move(value));
  std::unique_ptr<int> result = future.get();
  ASSERT_NE(result, nullptr);
  EXPECT_EQ(result.get(), address);  // moved all the way, never copied
  EXPECT_EQ(*result, 17);
}

TEST(Future, set_value_constructs_the_result_in_place_from_several_arguments) {
  gb::Promise<std::string> promise;
  gb::Future<std::string> future = promise.get_future();
  promise.set_value(3u, 'x');
  EXPECT_EQ(future.get(), "xxx");
}

TEST(Future, an_exception_set_on_another_thread_is_rethrown_by_get) {
  gb::Promise<int> promise;
  gb::Future<int> future = promise.get_future();
  std::jthread producer([&] {
    // Made before it is published (see future_await_test's exception test: a temporary
    // destroyed after set_exception races, for TSan, with the reader of its message).
    std::exception_ptr failure = std::make_exception_ptr(Failure("bad input"));
    promise.set_exception(std::move(failure));
  });
  ASSERT_TRUE(future.wait_for(k_hang_guard));
  try {
    (void)future.get();
    ADD_FAILURE() << "get() returned instead of throwing";
  } catch (const Failure& e) {
    EXPECT_STREQ(e.what(), "bad input");
  }
  EXPECT_FALSE(future.valid());  // a rethrown failure was taken too
}

TEST(Future, the_value_and_everything_written_before_it_are_visible_to_the_consumer) {
  // A plain (non-atomic) field written just before set_value: under TSan, a missing
  // release/acquire pair between producer and consumer is reported as a race.
  for (int round = 0; round < 200; ++round) {
    std::vector<int> side_data;
    gb::Promise<int> promise;
    gb::Future<int> future = promise.get_future();
    std::jthread producer([&] {
      side_data.assign(16, round);
      promise.set_value(round);
    });
    ASSERT_TRUE(future.wait_for(k_hang_guard));
    EXPECT_EQ(future.get(), round);
    ASSERT_EQ(side_data.size(), 16u);
    EXPECT_EQ(side_data.back(), round);
  }
}

// ---------------------------------------------------------------------------------------
// One consumer, one result
// ---------------------------------------------------------------------------------------

TEST(Future, get_takes_the_result_so_the_future_becomes_invalid_and_a_second_get_throws_logic_error) {
  gb::Promise<int> promise;
  gb::Future<int> future = promise.get_future();
  promise.set_value(1);
  EXPECT_EQ(future.get(), 1);
  EXPECT_FALSE(future.valid());
  EXPECT_FALSE(future.ready());
  EXPECT_THROW((void)future.get(), std::logic_error);
  EXPECT_THROW((void)future.wait_for(1ms), std::logic_error);
  EXPECT_THROW(future.wait(), std::logic_error);
}

TEST(Future, a_default_constructed_future_is_invalid_and_get_throws_logic_error) {
  gb::Future<int> future;
  EXPECT_FALSE(future.valid());
  EXPECT_FALSE(future.ready());
  EXPECT_THROW((void)future.get(), std::logic_error);
}

TEST(Future, a_moved_from_future_is_invalid_and_the_moved_to_one_gets_the_result) {
  gb::Promise<int> promise;
  gb::Future<int> first = promise.get_future();
  gb::Future<int> second = std::move(first);
  EXPECT_FALSE(first.valid());  // NOLINT(bugprone-use-after-move): the contract under test
  EXPECT_TRUE(second.valid());
  gb::Future<int> third;
  third = std::move(second);
  promise.set_value(8);
  EXPECT_THROW((void)second.get(), std::logic_error);  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(third.get(), 8);
}

TEST(Future, wait_for_times_out_on_an_unset_promise_then_succeeds_once_it_is_set) {
  gb::Promise<int> promise;
  gb::Future<int> future = promise.get_future();
  // 1 ms is only a bound on how long to wait for a result that cannot come.
  EXPECT_FALSE(future.wait_for(1ms));
  EXPECT_FALSE(future.ready());
  EXPECT_TRUE(future.valid());  // waiting does not take anything
  EXPECT_FALSE(future.wait_for(0ms));
  promise.set_value(3);
  EXPECT_TRUE(future.wait_for(1ms));
  EXPECT_TRUE(future.ready());
  EXPECT_TRUE(future.valid());
  EXPECT_EQ(future.get(), 3);
}

TEST(Future, a_thread_blocked_in_wait_for_is_woken_by_the_producer) {
  gb::Promise<int> promise;
  gb::Future<int> future = promise.get_future();
  EXPECT_FALSE(future.wait_for(1ms));  // leaves the state marked "a thread sleeps here"
  std::atomic<bool> waiting{false};
  std::jthread producer([&] {
    wait_until(waiting);
    promise.set_value(11);
  });
  waiting = true;
  ASSERT_TRUE(future.wait_for(k_hang_guard));
  EXPECT_EQ(future.get(), 11);
}

// Regression: wait_for used to overflow its deadline for "as long as it takes" limits.
TEST(Future, wait_for_with_the_longest_duration_waits_until_the_value_arrives) {
  for (int which = 0; which < 2; ++which) {
    gb::Promise<int> promise;
    gb::Future<int> future = promise.get_future();
    std::atomic<bool> waiting{false};
    std::jthread producer([&] {
      wait_until(waiting);
      promise.set_value(1);
    });
    waiting = true;
    const bool ready = which == 0 ? future.wait_for(std::chrono::hours::max())
                                  : future.wait_for(std::chrono::nanoseconds::max());
    EXPECT_TRUE(ready) << (which == 0 ? "hours::max()" : "nanoseconds::max()");
    producer.join();
    EXPECT_EQ(future.get(), 1);
  }
}

TEST(Promise, a_set_value_whose_construction_throws_leaves_the_promise_unsatisfied) {
  struct Picky {
    explicit Picky(int v) : value(v) {
      if (v < 0) throw std::invalid_argument("negative");
    }
    int value;
  };
  gb::Future<Picky> future;
  {
    gb::Promise<Picky> promise;
    future = promise.get_future();
    EXPECT_THROW(promise.set_value(-1), std::invalid_argument);
    EXPECT_FALSE(future.ready());
    promise.set_value(2);  // still unsatisfied: a second try is allowed
  }
  ASSERT_TRUE(future.ready());
  EXPECT_EQ(future.get().value, 2);

  gb::Future<Picky> broken;
  {
    gb::Promise<Picky> promise;
    broken = promise.get_future();
    EXPECT_THROW(promise.set_value(-1), std::invalid_argument);
  }  // destroyed unsatisfied: broken, not a hang
  ASSERT_TRUE(broken.ready());
  EXPECT_THROW((void)broken.get(), gb::BrokenPromise);
}

TEST(Promise, setting_a_result_twice_throws_logic_error_and_keeps_the_first) {
  gb::Promise<int> promise;
  gb::Future<int> future = promise.get_future();
  promise.set_value(1);
  EXPECT_THROW(promise.set_value(2), std::logic_error);
  EXPECT_THROW(promise.set_exception(std::make_exception_ptr(Failure("late"))), std::logic_error);
  EXPECT_EQ(future.get(), 1);

  gb::Promise<void> failed;
  gb::Future<void> failed_future = failed.get_future();
  failed.set_exception(std::make_exception_ptr(Failure("first")));
  EXPECT_THROW(failed.set_value(), std::logic_error);
  EXPECT_THROW(failed.set_exception(std::make_exception_ptr(Failure("second"))), std::logic_error);
  try {
    failed_future.get();
    ADD_FAILURE() << "get() returned instead of throwing";
  } catch (const Failure& e) {
    EXPECT_STREQ(e.what(), "first");
  }
}

TEST(Promise, get_future_twice_throws_logic_error) {
  gb::Promise<int> promise;
  gb::Future<int> future = promise.get_future();
  EXPECT_THROW((void)promise.get_future(), std::logic_error);
  promise.set_value(4);
  EXPECT_EQ(future.get(), 4);  // the first future is unaffected
}

TEST(Promise, a_value_set_before_get_future_is_there_when_the_future_is_taken) {
  gb::Promise<int> promise;
  promise.set_value(6);
  gb::Future<int> future = promise.get_future();
  EXPECT_TRUE(future.ready());
  EXPECT_EQ(future.get(), 6);
}

TEST(Promise, a_moved_from_promise_is_empty_and_the_moved_to_one_completes_the_future) {
  gb::Promise<int> original;
  gb::Future<int> future = original.get_future();
  gb::Promise<int> moved = std::move(original);
  EXPECT_THROW((void)original.get_future(), std::logic_error);  // NOLINT(bugprone-use-after-move)
  EXPECT_THROW(original.set_value(1), std::logic_error);        // NOLINT(bugprone-use-after-move)
  EXPECT_THROW((void)moved.get_future(), std::logic_error);     // the future was taken before the move
  moved.set_value(2);
  EXPECT_EQ(future.get(), 2);
}

TEST(Promise, a_promise_destroyed_without_a_result_gives_broken_promise) {
  gb::Future<int> future;
  {
    gb::Promise<int> promise;
    future = promise.get_future();
  }
  EXPECT_TRUE(future.ready());
  EXPECT_THROW((void)future.get(), gb::BrokenPromise);
}

TEST(Promise, a_broken_promise_wakes_a_consumer_already_blocked_in_get) {
  auto promise = std::make_unique<gb::Promise<int>>();
  gb::Future<int> future = promise->get_future();
  std::atomic<bool> consumer_started{false};
  bool broken = false;
  std::jthread consumer([&] {
    consumer_started = true;
    try {
      (void)future.get();
    } catch (const gb::BrokenPromise&) {
      broken = true;
    }
  });
  wait_until(consumer_started);
  promise.reset();  // the consumer may or may not be asleep yet; either way it must wake
  consumer.join();
  EXPECT_TRUE(broken);
}

TEST(Promise, a_promise_move_assigned_over_breaks_its_old_future) {
  gb::Promise<int> first;
  gb::Future<int> old_future = first.get_future();
  gb::Promise<int> second;
  gb::Future<int> new_future = second.get_future();
  first = std::move(second);
  EXPECT_THROW((void)old_future.get(), gb::BrokenPromise);
  first.set_value(5);
  EXPECT_EQ(new_future.get(), 5);
}

// ---------------------------------------------------------------------------------------
// Failures nobody takes are reported, once
// ---------------------------------------------------------------------------------------

TEST(FutureReporting, a_failure_whose_future_was_dropped_is_reported_once_on_stderr) {
  testing::internal::CaptureStderr();
  {
    gb::Promise<int> promise;
    { gb::Future<int> dropped = promise.get_future(); }
    promise.set_exception(std::make_exception_ptr(Failure("dropped-before-set-7f3a")));
  }
  const std::string output = testing::internal::GetCapturedStderr();
  EXPECT_EQ(count_of(output, "dropped-before-set-7f3a"), 1u) << output;
}

TEST(FutureReporting, a_failure_that_arrived_but_was_never_asked_for_is_reported_once) {
  testing::internal::CaptureStderr();
  {
    gb::Promise<int> promise;
    gb::Future<int> future = promise.get_future();
    promise.set_exception(std::make_exception_ptr(Failure("ready-not-taken-91b2")));
    EXPECT_TRUE(future.wait_for(1ms));  // waiting is not taking
  }
  const std::string output = testing::internal::GetCapturedStderr();
  EXPECT_EQ(count_of(output, "ready-not-taken-91b2"), 1u) << output;
}

TEST(FutureReporting, a_broken_promise_nobody_asked_for_is_reported_once) {
  testing::internal::CaptureStderr();
  {
    gb::Future<int> future;
    {
      gb::Promise<int> promise;
      future = promise.get_future();
    }
  }
  const std::string output = testing::internal::GetCapturedStderr();
  EXPECT_EQ(count_of(output, "broken promise"), 1u) << output;
}

TEST(FutureReporting, a_failure_that_was_taken_is_not_reported) {
  testing::internal::CaptureStderr();
  {
    gb::Promise<int> promise;
    gb::Future<int> future = promise.get_future();
    promise.set_exception(std::make_exception_ptr(Failure("taken-by-get-c0de")));
    EXPECT_THROW((void)future.get(), Failure);
  }
  {
    gb::Promise<int> promise;
    gb::Future<int> future = promise.get_future();
    promise.set_exception(std::make_exception_ptr(Failure("taken-by-await-c0de")));
    gb::Loop loop;
    EXPECT_THROW(loop.run([](gb::Future<int> f) -> gb::Task<int> { co_return co_await std::move(f); }(std::move(future))),
                 Failure);
  }
  const std::string output = testing::internal::GetCapturedStderr();
  EXPECT_EQ(count_of(output, "c0de"), 0u) << output;
}

TEST(FutureReporting, values_and_cancellations_are_never_reported) {
  testing::internal::CaptureStderr();
  {
    gb::Promise<int> promise;
    { gb::Future<int> dropped = promise.get_future(); }
    promise.set_value(1);
  }
  {
    gb::Promise<int> promise;
    { gb::Future<int> dropped = promise.get_future(); }
    promise.set_exception(std::make_exception_ptr(gb::Cancelled{}));
  }
  const std::string output = testing::internal::GetCapturedStderr();
  EXPECT_EQ(output, "");
}
