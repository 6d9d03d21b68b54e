// Tests of Channel (include/gearbox/sync/channel.hpp): capacity, size and the closed
// state, FIFO order across the ring, a full channel that suspends its sender and an empty
// one that suspends its receiver, waiting receivers and senders served in order, the
// rendezvous channel, try_send and try_receive, close (drain, then nullopt; waiting
// senders throw ChannelClosed), and move-only values. Cancellation, timeouts, the
// lifetimes of the values, fairness to other tasks and a stress test are in
// channel_cancel_test; the helpers they share are in sync_test_support.hpp. The cases that
// assert outcomes (FIFO through one task, drain then nullopt after close, waiting
// receivers and senders released by close, move-only values between two tasks) run on
// both flavors (ChannelOnEveryFlavor). Those that look at the channel or at the other
// tasks between two steps (a sender still suspended, a value handed to a waiting receiver
// rather than buffered, FIFO order among waiting tasks, a rendezvous) stay on the test
// loop (support/test_loop.hpp): a manual clock, nothing sleeps.
#include <gearbox/sync/channel.hpp>

#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <gearbox/combinators.hpp>
#include <gearbox/loop.hpp>
#include <gearbox/spawn.hpp>
#include <gearbox/task.hpp>
#include <gearbox/time.hpp>

#include <gtest/gtest.h>

#include "support/flavors.hpp"
#include "support/test_loop.hpp"
#include "sync_test_support.hpp"

namespace gb = gearbox;
using namespace std::chrono_literals;
using gearbox_test::describe;
using gearbox_test::note_when_run;
using gearbox_test::run_on_test_loop;

