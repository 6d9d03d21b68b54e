// Tests of select (include/gearbox/sync/select.hpp): a ready case is taken at once, a
// waiting select is completed by the first sender or receiver, exactly one case happens
// (the losers take and give nothing, where when_any over two receives loses a value), send
// cases, closed channels, random choice among ready cases, cancellation before and while
// it waits, and a case handed over before a cancel is still delivered. The cases that
// assert outcomes run on both flavors (SelectOnEveryFlavor); those that need the select
// to be waiting, or not yet started, at a given step (which case a later send completes,
// a cancel before the first run or after a hand-off, the order of two waiting selects)
// stay on the test loop (a manual clock, nothing sleeps). The multi-thread stress tests
// are in tests/runtime/runtime_sync_test.cpp.
#include <gearbox/sync/select.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include <gearbox/combinators.hpp>
#include <gearbox/spawn.hpp>
#include <gearbox/sync/channel.hpp>
#include <gearbox/task.hpp>
#include <gearbox/time.hpp>

#include <gtest/gtest.h>

#include "support/flavors.hpp"
#include "support/test_loop.hpp"

namespace gb = gearbox;
using namespace std::chrono_literals;
using gearbox_test::run_on_test_loop;

namespace {

class SelectOnEveryFlavor : public gearbox_test::OnEveryTestEngine {};

using Pick = std::variant<std::optional<int>, std::optional<int>>;

gb::Task<Pick> select_two(gb::Channel<int>& a, gb::Channel<int>& b) { co_return co_await gb::select(a.receive(), b.receive()); }

// The value a select over two receives got, as "a:1" / "b:2" / "a:closed".
std::string describe(const Pick& pick) {
  const std::optional<int>& value = pick.index() == 0 ? std::get<0>(pick) : std::get<1>(pick);
  return std::string(pick.index() == 0 ? "a:" : "b:") + (value ? std::to_string(*value) : "closed");
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(Select, SelectOnEveryFlavor, gearbox_test::every_flavor(), gearbox_test::flavor_name);

TEST_P(SelectOnEveryFlavor, takes_a_ready_case_at_once_and_leaves_the_other_channel_alone) {
  gb::Channel<int> a{1};
  gb::Channel<int> b{1};
  ASSERT_TRUE(b.try_send(5));
  const Pick pick = run(select_two(a, b));
  EXPECT_EQ(describe(pick), "b:5");
  EXPECT_EQ(a.size(), 0u);
  EXPECT_EQ(b.size(), 0u);
  EXPECT_TRUE(a.try_send(1));  // the select left no waiter behind on a
  EXPECT_EQ(a.size(), 1u);
}

TEST(Select, a_waiting_select_is_completed_by_the_first_send_and_leaves_later_values_in_place) {
  gb::Channel<int> a{1};
  gb::Channel<int> b{1};
  std::string got;
  run_on_test_loop([](gb::Channel<int>& a, gb::Channel<int>& b, std::string& got) -> gb::Task<void> {
    auto selecting = gb::spawn(select_two(a, b));
    co_await gb::sleep_for(1ms);  // it waits on both
    EXPECT_TRUE(a.try_send(1));   // completes it
    EXPECT_TRUE(b.try_send(2));   // the select is decided: 2 stays in b
    got = describe(co_await selecting);
    EXPECT_EQ(b.size(), 1u);
    EXPECT_EQ(*b.try_receive(), 2);
  }(a, b, got));
  EXPECT_EQ(got, "a:1");
}

// Two receives raced by when_any both take a value when both channels are ready in one
// turn, and the loser's is dropped; select takes exactly one.
TEST(Select, exactly_one_case_happens_even_when_every_channel_becomes_ready_in_the_same_turn) {
  gb::Channel<int> a{0};
  gb::Channel<int> b{0};
  std::string got;
  run_on_test_loop([](gb::Channel<int>& a, gb::Channel<int>& b, std::string& got) -> gb::Task<void> {
    auto selecting = gb::spawn(select_two(a, b));
    co_await gb::sleep_for(1ms);
    EXPECT_TRUE(a.try_send(1));   // rendezvous with the waiting select
    EXPECT_FALSE(b.try_send(2));  // nobody waits on b any more: not taken, not lost
    got = describe(co_await selecting);
  }(a, b, got));
  EXPECT_EQ(got, "a:1");
}

TEST_P(SelectOnEveryFlavor, a_send_case_hands_its_value_to_a_receiver_and_the_receive_case_takes_nothing) {
  gb::Channel<int> out{0};
  gb::Channel<int> quit{1};
  std::optional<int> received;
  std::size_t index = 99;
  run([](gb::Channel<int>& out, gb::Channel<int>& quit, std::optional<int>& received,
                      std::size_t& index) -> gb::Task<void> {
    auto selecting = gb::spawn([](gb::Channel<int>& out, gb::Channel<int>& quit) -> gb::Task<std::size_t> {
      auto got = co_await gb::select(out.send(42), quit.receive());
      co_return got.index();
    }(out, quit));
    co_await gb::sleep_for(1ms);
    received = co_await out.receive();
    index = co_await selecting;
    EXPECT_TRUE(quit.try_send(1));  // the receive case left nothing behind on quit
    EXPECT_EQ(quit.size(), 1u);
  }(out, quit, received, index));
  EXPECT_EQ(index, 0u);
  EXPECT_EQ(received, 42);
}

TEST_P(SelectOnEveryFlavor, a_send_case_that_does_not_happen_leaves_its_value_unsent) {
  gb::Channel<std::unique_ptr<int>> out{0};
  gb::Channel<int> quit{1};
  std::size_t index = 99;
  run([](gb::Channel<std::unique_ptr<int>>& out, gb::Channel<int>& quit,
                      std::size_t& index) -> gb::Task<void> {
    auto selecting = gb::spawn([](gb::Channel<std::unique_ptr<int>>& out, gb::Channel<int>& quit) -> gb::Task<std::size_t> {
      auto got = co_await gb::select(out.send(std::make_unique<int>(7)), quit.receive());
      co_return got.index();
    }(out, quit));
    co_await gb::sleep_for(1ms);
    EXPECT_TRUE(quit.try_send(1));
    index = co_await selecting;
    EXPECT_FALSE(out.try_receive().has_value());  // the value was never offered again
  }(out, quit, index));
  EXPECT_EQ(index, 1u);
}

TEST_P(SelectOnEveryFlavor, a_closed_channel_is_a_ready_receive_case_that_yields_nullopt) {
  gb::Channel<int> a{1};
  gb::Channel<int> b{1};
  a.close();
  EXPECT_EQ(describe(run(select_two(a, b))), "a:closed");
}

TEST_P(SelectOnEveryFlavor, closing_a_channel_completes_a_waiting_select_with_nullopt) {
  gb::Channel<int> a{1};
  gb::Channel<int> b{1};
  std::string got;
  run([](gb::Channel<int>& a, gb::Channel<int>& b, std::string& got) -> gb::Task<void> {
    auto selecting = gb::spawn(select_two(a, b));
    co_await gb::sleep_for(1ms);
    b.close();
    got = describe(co_await selecting);
  }(a, b, got));
  EXPECT_EQ(got, "b:closed");
}

TEST_P(SelectOnEveryFlavor, a_chosen_send_case_on_a_closed_channel_throws_channel_closed) {
  gb::Channel<int> out{1};
  gb::Channel<int> never{0};
  out.close();
  EXPECT_THROW(run([](gb::Channel<int>& out, gb::Channel<int>& never) -> gb::Task<void> {
                 (void)co_await gb::select(out.send(1), never.receive());
               }(out, never)),
               gb::ChannelClosed);
}

TEST_P(SelectOnEveryFlavor, chooses_at_random_among_ready_cases_so_neither_channel_starves) {
  gb::Channel<int> a{200};
  gb::Channel<int> b{200};
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(a.try_send(int{i}));
    ASSERT_TRUE(b.try_send(int{i}));
  }
  std::vector<int> picks(2, 0);
  run([](gb::Channel<int>& a, gb::Channel<int>& b, std::vector<int>& picks) -> gb::Task<void> {
    for (int i = 0; i < 100; ++i) ++picks[(co_await gb::select(a.receive(), b.receive())).index()];
  }(a, b, picks));
  // A fixed order would give 100 / 0; a fair coin gives 0 or 100 with probability 2^-99.
  EXPECT_GT(picks[0], 0);
  EXPECT_GT(picks[1], 0);
  EXPECT_EQ(a.size() + b.size(), 300u);  // exactly one value per select
}

TEST(Select, a_task_cancelled_before_it_selects_takes_nothing_from_ready_channels) {
  gb::Channel<int> a{1};
  gb::Channel<int> b{1};
  ASSERT_TRUE(a.try_send(1));
  run_on_test_loop([](gb::Channel<int>& a, gb::Channel<int>& b) -> gb::Task<void> {
    auto selecting = gb::spawn(select_two(a, b), gb::Start::scheduled);
    selecting.cancel();
    EXPECT_THROW(co_await selecting, gb::Cancelled);
  }(a, b));
  EXPECT_EQ(a.size(), 1u);
}

TEST_P(SelectOnEveryFlavor, a_select_cancelled_while_waiting_throws_and_leaves_no_waiter_behind) {
  gb::Channel<int> a{0};
  gb::Channel<int> b{0};
  std::vector<int> got;
  run([](gb::Channel<int>& a, gb::Channel<int>& b, std::vector<int>& got) -> gb::Task<void> {
    auto selecting = gb::spawn(select_two(a, b));
    co_await gb::sleep_for(1ms);
    selecting.cancel();
    EXPECT_THROW(co_await selecting, gb::Cancelled);
    EXPECT_FALSE(a.try_send(1));  // no receiver is left on either channel
    EXPECT_FALSE(b.try_send(2));
    auto receiver = gb::spawn([](gb::Channel<int>& b, std::vector<int>& got) -> gb::Task<void> {
      got.push_back(*co_await b.receive());
    }(b, got));
    co_await b.send(3);  // to the plain receiver: the cancelled select takes nothing
    co_await receiver;
  }(a, b, got));
  EXPECT_EQ(got, std::vector<int>{3});
}

TEST(Select, a_case_handed_over_before_a_cancel_arrives_is_still_delivered) {
  gb::Channel<int> a{0};
  gb::Channel<int> b{0};
  std::string delivered;
  run_on_test_loop([](gb::Channel<int>& a, gb::Channel<int>& b, std::string& delivered) -> gb::Task<void> {
    auto selecting = gb::spawn([](gb::Channel<int>& a, gb::Channel<int>& b, std::string& delivered) -> gb::Task<void> {
      delivered = describe(co_await gb::select(a.receive(), b.receive()));
      co_await gb::yield_now();  // throws Cancelled
      delivered = "undone";
    }(a, b, delivered));
    co_await gb::sleep_for(1ms);
    EXPECT_TRUE(b.try_send(4));  // handed to the waiting select...
    selecting.cancel();          // ...which is cancelled before it resumes
    EXPECT_THROW(co_await selecting, gb::Cancelled);
  }(a, b, delivered));
  EXPECT_EQ(delivered, "b:4");
}

TEST(Select, two_selects_and_plain_receivers_on_the_same_channels_each_get_distinct_values) {
  gb::Channel<int> a{0};
  gb::Channel<int> b{0};
  std::vector<std::string> got;
  run_on_test_loop([](gb::Channel<int>& a, gb::Channel<int>& b, std::vector<std::string>& got) -> gb::Task<void> {
    auto first = gb::spawn(select_two(a, b));
    auto second = gb::spawn(select_two(b, a));  // the other lock order
    co_await gb::sleep_for(1ms);
    co_await a.send(1);  // the first waiter on a: the first select
    co_await a.send(2);  // the first select's case on a is dead now: the second select
    got.push_back(describe(co_await first));
    const Pick second_pick = co_await second;
    got.push_back(second_pick.index() == 1 ? "a:" + std::to_string(*std::get<1>(second_pick)) : "wrong");
    EXPECT_FALSE(b.try_send(3));  // nobody is left on b
  }(a, b, got));
  EXPECT_EQ(got, (std::vector<std::string>{"a:1", "a:2"}));
}

TEST_P(SelectOnEveryFlavor, the_same_channel_in_two_cases_is_locked_once_and_one_case_wins) {
  gb::Channel<int> a{2};
  ASSERT_TRUE(a.try_send(1));
  const Pick pick = run(select_two(a, a));
  EXPECT_EQ(std::visit([](const std::optional<int>& v) { return v.value_or(-1); }, pick), 1);
  EXPECT_EQ(a.size(), 0u);
}

TEST(Select, a_select_awaited_off_a_loop_is_refused) {
  gb::Channel<int> a{1};
  auto awaiter = gb::select(a.receive());
  EXPECT_THROW(awaiter.await_suspend(std::noop_coroutine()), std::logic_error);
}
