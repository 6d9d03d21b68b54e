// Shared by the combinator and TaskGroup tests: one test's world (an engine of either
// flavor, an event log, lifetime counters, reported failures). On the loop flavor the
// engine is a manual-clock loop with auto_advance and the log has exact times; on the
// runtime flavor it is a Runtime of 2 workers (flavors.hpp), whose log a test reads only
// for what happened, never for when or in which order.
#pragma once

#include <chrono>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include <gearbox/clock.hpp>
#include <gearbox/error.hpp>
#include <gearbox/loop.hpp>
#include <gearbox/task.hpp>

#include "support/describe.hpp"
#include "support/flavors.hpp"
#include "support/lifetimes.hpp"

namespace gearbox_test {

namespace gb = gearbox;
using std::chrono::milliseconds;

using Log = std::vector<std::string>;

struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// One test's world. The log, the counters and the reported failures are declared before
// the loop, so they outlive whatever the loop's destructor still unwinds. Tasks on any
// worker may note and report (the log and `unhandled` are written under a lock); the test
// reads them once run() has returned.
struct Env {
  explicit Env(Flavor engine = Flavor::loop) : flavor(engine) {}

  Flavor flavor;
  std::mutex records_mutex;  // guards log and unhandled while tasks run
  Log log;
  Log unhandled;  // failures reported to on_unhandled_exception
  Lifetimes life;
  gb::ManualClock clock;
  gb::Clock::time_point start = clock.now();
  gb::Loop loop{{.clock = &clock,
                 .auto_advance = true,
                 .on_unhandled_exception = [this](std::exception_ptr e) { report(e); }}};

  // Runs `task` on this world's engine (on the runtime flavor, a new Runtime each time).
  template <class T>
  T run(gb::Task<T> task) {
    if (flavor == Flavor::loop) return loop.run(std::move(task));
    return run_on_test_runtime(std::move(task), [this](std::exception_ptr e) { report(e); });
  }

  long long ms() const { return std::chrono::duration_cast<milliseconds>(clock.now() - start).count(); }
  void note(const std::string& event) {
    std::lock_guard lock{records_mutex};
    log.push_back(event + " @" + std::to_string(ms()));
  }
  // Whether a noted event begins with `event` (at any time, whatever state it showed).
  bool noted(const std::string& event) {
    std::lock_guard lock{records_mutex};
    for (const std::string& line : log)
      if (line.starts_with(event)) return true;
    return false;
  }
  // "(live <tasks on the loop>, alive <children's locals>)"; on the runtime flavor only
  // "(alive <n>)".
  std::string state() const {
    const std::string alive = "alive " + std::to_string(life.alive());
    if (flavor != Flavor::loop) return "(" + alive + ")";
    return "(live " + std::to_string(loop.live_tasks()) + ", " + alive + ")";
  }
  // Notes "<what> <state>"; returns "<what>, alive <n>", which reads the same on both
  // flavors (what a test on both asserts).
  std::string outcome(const std::string& what) {
    note(what + " " + state());
    return what + ", alive " + std::to_string(life.alive());
  }
  std::string caught(const std::exception& failure) { return outcome(std::string("caught ") + failure.what()); }

private:
  void report(const std::exception_ptr& e) {
    std::string what = describe(e);
    std::lock_guard lock{records_mutex};
    unhandled.push_back(std::move(what));
  }
};

// Exactly `children` children's locals were made, and each was destroyed once.
inline void expect_each_child_destroyed_once(const Env& env, int children) {
  EXPECT_EQ(env.life.constructed, children);
  EXPECT_EQ(env.life.destroyed, children);
}

// The event log of `scenario` (a function of an Env& that makes the task to run) run in a
// world on the loop: the order of its events and their exact times.
template <class Scenario>
Log log_on_the_loop(Scenario scenario) {
  Env env;
  env.run(scenario(env));
  return env.log;
}

// The fixture of a suite whose tests run in a world of each flavor.
class EnvOnEveryFlavor : public testing::TestWithParam<Flavor> {
protected:
  Env env{GetParam()};
};

}  // namespace gearbox_test
