// gearbox-lab switch: each kind of switch is measured over the round trips asked (a few
// hundred here), ends the thread or child it started, and stops at the time cap; the
// report is checked on fixed figures. No assertion depends on how fast anything ran.
#include "switch_cost.hpp"

#include <gtest/gtest.h>

#include "cpu_pinning.hpp"
#include "proc_stats.hpp"
#include "test_support.hpp"

namespace lab = gearbox::lab;

namespace {

constexpr lab::SwitchKind k_kinds[] = {lab::SwitchKind::coroutine_resume, lab::SwitchKind::gearbox_task,
                                       lab::SwitchKind::thread_one_core,  lab::SwitchKind::thread_two_cores,
                                       lab::SwitchKind::process_one_core, lab::SwitchKind::process_two_cores};

lab::SwitchCost cost_of(lab::SwitchKind kind, double ns) {
  lab::SwitchCost cost;
  cost.kind = kind;
  cost.ns_per_switch = ns;
  cost.repetitions = {ns};
  cost.round_trips = 1000;
  return cost;
}

}  // namespace

class SwitchKinds : public testing::TestWithParam<lab::SwitchKind> {};

TEST_P(SwitchKinds, every_repetition_makes_the_round_trips_asked_and_gives_a_positive_cost) {
  lab::SwitchLimits limits;
  limits.repetitions = 3;
  limits.time_cap_s = 60;  // far beyond 300 round trips, even under a sanitizer
  const lab::SwitchCost cost = lab::measure_switch(GetParam(), 300, limits);
  EXPECT_EQ(cost.kind, GetParam());
  EXPECT_FALSE(cost.capped);
  EXPECT_EQ(cost.round_trips, 300);
  ASSERT_EQ(cost.repetitions.size(), 3u);
  for (const double ns : cost.repetitions) EXPECT_GT(ns, 0.0);
  EXPECT_GT(cost.ns_per_switch, 0.0);
}

INSTANTIATE_TEST_SUITE_P(Switch, SwitchKinds, testing::ValuesIn(k_kinds),
                         [](const testing::TestParamInfo<lab::SwitchKind>& info) { return lab::to_string(info.param); });

TEST(Switch, the_partner_thread_and_the_child_process_are_gone_and_the_caller_unpinned_afterwards) {
  const long threads_before = lab::thread_count_at_rest();
  const std::vector<int> cpus_before = lab::allowed_cpus();
  (void)lab::measure_switch(lab::SwitchKind::thread_two_cores, 100, {1, 60});
  (void)lab::measure_switch(lab::SwitchKind::process_one_core, 100, {1, 60});
  EXPECT_TRUE(lab::no_child_is_left());
  EXPECT_EQ(lab::thread_count_settling_to(threads_before), threads_before);
  EXPECT_EQ(lab::allowed_cpus(), cpus_before);  // the caller is unpinned again
}

TEST(Switch, a_spent_time_cap_stops_every_kind_before_its_round_trips_and_says_so) {
  for (const lab::SwitchKind kind : k_kinds) {
    const lab::SwitchCost cost = lab::measure_switch(kind, 1'000'000, {2, 0.0});
    SCOPED_TRACE(lab::to_string(kind));
    EXPECT_TRUE(cost.capped);
    EXPECT_LT(cost.round_trips, 1'000'000);
  }
}

TEST(RenderSwitch, the_table_relates_each_switch_to_a_bare_resume_and_concludes) {
  const std::vector<lab::SwitchCost> costs = {cost_of(lab::SwitchKind::coroutine_resume, 2),
                                              cost_of(lab::SwitchKind::gearbox_task, 40),
                                              cost_of(lab::SwitchKind::thread_one_core, 4000),
                                              cost_of(lab::SwitchKind::process_one_core, 8000)};
  const std::string table = lab::render_switch(costs);
  EXPECT_NE(table.find("coroutine resume (bare)"), std::string::npos) << table;
  EXPECT_EQ(table.find("two cores"), std::string::npos) << table;  // not measured, not shown
  EXPECT_NE(table.find("4,000"), std::string::npos) << table;  // thread: ns per switch
  EXPECT_NE(table.find("2,000"), std::string::npos) << table;  // thread: x coroutine
  EXPECT_NE(lab::unwrapped(table).find("about 100 gearbox task switches"), std::string::npos) << table;
  EXPECT_LE(lab::widest_line(table), 80u) << table;

  const nlohmann::json json = lab::to_json(costs);
  EXPECT_EQ(json["switches"]["process_one_core"]["times_coroutine"], 4000.0);
  EXPECT_EQ(json["switches"]["gearbox_task"]["ns_per_switch"], 40.0);
}
