// Event, Mutex, Semaphore, Channel and select on gb::Runtime: tasks on several workers use
// one primitive at once. Outcomes only, never timings, each test repeated over 1, 2, 4 and
// 8 workers (more workers than cores too: a preempted lock holder must not break them).
// What is asserted could fail: a lost wake-up (the hang guard turns it into a failure), a
// mutex that lets two tasks in, a permit or a value lost or delivered twice, a waker that
// touches a primitive its woken task has already destroyed (ASan), a data race (TSan).
#include <gearbox/runtime.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gearbox/error.hpp>
#include <gearbox/join_handle.hpp>
#include <gearbox/spawn.hpp>
#include <gearbox/sync/channel.hpp>
#include <gearbox/sync/event.hpp>
#include <gearbox/sync/mutex.hpp>
#include <gearbox/sync/select.hpp>
#include <gearbox/sync/semaphore.hpp>
#include <gearbox/task.hpp>
#include <gearbox/time.hpp>

#include <gtest/gtest.h>

#include "support/runtime_threads.hpp"

namespace gb = gearbox;

namespace {

class RuntimeSync : public gearbox_test::OnRuntimeThreads {};

template <class T>
gb::Task<void> join_all(std::vector<gb::JoinHandle<T>> handles) {
  for (auto& handle : handles) co_await handle;
}

// ---- Mutex -----------------------------------------------------------------------------

struct Section {
  gb::Mutex mutex;
  std::atomic<int> inside{0};   // tasks in the critical section now
  std::atomic<int> overlaps{0};  // entries that found another task inside
  long counter = 0;              // plain: only the mutex protects it
};

gb::Task<void> enter_repeatedly(Section& section, int times) {
  for (int i = 0; i < times; ++i) {
    auto guard = co_await section.mutex.lock();
    if (section.inside.fetch_add(1, std::memory_order_relaxed) != 0) section.overlaps.fetch_add(1);
    const long seen = section.counter;
    co_await gb::yield_now();  // suspends holding the lock; may resume on another worker
    section.counter = seen + 1;
    section.inside.fetch_sub(1, std::memory_order_relaxed);
  }
}

gb::Task<void> contend_for_a_mutex(Section& section, int tasks, int times) {
  std::vector<gb::JoinHandle<void>> handles;
  for (int i = 0; i < tasks; ++i) handles.push_back(gb::spawn(enter_repeatedly(section, times)));
  co_await join_all(std::move(handles));
}

TEST_P(RuntimeSync, a_mutex_lets_one_task_in_at_a_time_across_workers_and_loses_no_update) {
  Section section;
  rt.run(contend_for_a_mutex(section, 16, 200));
  EXPECT_EQ(section.counter, 16 * 200);
  EXPECT_EQ(section.overlaps.load(), 0);
  EXPECT_FALSE(section.mutex.is_locked());
}

// ---- Semaphore -------------------------------------------------------------------------

struct Slots {
  explicit Slots(std::size_t permits) : semaphore(permits) {}
  gb::Semaphore semaphore;
  std::atomic<int> in_use{0};
  std::atomic<int> most_in_use{0};
  std::atomic<int> done{0};
};

gb::Task<void> use_a_slot(Slots& slots, int times) {
  for (int i = 0; i < times; ++i) {
    auto permit = co_await slots.semaphore.acquire_guard();
    const int now = slots.in_use.fetch_add(1, std::memory_order_relaxed) + 1;
    int most = slots.most_in_use.load(std::memory_order_relaxed);
    while (now > most && !slots.most_in_use.compare_exchange_weak(most, now, std::memory_order_relaxed)) {
    }
    co_await gb::yield_now();
    slots.in_use.fetch_sub(1, std::memory_order_relaxed);
    slots.done.fetch_add(1, std::memory_order_relaxed);
  }
}

gb::Task<void> share_slots(Slots& slots, int tasks, int times) {
  std::vector<gb::JoinHandle<void>> handles;
  for (int i = 0; i < tasks; ++i) handles.push_back(gb::spawn(use_a_slot(slots, times)));
  co_await join_all(std::move(handles));
}

TEST_P(RuntimeSync, a_semaphore_bounds_tasks_on_every_worker_and_gets_every_permit_back) {
  Slots slots{3};
  rt.run(share_slots(slots, 24, 100));
  EXPECT_EQ(slots.done.load(), 24 * 100);
  EXPECT_LE(slots.most_in_use.load(), 3);
  EXPECT_GE(slots.most_in_use.load(), 1);
  EXPECT_EQ(slots.semaphore.available(), 3u);
}

// Acquirers cancelled at arbitrary points (waiting, or just handed a permit) must neither
// keep nor lose a permit.
gb::Task<void> acquire_and_hold(gb::Semaphore& semaphore) {
  auto permit = co_await semaphore.acquire_guard();
  co_await gb::yield_now();
}

gb::Task<void> cancel_acquirers(gb::Semaphore& semaphore, int rounds) {
  for (int round = 0; round < rounds; ++round) {
    std::vector<gb::JoinHandle<void>> handles;
    for (int i = 0; i < 8; ++i) handles.push_back(gb::spawn(acquire_and_hold(semaphore)));
    co_await gb::yield_now();
    for (std::size_t i = 0; i < handles.size(); i += 2) handles[i].cancel();
    for (auto& handle : handles) {
      try {
        co_await handle;
      } catch (const gb::Cancelled&) {
      }
    }
  }
}

TEST_P(RuntimeSync, cancelling_acquirers_while_permits_are_handed_over_loses_no_permit) {
  gb::Semaphore semaphore{2};
  rt.run(cancel_acquirers(semaphore, 200));
  EXPECT_EQ(semaphore.available(), 2u);
}

// ---- Event -----------------------------------------------------------------------------

gb::Task<void> wait_then_count(gb::Event& event, std::atomic<int>& woken) {
  co_await event.wait();
  woken.fetch_add(1, std::memory_order_relaxed);
}

gb::Task<void> broadcast(gb::Event& event, std::atomic<int>& woken, int waiters) {
  std::vector<gb::JoinHandle<void>> handles;
  for (int i = 0; i < waiters; ++i) handles.push_back(gb::spawn(wait_then_count(event, woken)));
  for (int i = 0; i < 3; ++i) co_await gb::yield_now();  // let some of them wait
  event.set();
  co_await join_all(std::move(handles));
}

TEST_P(RuntimeSync, an_event_wakes_every_waiter_on_every_worker) {
  gb::Event event;
  std::atomic<int> woken{0};
  rt.run(broadcast(event, woken, 500));
  EXPECT_EQ(woken.load(), 500);
}

gb::Task<void> set_later(gb::Event& event) {
  co_await gb::yield_now();
  event.set();
}

// The event lives in the waiter's frame: it is destroyed as soon as the wait returns,
// possibly while set() still runs on another worker. ASan sees any touch after the wake.
gb::Task<int> own_an_event_set_elsewhere(int rounds) {
  int returned = 0;
  for (int i = 0; i < rounds; ++i) {
    auto event = std::make_unique<gb::Event>();
    auto setter = gb::spawn(set_later(*event));
    co_await event->wait();
    event.reset();
    ++returned;
    co_await setter;
  }
  co_return returned;
}

TEST_P(RuntimeSync, a_task_may_destroy_an_event_as_soon_as_its_wait_returns) {
  EXPECT_EQ(rt.run(own_an_event_set_elsewhere(2'000)), 2'000);
}

gb::Task<void> signal_from_a_plain_thread(gb::Event& event, std::atomic<int>& woken) {
  std::vector<gb::JoinHandle<void>> handles;
  for (int i = 0; i < 50; ++i) handles.push_back(gb::spawn(wait_then_count(event, woken)));
  std::thread setter([&event] { event.set(); });
  co_await join_all(std::move(handles));
  setter.join();
}

TEST_P(RuntimeSync, an_event_may_be_set_from_a_thread_outside_the_runtime) {
  gb::Event event;
  std::atomic<int> woken{0};
  rt.run(signal_from_a_plain_thread(event, woken));
  EXPECT_EQ(woken.load(), 50);
}

// ---- Channel ---------------------------------------------------------------------------

struct Tally {
  explicit Tally(int values) : seen(static_cast<std::size_t>(values)) {}
  std::vector<std::atomic<int>> seen;  // how many times each value was received
  std::atomic<long> received{0};
  void note(int value) {
    seen[static_cast<std::size_t>(value)].fetch_add(1, std::memory_order_relaxed);
    received.fetch_add(1, std::memory_order_relaxed);
  }
  int delivered_other_than_once() const {
    return static_cast<int>(std::count_if(seen.begin(), seen.end(), [](const std::atomic<int>& n) { return n.load() != 1; }));
  }
};

gb::Task<void> produce(gb::Channel<int>& channel, int first, int count) {
  for (int i = first; i < first + count; ++i) co_await channel.send(int{i});
}

gb::Task<void> consume(gb::Channel<int>& channel, Tally& tally) {
  while (std::optional<int> value = co_await channel.receive()) tally.note(*value);
}

gb::Task<void> many_to_many(gb::Channel<int>& channel, Tally& tally, int producers, int per_producer, int consumers) {
  std::vector<gb::JoinHandle<void>> senders;
  std::vector<gb::JoinHandle<void>> receivers;
  for (int i = 0; i < consumers; ++i) receivers.push_back(gb::spawn(consume(channel, tally)));
  for (int i = 0; i < producers; ++i) senders.push_back(gb::spawn(produce(channel, i * per_producer, per_producer)));
  co_await join_all(std::move(senders));
  channel.close();
  co_await join_all(std::move(receivers));
}

TEST_P(RuntimeSync, a_channel_between_producers_and_consumers_on_every_worker_delivers_each_value_once) {
  for (const std::size_t capacity : {std::size_t{0}, std::size_t{1}, std::size_t{32}}) {
    gb::Channel<int> channel{capacity};
    Tally tally{4 * 2'000};
    rt.run(many_to_many(channel, tally, 4, 2'000, 4));
    EXPECT_EQ(tally.received.load(), 4 * 2'000) << "capacity " << capacity;
    EXPECT_EQ(tally.delivered_other_than_once(), 0) << "capacity " << capacity;
  }
}

// Receivers cancelled at arbitrary points: a value handed to one is still delivered to it
// (it records it before its next await), a cancelled wait takes none, so every value sent
// is recorded exactly once.
gb::Task<void> consume_until_cancelled(gb::Channel<int>& channel, Tally& tally) {
  while (std::optional<int> value = co_await channel.receive()) {
    tally.note(*value);
    co_await gb::yield_now();
  }
}

gb::Task<void> churn_receivers(gb::Channel<int>& channel, Tally& tally, int values) {
  auto producer = gb::spawn(produce(channel, 0, values));
  std::vector<gb::JoinHandle<void>> receivers;
  for (int i = 0; i < 4; ++i) receivers.push_back(gb::spawn(consume_until_cancelled(channel, tally)));
  for (std::size_t turn = 0; !producer.done(); ++turn) {
    co_await gb::yield_now();
    auto& victim = receivers[turn % receivers.size()];
    victim.cancel();
    try {
      co_await victim;
    } catch (const gb::Cancelled&) {
    }
    victim = gb::spawn(consume_until_cancelled(channel, tally));
  }
  co_await producer;
  channel.close();
  co_await join_all(std::move(receivers));
}

TEST_P(RuntimeSync, receivers_cancelled_while_values_arrive_lose_no_value) {
  gb::Channel<int> channel{0};
  Tally tally{3'000};
  rt.run(churn_receivers(channel, tally, 3'000));
  EXPECT_EQ(tally.received.load(), 3'000);
  EXPECT_EQ(tally.delivered_other_than_once(), 0);
}

// ---- select ----------------------------------------------------------------------------

// Takes from `a` and `b` until both are closed and drained.
gb::Task<void> select_both(gb::Channel<int>& a, gb::Channel<int>& b, Tally& tally) {
  bool a_open = true;
  bool b_open = true;
  while (a_open || b_open) {
    if (!a_open) {
      auto value = co_await b.receive();
      if (value) tally.note(*value); else b_open = false;
      continue;
    }
    if (!b_open) {
      auto value = co_await a.receive();
      if (value) tally.note(*value); else a_open = false;
      continue;
    }
    auto got = co_await gb::select(a.receive(), b.receive());
    std::optional<int>& value = got.index() == 0 ? std::get<0>(got) : std::get<1>(got);
    if (value)
      tally.note(*value);
    else
      (got.index() == 0 ? a_open : b_open) = false;
  }
}

gb::Task<void> selectors_and_receivers(gb::Channel<int>& a, gb::Channel<int>& b, Tally& tally, int per_channel) {
  std::vector<gb::JoinHandle<void>> consumers;
  for (int i = 0; i < 3; ++i) consumers.push_back(gb::spawn(select_both(a, b, tally)));
  consumers.push_back(gb::spawn(consume(a, tally)));  // a plain receiver competes on each
  consumers.push_back(gb::spawn(consume(b, tally)));
  auto to_a = gb::spawn(produce(a, 0, per_channel));
  auto to_b = gb::spawn(produce(b, per_channel, per_channel));
  co_await to_a;
  a.close();
  co_await to_b;
  b.close();
  co_await join_all(std::move(consumers));
}

TEST_P(RuntimeSync, selects_and_plain_receivers_competing_for_two_channels_lose_no_value) {
  for (const std::size_t capacity : {std::size_t{0}, std::size_t{4}}) {
    gb::Channel<int> a{capacity};
    gb::Channel<int> b{capacity};
    Tally tally{2 * 3'000};
    rt.run(selectors_and_receivers(a, b, tally, 3'000));
    EXPECT_EQ(tally.received.load(), 2 * 3'000) << "capacity " << capacity;
    EXPECT_EQ(tally.delivered_other_than_once(), 0) << "capacity " << capacity;
  }
}

// A producer offers each value with select(out.send(v), stop.receive()); a value counts as
// sent only if the send case won. Everything counted as sent must arrive, nothing else.
gb::Task<int> offer_until_stopped(gb::Channel<int>& out, gb::Channel<int>& stop, int first) {
  int sent = 0;
  for (int value = first;; ++value) {
    auto got = co_await gb::select(out.send(int{value}), stop.receive());
    if (got.index() == 1) co_return sent;
    ++sent;
  }
}

gb::Task<void> consume_a_few(gb::Channel<int>& out, Tally& tally, int values) {
  for (int i = 0; i < values; ++i) tally.note(*co_await out.receive());
}

gb::Task<int> send_cases_race_a_stop(gb::Channel<int>& out, gb::Channel<int>& stop, Tally& tally) {
  std::vector<gb::JoinHandle<int>> producers;
  for (int i = 0; i < 3; ++i) producers.push_back(gb::spawn(offer_until_stopped(out, stop, i * 100'000)));
  co_await consume_a_few(out, tally, 2'000);
  stop.close();  // every producer's stop case becomes ready
  auto drain = gb::spawn(consume(out, tally));
  int sent = 0;
  for (auto& producer : producers) sent += co_await producer;
  out.close();
  co_await drain;
  co_return sent;
}

TEST_P(RuntimeSync, a_send_case_counts_as_sent_exactly_when_its_value_arrives) {
  gb::Channel<int> out{2};
  gb::Channel<int> stop{0};
  Tally tally{300'000};
  const int sent = rt.run(send_cases_race_a_stop(out, stop, tally));
  EXPECT_GE(sent, 2'000);
  EXPECT_EQ(tally.received.load(), sent);
  EXPECT_EQ(std::count_if(tally.seen.begin(), tally.seen.end(), [](const std::atomic<int>& n) { return n.load() > 1; }), 0);
}

// Selects cancelled at arbitrary points lose no value either.
gb::Task<void> select_until_cancelled(gb::Channel<int>& a, gb::Channel<int>& b, Tally& tally) {
  for (;;) {
    auto got = co_await gb::select(a.receive(), b.receive());
    std::optional<int>& value = got.index() == 0 ? std::get<0>(got) : std::get<1>(got);
    if (!value) co_return;
    tally.note(*value);
    co_await gb::yield_now();
  }
}

gb::Task<void> churn_selects(gb::Channel<int>& a, gb::Channel<int>& b, Tally& tally, int per_channel) {
  auto to_a = gb::spawn(produce(a, 0, per_channel));
  auto to_b = gb::spawn(produce(b, per_channel, per_channel));
  std::vector<gb::JoinHandle<void>> selectors;
  for (int i = 0; i < 3; ++i) selectors.push_back(gb::spawn(select_until_cancelled(a, b, tally)));
  for (std::size_t turn = 0; !(to_a.done() && to_b.done()); ++turn) {
    co_await gb::yield_now();
    auto& victim = selectors[turn % selectors.size()];
    victim.cancel();
    try {
      co_await victim;
    } catch (const gb::Cancelled&) {
    }
    victim = gb::spawn(select_until_cancelled(a, b, tally));
  }
  co_await to_a;
  co_await to_b;
  for (auto& selector : selectors) selector.cancel();
  for (auto& selector : selectors) {
    try {
      co_await selector;
    } catch (const gb::Cancelled&) {
    }
  }
  // Whatever is still buffered was never taken: drain it.
  while (auto value = a.try_receive()) tally.note(*value);
  while (auto value = b.try_receive()) tally.note(*value);
}

TEST_P(RuntimeSync, selects_cancelled_while_values_arrive_lose_no_value) {
  gb::Channel<int> a{0};
  gb::Channel<int> b{0};
  Tally tally{2 * 1'500};
  rt.run(churn_selects(a, b, tally, 1'500));
  EXPECT_EQ(tally.received.load(), 2 * 1'500);
  EXPECT_EQ(tally.delivered_other_than_once(), 0);
}

INSTANTIATE_TEST_SUITE_P(Runtime, RuntimeSync, gearbox_test::runtime_threads(), gearbox_test::threads_name);

}  // namespace
