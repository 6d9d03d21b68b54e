// Tests of detail::WorkStealingDeque (src/thread/work_stealing_deque.hpp): the order of
// pop (newest first) and steal (oldest first) on one thread; a full deque; capacity
// rounding; a randomized differential test against a std::deque model, long enough that
// the indices lap the ring many times; the owner's pop racing a thief for the last job,
// and for the newer of two (the store-buffering case that the seq_cst operations exist
// for: on real hardware a broken ordering makes it fail in some runs, not in every run);
// and a stress test, parameterised over the number of thieves, in which every job is
// taken exactly once. Under TSan the threaded tests also check that a job's contents,
// written by the owner just before push(), are published to whoever takes it.
#include "thread/work_stealing_deque.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstddef>
#include <deque>
#include <limits>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using gearbox::detail::Job;
using gearbox::detail::WorkStealingDeque;

namespace {

// A job that knows its index and counts how many times it was run.
struct CountedJob : Job {
  CountedJob() noexcept : Job(&CountedJob::run) {}

  static void run(Job* job) noexcept {
    static_cast<CountedJob*>(job)->runs.fetch_add(1, std::memory_order_relaxed);
  }

  // Plain fields, written by the owner just before it pushes the job and read by whoever
  // takes it: under TSan, a race here is a publication bug in the deque.
  std::size_t id = 0;
  std::size_t check = 0;  // id * k_check_factor, so a torn or stale job shows up without TSan
  std::atomic<int> runs{0};
};

constexpr std::size_t k_check_factor = 2654435761u;

// The owner's side of preparing job `id` for a push.
void prepare(CountedJob& job, std::size_t id) {
  job.id = id;
  job.check = id * k_check_factor;
}

// What every taker does with a job it got: checks its contents and runs it. Returns
// false when the contents are not those the owner wrote.
bool take(Job* job) {
  auto* counted = static_cast<CountedJob*>(job);
  const bool intact = counted->check == counted->id * k_check_factor;
  counted->m_run(counted);
  return intact;
}

std::unique_ptr<CountedJob[]> make_jobs(std::size_t count) { return std::make_unique<CountedJob[]>(count); }

std::size_t id_of(Job* job) { return static_cast<CountedJob*>(job)->id; }

}  // namespace

TEST(WorkStealingDeque, pop_takes_the_newest_job_first) {
  WorkStealingDeque deque{8};
  auto jobs = make_jobs(5);
  for (std::size_t i = 0; i < 5; ++i) {
    prepare(jobs[i], i);
    ASSERT_TRUE(deque.push(&jobs[i]));
  }
  for (std::size_t i = 5; i-- > 0;) EXPECT_EQ(deque.pop(), &jobs[i]);
  EXPECT_EQ(deque.pop(), nullptr);
}

TEST(WorkStealingDeque, steal_takes_the_oldest_job_first) {
  WorkStealingDeque deque{8};
  auto jobs = make_jobs(5);
  for (std::size_t i = 0; i < 5; ++i) ASSERT_TRUE(deque.push(&jobs[i]));
  for (std::size_t i = 0; i < 5; ++i) EXPECT_EQ(deque.steal(), &jobs[i]);
  EXPECT_EQ(deque.steal(), nullptr);
}

TEST(WorkStealingDeque, pop_and_steal_take_from_opposite_ends_until_they_meet) {
  WorkStealingDeque deque{4};
  auto jobs = make_jobs(4);
  for (std::size_t i = 0; i < 4; ++i) ASSERT_TRUE(deque.push(&jobs[i]));
  EXPECT_EQ(deque.pop(), &jobs[3]);
  EXPECT_EQ(deque.steal(), &jobs[0]);
  EXPECT_EQ(deque.pop(), &jobs[2]);
  EXPECT_EQ(deque.steal(), &jobs[1]);
  EXPECT_EQ(deque.pop(), nullptr);
  EXPECT_EQ(deque.steal(), nullptr);
}

