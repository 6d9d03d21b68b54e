// Tests of Future<T>/Promise<T> (include/gearbox/future.hpp): the kinds of result (value,
// void, reference, move-only, exception); the one-consumer rules (get takes the result;
// a second get, a second get_future, a second set are std::logic_error); wait_for; a
// broken promise (an error, never a hang); failures nobody took are reported once on
// stderr, and taken or cancelled ones are not; co_await from a task on a Loop (the loop
// runs on while the task waits, the task resumes on the loop's thread, cancellation
// abandons the wait, a late value is destroyed exactly once); co_await from coroutines
// that are not on a loop (they resume on the thread that completes the promise); and
// stress tests in which producers on other threads race the consumer, its cancellation
// and the loop's destruction.
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

#include "support/lifetimes.hpp"

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

constexpr auto k_hang_guard = 60s;

struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Lifetime counting (tests/support/lifetimes.hpp).
using gearbox_test::count_of;
using gearbox_test::Lifetimes;
using gearbox_test::Tracked;

// A coroutine with a plain promise: starts at once, frees itself at the end, belongs to
// no loop and no pool.
struct Detached {
  struct promise_type {
    Detached get_return_object() noexcept { return {}; }
    std::suspend_never initial_suspend() const noexcept { return {}; }
    std::suspend_never final_suspend() const noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
  };
};

// Spins (yielding the CPU) until `flag` holds true. Bounded by the test's timeout.
void wait_until(const std::atomic<bool>& flag) {
  while (!flag.load()) std::this_thread::yield();
}

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
  std::jthread producer([&] { promise.set_exception(std::make_exception_ptr(Failure("bad input"))); });
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

// ---------------------------------------------------------------------------------------
// co_await from a task on a Loop
// ---------------------------------------------------------------------------------------

namespace {

// Yields until `stop`, counting its turns: proof that the loop keeps running.
gb::Task<void> count_turns(std::atomic<int>& turns, const bool& stop) {
  while (!stop) {
    ++turns;
    co_await gb::yield_now();
  }
}

}  // namespace

TEST(FutureOnLoop, a_task_awaiting_a_future_does_not_block_its_loop) {
  constexpr int k_turns_before_value = 20;
  gb::Promise<int> promise;
  std::atomic<int> turns{0};
  int turns_when_resumed = -1;
  std::optional<std::jthread> producer;
  gb::Loop loop;
  const int value = loop.run([&]() -> gb::Task<int> {
    bool stop = false;
    auto counter = gb::spawn(count_turns(turns, stop));
    // The producer sets the value only once the loop has run the counter task this many
    // times, which it can do only while this task is suspended in the co_await.
    producer.emplace([&] {
      while (turns.load() < k_turns_before_value) std::this_thread::yield();
      promise.set_value(99);
    });
    const int v = co_await promise.get_future();
    turns_when_resumed = turns.load();
    stop = true;
    co_await counter;
    co_return v;
  }());
  EXPECT_EQ(value, 99);
  EXPECT_GE(turns_when_resumed, k_turns_before_value);
}

TEST(FutureOnLoop, the_awaiting_task_resumes_on_the_loops_thread_not_the_producers) {
  gb::Promise<std::string> promise;
  std::thread::id loop_thread, resumed_on, producer_thread;
  std::atomic<int> turns{0};
  std::optional<std::jthread> producer;
  gb::Loop loop;
  const std::string value = loop.run([&]() -> gb::Task<std::string> {
    loop_thread = std::this_thread::get_id();
    bool stop = false;
    auto counter = gb::spawn(count_turns(turns, stop));
    producer.emplace([&] {
      producer_thread = std::this_thread::get_id();
      while (turns.load() < 3) std::this_thread::yield();  // the task is suspended by now
      promise.set_value("from elsewhere");
    });
    std::string v = co_await promise.get_future();
    resumed_on = std::this_thread::get_id();
    stop = true;
    co_await counter;
    co_return v;
  }());
  producer->join();
  EXPECT_EQ(value, "from elsewhere");
  EXPECT_EQ(resumed_on, loop_thread);
  EXPECT_NE(resumed_on, producer_thread);
}

