// Tests of Task<T>: results of every kind (value, void, reference, move-only), exceptions
// reaching the awaiter, laziness, ownership of the coroutine frame (and the arguments it
// holds), constant stack for deep and long chains of synchronous awaits, and misuse. Each
// test that runs tasks runs them on both flavors (a Loop, and a Runtime of 2 workers).
#include <gearbox/loop.hpp>
#include <gearbox/spawn.hpp>
#include <gearbox/task.hpp>
#include <gearbox/time.hpp>

#include <gtest/gtest.h>

#include "support/describe.hpp"
#include "support/flavors.hpp"
#include "support/lifetimes.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace gb = gearbox;
using namespace std::chrono_literals;

namespace {

using gearbox_test::Lifetimes;
using gearbox_test::Tracked;

class TaskFlavors : public gearbox_test::OnEveryFlavor {};

struct TestError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

gb::Task<int> answer() { co_return 42; }
gb::Task<int> twice() { co_return 2 * co_await answer(); }

gb::Task<int> counted_answer(int& runs) {
  ++runs;
  co_return 42;
}

gb::Task<void> set_flag(bool& flag) {
  flag = true;
  co_return;
}

gb::Task<int&> pick(int& a, int& b, bool first) { co_return first ? a : b; }

gb::Task<std::unique_ptr<int>> make_box(int value) {
  auto box = std::make_unique<int>(value);
  co_return box;  // a local is moved out implicitly
}

gb::Task<int> fail_int(std::string message) {
  throw TestError(message);
  co_return 0;
}
gb::Task<void> fail_void(std::string message) {
  throw TestError(message);
  co_return;
}
gb::Task<int&> fail_ref(std::string message) {
  throw TestError(message);
  static int never = 0;
  co_return never;
}

gb::Task<int> consume(Tracked argument, bool& ran) {
  ran = true;
  co_return argument.value();
}

// The address of the caller's stack frame, as seen from a real (non-coroutine) function.
[[gnu::noinline]] std::uintptr_t stack_position() noexcept {
  return reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
}

gb::Task<int> nested(int depth) {
  if (depth == 0) co_return 0;
  co_return 1 + co_await nested(depth - 1);
}

gb::Task<int> nested_measured(int depth, std::uintptr_t& lowest) {
  lowest = std::min(lowest, stack_position());
  if (depth == 0) co_return 0;
  co_return 1 + co_await nested_measured(depth - 1, lowest);
}

gb::Task<int> one_measured(std::uintptr_t& lowest) {
  lowest = std::min(lowest, stack_position());
  co_return 1;
}

// How far below the awaiting coroutine's frame the stack reached while `awaits` ran.
struct StackUse {
  int result = 0;
  std::uintptr_t bytes = 0;
};

}  // namespace

TEST_P(TaskFlavors, a_task_returns_its_value_to_the_awaiter) { EXPECT_EQ(run(twice()), 84); }

TEST_P(TaskFlavors, a_void_task_runs_its_body_when_awaited) {
  bool flag = false;
  run([](bool& f) -> gb::Task<void> { co_await set_flag(f); }(flag));
  EXPECT_TRUE(flag);
}

TEST_P(TaskFlavors, a_task_does_nothing_until_it_is_awaited) {
  bool flag = false;
  gb::Task<void> task = set_flag(flag);
  EXPECT_TRUE(task.valid());
  EXPECT_FALSE(task.done());
  EXPECT_FALSE(flag) << "a Task must be lazy";
  const bool ran_before_await = run([](gb::Task<void> t, bool& f) -> gb::Task<bool> {
    const bool before = f;
    co_await t;
    co_return before;
  }(std::move(task), flag));
  EXPECT_FALSE(ran_before_await);
  EXPECT_TRUE(flag);
}

