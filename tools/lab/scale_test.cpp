// gearbox-lab scale: with tiny counts, every unit asked for is created, measured, and
// released (no thread or child process is left behind); a cap or a spent budget stops a
// model and says why; the guards' arithmetic and the report are checked on fixed figures.
// No assertion depends on how fast anything ran.
#include "scale.hpp"

#include <gtest/gtest.h>

#include "lab_format.hpp"
#include "proc_stats.hpp"
#include "test_support.hpp"

namespace lab = gearbox::lab;
using lab::no_child_is_left;
using lab::thread_count_settling_to;
using lab::unwrapped;
using lab::widest_line;

namespace {

void expect_complete_steps(const lab::ScaleRun& run, const std::vector<std::size_t>& asked) {
  ASSERT_EQ(run.steps.size(), asked.size());
  for (std::size_t i = 0; i < asked.size(); ++i) {
    EXPECT_EQ(run.steps[i].asked, asked[i]);
    EXPECT_EQ(run.steps[i].created, asked[i]);
    EXPECT_GT(run.steps[i].create_us_per_unit, 0.0);
    EXPECT_GE(run.steps[i].bytes_per_unit, 0.0);
  }
  EXPECT_EQ(run.stop, lab::ScaleStop::none) << run.stop_reason;
  EXPECT_EQ(run.most_created(), asked.back());
}

}  // namespace