TEST(FutureOnLoop, an_exception_set_on_another_thread_is_rethrown_at_the_await) {
  gb::Promise<int> promise;
  std::optional<std::jthread> producer;
  gb::Loop loop;
  bool caught = false;
  loop.run([&]() -> gb::Task<void> {
    producer.emplace([&] { promise.set_exception(std::make_exception_ptr(Failure("remote failure"))); });
    try {
      (void)co_await promise.get_future();
    } catch (const Failure& e) {
      caught = std::string(e.what()) == "remote failure";
    }
  }());
  EXPECT_TRUE(caught);
}

TEST(FutureOnLoop, a_ready_future_is_taken_at_once_and_an_lvalue_future_is_left_invalid) {
  gb::Promise<int> promise;
  gb::Future<int> future = promise.get_future();
  promise.set_value(21);
  gb::Loop loop;
  const int value = loop.run([](gb::Future<int>& f) -> gb::Task<int> { co_return 2 * co_await f; }(future));
  EXPECT_EQ(value, 42);
  EXPECT_FALSE(future.valid());
}

TEST(FutureOnLoop, void_reference_and_move_only_results_reach_the_task) {
  gb::Promise<void> done;
  int target = 0;
  gb::Promise<int&> reference;
  gb::Promise<std::unique_ptr<int>> owned;
  std::optional<std::jthread> producer;
  gb::Loop loop;
  loop.run([&]() -> gb::Task<void> {
    producer.emplace([&] {
      owned.set_value(std::make_unique<int>(3));
      reference.set_value(target);
      done.set_value();
    });
    co_await done.get_future();
    int& r = co_await reference.get_future();
    EXPECT_EQ(&r, &target);
    std::unique_ptr<int> p = co_await owned.get_future();
    EXPECT_EQ(*p, 3);
  }());
}

TEST(FutureOnLoop, a_broken_promise_reaches_the_awaiting_task_instead_of_a_hang) {
  auto promise = std::make_unique<gb::Promise<int>>();
  gb::Future<int> future = promise->get_future();
  std::optional<std::jthread> producer;
  gb::Loop loop;
  EXPECT_THROW(loop.run([&]() -> gb::Task<int> {
    producer.emplace([&] { promise.reset(); });
    co_return co_await std::move(future);
  }()),
               gb::BrokenPromise);
}

namespace {

// Awaits `future` and records how the await ended; then awaits once more, so that a
// cancellation that lost the race to the value is seen there.
gb::Task<void> await_tracked(gb::Future<Tracked> future, int& got, bool& cancelled_at_await, bool& cancelled_after) {
  try {
    Tracked v = co_await std::move(future);
    got = v.value();
  } catch (const gb::Cancelled&) {
    cancelled_at_await = true;
    throw;
  }
  try {
    co_await gb::yield_now();
  } catch (const gb::Cancelled&) {
    cancelled_after = true;
    throw;
  }
}

}  // namespace

