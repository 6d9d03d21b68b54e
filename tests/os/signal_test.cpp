// Signals as events on the loop (include/gearbox/os/signal.hpp): deliveries sent before
// and after a wait, sets of several signals, os::signal(), signals that cannot be waited
// for, cancelled waits, the thread's signal mask before and after, and a signal sent from
// another thread.
//
// Every signal here is sent to this process with kill(getpid(), ...), i.e. process-directed.
// It reaches the signalfd only if no thread of the process takes it: this thread blocks it
// (the SignalSet does), the blocking pool's threads block everything, and the std::thread
// of the one test that starts one is started while the SignalSet lives, so it inherits a
// mask that blocks it. Before each kill() the test checks that the signal is blocked here,
// so a mistake fails the test instead of killing the test binary. Every signal sent is
// consumed before the set that blocks it is destroyed (a pending SIGUSR1 would otherwise be
// delivered, and end the process, as soon as the mask is restored).
#include <gearbox/os/signal.hpp>

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <stdexcept>
#include <thread>

#include <gearbox/error.hpp>
#include <gearbox/join_handle.hpp>
#include <gearbox/spawn.hpp>
#include <gearbox/task.hpp>
#include <gearbox/time.hpp>

#include <gtest/gtest.h>

#include "os/os_test_support.hpp"

namespace gb = gearbox;
using namespace std::chrono_literals;
using gearbox_test::DeadlineLoop;
using gearbox_test::run_with_deadline;

namespace {

sigset_t current_mask() {
  sigset_t mask;
  sigemptyset(&mask);
  pthread_sigmask(SIG_SETMASK, nullptr, &mask);
  return mask;
}

bool is_blocked(int signal_number) {
  const sigset_t mask = current_mask();
  return sigismember(&mask, signal_number) == 1;
}

bool is_pending(int signal_number) {
  sigset_t pending;
  sigemptyset(&pending);
  sigpending(&pending);
  return sigismember(&pending, signal_number) == 1;
}

bool same_mask(const sigset_t& a, const sigset_t& b) {
  for (int s = 1; s < _NSIG; ++s)
    if (sigismember(&a, s) != sigismember(&b, s)) return false;
  return true;
}

// Sends `signal_number` to this process, refusing (with a test failure) if this thread
// does not block it: then it would take its default action and end the test binary.
void send_to_self(int signal_number) {
  if (!is_blocked(signal_number)) {
    ADD_FAILURE() << "signal " << signal_number << " is not blocked in the loop's thread; not sending it";
    return;
  }
  ASSERT_EQ(::kill(::getpid(), signal_number), 0);
}

// Restores the calling thread's mask when the scope ends (for tests that block a signal
// by hand).
class MaskGuard {
public:
  MaskGuard() : m_saved(current_mask()) {}
  ~MaskGuard() { pthread_sigmask(SIG_SETMASK, &m_saved, nullptr); }
  MaskGuard(const MaskGuard&) = delete;
  MaskGuard& operator=(const MaskGuard&) = delete;

private:
  sigset_t m_saved;
};

void block(int signal_number) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, signal_number);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

}  // namespace

TEST(SignalSet, a_signal_sent_after_the_wait_began_is_received) {
  DeadlineLoop loop;  // declared first: the set's descriptor is attached to it
  gb::os::SignalSet set{SIGUSR1};
  const int received = loop.run([](gb::os::SignalSet& set) -> gb::Task<int> {
    auto waiter = gb::spawn(set.wait());
    co_await gb::yield_now();  // the waiter runs first: it finds nothing and suspends
    EXPECT_FALSE(waiter.done());
    send_to_self(SIGUSR1);
    co_return co_await waiter;
  }(set));
  EXPECT_EQ(received, SIGUSR1);
}

TEST(SignalSet, a_signal_sent_before_the_wait_stays_pending_and_the_next_wait_returns_it) {
  DeadlineLoop loop;  // declared first: the set's descriptor is attached to it
  gb::os::SignalSet set{SIGUSR1};
  send_to_self(SIGUSR1);
  EXPECT_TRUE(is_pending(SIGUSR1));
  const int received = loop.run([](gb::os::SignalSet& set) -> gb::Task<int> { co_return co_await set.wait(); }(set));
  EXPECT_EQ(received, SIGUSR1);
  EXPECT_FALSE(is_pending(SIGUSR1));
}

