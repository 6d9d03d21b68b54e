// Shared by the white-box tests of detail::TimerWheel (timer_wheel_test,
// timer_wheel_cancel_test): the largest tick, a timer that logs its id when it fires, and
// an advance that returns the ids fired.
//
// Timers must outlive the wheel that holds them (the wheel's lists unlink them when it is
// destroyed), so each test declares its timers before its wheel.
#pragma once

#include "loop/timer_wheel.hpp"

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

namespace gearbox_test {

using gearbox::detail::TimerNode;
using gearbox::detail::TimerWheel;

inline constexpr std::uint64_t k_max = TimerWheel::k_max_tick;

// A timer that appends its id to a log when it fires, then runs an optional action.
struct LoggingTimer : TimerNode {
  LoggingTimer(int id, std::vector<int>& log) : TimerNode(&LoggingTimer::on_fire), id(id), log(&log) {}
  static void on_fire(TimerNode* node) noexcept {
    auto* self = static_cast<LoggingTimer*>(node);
    self->log->push_back(self->id);
    if (self->action) self->action();
  }
  int id;
  std::vector<int>* log;
  std::function<void()> action;
};

// Advances to `now`, fires what is due, and returns the ids fired (in order).
inline std::vector<int> advance_and_fire(TimerWheel& wheel, std::vector<int>& log, std::uint64_t now) {
  log.clear();
  wheel.advance(now);
  const std::size_t fired = wheel.fire_due();
  EXPECT_EQ(fired, log.size());
  return log;
}

}  // namespace gearbox_test
