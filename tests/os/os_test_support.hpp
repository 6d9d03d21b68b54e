// Shared by the tests of the OS layer (signals, processes, files) and of Unix sockets: a
// loop on the steady clock whose run is bounded by a generous deadline, and a temporary
// directory that removes itself.
//
// Tests that wait for something outside the loop (a child process, a signal, the blocking
// pool, a datagram) run on the steady clock: a manual clock with auto_advance would fire
// their timeouts at once. The deadline is not a timing threshold: it only turns a hang
// (a lost wake-up) into a failure instead of a stuck run.
#pragma once

#include "support/temp_dir.hpp"  // TempDir, for the tests that include this header

#include <stdlib.h>

#include <cerrno>
#include <chrono>
#include <exception>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>

#include <gearbox/error.hpp>
#include <gearbox/loop.hpp>
#include <gearbox/task.hpp>
#include <gearbox/time.hpp>

#include <gtest/gtest.h>

#include "support/describe.hpp"
#include "support/hang_guard.hpp"

namespace gearbox_test {

// A steady-clock loop whose every run is bounded by k_hang_guard (TimeoutError after it).
// A failure nobody awaited fails the test. Declare it before anything whose descriptor a
// run attaches to it (a SignalSet, a socket made outside the loop): a descriptor must not
// outlive the loop it is registered with.
class DeadlineLoop {
public:
  DeadlineLoop() = default;
  explicit DeadlineLoop(gearbox::IoBackend backend) : m_loop{options(backend)} {}

  template <class T>
  T run(gearbox::Task<T> task) {
    return m_loop.run(gearbox::timeout(k_hang_guard, std::move(task)));
  }

private:
  static gearbox::LoopOptions options(gearbox::IoBackend backend) {
    return {.clock = nullptr,
            .auto_advance = false,
            .on_unhandled_exception = [](std::exception_ptr e) { ADD_FAILURE() << "unhandled: " << describe(e); },
            .io_backend = backend};
  }
  gearbox::Loop m_loop{options(gearbox::IoBackend::automatic)};
};

// Runs `task` on a DeadlineLoop of its own (with the given I/O back end).
template <class T>
T run_with_deadline(gearbox::Task<T> task, gearbox::IoBackend backend = gearbox::IoBackend::automatic) {
  DeadlineLoop loop{backend};
  return loop.run(std::move(task));
}

}  // namespace gearbox_test