TEST(WorkStealingDeque, an_empty_deque_returns_nullptr_and_stays_usable) {
  WorkStealingDeque deque{2};
  auto jobs = make_jobs(2);
  EXPECT_EQ(deque.pop(), nullptr);
  EXPECT_EQ(deque.steal(), nullptr);
  EXPECT_EQ(deque.size_hint(), 0u);

  // Emptied by pop, then by steal: each time the indices must be left consistent, so
  // that the deque still holds exactly `capacity` jobs afterwards.
  ASSERT_TRUE(deque.push(&jobs[0]));
  EXPECT_EQ(deque.pop(), &jobs[0]);
  EXPECT_EQ(deque.pop(), nullptr);
  EXPECT_EQ(deque.steal(), nullptr);
  EXPECT_EQ(deque.size_hint(), 0u);

  ASSERT_TRUE(deque.push(&jobs[1]));
  EXPECT_EQ(deque.steal(), &jobs[1]);
  EXPECT_EQ(deque.pop(), nullptr);
  EXPECT_EQ(deque.steal(), nullptr);
  EXPECT_EQ(deque.size_hint(), 0u);

  EXPECT_TRUE(deque.push(&jobs[0]));
  EXPECT_TRUE(deque.push(&jobs[1]));
  EXPECT_FALSE(deque.push(&jobs[0]));
  EXPECT_EQ(deque.size_hint(), 2u);
}

TEST(WorkStealingDeque, a_full_deque_refuses_a_push_and_keeps_what_it_holds) {
  WorkStealingDeque deque{4};
  auto jobs = make_jobs(6);
  for (std::size_t i = 0; i < 4; ++i) ASSERT_TRUE(deque.push(&jobs[i]));
  EXPECT_FALSE(deque.push(&jobs[4]));
  EXPECT_FALSE(deque.push(&jobs[5]));
  EXPECT_EQ(deque.size_hint(), 4u);

  // A steal frees the oldest slot, which the next push reuses.
  EXPECT_EQ(deque.steal(), &jobs[0]);
  EXPECT_TRUE(deque.push(&jobs[4]));
  EXPECT_FALSE(deque.push(&jobs[5]));

  EXPECT_EQ(deque.pop(), &jobs[4]);
  EXPECT_EQ(deque.pop(), &jobs[3]);
  EXPECT_EQ(deque.pop(), &jobs[2]);
  EXPECT_EQ(deque.pop(), &jobs[1]);
  EXPECT_EQ(deque.pop(), nullptr);
}

TEST(WorkStealingDeque, capacity_is_rounded_up_to_a_power_of_two_of_at_least_two) {
  const std::pair<std::size_t, std::size_t> cases[] = {{0, 2},  {1, 2},  {2, 2},   {3, 4},   {4, 4},
                                                       {5, 8},  {7, 8},  {64, 64}, {65, 128}, {1000, 1024}};
  for (const auto& [requested, expected] : cases) {
    WorkStealingDeque deque{requested};
    EXPECT_EQ(deque.capacity(), expected) << "requested " << requested;

    // The rounded capacity is the real one: exactly that many pushes succeed.
    auto jobs = make_jobs(expected + 1);
    for (std::size_t i = 0; i < expected; ++i) EXPECT_TRUE(deque.push(&jobs[i])) << "requested " << requested;
    EXPECT_FALSE(deque.push(&jobs[expected])) << "requested " << requested;
  }
}

TEST(WorkStealingDeque, a_capacity_the_indices_cannot_hold_throws_length_error) {
  EXPECT_THROW(WorkStealingDeque{std::numeric_limits<std::size_t>::max()}, std::length_error);
}

TEST(WorkStealingDeque, size_hint_counts_the_jobs_when_nothing_runs_concurrently) {
  WorkStealingDeque deque{8};
  auto jobs = make_jobs(3);
  EXPECT_EQ(deque.size_hint(), 0u);
  for (std::size_t i = 0; i < 3; ++i) {
    ASSERT_TRUE(deque.push(&jobs[i]));
    EXPECT_EQ(deque.size_hint(), i + 1);
  }
  ASSERT_NE(deque.pop(), nullptr);
  EXPECT_EQ(deque.size_hint(), 2u);
  ASSERT_NE(deque.steal(), nullptr);
  EXPECT_EQ(deque.size_hint(), 1u);
  ASSERT_NE(deque.pop(), nullptr);
  EXPECT_EQ(deque.size_hint(), 0u);
}

