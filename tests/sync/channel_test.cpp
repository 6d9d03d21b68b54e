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

#include "support/test_loop.hpp"

namespace gb = gearbox;
using namespace std::chrono_literals;
using gearbox_test::describe;
using gearbox_test::note_when_run;
using gearbox_test::run_on_test_loop;

namespace {

// Sends each value in turn, counting the sends that have completed.
gb::Task<void> send_all(gb::Channel<int>& channel, std::vector<int> values, int& sent) {
  for (int value : values) {
    co_await channel.send(value);
    ++sent;
  }
}

// Sleeps `delay`, then receives once and appends what it got (-1 for nullopt) to `got`.
gb::Task<void> receive_one(gb::Channel<int>& channel, std::chrono::milliseconds delay, std::vector<int>& got) {
  co_await gb::sleep_for(delay);
  std::optional<int> value = co_await channel.receive();
  got.push_back(value ? *value : -1);
}

// Sleeps `delay`, then sends `value`; records "sent" or the name of the exception.
gb::Task<void> send_one(gb::Channel<int>& channel, std::chrono::milliseconds delay, int value,
                        std::vector<std::string>& log) {
  co_await gb::sleep_for(delay);
  try {
    co_await channel.send(value);
    log.push_back("sent " + std::to_string(value));
  } catch (const gb::ChannelClosed&) {
    log.push_back("closed " + std::to_string(value));
  }
}

// A move-only value that counts its lives, to prove the channel neither leaks a value nor
// destroys one twice, nor copies (it cannot: the copy constructor is deleted).
class Counted {
public:
  static inline int s_alive = 0;
  static inline int s_bad_destroys = 0;  // destructor run on a dead object

  explicit Counted(int value) noexcept : m_value(value) { ++s_alive; }
  Counted(Counted&& other) noexcept : m_value(other.m_value) {
    other.m_value = -1;
    ++s_alive;
  }
  Counted& operator=(Counted&& other) noexcept {
    m_value = other.m_value;
    other.m_value = -1;
    return *this;
  }
  Counted(const Counted&) = delete;
  Counted& operator=(const Counted&) = delete;
  ~Counted() {
    if (m_marker != k_alive) ++s_bad_destroys;
    m_marker = k_dead;
    --s_alive;
  }
  int value() const noexcept { return m_value; }

  static void reset() noexcept { s_alive = s_bad_destroys = 0; }

private:
  static constexpr std::uint32_t k_alive = 0xA11CE;
  static constexpr std::uint32_t k_dead = 0xDEAD;
  int m_value;
  std::uint32_t m_marker = k_alive;
};

}  // namespace

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

