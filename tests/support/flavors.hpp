// The two flavors of the async engine, for suites that run on both (parameterised, not
// copied): the single-thread Loop and a multi-thread Runtime of 2 workers (more workers
// than this machine's cores would add nothing the runtime's own stress tests lack).
//
//   class TaskFlavors : public gearbox_test::OnEveryFlavor {};
//   TEST_P(TaskFlavors, returns_its_value) { EXPECT_EQ(run(answer()), 42); }
//   INSTANTIATE_TEST_SUITE_P(Task, TaskFlavors, gearbox_test::every_flavor(), gearbox_test::flavor_name);
#pragma once

#include <string>
#include <utility>

#include <gearbox/loop.hpp>
#include <gearbox/runtime.hpp>
#include <gearbox/task.hpp>

#include <gtest/gtest.h>

namespace gearbox_test {

enum class Flavor { loop, runtime };

// Runs `task` to its end on a new engine of `flavor`; returns its result or rethrows.
template <class T>
T run_on(Flavor flavor, gearbox::Task<T> task) {
  if (flavor == Flavor::loop) {
    gearbox::Loop loop;
    return loop.run(std::move(task));
  }
  gearbox::Runtime runtime{{.threads = 2}};
  return runtime.run(std::move(task));
}

class OnEveryFlavor : public testing::TestWithParam<Flavor> {
protected:
  template <class T>
  T run(gearbox::Task<T> task) {
    return run_on(GetParam(), std::move(task));
  }
};

inline auto every_flavor() { return testing::Values(Flavor::loop, Flavor::runtime); }

inline std::string flavor_name(const testing::TestParamInfo<Flavor>& info) {
  return info.param == Flavor::loop ? "loop" : "runtime";
}

}  // namespace gearbox_test