// Random pushes, pops and steals against a std::deque model, on a small ring so that the
// indices lap it tens of thousands of times and full and empty come up often.
TEST(WorkStealingDeque, matches_a_std_deque_model_over_many_laps_of_the_ring) {
  constexpr std::size_t k_operations = 200'000;
  WorkStealingDeque deque{8};
  auto jobs = make_jobs(k_operations);
  std::deque<std::size_t> model;
  std::minstd_rand random{20261121};
  std::size_t pushed = 0;
  std::size_t mismatches = 0;

  for (std::size_t op = 0; op < k_operations; ++op) {
    switch (random() % 4) {
      case 0:
      case 1: {  // push, twice as often, so the deque fills up
        prepare(jobs[pushed], pushed);
        const bool accepted = deque.push(&jobs[pushed]);
        const bool room = model.size() < deque.capacity();
        if (accepted != room) ++mismatches;
        if (accepted) model.push_back(pushed++);
        break;
      }
      case 2: {
        Job* job = deque.pop();
        if (model.empty()) {
          if (job != nullptr) ++mismatches;
        } else {
          if (job == nullptr || id_of(job) != model.back()) ++mismatches;
          model.pop_back();
        }
        break;
      }
      case 3: {
        Job* job = deque.steal();
        if (model.empty()) {
          if (job != nullptr) ++mismatches;
        } else {
          if (job == nullptr || id_of(job) != model.front()) ++mismatches;
          model.pop_front();
        }
        break;
      }
    }
    if (deque.size_hint() != model.size()) ++mismatches;
  }
  EXPECT_EQ(mismatches, 0u);
  EXPECT_GT(pushed, 1000 * deque.capacity()) << "the indices should have lapped the ring many times";
}

// One round after another, the owner pushes `jobs_per_round` jobs and pops once while a
// thief steals `jobs_per_round` times; then the owner pops whatever is left. Every job
// must be run exactly once, and the deque must end each round empty. The owner spins a
// little before its pop: longer after each round in which it got a job, shorter after
// each in which it did not, plus some jitter, so the spin settles where each side wins
// about half the time, which is where their operations overlap most.
namespace {

struct RaceOutcome {
  int rounds_owner_got_one = 0;  // rounds in which the owner's racing pop got a job
  int stolen = 0;
};

RaceOutcome race_owner_pop_against_a_thief(int jobs_per_round, int rounds) {
  const auto per_round = static_cast<std::size_t>(jobs_per_round);
  WorkStealingDeque deque{per_round};
  auto jobs = make_jobs(static_cast<std::size_t>(rounds) * per_round);
  std::atomic<int> published{0};  // the last round whose jobs the owner pushed
  std::atomic<int> finished{0};   // the last round in which the thief made its attempts
  std::atomic<int> stolen{0};
  std::atomic<int> damaged{0};

  std::thread thief([&] {
    for (int round = 1; round <= rounds; ++round) {
      while (published.load(std::memory_order_acquire) < round) std::this_thread::yield();
      for (int attempt = 0; attempt < jobs_per_round; ++attempt) {
        if (Job* job = deque.steal()) {
          if (!take(job)) damaged.fetch_add(1, std::memory_order_relaxed);
          stolen.fetch_add(1, std::memory_order_relaxed);
        }
      }
      finished.store(round, std::memory_order_release);
    }
  });

  std::minstd_rand random{7};
  unsigned base_delay = 0;
  RaceOutcome outcome;
  int not_once = 0;
  int left_behind = 0;
  for (int round = 1; round <= rounds; ++round) {
    const std::size_t first = static_cast<std::size_t>(round - 1) * per_round;
    for (std::size_t i = first; i < first + per_round; ++i) {
      prepare(jobs[i], i);
      // (Not ASSERT: returning early would leave the thief waiting for the round.)
      EXPECT_TRUE(deque.push(&jobs[i])) << "round " << round;
    }
    published.store(round, std::memory_order_release);

    std::atomic<unsigned> spin{0};
    const unsigned delay = base_delay + static_cast<unsigned>(random() % 16);
    while (spin.fetch_add(1, std::memory_order_relaxed) < delay) {
    }
    if (Job* popped = deque.pop()) {
      if (!take(popped)) damaged.fetch_add(1, std::memory_order_relaxed);
      ++outcome.rounds_owner_got_one;
      ++base_delay;
    } else if (base_delay > 0) {
      --base_delay;
    }

    while (finished.load(std::memory_order_acquire) < round) std::this_thread::yield();
    while (Job* rest = deque.pop()) {
      if (!take(rest)) damaged.fetch_add(1, std::memory_order_relaxed);
    }
    for (std::size_t i = first; i < first + per_round; ++i) {
      if (jobs[i].runs.load(std::memory_order_relaxed) != 1) ++not_once;
    }
    if (deque.size_hint() != 0 || deque.steal() != nullptr) ++left_behind;
  }
  thief.join();

  EXPECT_EQ(not_once, 0);
  EXPECT_EQ(left_behind, 0);
  EXPECT_EQ(damaged.load(), 0);
  outcome.stolen = stolen.load();
  return outcome;
}

}  // namespace