TEST(FutureOnLoop, cancelling_a_task_waiting_on_a_future_throws_cancelled_at_that_await_and_a_late_value_is_freed_once) {
  Lifetimes life;
  auto promise = std::make_unique<gb::Promise<Tracked>>();
  gb::Future<Tracked> future = promise->get_future();
  int got = -1;
  bool cancelled_at_await = false, cancelled_after = false, waiter_ended_cancelled = false;
  {
    gb::Loop loop;
    loop.run([&]() -> gb::Task<void> {
      auto waiter = gb::spawn(await_tracked(std::move(future), got, cancelled_at_await, cancelled_after));
      co_await gb::yield_now();  // the waiter runs up to its co_await and suspends there
      waiter.cancel();
      try {
        co_await waiter;
      } catch (const gb::Cancelled&) {
        waiter_ended_cancelled = true;
      }
    }());
  }
  EXPECT_TRUE(cancelled_at_await);
  EXPECT_TRUE(waiter_ended_cancelled);
  EXPECT_EQ(got, -1);
  EXPECT_EQ(life.constructed.load(), 0);

  // The value arrives after its consumer is gone: the loop is not touched, and the value
  // lives in the shared state until the promise lets go of it.
  std::thread late([&] { promise->set_value(Tracked{life, 7}); });
  late.join();
  EXPECT_EQ(life.alive(), 1);
  promise.reset();
  EXPECT_EQ(life.alive(), 0);
  EXPECT_GT(life.destroyed.load(), 0);
  EXPECT_EQ(life.corrupt.load(), 0);
}

TEST(FutureOnLoop, a_task_cancelled_before_it_awaits_a_future_throws_cancelled_without_waiting) {
  gb::Promise<int> promise;  // never set while the loop runs: a wait would hang
  gb::Future<int> future = promise.get_future();
  bool cancelled = false;
  gb::Loop loop;
  loop.run([&]() -> gb::Task<void> {
    auto waiter = gb::spawn([](gb::Future<int>& f, bool& out) -> gb::Task<void> {
      try {
        (void)co_await f;
      } catch (const gb::Cancelled&) {
        out = true;
        throw;
      }
    }(future, cancelled));
    waiter.cancel();  // before it ever ran
    try {
      co_await waiter;
    } catch (const gb::Cancelled&) {
    }
  }());
  EXPECT_TRUE(cancelled);
  EXPECT_TRUE(future.valid());  // nothing was taken
  promise.set_value(1);
  EXPECT_EQ(future.get(), 1);
}

TEST(FutureOnLoop, a_cancel_that_loses_the_race_to_the_value_delivers_it_and_cancels_at_the_next_await) {
  // The value is published (and the wake-up posted) while the loop is busy in another
  // task; the cancel then finds the wait already completed.
  Lifetimes life;
  auto promise = std::make_unique<gb::Promise<Tracked>>();
  gb::Future<Tracked> future = promise->get_future();
  int got = -1;
  bool cancelled_at_await = false, cancelled_after = false;
  std::atomic<bool> published{false};
  std::optional<std::jthread> producer;
  {
    gb::Loop loop;
    loop.run([&]() -> gb::Task<void> {
      auto waiter = gb::spawn(await_tracked(std::move(future), got, cancelled_at_await, cancelled_after));
      co_await gb::yield_now();  // the waiter suspends in its co_await
      producer.emplace([&] {
        promise->set_value(Tracked{life, 5});
        published = true;
      });
      wait_until(published);  // holds the loop's thread: the posted wake-up waits
      waiter.cancel();
      try {
        co_await waiter;
      } catch (const gb::Cancelled&) {
      }
    }());
  }
  producer->join();
  EXPECT_FALSE(cancelled_at_await);
  EXPECT_EQ(got, 5);
  EXPECT_TRUE(cancelled_after);
  // The value was moved out to the task; the moved-from husk stays in the shared state
  // until the promise lets go too.
  promise.reset();
  EXPECT_EQ(life.alive(), 0);
  EXPECT_EQ(life.corrupt.load(), 0);
}

TEST(FutureOnLoop, a_loop_destroyed_with_a_task_waiting_on_a_future_cancels_the_wait) {
  Lifetimes life;
  auto promise = std::make_unique<gb::Promise<Tracked>>();
  int got = -1;
  bool cancelled_at_await = false, cancelled_after = false;
  {
    gb::Loop loop;
    auto waiter = loop.spawn(await_tracked(promise->get_future(), got, cancelled_at_await, cancelled_after));
    waiter.detach();
    loop.run([]() -> gb::Task<void> { co_await gb::yield_now(); }());  // the waiter suspends
  }
  EXPECT_TRUE(cancelled_at_await);
  promise->set_value(Tracked{life, 1});
  promise.reset();
  EXPECT_EQ(life.alive(), 0);
  EXPECT_EQ(life.corrupt.load(), 0);
}

