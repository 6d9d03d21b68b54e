// Tests of co_await on a Future<T> (include/gearbox/future.hpp): from a task on a Loop
// (the loop runs on while the task waits, the task resumes on the loop's thread,
// cancellation abandons the wait, a late value is destroyed exactly once); from coroutines
// that are not on a loop (they resume on the thread that completes the promise); and
// stress tests in which producers on other threads race the consumer, its cancellation
// and the loop's destruction. The results, the one-consumer rules and the reporting of
// failures nobody took are in future_test; the helpers they share are in
// thread_test_support.hpp.
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

using gearbox_test::Failure;
using gearbox_test::k_hang_guard;
using gearbox_test::Lifetimes;
using gearbox_test::Tracked;
using gearbox_test::wait_until;

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

}  // namespace

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
    producer.emplace([&] {
      // The Failure temporary ends with this statement, before the failure is published: a
      // temporary destroyed after set_exception would drop its share of the message string
      // (libstdc++'s reference-counted, uninstrumented) while the loop reads it, which TSan
      // reports as a race.
      std::exception_ptr failure = std::make_exception_ptr(Failure("remote failure"));
      promise.set_exception(std::move(failure));
    });
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
