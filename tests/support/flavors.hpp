// The two flavors of the async engine, for suites that run on both (parameterised, not
// copied): the single-thread Loop and a multi-thread Runtime of 2 workers (more workers
// than this machine's cores would add nothing the runtime's own stress tests lack).
//
//   class TaskFlavors : public gearbox_test::OnEveryFlavor {};
//   TEST_P(TaskFlavors, returns_its_value) { EXPECT_EQ(run(answer()), 42); }
//   INSTANTIATE_TEST_SUITE_P(Task, TaskFlavors, gearbox_test::every_flavor(), gearbox_test::flavor_name);
//
// Suites whose loop-flavor cases must stay deterministic run on the test engines instead
// (run_on_test_engine, OnEveryTestEngine): the loop flavor is the manual-clock test loop.
#pragma once

#include <exception>
#include <functional>
#include <string>
#include <utility>

#include <gearbox/loop.hpp>
#include <gearbox/runtime.hpp>
#include <gearbox/task.hpp>
#include <gearbox/time.hpp>

#include <gtest/gtest.h>

#include "support/describe.hpp"
#include "support/hang_guard.hpp"
#include "support/test_loop.hpp"

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

// The runtime flavor of run_on_test_engine, with the failures nobody awaited handed to
// `on_unhandled` (called on any worker, maybe on two at once; the Runtime is gone, and so
// are all its calls, when this returns).
template <class T>
T run_on_test_runtime(gearbox::Task<T> task, std::function<void(std::exception_ptr)> on_unhandled) {
  gearbox::Runtime runtime{{.threads = 2, .on_unhandled_exception = std::move(on_unhandled)}};
  return runtime.run(gearbox::timeout(k_hang_guard, std::move(task)));
}

// Runs `task` to its end on a test engine of `flavor`; returns its result or rethrows. On
// both, a failure nobody awaited fails the test (ADD_FAILURE, from whichever worker saw it).
//   - loop: run_on_test_loop (a manual clock that jumps to the next timer: nothing sleeps,
//     interleavings are deterministic, a lost wake-up is a "deadlock" std::logic_error);
//   - runtime: a Runtime of 2 workers on the real clock, `task` under k_hang_guard (a lost
//     wake-up is a TimeoutError instead of a hang). Its sleeps really sleep, so a test that
//     runs here keeps them short and asserts outcomes, never times or orders.
template <class T>
T run_on_test_engine(Flavor flavor, gearbox::Task<T> task) {
  if (flavor == Flavor::loop) return run_on_test_loop(std::move(task));
  return run_on_test_runtime(std::move(task),
                             [](std::exception_ptr e) { ADD_FAILURE() << "unhandled: " << describe(e); });
}

// The fixture of a suite that runs on both test engines (run_on_test_engine).
class OnEveryTestEngine : public testing::TestWithParam<Flavor> {
protected:
  template <class T>
  T run(gearbox::Task<T> task) {
    return run_on_test_engine(GetParam(), std::move(task));
  }
};

inline auto every_flavor() { return testing::Values(Flavor::loop, Flavor::runtime); }

inline std::string flavor_name(const testing::TestParamInfo<Flavor>& info) {
  return info.param == Flavor::loop ? "loop" : "runtime";
}

}  // namespace gearbox_test