TEST(Channel, values_come_out_in_the_order_they_went_in_across_the_ring) {
  gb::Channel<int> channel{3};
  std::vector<int> got;
  run_on_test_loop([](gb::Channel<int>& channel, std::vector<int>& got) -> gb::Task<void> {
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

TEST(Channel, close_lets_receivers_drain_the_buffer_then_gives_nullopt) {
  gb::Channel<int> channel{3};
  std::vector<int> got;
  run_on_test_loop([](gb::Channel<int>& channel, std::vector<int>& got) -> gb::Task<void> {
    co_await channel.send(1);
    co_await channel.send(2);
    channel.close();
    while (std::optional<int> value = co_await channel.receive()) got.push_back(*value);
    EXPECT_FALSE((co_await channel.receive()).has_value()) << "nullopt again, not a hang";
    EXPECT_FALSE(channel.try_receive().has_value());
  }(channel, got));
  EXPECT_EQ(got, (std::vector<int>{1, 2}));
}

TEST(Channel, close_wakes_every_waiting_receiver_with_nullopt) {
  gb::Channel<int> channel{2};
  std::vector<int> got;
  run_on_test_loop([](gb::Channel<int>& channel, std::vector<int>& got) -> gb::Task<void> {
    auto a = gb::spawn(receive_one(channel, 0ms, got));
    auto b = gb::spawn(receive_one(channel, 0ms, got));
    co_await gb::sleep_for(10ms);
    channel.close();
    co_await a;
    co_await b;
  }(channel, got));
  EXPECT_EQ(got, (std::vector<int>{-1, -1}));
}

TEST(Channel, close_makes_waiting_senders_throw_channel_closed_and_keeps_the_buffered_values) {
  gb::Channel<int> channel{1};
  std::vector<std::string> log;
  std::vector<int> got;
  run_on_test_loop([](gb::Channel<int>& channel, std::vector<std::string>& log,
                      std::vector<int>& got) -> gb::Task<void> {
    auto first = gb::spawn(send_one(channel, 1ms, 1, log));   // fills the buffer
    auto second = gb::spawn(send_one(channel, 2ms, 2, log));  // waits
    auto third = gb::spawn(send_one(channel, 3ms, 3, log));   // waits
    co_await gb::sleep_for(10ms);
    channel.close();
    co_await first;
    co_await second;
    co_await third;
    while (std::optional<int> value = co_await channel.receive()) got.push_back(*value);
  }(channel, log, got));
  EXPECT_EQ(log, (std::vector<std::string>{"sent 1", "closed 2", "closed 3"}));
  EXPECT_EQ(got, std::vector<int>{1});
}

TEST(Channel, a_send_after_close_throws_channel_closed_and_close_is_idempotent) {
  gb::Channel<int> channel{4};
  std::vector<std::string> log;
  run_on_test_loop([](gb::Channel<int>& channel, std::vector<std::string>& log) -> gb::Task<void> {
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

TEST(Channel, move_only_values_pass_through_without_copies) {
  gb::Channel<std::unique_ptr<std::string>> channel{1};
  std::vector<std::string> got;
  run_on_test_loop([](gb::Channel<std::unique_ptr<std::string>>& channel, std::vector<std::string>& got)
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

TEST(Channel, a_receiver_cancelled_while_waiting_throws_cancelled_and_the_next_receiver_gets_the_value) {
  gb::Channel<int> channel{1};
  std::vector<int> got;
  run_on_test_loop([](gb::Channel<int>& channel, std::vector<int>& got) -> gb::Task<void> {
    auto first = gb::spawn(receive_one(channel, 1ms, got));
    auto second = gb::spawn(receive_one(channel, 2ms, got));
    co_await gb::sleep_for(10ms);
    first.cancel();
    co_await channel.send(7);  // in the same turn: the cancelled receiver has left the queue
    EXPECT_THROW(co_await first, gb::Cancelled);
    co_await second;
    EXPECT_EQ(channel.size(), 0u);
  }(channel, got));
  EXPECT_EQ(got, std::vector<int>{7});
}

TEST(Channel, a_sender_cancelled_while_waiting_throws_cancelled_and_its_value_never_enters_the_channel) {
  gb::Channel<int> channel{1};
  std::vector<std::string> log;
  std::vector<int> got;
  run_on_test_loop([](gb::Channel<int>& channel, std::vector<std::string>& log,
                      std::vector<int>& got) -> gb::Task<void> {
    co_await channel.send(1);
    auto cancelled = gb::spawn(send_one(channel, 1ms, 2, log));
    auto next = gb::spawn(send_one(channel, 2ms, 3, log));
    co_await gb::sleep_for(10ms);
    cancelled.cancel();
    EXPECT_EQ(channel.size(), 1u);
    // In the same turn: the cancelled sender has left the queue, so the freed slot goes
    // to the next sender's value.
    got.push_back(*co_await channel.receive());
    EXPECT_THROW(co_await cancelled, gb::Cancelled);
    got.push_back(*co_await channel.receive());
    co_await next;
    channel.close();
    EXPECT_FALSE((co_await channel.receive()).has_value());
  }(channel, log, got));
  EXPECT_EQ(got, (std::vector<int>{1, 3}));
  EXPECT_EQ(log, std::vector<std::string>{"sent 3"});
}

TEST(Channel, a_cancel_that_arrives_after_a_value_was_handed_to_the_receiver_still_delivers_it) {
  gb::Channel<int> channel{0};
  std::optional<int> delivered;
  run_on_test_loop([](gb::Channel<int>& channel, std::optional<int>& delivered) -> gb::Task<void> {
    auto receiver = gb::spawn([](gb::Channel<int>& channel, std::optional<int>& delivered) -> gb::Task<void> {
      delivered = co_await channel.receive();
      co_await gb::yield_now();  // throws Cancelled
      delivered.reset();
    }(channel, delivered));
    co_await gb::sleep_for(1ms);
    EXPECT_TRUE(channel.try_send(9));  // handed to the waiting receiver...
    receiver.cancel();                 // ...which is cancelled before it resumes
    EXPECT_THROW(co_await receiver, gb::Cancelled);
  }(channel, delivered));
  EXPECT_EQ(delivered, 9);
}

TEST(Channel, a_cancel_that_arrives_after_a_send_was_taken_does_not_undo_the_send) {
  gb::Channel<int> channel{1};
  bool send_returned = false;
  std::vector<int> got;
  run_on_test_loop([](gb::Channel<int>& channel, bool& send_returned, std::vector<int>& got) -> gb::Task<void> {
    co_await channel.send(1);
    auto sender = gb::spawn([](gb::Channel<int>& channel, bool& send_returned) -> gb::Task<void> {
      co_await channel.send(2);
      send_returned = true;
      co_await gb::yield_now();  // throws Cancelled
    }(channel, send_returned));
    co_await gb::sleep_for(1ms);
    got.push_back(*channel.try_receive());  // moves the waiting sender's value into the buffer...
    sender.cancel();                        // ...and then the sender is cancelled
    EXPECT_THROW(co_await sender, gb::Cancelled);
    got.push_back(*channel.try_receive());
  }(channel, send_returned, got));
  EXPECT_TRUE(send_returned);
  EXPECT_EQ(got, (std::vector<int>{1, 2}));
}

TEST(Channel, a_cancelled_task_neither_sends_nor_receives_even_when_the_channel_is_ready) {
  gb::Channel<int> channel{2};
  gb::Channel<int> never{0};
  int steps = 0;
  run_on_test_loop([](gb::Channel<int>& channel, gb::Channel<int>& never, int& steps) -> gb::Task<void> {
    co_await channel.send(1);
    auto task = gb::spawn([](gb::Channel<int>& channel, gb::Channel<int>& never, int& steps) -> gb::Task<void> {
      try {
        co_await never.receive();
      } catch (const gb::Cancelled&) {
        ++steps;
      }
      try {
        co_await channel.send(2);  // room in the buffer, but the task is cancelled
      } catch (const gb::Cancelled&) {
        ++steps;
      }
      co_await channel.receive();  // a value is ready, but the task is cancelled
      ++steps;
    }(channel, never, steps));
    co_await gb::sleep_for(1ms);
    task.cancel();
    EXPECT_THROW(co_await task, gb::Cancelled);
  }(channel, never, steps));
  EXPECT_EQ(steps, 2);
  EXPECT_EQ(channel.size(), 1u);
  EXPECT_EQ(channel.try_receive(), 1);
}

TEST(Channel, a_receive_can_be_given_a_timeout_and_the_channel_stays_intact) {
  gb::Channel<int> channel{0};
  std::vector<int> got;
  run_on_test_loop([](gb::Channel<int>& channel, std::vector<int>& got) -> gb::Task<void> {
    EXPECT_THROW(co_await gb::timeout(5ms, channel.receive()), gb::TimeoutError);
    EXPECT_FALSE(channel.try_send(1)) << "the timed-out receive no longer waits";
    auto receiver = gb::spawn(receive_one(channel, 0ms, got));
    co_await gb::sleep_for(1ms);
    co_await gb::timeout(5ms, channel.send(2));
    co_await receiver;
  }(channel, got));
  EXPECT_EQ(got, std::vector<int>{2});
}

TEST(Channel, no_value_leaks_or_dies_twice_through_sends_receives_close_and_cancellation) {
  Counted::reset();
  std::vector<int> got;
  {
    gb::Channel<Counted> channel{2};
    run_on_test_loop([](gb::Channel<Counted>& channel, std::vector<int>& got) -> gb::Task<void> {
      // Buffered, handed over directly, taken from waiting senders.
      co_await channel.send(Counted{1});
      co_await channel.send(Counted{2});
      auto waiting_sender = gb::spawn([](gb::Channel<Counted>& channel) -> gb::Task<void> {
        co_await channel.send(Counted{3});
      }(channel));
      auto cancelled_sender = gb::spawn([](gb::Channel<Counted>& channel) -> gb::Task<void> {
        co_await gb::sleep_for(1ms);
        co_await channel.send(Counted{4});
      }(channel));
      auto late_sender = gb::spawn([](gb::Channel<Counted>& channel) -> gb::Task<void> {
        co_await gb::sleep_for(2ms);
        co_await channel.send(Counted{5});
      }(channel));
      co_await gb::sleep_for(10ms);
      got.push_back(channel.try_receive()->value());  // 1; sender 3's value moves in
      co_await waiting_sender;
      cancelled_sender.cancel();
      EXPECT_THROW(co_await cancelled_sender, gb::Cancelled);
      got.push_back((*co_await channel.receive()).value());  // 2; sender 5's value moves in
      co_await gb::yield_now();
      EXPECT_TRUE(late_sender.done());
      co_await late_sender;
      auto waiting_sender_2 = gb::spawn([](gb::Channel<Counted>& channel) -> gb::Task<void> {
        co_await channel.send(Counted{6});  // the channel holds 3 and 5: waits
      }(channel));
      co_await gb::sleep_for(1ms);
      channel.close();  // 6 is refused and destroyed with its awaiter
      EXPECT_THROW(co_await waiting_sender_2, gb::ChannelClosed);
      got.push_back((*co_await channel.receive()).value());  // 3
      // 5 stays buffered: the channel's destructor must destroy it.
    }(channel, got));
    EXPECT_EQ(channel.size(), 1u);
    EXPECT_GE(Counted::s_alive, 1);
  }
  EXPECT_EQ(got, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(Counted::s_alive, 0) << "a value leaked";
  EXPECT_EQ(Counted::s_bad_destroys, 0) << "a value was destroyed twice";
}

TEST(Channel, values_held_by_cancelled_or_abandoned_receivers_are_not_leaked) {
  Counted::reset();
  {
    gb::Channel<Counted> channel{0};
    run_on_test_loop([](gb::Channel<Counted>& channel) -> gb::Task<void> {
      auto receiver = gb::spawn([](gb::Channel<Counted>& channel) -> gb::Task<void> {
        auto value = co_await channel.receive();
        co_await gb::sleep_for(1h);
      }(channel));
      co_await gb::sleep_for(1ms);
      EXPECT_TRUE(channel.try_send(Counted{1}));
      receiver.cancel();
      EXPECT_THROW(co_await receiver, gb::Cancelled);
      // A receiver still waiting when the loop ends is cancelled by ~Loop.
      auto abandoned = gb::spawn([](gb::Channel<Counted>& channel) -> gb::Task<void> {
        co_await channel.receive();
      }(channel));
      co_await gb::yield_now();
      abandoned.detach();
    }(channel));
  }
  EXPECT_EQ(Counted::s_alive, 0);
  EXPECT_EQ(Counted::s_bad_destroys, 0);
}

TEST(Channel, a_task_receiving_from_a_full_channel_in_a_loop_still_lets_another_task_run) {
  gb::Channel<int> channel{100'000};
  for (int i = 0; i < 100'000; ++i) ASSERT_TRUE(channel.try_send(std::move(i)));
  int spins = -1;
  run_on_test_loop([](gb::Channel<int>& channel, int& spins) -> gb::Task<void> {
    bool stop = false;
    auto spinner = gb::spawn([](gb::Channel<int>& channel, const bool& stop) -> gb::Task<int> {
      int n = 0;
      while (!stop) {
        if (!co_await channel.receive()) break;  // always ready: never waits for a value
        ++n;
      }
      co_return n;
    }(channel, stop));
    auto stopper = gb::spawn(note_when_run(stop));
    spins = co_await spinner;
    co_await stopper;
  }(channel, spins));
  EXPECT_GT(spins, 0);
  EXPECT_LE(spins, static_cast<int>(gb::detail::k_resume_budget) + 1);
  EXPECT_EQ(channel.size(), 100'000u - static_cast<unsigned>(spins));
}

TEST(Channel, a_task_sending_into_a_channel_with_room_in_a_loop_still_lets_another_task_run) {
  gb::Channel<int> channel{100'000};
  int spins = -1;
  run_on_test_loop([](gb::Channel<int>& channel, int& spins) -> gb::Task<void> {
    bool stop = false;
    auto spinner = gb::spawn([](gb::Channel<int>& channel, const bool& stop) -> gb::Task<int> {
      int n = 0;
      while (!stop && n < 100'000) {
        co_await channel.send(n);  // always room: never waits
        ++n;
      }
      co_return n;
    }(channel, stop));
    auto stopper = gb::spawn(note_when_run(stop));
    spins = co_await spinner;
    co_await stopper;
  }(channel, spins));
  EXPECT_GT(spins, 0);
  EXPECT_LE(spins, static_cast<int>(gb::detail::k_resume_budget) + 1);
  EXPECT_EQ(channel.size(), static_cast<unsigned>(spins)) << "every send that returned took place, once";
}

// Many producers and consumers with random yields: every message arrives exactly once,
// and each consumer sees each producer's messages in the order they were sent.
class ChannelStress : public ::testing::TestWithParam<std::size_t> {};

TEST_P(ChannelStress, many_producers_and_consumers_deliver_every_message_exactly_once) {
  constexpr int k_producers = 8;
  constexpr int k_consumers = 8;
  constexpr std::uint32_t k_messages = 100'000;
  constexpr std::uint32_t k_per_producer = k_messages / k_producers;
  static_assert(k_per_producer * k_producers == k_messages);

  gb::Channel<std::unique_ptr<std::uint32_t>> channel{GetParam()};
  std::vector<int> received(k_messages, 0);
  std::vector<std::vector<std::int64_t>> last_seen(k_consumers, std::vector<std::int64_t>(k_producers, -1));
  int out_of_order = 0;

  using Chan = gb::Channel<std::unique_ptr<std::uint32_t>>;
  run_on_test_loop([](Chan& channel, std::vector<int>& received, std::vector<std::vector<std::int64_t>>& last_seen,
                      int& out_of_order) -> gb::Task<void> {
    std::vector<gb::JoinHandle<void>> producers;
    std::vector<gb::JoinHandle<void>> consumers;
    for (int c = 0; c < k_consumers; ++c) {
      consumers.push_back(gb::spawn([](Chan& channel, std::vector<int>& received, std::vector<std::int64_t>& last,
                                       int& out_of_order, unsigned seed) -> gb::Task<void> {
        std::minstd_rand random{seed};
        while (auto message = co_await channel.receive()) {
          const std::uint32_t id = **message;
          ++received[id];
          const auto producer = id / k_per_producer;
          if (static_cast<std::int64_t>(id) <= last[producer]) ++out_of_order;
          last[producer] = id;
          if (random() % 3 == 0) co_await gb::yield_now();
        }
      }(channel, received, last_seen[c], out_of_order, static_cast<unsigned>(1000 + c))));
    }
    for (int p = 0; p < k_producers; ++p) {
      producers.push_back(gb::spawn([](Chan& channel, std::uint32_t first, unsigned seed) -> gb::Task<void> {
        std::minstd_rand random{seed};
        for (std::uint32_t id = first; id < first + k_per_producer; ++id) {
          co_await channel.send(std::make_unique<std::uint32_t>(id));
          if (random() % 3 == 0) co_await gb::yield_now();
        }
      }(channel, static_cast<std::uint32_t>(p) * k_per_producer, static_cast<unsigned>(1 + p))));
    }
    for (auto& producer : producers) co_await producer;
    channel.close();
    for (auto& consumer : consumers) co_await consumer;
  }(channel, received, last_seen, out_of_order));

  int missing = 0;
  int duplicated = 0;
  for (int count : received) {
    if (count == 0) ++missing;
    if (count > 1) ++duplicated;
  }
  EXPECT_EQ(missing, 0);
  EXPECT_EQ(duplicated, 0);
  EXPECT_EQ(out_of_order, 0);
  EXPECT_EQ(channel.size(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Channel, ChannelStress, ::testing::Values(std::size_t{0}, std::size_t{1}, std::size_t{64}),
                         [](const ::testing::TestParamInfo<std::size_t>& info) {
                           return "capacity_" + std::to_string(info.param);
                         });