TEST_P(TaskFlavors, an_exception_thrown_in_the_body_is_thrown_at_the_co_await_not_at_the_call) {
  gb::Task<int> task = fail_int("late");  // must not throw here
  EXPECT_TRUE(task.valid());
  std::string caught;
  run([](gb::Task<int> t, std::string& out) -> gb::Task<void> {
    try {
      (void)co_await std::move(t);
    } catch (const TestError& e) {
      out = e.what();
    }
  }(std::move(task), caught));
  EXPECT_EQ(caught, "late");
}

TEST_P(TaskFlavors, the_exception_of_a_task_of_any_kind_reaches_its_awaiter) {
  EXPECT_THROW(run(fail_int("int")), TestError);
  EXPECT_THROW(run(fail_void("void")), TestError);
  std::vector<std::string> messages;
  run([](std::vector<std::string>& out) -> gb::Task<void> {
    try { (void)co_await fail_int("int"); } catch (const TestError& e) { out.emplace_back(e.what()); }
    try { co_await fail_void("void"); } catch (const TestError& e) { out.emplace_back(e.what()); }
    try { (void)co_await fail_ref("ref"); } catch (const TestError& e) { out.emplace_back(e.what()); }
  }(messages));
  EXPECT_EQ(messages, (std::vector<std::string>{"int", "void", "ref"}));
}

TEST_P(TaskFlavors, an_exception_passes_through_every_awaiter_that_does_not_catch_it) {
  auto middle = []() -> gb::Task<int> { co_return 1 + co_await fail_int("deep"); };
  auto outer = [middle]() -> gb::Task<int> { co_return 1 + co_await middle(); };
  try {
    run(outer());
    ADD_FAILURE() << "no exception";
  } catch (const TestError& e) {
    EXPECT_STREQ(e.what(), "deep");
  }
}

TEST_P(TaskFlavors, a_task_of_reference_yields_a_reference_to_the_very_object_returned) {
  int a = 1;
  int b = 2;
  int* seen = run([](int& x, int& y) -> gb::Task<int*> {
    int& chosen = co_await pick(x, y, false);
    chosen = 20;
    co_return &chosen;
  }(a, b));
  EXPECT_EQ(seen, &b);
  EXPECT_EQ(b, 20);
  EXPECT_EQ(a, 1);
}

TEST_P(TaskFlavors, a_move_only_result_is_moved_out_to_the_awaiter) {
  std::unique_ptr<int> box = run([]() -> gb::Task<std::unique_ptr<int>> {
    std::unique_ptr<int> inner = co_await make_box(7);
    *inner += 1;
    co_return inner;
  }());
  ASSERT_NE(box, nullptr);
  EXPECT_EQ(*box, 8);
}

TEST_P(TaskFlavors, awaiting_an_lvalue_task_yields_a_reference_into_its_frame_and_never_reruns_it) {
  int runs = 0;
  auto [first, second, same] = run([](int& r) -> gb::Task<std::tuple<int, int, bool>> {
    gb::Task<int> task = counted_answer(r);
    int& a = co_await task;
    const bool done = task.done();
    int& b = co_await task;  // already done: the same result, not a second run
    a += 1;
    co_return std::tuple{a, b, done && &a == &b};
  }(runs));
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(first, 43);
  EXPECT_EQ(second, 43);
  EXPECT_TRUE(same);
}

TEST_P(TaskFlavors, a_move_only_result_of_an_lvalue_task_can_be_borrowed_in_place) {
  int value = run([]() -> gb::Task<int> {
    gb::Task<std::unique_ptr<int>> task = make_box(5);
    std::unique_ptr<int>& box = co_await task;
    co_return box ? *box : -1;
  }());
  EXPECT_EQ(value, 5);
}

TEST(Task, destroying_a_task_that_never_started_destroys_its_frame_and_the_arguments_it_holds) {
  Lifetimes lifetimes;
  bool ran = false;
  {
    gb::Task<int> task = consume(Tracked{lifetimes, 3}, ran);
    EXPECT_EQ(lifetimes.alive(), 1) << "the frame holds its copy of the argument";
  }
  EXPECT_FALSE(ran);
  EXPECT_EQ(lifetimes.alive(), 0);
  EXPECT_GE(lifetimes.constructed, 2);
}