// ---------------------------------------------------------------------------------------
// co_await from coroutines that are not on a loop
// ---------------------------------------------------------------------------------------

namespace {

struct OffLoopRecord {
  std::thread::id started_on;
  std::thread::id resumed_on;
  bool on_pool = false;
  int value = 0;
};

Detached await_detached(gb::Future<int> future, OffLoopRecord& record) {
  record.started_on = std::this_thread::get_id();
  record.value = co_await std::move(future);
  record.resumed_on = std::this_thread::get_id();
}

gb::Task<void> hop_to_pool_then_await(gb::ThreadPool& pool, gb::Future<int> future, OffLoopRecord& record) {
  co_await pool.schedule();
  record.started_on = std::this_thread::get_id();
  record.on_pool = gb::ThreadPool::current() == &pool;
  record.value = co_await std::move(future);
  record.resumed_on = std::this_thread::get_id();
}

}  // namespace

TEST(FutureOffLoop, a_plain_coroutine_resumes_on_the_thread_that_sets_the_promise) {
  gb::Promise<int> promise;
  OffLoopRecord record;
  await_detached(promise.get_future(), record);  // runs until the co_await, then returns here
  EXPECT_EQ(record.started_on, std::this_thread::get_id());
  EXPECT_EQ(record.value, 0);  // still suspended
  std::thread::id producer_thread;
  std::thread producer([&] {
    producer_thread = std::this_thread::get_id();
    promise.set_value(12);  // resumes the coroutine here, which then frees itself
  });
  producer.join();
  EXPECT_EQ(record.value, 12);
  EXPECT_EQ(record.resumed_on, producer_thread);
}

TEST(FutureOffLoop, a_plain_coroutine_continues_on_its_own_thread_when_the_future_is_ready) {
  gb::Promise<int> promise;
  promise.set_value(4);
  OffLoopRecord record;
  await_detached(promise.get_future(), record);
  EXPECT_EQ(record.value, 4);
  EXPECT_EQ(record.resumed_on, std::this_thread::get_id());
}

TEST(FutureOffLoop, a_task_moved_onto_a_pool_resumes_on_the_thread_that_sets_the_promise) {
  gb::ThreadPool pool{{.workers = 1}};
  gb::Promise<int> promise;
  OffLoopRecord record;
  gb::Task<void> task = hop_to_pool_then_await(pool, promise.get_future(), record);
  task.handle().resume();  // runs to schedule(); the pool's worker takes it from there
  // The pool has one worker: this job runs only once the coroutine has suspended in its
  // co_await and given the worker back.
  ASSERT_TRUE(pool.submit([] {}).wait_for(k_hang_guard));
  std::thread::id producer_thread;
  std::thread producer([&] {
    producer_thread = std::this_thread::get_id();
    promise.set_value(30);
  });
  producer.join();  // the coroutine ran to its final suspension on the producer's thread
  EXPECT_TRUE(task.done());
  EXPECT_TRUE(record.on_pool);
  EXPECT_NE(record.started_on, std::this_thread::get_id());
  EXPECT_EQ(record.value, 30);
  EXPECT_EQ(record.resumed_on, producer_thread);
  EXPECT_NE(record.resumed_on, record.started_on);
}

// ---------------------------------------------------------------------------------------
// Stress: producers on other threads race consumers, cancellations and loop destruction
// ---------------------------------------------------------------------------------------