TEST(ScaleSteps, the_counts_climb_by_tens_and_end_at_the_maximum) {
  using V = std::vector<std::size_t>;
  EXPECT_EQ(lab::scale_steps(lab::ScaleModel::coroutines, 1'000'000), (V{1'000, 10'000, 100'000, 1'000'000}));
  EXPECT_EQ(lab::scale_steps(lab::ScaleModel::threads, 10'000), (V{10, 100, 1'000, 10'000}));
  EXPECT_EQ(lab::scale_steps(lab::ScaleModel::processes, 500), (V{10, 100, 500}));
  EXPECT_EQ(lab::scale_steps(lab::ScaleModel::threads, 20), (V{10, 20}));
  EXPECT_EQ(lab::scale_steps(lab::ScaleModel::processes, 5), (V{5}));
  EXPECT_EQ(lab::scale_steps(lab::ScaleModel::coroutines, 100), (V{100}));
}

TEST(ScaleCoroutines, every_task_asked_for_is_alive_at_once_then_ended) {
  expect_complete_steps(lab::scale_coroutines({10, 100}), {10, 100});
}

TEST(ScaleThreads, every_thread_asked_for_is_created_and_joined) {
  const long threads_before = lab::thread_count_at_rest();
  const lab::ScaleRun run = lab::scale_threads({3, 10});
  expect_complete_steps(run, {3, 10});
  EXPECT_EQ(thread_count_settling_to(threads_before), threads_before);
}

TEST(ScaleProcesses, every_child_asked_for_is_forked_measured_and_reaped) {
  const lab::ScaleRun run = lab::scale_processes({2, 5});
  expect_complete_steps(run, {2, 5});
  // A forked child always dirties pages of its own (its stack at least).
  for (const lab::ScaleStep& step : run.steps) EXPECT_GT(step.bytes_per_unit, 0.0);
  EXPECT_TRUE(no_child_is_left());
}

TEST(ScaleGuards, a_cap_below_the_steps_stops_each_model_at_the_cap_and_says_so) {
  lab::ScaleLimits limits;
  limits.unit_cap = 7;
  const long threads_before = lab::thread_count_at_rest();
  for (const lab::ScaleRun& run : {lab::scale_coroutines({5, 10, 100}, limits), lab::scale_threads({5, 10, 100}, limits),
                                   lab::scale_processes({5, 10, 100}, limits)}) {
    SCOPED_TRACE(lab::to_string(run.model));
    ASSERT_EQ(run.steps.size(), 2u);  // the third step is never tried
    EXPECT_EQ(run.steps[0].created, 5u);
    EXPECT_EQ(run.steps[1].asked, 10u);
    EXPECT_EQ(run.steps[1].created, 7u);
    EXPECT_EQ(run.stop, lab::ScaleStop::unit_cap);
    EXPECT_EQ(run.stop_reason, "the cap of 7 units set by the caller");
  }
  EXPECT_EQ(thread_count_settling_to(threads_before), threads_before);
  EXPECT_TRUE(no_child_is_left());
}

TEST(ScaleGuards, a_spent_time_budget_stops_a_model_before_it_creates_anything) {
  lab::ScaleLimits limits;
  limits.time_budget_s = 0;
  const lab::ScaleRun run = lab::scale_processes({5}, limits);
  EXPECT_TRUE(run.steps.empty());
  EXPECT_EQ(run.stop, lab::ScaleStop::time_guard);
  EXPECT_NE(run.stop_reason.find("time guard"), std::string::npos) << run.stop_reason;
  EXPECT_TRUE(no_child_is_left());
}

TEST(ScaleGuards, a_step_projected_over_the_memory_budget_is_not_started) {
  lab::ScaleLimits limits;
  limits.memory_fraction = 1e-12;  // a budget of a few bytes: 1,000 of anything exceed it
  const lab::ScaleRun run = lab::scale_processes({1, 1000}, limits);
  ASSERT_EQ(run.steps.size(), 1u);
  EXPECT_EQ(run.steps[0].created, 1u);
  EXPECT_EQ(run.stop, lab::ScaleStop::memory_guard);
  EXPECT_NE(run.stop_reason.find("1,000 would take about"), std::string::npos) << run.stop_reason;
  EXPECT_TRUE(no_child_is_left());
}

TEST(TaskHeadroom, a_quarter_of_the_tightest_ceiling_and_the_running_tasks_are_left_alone) {
  lab::TaskLimits limits;
  limits.rlimit_nproc = 4096;
  limits.threads_max = 190'000;
  limits.pid_max = 32'768;
  limits.tasks_now = 100;
  const lab::TaskHeadroom headroom = lab::task_headroom(limits);
  EXPECT_EQ(headroom.tasks, 4096 - 1024 - 100);
  EXPECT_NE(headroom.reason.find("RLIMIT_NPROC (4,096)"), std::string::npos) << headroom.reason;

  limits.rlimit_nproc = -1;  // unlimited: pid_max is the tightest
  EXPECT_EQ(lab::task_headroom(limits).tasks, 32'768 - 8'192 - 100);
  limits.tasks_now = 30'000;  // a crowded machine: no room at all, never a negative count
  EXPECT_EQ(lab::task_headroom(limits).tasks, 0);
  EXPECT_EQ(lab::describe_task_limits(limits), "RLIMIT_NPROC is unlimited, threads-max 190,000, pid_max 32,768");
}

TEST(RenderScale, the_table_fits_80_columns_and_names_the_limit_in_plain_words) {
  lab::ScaleRun coroutines;
  coroutines.model = lab::ScaleModel::coroutines;
  coroutines.steps = {{1'000'000, 1'000'000, 0.45, 300, 0}};
  lab::ScaleRun threads;
  threads.model = lab::ScaleModel::threads;
  threads.steps = {{10, 10, 30, 12'288, 8.0 * 1024 * 1024}, {10'000, 4'096, 25, 12'000, 8.0 * 1024 * 1024}};
  threads.stop = lab::ScaleStop::create_failed;
  threads.stop_reason = "pthread_create failed with EAGAIN (RLIMIT_NPROC is 4,096, threads-max 190,000, pid_max 32,768)";
  lab::ScaleContext context;
  context.mem_available = std::size_t{16} << 30;
  context.default_thread_stack = context.stack_rlimit = std::size_t{8} << 20;
  context.task_limits.pid_max = 32'768;

  const std::string table = lab::render_scale({coroutines, threads}, context);
  EXPECT_LE(widest_line(table), 80u) << table;
  EXPECT_NE(unwrapped(table).find("stopped at 4,096 threads: pthread_create failed with EAGAIN"), std::string::npos)
      << table;
  EXPECT_NE(table.find("4,096*"), std::string::npos) << table;  // the partial step is marked
  EXPECT_NE(unwrapped(table).find("a coroutine ~300 B and 0.45 µs"), std::string::npos) << table;
  EXPECT_NE(table.find("8.0 MiB"), std::string::npos) << table;

  const nlohmann::json json = lab::to_json({coroutines, threads}, context);
  EXPECT_EQ(json["models"]["threads"]["stopped"], "create_failed");
  EXPECT_EQ(json["models"]["threads"]["most_alive"], 4096);
  EXPECT_EQ(json["models"]["coroutines"]["steps"][0]["created"], 1'000'000);
}

TEST(LabFormat, figures_get_thousands_separators_and_binary_units) {
  EXPECT_EQ(lab::with_commas(0), "0");
  EXPECT_EQ(lab::with_commas(999), "999");
  EXPECT_EQ(lab::with_commas(1'234'567), "1,234,567");
  EXPECT_EQ(lab::with_commas(-1'234), "-1,234");
  EXPECT_EQ(lab::human_bytes(312), "312 B");
  EXPECT_EQ(lab::human_bytes(12.5 * 1024), "12.5 KiB");
  EXPECT_EQ(lab::human_bytes(8.0 * 1024 * 1024), "8.0 MiB");
}
