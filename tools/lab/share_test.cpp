// gearbox-lab share: the cases that are deterministic are asserted (a lock, an atomic add,
// tasks with no await between the load and the store, the parent's own counter after
// fork); the threads' race is shown by the lab, never asserted to happen here.
#include "share.hpp"

#include <gtest/gtest.h>

#include <regex>

#include "test_support.hpp"

namespace lab = gearbox::lab;

namespace {

constexpr lab::ShareSpec k_spec{3, 2'000};

}  // namespace

class ShareCases : public testing::TestWithParam<lab::ShareCase> {};

TEST_P(ShareCases, every_unit_adds_and_no_count_exceeds_the_expected_one) {
  const lab::ShareRun run = lab::run_share_case(GetParam(), k_spec);
  EXPECT_EQ(run.which, GetParam());
  EXPECT_EQ(run.expected, 6'000);
  // A stale store can undo others' adds but never add more than all the stores together.
  EXPECT_LE(run.final_count, run.expected);
  EXPECT_GE(run.final_count, 0);
  EXPECT_GT(run.wall_s, 0.0);
}

INSTANTIATE_TEST_SUITE_P(Share, ShareCases, testing::ValuesIn(lab::k_share_cases),
                         [](const testing::TestParamInfo<lab::ShareCase>& info) { return lab::to_string(info.param); });

TEST(Share, a_mutex_and_an_atomic_add_keep_every_update_of_every_thread) {
  EXPECT_EQ(lab::run_share_case(lab::ShareCase::threads_mutex, k_spec).final_count, 6'000);
  EXPECT_EQ(lab::run_share_case(lab::ShareCase::threads_atomic_add, k_spec).final_count, 6'000);
}

TEST(Share, tasks_on_one_loop_lose_nothing_without_an_await_between_the_load_and_the_store) {
  EXPECT_EQ(lab::run_share_case(lab::ShareCase::async_read_then_write, k_spec).final_count, 6'000);
}

TEST(Share, an_await_between_the_load_and_the_store_lets_every_task_load_the_same_value) {
  // The loop runs the tasks in turn, each from its load to its yield: in each round all
  // three load the same value and store it plus one, so the count rises once per round.
  EXPECT_EQ(lab::run_share_case(lab::ShareCase::async_await_between, k_spec).final_count, 2'000);
}

TEST(Share, children_add_to_their_own_copies_and_leave_the_parents_counter_at_zero) {
  EXPECT_EQ(lab::run_share_case(lab::ShareCase::processes_own_memory, k_spec).final_count, 0);
}

TEST(Share, children_adding_atomically_to_a_shared_mapping_make_the_exact_count) {
  EXPECT_EQ(lab::run_share_case(lab::ShareCase::processes_shared_atomic, k_spec).final_count, 6'000);
}

TEST(Share, every_thread_and_child_is_gone_afterwards) {
  const long threads_before = lab::thread_count_at_rest();
  const std::vector<lab::ShareRun> runs = lab::run_share({2, 100});
  ASSERT_EQ(runs.size(), std::size(lab::k_share_cases));
  for (std::size_t i = 0; i < runs.size(); ++i) EXPECT_EQ(runs[i].which, lab::k_share_cases[i]);
  EXPECT_TRUE(lab::no_child_is_left());
  EXPECT_EQ(lab::thread_count_settling_to(threads_before), threads_before);
}

TEST(Share, a_spec_out_of_range_is_refused_before_anything_starts) {
  EXPECT_THROW(lab::run_share({0, 10}), std::invalid_argument);
  EXPECT_THROW(lab::run_share({lab::k_max_share_units + 1, 10}), std::invalid_argument);
  EXPECT_THROW(lab::run_share_case(lab::ShareCase::threads_mutex, {2, 0}), std::invalid_argument);
  EXPECT_THROW(lab::run_share_case(lab::ShareCase::threads_mutex, {4, std::numeric_limits<long>::max() / 2}),
               std::invalid_argument);
}

namespace {

lab::ShareRun fixed(lab::ShareCase which, long final_count, double wall_s) {
  return lab::ShareRun{which, 4'000, final_count, wall_s};
}

std::vector<lab::ShareRun> fixed_runs(long racy_final) {
  using C = lab::ShareCase;
  return {fixed(C::threads_read_then_write, racy_final, 0.001), fixed(C::threads_mutex, 4'000, 0.05),
          fixed(C::threads_atomic_add, 4'000, 0.01),             fixed(C::async_read_then_write, 4'000, 0.002),
          fixed(C::async_await_between, 1'000, 0.004),           fixed(C::processes_own_memory, 0, 0.003),
          fixed(C::processes_shared_atomic, 4'000, 0.01),        fixed(C::processes_shared_read_then_write, 2'500, 0.003)};
}

}  // namespace

TEST(ShareReport, every_row_gives_its_count_what_was_lost_and_why) {
  const std::string table = lab::unwrapped(lab::render_share(fixed_runs(1'000), {4, 1'000}));
  EXPECT_NE(table.find("4 units each add 1 to one counter 1,000 times: 4,000 expected."), std::string::npos) << table;
  for (const lab::ShareCase c : lab::k_share_cases) EXPECT_NE(table.find(lab::label(c)), std::string::npos) << lab::to_string(c);
  EXPECT_TRUE(std::regex_search(table, std::regex("threads, load then store +1,000 +3,000 75% +1.00 ms"))) << table;
  EXPECT_TRUE(std::regex_search(table, std::regex("threads, one mutex +4,000 +none +50 ms"))) << table;
  EXPECT_TRUE(std::regex_search(table, std::regex("processes, parent's counter +0 +\\(own copies\\)"))) << table;
  EXPECT_NE(table.find("the parent's counter stayed at 0"), std::string::npos) << table;
  EXPECT_NE(table.find("3,000 updates fell between them"), std::string::npos) << table;
  EXPECT_NE(table.find("A mutex keeps every update (50× the time here)"), std::string::npos) << table;
  EXPECT_NE(table.find("and then 3,000."), std::string::npos) << table;
}

TEST(ShareReport, a_race_that_lost_nothing_this_time_is_still_called_a_race) {
  const std::string table = lab::unwrapped(lab::render_share(fixed_runs(4'000), {4, 1'000}));
  EXPECT_NE(table.find("no update was lost this time"), std::string::npos) << table;
  EXPECT_NE(table.find("It is still a race"), std::string::npos) << table;
}

TEST(ShareReport, the_json_has_every_case_with_its_counts) {
  const nlohmann::json report = lab::to_json(fixed_runs(1'500), {4, 1'000});
  EXPECT_EQ(report["units"], 4);
  EXPECT_EQ(report["increments"], 1'000);
  ASSERT_EQ(report["cases"].size(), std::size(lab::k_share_cases));
  EXPECT_EQ(report["cases"][0]["case"], "threads_read_then_write");
  EXPECT_EQ(report["cases"][0]["final_count"], 1'500);
  EXPECT_EQ(report["cases"][0]["lost"], 2'500);
}