TEST(FutureStress, values_handed_between_threads_arrive_exactly_once) {
  constexpr int k_rounds = 2000;
  Lifetimes life;
  std::vector<gb::Promise<Tracked>> promises(k_rounds);
  std::vector<gb::Future<Tracked>> futures;
  futures.reserve(k_rounds);
  for (auto& p : promises) futures.push_back(p.get_future());
  std::jthread producer([&] {
    for (int i = 0; i < k_rounds; ++i) promises[static_cast<std::size_t>(i)].set_value(Tracked{life, i});
  });
  int wrong = 0;
  for (int i = 0; i < k_rounds; ++i) {
    auto& f = futures[static_cast<std::size_t>(i)];
    ASSERT_TRUE(f.wait_for(k_hang_guard));
    if (f.get().value() != i) ++wrong;
  }
  producer.join();
  EXPECT_EQ(wrong, 0);
  promises.clear();
  EXPECT_EQ(life.alive(), 0);
  EXPECT_EQ(life.corrupt.load(), 0);
}

TEST(FutureStress, a_cancel_racing_a_late_value_never_loses_or_double_frees_it) {
  constexpr int k_rounds = 300;
  Lifetimes life;
  int delivered = 0, cancelled_waits = 0;
  for (int round = 0; round < k_rounds; ++round) {
    gb::Promise<Tracked> promise;
    gb::Future<Tracked> future = promise.get_future();
    int got = -1;
    bool cancelled_at_await = false, cancelled_after = false;
    std::atomic<bool> go{false};
    std::jthread producer([&] {
      wait_until(go);
      promise.set_value(Tracked{life, round});
    });
    {
      gb::Loop loop;
      loop.run([&]() -> gb::Task<void> {
        auto waiter = gb::spawn(await_tracked(std::move(future), got, cancelled_at_await, cancelled_after));
        co_await gb::yield_now();
        go = true;  // the value and the cancel now race
        waiter.cancel();
        try {
          co_await waiter;
        } catch (const gb::Cancelled&) {
        }
      }());
    }
    producer.join();
    // Exactly one of: the wait was abandoned, or the value arrived and the next await saw
    // the cancellation.
    if (cancelled_at_await) {
      ++cancelled_waits;
      EXPECT_EQ(got, -1);
    } else {
      ++delivered;
      EXPECT_EQ(got, round);
      EXPECT_TRUE(cancelled_after);
    }
  }
  EXPECT_EQ(delivered + cancelled_waits, k_rounds);
  EXPECT_EQ(life.alive(), 0);
  EXPECT_EQ(life.corrupt.load(), 0);
}

// Each round: tasks on one loop await futures that several threads complete at about the
// same time; the loop is destroyed as soon as the last result is in, while the producers
// may still be returning from their set_value.
// Regression: Loop::post used to read the loop after releasing its mutex, when a loop
// that had already taken the runnable could be destroyed.
TEST(FutureStress, many_producer_threads_complete_futures_awaited_on_one_loop_that_ends_at_once) {
  constexpr int k_rounds = 500;
  constexpr int k_producers = 4;
  int wrong = 0;
  for (int round = 0; round < k_rounds; ++round) {
    std::vector<gb::Promise<int>> promises(k_producers);
    std::vector<std::jthread> producers;  // declared before the loop: joined after it is gone
    std::atomic<bool> go{false};
    {
      gb::Loop loop;
      const int sum = loop.run([&]() -> gb::Task<int> {
        std::vector<gb::JoinHandle<int>> waiters;
        for (auto& p : promises)
          waiters.push_back(gb::spawn([](gb::Future<int> f) -> gb::Task<int> { co_return co_await std::move(f); }(p.get_future())));
        co_await gb::yield_now();  // every waiter is suspended
        for (int i = 0; i < k_producers; ++i)
          producers.emplace_back([&, i] {
            wait_until(go);
            promises[static_cast<std::size_t>(i)].set_value(i + 1);
          });
        go = true;
        int total = 0;
        for (auto& w : waiters) total += co_await w;
        co_return total;
      }());
      if (sum != k_producers * (k_producers + 1) / 2) ++wrong;
    }
  }
  EXPECT_EQ(wrong, 0);
}