TEST(SignalSet, two_deliveries_of_a_standard_signal_before_a_wait_are_one) {
  DeadlineLoop loop;  // declared first: the set's descriptor is attached to it
  gb::os::SignalSet set{SIGUSR1};
  send_to_self(SIGUSR1);
  send_to_self(SIGUSR1);
  loop.run([](gb::os::SignalSet& set) -> gb::Task<void> {
    EXPECT_EQ(co_await set.wait(), SIGUSR1);
    // Nothing else is pending: a second wait can only end by its timeout.
    EXPECT_THROW(co_await gb::timeout(20ms, set.wait()), gb::TimeoutError);
  }(set));
}

TEST(SignalSet, a_set_of_two_signals_reports_which_one_was_delivered) {
  DeadlineLoop loop;  // declared first: the set's descriptor is attached to it
  gb::os::SignalSet set{SIGUSR1, SIGUSR2};
  EXPECT_TRUE(is_blocked(SIGUSR1));
  EXPECT_TRUE(is_blocked(SIGUSR2));
  loop.run([](gb::os::SignalSet& set) -> gb::Task<void> {
    send_to_self(SIGUSR2);
    EXPECT_EQ(co_await set.wait(), SIGUSR2);
    send_to_self(SIGUSR1);
    EXPECT_EQ(co_await set.wait(), SIGUSR1);
  }(set));
}

TEST(Signal, os_signal_waits_for_one_delivery_and_then_unblocks_the_signal) {
  ASSERT_FALSE(is_blocked(SIGUSR2)) << "the test needs SIGUSR2 unblocked to begin with";
  const int received = run_with_deadline([]() -> gb::Task<int> {
    auto waiter = gb::spawn(gb::os::signal(SIGUSR2));
    co_await gb::yield_now();  // the waiter blocks SIGUSR2 and suspends on its signalfd
    send_to_self(SIGUSR2);
    co_return co_await waiter;
  }());
  EXPECT_EQ(received, SIGUSR2);
  EXPECT_FALSE(is_blocked(SIGUSR2));
}

TEST(SignalSet, signals_that_cannot_be_caught_or_do_not_exist_are_invalid_arguments) {
  const sigset_t before = current_mask();
  for (int bad : {SIGKILL, SIGSTOP, 0, -1, _NSIG, 1000}) {
    EXPECT_THROW(gb::os::SignalSet({bad}), std::invalid_argument) << "signal " << bad;
  }
  // A bad signal among good ones: nothing is left blocked.
  EXPECT_THROW(gb::os::SignalSet({SIGUSR1, SIGKILL}), std::invalid_argument);
  EXPECT_TRUE(same_mask(current_mask(), before));
  EXPECT_THROW(run_with_deadline(gb::os::signal(SIGSTOP)), std::invalid_argument);
  EXPECT_TRUE(same_mask(current_mask(), before));
}

TEST(SignalSet, the_real_time_signals_the_c_library_reserves_are_invalid_arguments) {
  // glibc uses 32 and 33 itself (SIGRTMIN is 34): it refuses to block them, so a set of
  // one of them would have a signalfd that never reports anything.
  if (SIGRTMIN <= 32) GTEST_SKIP() << "this C library reserves no real-time signal";
  const sigset_t before = current_mask();
  for (int reserved = 32; reserved < SIGRTMIN; ++reserved) {
    EXPECT_THROW(gb::os::SignalSet({reserved}), std::invalid_argument) << "signal " << reserved;
    EXPECT_THROW(gb::os::SignalSet({SIGUSR1, reserved}), std::invalid_argument) << "signal " << reserved;
  }
  EXPECT_TRUE(same_mask(current_mask(), before));
}

TEST(SignalSet, a_wait_cancelled_by_a_timeout_ends_with_TimeoutError_and_the_set_stays_usable) {
  DeadlineLoop loop;  // declared first: the set's descriptor is attached to it
  gb::os::SignalSet set{SIGUSR1};
  bool child_saw_cancelled = false;
  loop.run([](gb::os::SignalSet& set, bool& child_saw_cancelled) -> gb::Task<void> {
    auto waiting = [](gb::os::SignalSet& set, bool& saw) -> gb::Task<int> {
      try {
        co_return co_await set.wait();
      } catch (const gb::Cancelled&) {
        saw = true;
        throw;
      }
    };
    EXPECT_THROW(co_await gb::timeout(20ms, waiting(set, child_saw_cancelled)), gb::TimeoutError);
    // The same set receives the next signal, both sent before and after a new wait.
    send_to_self(SIGUSR1);
    EXPECT_EQ(co_await set.wait(), SIGUSR1);
    auto waiter = gb::spawn(set.wait());
    co_await gb::yield_now();
    send_to_self(SIGUSR1);
    EXPECT_EQ(co_await waiter, SIGUSR1);
  }(set, child_saw_cancelled));
  EXPECT_TRUE(child_saw_cancelled);
}