// One job: the owner's pop and the thief's steal may both see it; both then go for it
// with a CAS on top, and exactly one gets it.
TEST(WorkStealingDeque, the_owner_and_a_thief_racing_for_the_last_job_take_it_exactly_once) {
  const RaceOutcome outcome = race_owner_pop_against_a_thief(1, 20'000);
  RecordProperty("owner_wins", outcome.rounds_owner_got_one);
  RecordProperty("thief_wins", outcome.stolen);
}

// Two jobs: the thief takes the older and goes straight for the newer while the owner
// pops the newer. The owner sees two jobs and takes its own without a CAS, so only the
// order of pop's store to bottom before its load of top, against steal's load of top
// before its load of bottom, keeps the thief off it (the store-buffering pattern that
// Lê et al.'s seq_cst fences, and this deque's seq_cst operations, exist for).
TEST(WorkStealingDeque, a_thief_that_took_the_older_of_two_jobs_cannot_also_take_the_one_the_owner_pops) {
  const RaceOutcome outcome = race_owner_pop_against_a_thief(2, 100'000);
  RecordProperty("rounds_owner_got_one", outcome.rounds_owner_got_one);
  RecordProperty("stolen", outcome.stolen);
}

// The owner pushes every job, popping one after every few pushes and yielding (then
// popping) when the deque is full, as a worker that spawns work would; the thieves steal
// until the owner has pushed everything and emptied its deque. Every job must be run
// exactly once, with the contents the owner gave it.
class WorkStealingDequeStress : public ::testing::TestWithParam<int> {};

TEST_P(WorkStealingDequeStress, every_job_is_taken_exactly_once_by_the_owner_or_a_thief) {
  constexpr std::size_t k_jobs = 200'000;
  const int thieves = GetParam();
  WorkStealingDeque deque{64};
  auto jobs = make_jobs(k_jobs);
  std::atomic<bool> done{false};
  std::atomic<std::size_t> stolen{0};
  std::atomic<int> damaged{0};

  std::vector<std::thread> threads;
  for (int t = 0; t < thieves; ++t) {
    threads.emplace_back([&] {
      std::size_t mine = 0;
      while (!done.load(std::memory_order_acquire)) {
        if (Job* job = deque.steal()) {
          if (!take(job)) damaged.fetch_add(1, std::memory_order_relaxed);
          ++mine;
        } else {
          std::this_thread::yield();
        }
      }
      stolen.fetch_add(mine, std::memory_order_relaxed);
    });
  }

  std::size_t popped = 0;
  auto pop_one = [&] {
    if (Job* job = deque.pop()) {
      if (!take(job)) damaged.fetch_add(1, std::memory_order_relaxed);
      ++popped;
    }
  };
  std::size_t refusals = 0;
  for (std::size_t i = 0; i < k_jobs; ++i) {
    prepare(jobs[i], i);
    while (!deque.push(&jobs[i])) {
      // Full: give the thieves a turn, and every other time make room ourselves.
      std::this_thread::yield();
      if (++refusals % 2 == 0) pop_one();
    }
    if (i % 4 == 3) pop_one();
  }
  while (Job* job = deque.pop()) {
    if (!take(job)) damaged.fetch_add(1, std::memory_order_relaxed);
    ++popped;
  }
  done.store(true, std::memory_order_release);
  for (auto& thread : threads) thread.join();

  std::size_t missing = 0;
  std::size_t repeated = 0;
  for (std::size_t i = 0; i < k_jobs; ++i) {
    const int runs = jobs[i].runs.load(std::memory_order_relaxed);
    if (runs == 0) ++missing;
    if (runs > 1) ++repeated;
  }
  EXPECT_EQ(missing, 0u);
  EXPECT_EQ(repeated, 0u);
  EXPECT_EQ(damaged.load(), 0);
  EXPECT_EQ(popped + stolen.load(), k_jobs);
  EXPECT_EQ(deque.size_hint(), 0u);
  EXPECT_EQ(deque.steal(), nullptr);
  RecordProperty("popped", static_cast<int>(popped));
  RecordProperty("stolen", static_cast<int>(stolen.load()));
  RecordProperty("full_refusals", static_cast<int>(refusals));
}

INSTANTIATE_TEST_SUITE_P(WorkStealingDeque, WorkStealingDequeStress, ::testing::Values(1, 2, 4, 8),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return std::to_string(info.param) + "_thieves";
                         });
