// gearbox-lab's measurement functions: the classification is a pure function of the
// figures (tested exactly); profiling real children checks what the kernel reports for a
// sleeping and a spinning command, and that a command that cannot start is an error.
#include "profile.hpp"

#include <stdexcept>

#include <gtest/gtest.h>

namespace lab = gearbox::lab;

namespace {

lab::ProcessProfile figures(double wall, double cpu) {
  lab::ProcessProfile p;
  p.wall_s = wall;
  p.user_s = cpu;
  p.exit_code = 0;
  return p;
}

}  // namespace

TEST(Classify, a_command_that_mostly_waited_is_io_bound_and_gets_async) {
  const auto v = lab::classify(figures(2.0, 0.02), 2);
  EXPECT_EQ(v.kind, lab::WorkKind::io_bound);
  EXPECT_NE(v.model.find("async"), std::string::npos);
}

TEST(Classify, a_command_that_kept_one_core_busy_is_cpu_bound_and_gets_threads_on_a_multicore_machine) {
  const auto v = lab::classify(figures(1.0, 0.98), 4);
  EXPECT_EQ(v.kind, lab::WorkKind::cpu_bound);
  EXPECT_NE(v.model.find("threads"), std::string::npos);
  EXPECT_EQ(lab::classify(figures(1.0, 0.98), 1).model, "sequential: one core");
}

TEST(Classify, a_command_already_using_several_cores_is_cpu_bound_and_parallel) {
  const auto v = lab::classify(figures(1.0, 1.9), 2);
  EXPECT_EQ(v.kind, lab::WorkKind::cpu_bound);
  EXPECT_NE(v.reasons.find("1.9 cores"), std::string::npos) << v.reasons;
}

TEST(Classify, half_waiting_half_computing_is_mixed) {
  EXPECT_EQ(lab::classify(figures(1.0, 0.5), 2).kind, lab::WorkKind::mixed);
}

TEST(Classify, the_boundaries_fall_on_the_documented_side) {
  EXPECT_EQ(lab::classify(figures(1.0, 0.2499), 2).kind, lab::WorkKind::io_bound);
  EXPECT_EQ(lab::classify(figures(1.0, 0.25), 2).kind, lab::WorkKind::mixed);
  EXPECT_EQ(lab::classify(figures(1.0, 0.75), 2).kind, lab::WorkKind::cpu_bound);
  EXPECT_EQ(lab::classify(figures(0.0, 0.0), 2).kind, lab::WorkKind::io_bound);  // nothing measured
}

TEST(Classify, a_command_preempted_far_more_often_than_it_waited_is_cpu_bound_on_a_busy_machine) {
  lab::ProcessProfile p;
  p.wall_s = 1.0;
  p.user_s = 0.45;  // half a core: the machine was busy, not the command idle
  p.involuntary_switches = 120;
  p.voluntary_switches = 2;
  const lab::Verdict v = lab::classify(p, 2);
  EXPECT_EQ(v.kind, lab::WorkKind::cpu_bound);
  EXPECT_NE(v.reasons.find("pre-empted 120 times"), std::string::npos) << v.reasons;
  p.voluntary_switches = 100;  // it also waited a lot: mixed, as the share says
  EXPECT_EQ(lab::classify(p, 2).kind, lab::WorkKind::mixed);
}

TEST(Profile, a_sleeping_child_is_measured_as_waiting_and_classified_io_bound) {
  const auto p = lab::profile_command({"sleep", "0.3"});
  EXPECT_EQ(p.exit_code, 0);
  EXPECT_GE(p.wall_s, 0.3);  // sleep(1) never returns early
  EXPECT_GE(p.voluntary_switches, 1);
  EXPECT_EQ(lab::classify(p, 2).kind, lab::WorkKind::io_bound);
}

TEST(Profile, a_spinning_child_is_measured_as_computing_and_classified_cpu_bound) {
  // A shell loop: pure computation, no waiting, finished by its own count.
  const auto p = lab::profile_command({"sh", "-c", "i=0; while [ $i -lt 400000 ]; do i=$((i+1)); done"});
  EXPECT_EQ(p.exit_code, 0);
  EXPECT_GT(p.cpu_s(), 0.0);
  EXPECT_EQ(lab::classify(p, 2).kind, lab::WorkKind::cpu_bound) << "busy cores " << p.busy_cores();
}

TEST(Profile, the_exit_code_and_the_signal_of_the_command_are_reported) {
  EXPECT_EQ(lab::profile_command({"sh", "-c", "exit 3"}).exit_code, 3);
  const auto killed = lab::profile_command({"sh", "-c", "kill -9 $$"});
  EXPECT_EQ(killed.signal, 9);
  EXPECT_EQ(killed.exit_code, -1);
}

TEST(Profile, a_command_that_does_not_exist_or_no_command_is_an_error_with_a_reason) {
  try {
    (void)lab::profile_command({"gearbox-no-such-command"});
    ADD_FAILURE() << "a missing command ran";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("gearbox-no-such-command"), std::string::npos) << e.what();
  }
  EXPECT_THROW((void)lab::profile_command({}), std::runtime_error);
}
