// SharedDeadline: timeout()'s limit on a gb::Runtime. A timer armed on the calling worker's
// loop that cancels the target task when it fires, and that the caller can disarm from any
// worker once the target has ended (the caller may resume elsewhere, and a timer belongs
// to the loop that armed it).
//
//   SharedDeadline::Scope limit{loop, *child.core(), deadline};   // arm(), on this worker
//   co_await JoinWait{*child.core()};    // the child ends (or is cancelled by the limit)
//   const bool expired = limit.finish();  // finish(), on whichever worker this is now
//
// One of on_fire and finish wins a compare-exchange of the state. If finish wins, the
// limit is disarmed: the timer is unlinked at once when finish runs on the arming loop's
// thread (the common case), else by a function posted to that loop. If the timer wins, it
// cancels the target, and finish waits until it has done so (a few stores), so that the
// caller may destroy the target afterwards. Two references (the caller's, the timer's)
// free it. No task is spawned and nothing throws: a timeout that does not expire (one per
// request in a server's idle read) costs a timer insert and removal, as on a Loop.
//
// Memory ordering: the state's compare-exchanges are acq_rel, so the winner's view of the
// target is the caller's; `fired` is stored with release after request_cancel and read
// with acquire by a losing finish. The references are counted acq_rel, so the last owner
// sees every write of the other before it deletes.
#pragma once

#include <atomic>
#include <cstdint>
#include <utility>

#include <gearbox/clock.hpp>
#include <gearbox/detail/task_core.hpp>
#include <gearbox/detail/timer_node.hpp>

namespace gearbox {
class Loop;
}

namespace gearbox::detail {

class SharedDeadline : private TimerNode, private Runnable {
public:
  // On `loop`'s thread (a worker's loop): arms the limit.
  static SharedDeadline* arm(Loop& loop, TaskCore& target, Clock::time_point deadline);
  // Once, from any thread of the runtime, after the target has ended: disarms the limit or
  // waits for its firing to finish. True if it fired (the target was cancelled by it).
  static bool finish(SharedDeadline* self) noexcept;

  // Arms a limit and finishes it exactly once: by finish(), or when the scope ends (a
  // coroutine frame destroyed before it resumed).
  class Scope {
  public:
    Scope(Loop& loop, TaskCore& target, Clock::time_point deadline) : m_limit(arm(loop, target, deadline)) {}
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;
    ~Scope() {
      if (m_limit) (void)SharedDeadline::finish(m_limit);
    }
    bool finish() noexcept { return SharedDeadline::finish(std::exchange(m_limit, nullptr)); }

  private:
    SharedDeadline* m_limit;
  };

private:
  enum State : std::uint8_t { armed, firing, fired, disarmed };
  SharedDeadline(Loop& loop, TaskCore& target) noexcept;
  static void on_fire(TimerNode* timer) noexcept;     // on the loop's thread
  static void run_disarm(Runnable* posted) noexcept;  // posted to the loop by finish
  void release() noexcept;

  std::atomic<std::uint8_t> m_state{armed};
  std::atomic<int> m_refs{2};  // the caller's and the timer's
  Loop* m_loop;
  TaskCore* m_target;
};

}  // namespace gearbox::detail
