// SignalsBlocked: while it lives, the calling thread blocks every asynchronous signal, so a
// thread started meanwhile inherits a mask that blocks them all. The runtime starts its
// worker threads this way: a process-directed signal (Ctrl-C, SIGTERM) then goes to a
// thread of the program's own, never to a pool worker, and os::signal() can take it from
// a signalfd (which only sees signals that every thread blocks).
#pragma once

#include <signal.h>
#include <pthread.h>

namespace gearbox::detail {

class SignalsBlocked {
public:
  SignalsBlocked() noexcept {
    sigset_t all;
    sigfillset(&all);
    // Faults are raised by the thread that caused them; leave them deliverable.
    for (int fault : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS}) sigdelset(&all, fault);
    pthread_sigmask(SIG_BLOCK, &all, &m_previous);
  }
  ~SignalsBlocked() { pthread_sigmask(SIG_SETMASK, &m_previous, nullptr); }
  SignalsBlocked(const SignalsBlocked&) = delete;
  SignalsBlocked& operator=(const SignalsBlocked&) = delete;

private:
  sigset_t m_previous;
};

}  // namespace gearbox::detail
