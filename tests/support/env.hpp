// Shared by the combinator and TaskGroup tests: one test's world (a manual-clock loop
// with auto_advance, an event log with times, lifetime counters, reported failures).
#pragma once

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include <gearbox/clock.hpp>
#include <gearbox/error.hpp>
#include <gearbox/loop.hpp>

#include "support/describe.hpp"
#include "support/lifetimes.hpp"

namespace gearbox_test {

namespace gb = gearbox;
using std::chrono::milliseconds;

using Log = std::vector<std::string>;

struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// One test's world. The log, the counters and the reported failures are declared before
// the loop, so they outlive whatever the loop's destructor still unwinds.
struct Env {
  Log log;
  Log unhandled;  // failures reported to LoopOptions::on_unhandled_exception
  Lifetimes life;
  gb::ManualClock clock;
  gb::Clock::time_point start = clock.now();
  gb::Loop loop{{.clock = &clock,
                 .auto_advance = true,
                 .on_unhandled_exception = [this](std::exception_ptr e) { unhandled.push_back(describe(e)); }}};

  long long ms() const { return std::chrono::duration_cast<milliseconds>(clock.now() - start).count(); }
  void note(const std::string& event) { log.push_back(event + " @" + std::to_string(ms())); }
  std::string state() const {
    return "(live " + std::to_string(loop.live_tasks()) + ", alive " + std::to_string(life.alive()) + ")";
  }
};

}  // namespace gearbox_test
