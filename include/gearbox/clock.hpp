// Clocks for a Loop's timers. A Loop reads its clock once per turn; timers fire when the
// clock says their deadline has passed.
//
//   SteadyClock   the real monotonic clock (the default).
//   ManualClock   time moves only when a test says so, so timer tests never sleep and
//                 always interleave the same way. With LoopOptions::auto_advance the loop
//                 jumps the clock to the next deadline whenever every task is waiting.
#pragma once

#include <atomic>
#include <chrono>
#include <stdexcept>

namespace gearbox {

class Clock {
public:
  using time_point = std::chrono::steady_clock::time_point;
  using duration = std::chrono::steady_clock::duration;

  virtual ~Clock() = default;
  virtual time_point now() const noexcept = 0;
  virtual bool is_manual() const noexcept { return false; }
};

class SteadyClock final : public Clock {
public:
  time_point now() const noexcept override { return std::chrono::steady_clock::now(); }
  // The process-wide instance that loops use by default.
  static SteadyClock& instance() noexcept {
    static SteadyClock clock;
    return clock;
  }
};

// Thread-safety: now() and advance() may be called from any thread, but a loop notices
// an advance only at its next turn; advance it from a task on that loop (or between runs)
// for deterministic tests.
class ManualClock final : public Clock {
public:
  // Starts at an arbitrary fixed point, so that runs are reproducible.
  explicit ManualClock(time_point start = time_point{std::chrono::hours(1)}) noexcept
      : m_now(start.time_since_epoch().count()) {}

  time_point now() const noexcept override {
    // Memory ordering: acquire pairs with the release in advance(), so a reader that sees
    // the new time also sees what the advancing thread wrote before advancing.
    return time_point{duration{m_now.load(std::memory_order_acquire)}};
  }
  bool is_manual() const noexcept override { return true; }

  // Moves time forward by `step` (>= 0).
  void advance(duration step) {
    if (step < duration::zero()) throw std::invalid_argument("gearbox: ManualClock cannot go back in time");
    m_now.fetch_add(step.count(), std::memory_order_release);
  }
  // Moves time forward to `t`; throws std::invalid_argument if `t` is in the past.
  void advance_to(time_point t) { advance(t - now()); }

private:
  std::atomic<duration::rep> m_now;  // nanoseconds since the steady epoch; only increases
};

}  // namespace gearbox