TEST_P(TaskFlavors, a_task_that_ran_destroys_its_arguments_with_its_frame) {
  Lifetimes lifetimes;
  bool ran = false;
  EXPECT_EQ(run(consume(Tracked{lifetimes, 3}, ran)), 3);
  EXPECT_TRUE(ran);
  EXPECT_EQ(lifetimes.alive(), 0);
}

TEST_P(TaskFlavors, moving_a_task_moves_the_frame_and_move_assignment_destroys_the_old_one) {
  Lifetimes first;
  Lifetimes second;
  bool ran_first = false;
  bool ran_second = false;
  gb::Task<int> a = consume(Tracked{first, 1}, ran_first);
  gb::Task<int> b = consume(Tracked{second, 2}, ran_second);
  gb::Task<int> moved = std::move(b);
  EXPECT_FALSE(b.valid());  // NOLINT(bugprone-use-after-move): a moved-from Task is empty by contract
  EXPECT_TRUE(moved.valid());
  a = std::move(moved);
  EXPECT_EQ(first.alive(), 0) << "the frame that `a` owned must be destroyed";
  EXPECT_EQ(second.alive(), 1);
  EXPECT_EQ(run(std::move(a)), 2);
  EXPECT_FALSE(ran_first);
  EXPECT_TRUE(ran_second);
  EXPECT_EQ(second.alive(), 0);
}

TEST_P(TaskFlavors, co_await_on_an_empty_task_throws_logic_error) {
  EXPECT_THROW(run([]() -> gb::Task<int> {
    gb::Task<int> empty;
    co_return co_await empty;
  }()), std::logic_error);
  EXPECT_THROW(run([]() -> gb::Task<void> {
    bool flag = false;
    gb::Task<void> task = set_flag(flag);
    gb::Task<void> taken = std::move(task);
    co_await task;  // NOLINT(bugprone-use-after-move): a moved-from Task is empty
  }()), std::logic_error);
}

// Symmetric transfer must be a tail call in every preset (see the stack-depth note in
// task.hpp and the g++ flags in cmake/GearboxOptions.cmake and tests/CMakeLists.txt).
TEST_P(TaskFlavors, nested_awaits_that_complete_synchronously_use_constant_stack) {
  const StackUse use = run([]() -> gb::Task<StackUse> {
    std::uintptr_t lowest = UINTPTR_MAX;
    const std::uintptr_t top = stack_position();
    const int result = co_await nested_measured(1000, lowest);
    co_return StackUse{result, top > lowest ? top - lowest : 0};
  }());
  EXPECT_EQ(use.result, 1000);
  EXPECT_LT(use.bytes, 16u * 1024u) << "1,000 nested synchronous awaits grew the stack by " << use.bytes << " bytes";
}

// The same, for a long loop of awaits rather than a recursion.
TEST_P(TaskFlavors, a_long_sequence_of_awaits_that_complete_synchronously_uses_constant_stack) {
  const StackUse use = run([]() -> gb::Task<StackUse> {
    std::uintptr_t lowest = UINTPTR_MAX;
    const std::uintptr_t top = stack_position();
    int sum = 0;
    for (int i = 0; i < 1000; ++i) sum += co_await one_measured(lowest);
    co_return StackUse{sum, top > lowest ? top - lowest : 0};
  }());
  EXPECT_EQ(use.result, 1000);
  EXPECT_LT(use.bytes, 16u * 1024u) << "1,000 sequential synchronous awaits grew the stack by " << use.bytes << " bytes";
}

// Run in a child process so that a stack overflow fails this test instead of killing the
// whole test program.
TEST(Task, a_chain_of_100000_nested_awaits_that_complete_synchronously_does_not_overflow_the_stack) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(std::exit(gb::run(nested(100000)) == 100000 ? 0 : 1), ::testing::ExitedWithCode(0), "");
}

INSTANTIATE_TEST_SUITE_P(Task, TaskFlavors, gearbox_test::every_flavor(), gearbox_test::flavor_name);
