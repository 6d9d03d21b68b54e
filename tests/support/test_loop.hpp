// Shared by the tests of the loop's synchronisation primitives: a deterministic test loop.
#pragma once

#include <exception>
#include <string>

#include <gearbox/loop.hpp>
#include <gearbox/task.hpp>

#include <gtest/gtest.h>

#include "support/describe.hpp"

namespace gearbox_test {

// Runs `task` on a loop whose manual clock jumps to the next timer whenever every task
// waits: timed interleavings are deterministic, nothing sleeps, and a lost wake-up ends
// the run with a "deadlock" std::logic_error instead of a hang. A failure nobody awaited
// fails the test.
template <class T>
T run_on_test_loop(gearbox::Task<T> task) {
  gearbox::ManualClock clock;
  gearbox::Loop loop{{.clock = &clock,
                      .auto_advance = true,
                      .on_unhandled_exception = [](std::exception_ptr e) { ADD_FAILURE() << "unhandled: " << describe(e); }}};
  return loop.run(std::move(task));
}

inline gearbox::Task<void> note_when_run(bool& ran) {
  ran = true;
  co_return;
}

}  // namespace gearbox_test