namespace {

using gearbox_test::receive_after;
using gearbox_test::receive_one;
using gearbox_test::send_after;
using gearbox_test::send_one;

class ChannelOnEveryFlavor : public gearbox_test::OnEveryTestEngine {};

// Sends each value in turn, counting the sends that have completed.
gb::Task<void> send_all(gb::Channel<int>& channel, std::vector<int> values, int& sent) {
  for (int value : values) {
    co_await channel.send(value);
    ++sent;
  }
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(Channel, ChannelOnEveryFlavor, gearbox_test::every_flavor(), gearbox_test::flavor_name);

TEST(Channel, reports_its_capacity_size_and_closed_state) {
  gb::Channel<int> channel{3};
  EXPECT_EQ(channel.capacity(), 3u);
  EXPECT_EQ(channel.size(), 0u);
  EXPECT_FALSE(channel.closed());
  EXPECT_TRUE(channel.try_send(1));
  EXPECT_EQ(channel.size(), 1u);
  channel.close();
  EXPECT_TRUE(channel.closed());
  EXPECT_EQ(gb::Channel<int>{0}.capacity(), 0u);
}

TEST_P(ChannelOnEveryFlavor, values_come_out_in_the_order_they_went_in_across_the_ring) {
  gb::Channel<int> channel{3};
  std::vector<int> got;
  run([](gb::Channel<int>& channel, std::vector<int>& got) -> gb::Task<void> {
    int next = 0;
    for (int round = 0; round < 5; ++round) {  // wraps around the ring several times
      co_await channel.send(next++);
      co_await channel.send(next++);
      got.push_back(*co_await channel.receive());
      co_await channel.send(next++);
      got.push_back(*co_await channel.receive());
      got.push_back(*co_await channel.receive());
    }
  }(channel, got));
  std::vector<int> expected;
  for (int i = 0; i < 15; ++i) expected.push_back(i);
  EXPECT_EQ(got, expected);
  EXPECT_EQ(channel.size(), 0u);
}

TEST(Channel, a_full_channel_suspends_the_sender_until_a_receive) {
  gb::Channel<int> channel{2};
  int sent = 0;
  run_on_test_loop([](gb::Channel<int>& channel, int& sent) -> gb::Task<void> {
    auto sender = gb::spawn(send_all(channel, {1, 2, 3, 4}, sent));
    co_await gb::sleep_for(10ms);
    EXPECT_EQ(sent, 2);
    EXPECT_EQ(channel.size(), 2u);
    EXPECT_EQ(co_await channel.receive(), 1);
    // The freed slot went to the waiting sender's value at once...
    EXPECT_EQ(channel.size(), 2u);
    EXPECT_EQ(sent, 2);
    co_await gb::sleep_for(10ms);
    EXPECT_EQ(sent, 3);  // ...and the sender resumed, then waits with its next value
    EXPECT_EQ(co_await channel.receive(), 2);
    EXPECT_EQ(co_await channel.receive(), 3);
    EXPECT_EQ(co_await channel.receive(), 4);
    co_await sender;
    EXPECT_EQ(sent, 4);
  }(channel, sent));
  EXPECT_EQ(channel.size(), 0u);
}

TEST(Channel, an_empty_channel_suspends_the_receiver_and_a_send_hands_the_value_to_it_directly) {
  gb::Channel<int> channel{4};
  std::vector<int> got;
  run_on_test_loop([](gb::Channel<int>& channel, std::vector<int>& got) -> gb::Task<void> {
    auto receiver = gb::spawn(receive_one(channel, 0ms, got));
    co_await gb::sleep_for(10ms);
    EXPECT_TRUE(got.empty());
    co_await channel.send(42);
    EXPECT_EQ(channel.size(), 0u) << "the value went to the receiver, not into the buffer";
    EXPECT_FALSE(channel.try_receive().has_value());
    co_await receiver;
  }(channel, got));
  EXPECT_EQ(got, std::vector<int>{42});
}

TEST(Channel, waiting_receivers_are_served_in_the_order_they_began_to_wait) {
  gb::Channel<int> channel{1};
  std::vector<int> got;
  run_on_test_loop([](gb::Channel<int>& channel, std::vector<int>& got) -> gb::Task<void> {
    // Receivers spawned with delays 3, 1, 2 ms begin to wait as the 2nd, 3rd and 1st.
    std::vector<gb::JoinHandle<void>> receivers;
    receivers.push_back(gb::spawn(receive_one(channel, 3ms, got)));
    receivers.push_back(gb::spawn(receive_one(channel, 1ms, got)));
    receivers.push_back(gb::spawn(receive_one(channel, 2ms, got)));
    co_await gb::sleep_for(10ms);
    for (int value : {10, 20, 30}) co_await channel.send(value);
    for (auto& receiver : receivers) co_await receiver;
  }(channel, got));
  // got is in wake order: the first to wait got 10, and woke first.
  EXPECT_EQ(got, (std::vector<int>{10, 20, 30}));
}

TEST(Channel, waiting_senders_are_served_in_the_order_they_began_to_wait) {
  gb::Channel<int> channel{1};
  std::vector<std::string> log;
  std::vector<int> got;
  run_on_test_loop([](gb::Channel<int>& channel, std::vector<std::string>& log,
                      std::vector<int>& got) -> gb::Task<void> {
    co_await channel.send(0);  // fills the channel
    std::vector<gb::JoinHandle<void>> senders;
    senders.push_back(gb::spawn(send_one(channel, 3ms, 3, log)));
    senders.push_back(gb::spawn(send_one(channel, 1ms, 1, log)));
    senders.push_back(gb::spawn(send_one(channel, 2ms, 2, log)));
    co_await gb::sleep_for(10ms);
    for (int i = 0; i < 4; ++i) got.push_back(*co_await channel.receive());
    for (auto& sender : senders) co_await sender;
  }(channel, log, got));
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(log, (std::vector<std::string>{"sent 1", "sent 2", "sent 3"}));
}

TEST(Channel, a_rendezvous_channel_completes_a_send_only_when_a_receiver_takes_the_value) {
  gb::Channel<int> channel{0};
  int sent = 0;
  std::vector<int> got;
  run_on_test_loop([](gb::Channel<int>& channel, int& sent, std::vector<int>& got) -> gb::Task<void> {
    EXPECT_FALSE(channel.try_send(1)) << "no receiver waits";
    auto sender = gb::spawn(send_all(channel, {1, 2}, sent));
    co_await gb::sleep_for(10ms);
    EXPECT_EQ(sent, 0);
    EXPECT_EQ(channel.size(), 0u);
    got.push_back(*co_await channel.receive());  // straight from the waiting sender
    co_await gb::sleep_for(10ms);
    EXPECT_EQ(sent, 1);
    std::optional<int> taken = channel.try_receive();  // a sender waits: succeeds
    EXPECT_TRUE(taken.has_value());
    got.push_back(taken.value_or(-1));
    co_await sender;
    EXPECT_FALSE(channel.try_receive().has_value()) << "no sender waits";
    auto receiver = gb::spawn(receive_one(channel, 0ms, got));
    co_await gb::sleep_for(1ms);
    EXPECT_TRUE(channel.try_send(3)) << "a receiver waits";
    co_await receiver;
  }(channel, sent, got));
  EXPECT_EQ(sent, 2);
  EXPECT_EQ(got, (std::vector<int>{1, 2, 3}));
}

TEST(Channel, try_send_and_try_receive_never_wait) {
  gb::Channel<int> channel{2};
  EXPECT_FALSE(channel.try_receive().has_value());
  EXPECT_TRUE(channel.try_send(1));
  EXPECT_TRUE(channel.try_send(2));
  EXPECT_FALSE(channel.try_send(3));
  EXPECT_EQ(channel.try_receive(), 1);
  EXPECT_EQ(channel.try_receive(), 2);
  EXPECT_FALSE(channel.try_receive().has_value());
}

TEST(Channel, a_try_send_that_fails_leaves_the_value_with_the_caller) {
  gb::Channel<std::unique_ptr<int>> channel{1};
  auto first = std::make_unique<int>(1);
  auto second = std::make_unique<int>(2);
  EXPECT_TRUE(channel.try_send(std::move(first)));
  EXPECT_EQ(first, nullptr);
  EXPECT_FALSE(channel.try_send(std::move(second)));
  ASSERT_NE(second, nullptr);
  channel.close();
  EXPECT_THROW(channel.try_send(std::move(second)), gb::ChannelClosed);
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(*second, 2);
}

TEST_P(ChannelOnEveryFlavor, close_lets_receivers_drain_the_buffer_then_gives_nullopt) {
  gb::Channel<int> channel{3};
  std::vector<int> got;
  run([](gb::Channel<int>& channel, std::vector<int>& got) -> gb::Task<void> {
    co_await channel.send(1);
    co_await channel.send(2);
    channel.close();
    while (std::optional<int> value = co_await channel.receive()) got.push_back(*value);
    EXPECT_FALSE((co_await channel.receive()).has_value()) << "nullopt again, not a hang";
    EXPECT_FALSE(channel.try_receive().has_value());
  }(channel, got));
  EXPECT_EQ(got, (std::vector<int>{1, 2}));
}

TEST_P(ChannelOnEveryFlavor, close_wakes_every_waiting_receiver_with_nullopt) {
  gb::Channel<int> channel{2};
  run([](gb::Channel<int>& channel) -> gb::Task<void> {
    auto a = gb::spawn(receive_after(channel, 0ms));
    auto b = gb::spawn(receive_after(channel, 0ms));
    co_await gb::sleep_for(10ms);
    channel.close();
    EXPECT_EQ(co_await a, -1);
    EXPECT_EQ(co_await b, -1);
  }(channel));
}

TEST_P(ChannelOnEveryFlavor, close_makes_waiting_senders_throw_channel_closed_and_keeps_the_buffered_values) {
  gb::Channel<int> channel{1};
  std::vector<std::string> log;
  std::vector<int> got;
  run([](gb::Channel<int>& channel, std::vector<std::string>& log, std::vector<int>& got) -> gb::Task<void> {
    co_await channel.send(1);  // fills the buffer
    auto second = gb::spawn(send_after(channel, 1ms, 2));  // waits
    auto third = gb::spawn(send_after(channel, 2ms, 3));   // waits
    co_await gb::sleep_for(10ms);
    channel.close();
    log.push_back(co_await second);
    log.push_back(co_await third);
    while (std::optional<int> value = co_await channel.receive()) got.push_back(*value);
  }(channel, log, got));
  EXPECT_EQ(log, (std::vector<std::string>{"closed 2", "closed 3"}));
  EXPECT_EQ(got, std::vector<int>{1});
}

TEST_P(ChannelOnEveryFlavor, a_send_after_close_throws_channel_closed_and_close_is_idempotent) {
  gb::Channel<int> channel{4};
  std::vector<std::string> log;
  run([](gb::Channel<int>& channel, std::vector<std::string>& log) -> gb::Task<void> {
    channel.close();
    channel.close();
    co_await send_one(channel, 0ms, 5, log);
    EXPECT_THROW(co_await channel.send(6), gb::ChannelClosed);
    EXPECT_THROW(channel.try_send(7), gb::ChannelClosed);
  }(channel, log));
  EXPECT_EQ(log, std::vector<std::string>{"closed 5"});
  EXPECT_TRUE(channel.closed());
  EXPECT_EQ(channel.size(), 0u);
}

TEST_P(ChannelOnEveryFlavor, move_only_values_pass_through_without_copies) {
  gb::Channel<std::unique_ptr<std::string>> channel{1};
  std::vector<std::string> got;
  run([](gb::Channel<std::unique_ptr<std::string>>& channel, std::vector<std::string>& got)
                       -> gb::Task<void> {
    auto consumer = gb::spawn([](gb::Channel<std::unique_ptr<std::string>>& channel,
                                 std::vector<std::string>& got) -> gb::Task<void> {
      while (auto value = co_await channel.receive()) got.push_back(**value);
    }(channel, got));
    for (const char* word : {"one", "two", "three"}) co_await channel.send(std::make_unique<std::string>(word));
    channel.close();
    co_await consumer;
  }(channel, got));
  EXPECT_EQ(got, (std::vector<std::string>{"one", "two", "three"}));
}