TEST(SignalSet, destroying_the_last_set_restores_the_threads_signal_mask) {
  ASSERT_FALSE(is_blocked(SIGUSR1));
  ASSERT_FALSE(is_blocked(SIGUSR2));
  const sigset_t before = current_mask();
  {
    gb::os::SignalSet set{SIGUSR1, SIGUSR2};
    EXPECT_TRUE(is_blocked(SIGUSR1));
    EXPECT_TRUE(is_blocked(SIGUSR2));
    EXPECT_FALSE(same_mask(current_mask(), before));
  }
  EXPECT_TRUE(same_mask(current_mask(), before));
}

TEST(SignalSet, a_signal_held_by_two_sets_stays_blocked_until_the_last_of_them_is_destroyed) {
  const sigset_t before = current_mask();
  {
    DeadlineLoop loop;  // declared first: the set's descriptor is attached to it
    gb::os::SignalSet outer{SIGUSR1};
    {
      gb::os::SignalSet inner{SIGUSR1, SIGUSR2};
      EXPECT_TRUE(is_blocked(SIGUSR2));
    }
    EXPECT_TRUE(is_blocked(SIGUSR1));   // outer still holds it
    EXPECT_FALSE(is_blocked(SIGUSR2));  // only inner held it
    // And outer still receives it.
    send_to_self(SIGUSR1);
    EXPECT_EQ(loop.run(outer.wait()), SIGUSR1);
  }
  EXPECT_TRUE(same_mask(current_mask(), before));
}

TEST(SignalSet, a_signal_the_thread_blocked_before_the_set_stays_blocked_after_it) {
  MaskGuard guard;
  block(SIGUSR2);
  { gb::os::SignalSet set{SIGUSR2}; }
  EXPECT_TRUE(is_blocked(SIGUSR2));
}

TEST(SignalSet, a_signal_sent_by_another_thread_is_received) {
  DeadlineLoop loop;  // declared first: the set's descriptor is attached to it
  gb::os::SignalSet set{SIGUSR1};
  // Started after the set: the thread inherits a mask that blocks SIGUSR1, so the
  // process-directed signal cannot be taken by it either.
  const int received = loop.run([](gb::os::SignalSet& set) -> gb::Task<int> {
    auto waiter = gb::spawn(set.wait());
    co_await gb::yield_now();
    std::thread sender([] {
      sigset_t mask;
      pthread_sigmask(SIG_SETMASK, nullptr, &mask);
      if (sigismember(&mask, SIGUSR1) == 1) ::kill(::getpid(), SIGUSR1);
    });
    const int signal_number = co_await waiter;
    sender.join();
    co_return signal_number;
  }(set));
  EXPECT_EQ(received, SIGUSR1);
}

TEST(SignalSet, a_real_time_signal_queues_every_delivery) {
  const int rt = SIGRTMIN + 2;
  DeadlineLoop loop;  // declared first: the set's descriptor is attached to it
  gb::os::SignalSet set{rt};
  send_to_self(rt);
  send_to_self(rt);
  send_to_self(rt);
  loop.run([](gb::os::SignalSet& set, int rt) -> gb::Task<void> {
    for (int i = 0; i < 3; ++i) EXPECT_EQ(co_await set.wait(), rt);
    EXPECT_THROW(co_await gb::timeout(20ms, set.wait()), gb::TimeoutError);
  }(set, rt));
}

// The header's own example: a SignalSet in main(), the loop made by gb::run inside it, so
// the loop is destroyed first. The loop detaches the set's watch as it goes, and the set
// can be waited on again from a new loop.
TEST(SignalSet, a_set_may_outlive_the_loop_its_wait_ran_on_and_serve_the_next_loop) {
  gb::os::SignalSet set{SIGUSR1};
  send_to_self(SIGUSR1);
  EXPECT_EQ(run_with_deadline(set.wait()), SIGUSR1);
  send_to_self(SIGUSR1);
  EXPECT_EQ(run_with_deadline(set.wait()), SIGUSR1);
}  // ~SignalSet after both loops are gone
