// Tests of Channel (include/gearbox/sync/channel.hpp) under cancellation: a receiver or
// sender cancelled while it waits, cancels that lose the race to a hand-off, a cancelled
// task that neither sends nor receives, and a receive with a timeout; then that no value
// leaks or dies twice (through close, cancellation and abandoned receivers), that a task
// looping on a ready channel still lets other tasks run, and a stress test of many
// producers and consumers over several capacities. The basic sending, receiving and
// closing are in channel_test; the helpers they share are in sync_test_support.hpp. The
// cases that assert outcomes (a cancelled task neither sends nor receives, a timed-out
// receive leaves the channel intact, the stress test's every message once and in each
// producer's order) run on both flavors (ChannelCancelOnEveryFlavor). Those whose cancel
// must land in a given turn (while the task waits, in the same turn as a hand-off, or
// just after one) or that count the lives of values handed between tasks at given points
// stay on the test loop (support/test_loop.hpp): a manual clock, nothing sleeps; so do
// the resume-budget cases of a task that never waits.
#include <gearbox/sync/channel.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <gearbox/combinators.hpp>
#include <gearbox/error.hpp>
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

using gearbox_test::receive_one;
using gearbox_test::send_one;

class ChannelCancelOnEveryFlavor : public gearbox_test::OnEveryTestEngine {};

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

INSTANTIATE_TEST_SUITE_P(Channel, ChannelCancelOnEveryFlavor, gearbox_test::every_flavor(), gearbox_test::flavor_name);

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

TEST_P(ChannelCancelOnEveryFlavor, a_cancelled_task_neither_sends_nor_receives_even_when_the_channel_is_ready) {
  gb::Channel<int> channel{2};
  gb::Channel<int> never{0};
  int steps = 0;
  run([](gb::Channel<int>& channel, gb::Channel<int>& never, int& steps) -> gb::Task<void> {
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

TEST_P(ChannelCancelOnEveryFlavor, a_receive_can_be_given_a_timeout_and_the_channel_stays_intact) {
  gb::Channel<int> channel{0};
  std::vector<int> got;
  run([](gb::Channel<int>& channel, std::vector<int>& got) -> gb::Task<void> {
    EXPECT_THROW(co_await gb::timeout(5ms, channel.receive()), gb::TimeoutError);
    EXPECT_FALSE(channel.try_send(1)) << "the timed-out receive no longer waits";
    auto receiver = gb::spawn(receive_one(channel, 0ms, got));
    co_await gb::sleep_for(1ms);
    co_await gb::timeout(10s, channel.send(2));  // a limit that an honest run never reaches
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

// Many producers and consumers with random yields, over capacities 0, 1 and 64: every
// message arrives exactly once, and each consumer sees each producer's messages in the
// order they were sent.
TEST_P(ChannelCancelOnEveryFlavor, many_producers_and_consumers_deliver_every_message_exactly_once) {
  constexpr int k_producers = 8;
  constexpr int k_consumers = 8;
  constexpr std::uint32_t k_messages = 100'000;
  constexpr std::uint32_t k_per_producer = k_messages / k_producers;
  static_assert(k_per_producer * k_producers == k_messages);
  using Chan = gb::Channel<std::unique_ptr<std::uint32_t>>;

  for (const std::size_t capacity : {std::size_t{0}, std::size_t{1}, std::size_t{64}}) {
    SCOPED_TRACE("capacity " + std::to_string(capacity));
    Chan channel{capacity};
    std::vector<std::atomic<int>> received(k_messages);  // consumers on any worker count here
    std::vector<std::vector<std::int64_t>> last_seen(k_consumers, std::vector<std::int64_t>(k_producers, -1));
    std::atomic<int> out_of_order{0};

    run([](Chan& channel, std::vector<std::atomic<int>>& received, std::vector<std::vector<std::int64_t>>& last_seen,
           std::atomic<int>& out_of_order) -> gb::Task<void> {
      std::vector<gb::JoinHandle<void>> producers;
      std::vector<gb::JoinHandle<void>> consumers;
      for (int c = 0; c < k_consumers; ++c) {
        consumers.push_back(gb::spawn([](Chan& channel, std::vector<std::atomic<int>>& received,
                                         std::vector<std::int64_t>& last, std::atomic<int>& out_of_order,
                                         unsigned seed) -> gb::Task<void> {
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
    for (const std::atomic<int>& count : received) {
      if (count == 0) ++missing;
      if (count > 1) ++duplicated;
    }
    EXPECT_EQ(missing, 0);
    EXPECT_EQ(duplicated, 0);
    EXPECT_EQ(out_of_order.load(), 0);
    EXPECT_EQ(channel.size(), 0u);
  }
}
