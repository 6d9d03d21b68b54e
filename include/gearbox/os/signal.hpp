// Signals as awaitable events, so a server can shut down cleanly on Ctrl-C:
//
//   gb::spawn([]() -> gb::Task<void> {
//     co_await gb::os::signal(SIGINT);        // the next SIGINT, as an event on the loop
//     server.stop();
//   }());
//
//   gb::os::SignalSet signals{SIGINT, SIGTERM};
//   int which = co_await signals.wait();       // one delivery of either
//
// How: the signals are blocked in the calling thread and read from a signalfd, so they
// arrive as readable data on the loop instead of interrupting it. A signalfd only sees a
// signal that no thread takes by other means, so every thread of the process must block
// it: gearbox's own threads (pools, to_thread) block all signals from birth; threads you
// start yourself inherit the mask of the thread that starts them, so create the SignalSet
// (or block the signals with pthread_sigmask) before starting them.
//
// A signal that arrives while nobody waits stays pending and is returned by the next wait
// (standard signals do not queue: two SIGINTs before a wait are one). When the last
// SignalSet of a signal in a thread is destroyed, that thread's mask is restored, so a
// pending or later signal takes its normal course again (for SIGINT: the process ends).
//
// On a gb::Runtime: the workers block every signal from birth, so a SignalSet made in a
// task holds no mask and may be destroyed on any worker; but the thread waiting in
// Runtime::run is yours, and takes a signal it does not block. Make the SignalSet in that
// thread before run() (or block the signals there), as bench/servers/gearbox_echo_server
// does:
//
//   gb::os::SignalSet stop{SIGINT, SIGTERM};      // main(): blocks them in this thread
//   gb::Runtime runtime;
//   runtime.run(serve(stop));                      // a task co_awaits stop.wait()
//
// Thread-safety: a SignalSet made outside a Runtime's worker must be destroyed on the
// thread that made it; in every case with no task waiting on it (cancel the waiter
// first). One task at a time waits on it. It may outlive its loop (made in main() around
// gb::run) and serve a later one, or a Runtime. Each wait is a cancellation point.
#pragma once

#include <initializer_list>
#include <vector>

#include <gearbox/detail/async_fd.hpp>
#include <gearbox/task.hpp>

namespace gearbox::os {

class SignalSet {
public:
  // Blocks `signals` in the calling thread and opens a signalfd for them. IoError
  // ("signalfd"); std::invalid_argument for a signal that cannot be caught (SIGKILL,
  // SIGSTOP), is out of range, or is reserved by the C library (glibc's 32 and 33).
  SignalSet(std::initializer_list<int> signals);
  ~SignalSet();
  SignalSet(const SignalSet&) = delete;
  SignalSet& operator=(const SignalSet&) = delete;

  // The number of the next signal of the set delivered to the process (or this thread).
  [[nodiscard]] Task<int> wait();

private:
  std::vector<int> m_signals;
  bool m_holds_mask = false;  // blocked the signals in the making thread (not a worker)
  detail::AsyncFd m_fd;
};

// Waits for one delivery of `signal_number` (a SignalSet of one, for one wait).
[[nodiscard]] Task<int> signal(int signal_number);

}  // namespace gearbox::os
