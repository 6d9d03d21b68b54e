#include <gearbox/os/signal.hpp>

#include <signal.h>
#include <sys/signalfd.h>
#include <pthread.h>

#include <array>
#include <cerrno>
#include <stdexcept>
#include <string>

#include <gearbox/detail/task_core.hpp>
#include <gearbox/error.hpp>

namespace gearbox::os {

namespace {

// How many SignalSets of this thread hold each signal blocked, and whether the signal was
// already blocked before the first of them (then it stays blocked after the last).
struct ThreadSignals {
  std::array<int, _NSIG> users{};
  std::array<bool, _NSIG> was_blocked{};
};
thread_local ThreadSignals t_signals;

void check_catchable(int signal_number) {
  if (signal_number <= 0 || signal_number >= _NSIG || signal_number == SIGKILL || signal_number == SIGSTOP)
    throw std::invalid_argument("gearbox: signal " + std::to_string(signal_number) + " cannot be waited for");
}

// Blocks `signals` in this thread, remembering which were blocked already.
void hold_signals(const std::vector<int>& signals, const sigset_t& set) {
  sigset_t previous;
  pthread_sigmask(SIG_BLOCK, &set, &previous);
  for (int s : signals)
    if (t_signals.users[s]++ == 0) t_signals.was_blocked[s] = sigismember(&previous, s) == 1;
}

// Undoes hold_signals: unblocks the signals no other SignalSet of this thread still holds.
void release_signals(const std::vector<int>& signals) {
  sigset_t restore;
  sigemptyset(&restore);
  bool any = false;
  for (int s : signals) {
    if (--t_signals.users[s] == 0 && !t_signals.was_blocked[s]) {
      sigaddset(&restore, s);
      any = true;
    }
  }
  if (any) pthread_sigmask(SIG_UNBLOCK, &restore, nullptr);
}

}  // namespace

SignalSet::SignalSet(std::initializer_list<int> signals) : m_signals(signals) {
  sigset_t set;
  sigemptyset(&set);
  for (int s : m_signals) {
    check_catchable(s);
    // glibc keeps the real-time signals below SIGRTMIN (32 and 33) for itself and refuses
    // them here: a set without them would wait forever.
    if (sigaddset(&set, s) != 0)
      throw std::invalid_argument("gearbox: signal " + std::to_string(s) + " is reserved by the C library");
  }
  // A Runtime's workers block every signal from birth and never unblock one: a set made
  // there holds nothing (and may then be destroyed on another worker).
  m_holds_mask = !detail::on_runtime_worker();
  if (m_holds_mask) hold_signals(m_signals, set);
  const int fd = ::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) {
    const int error = errno;
    if (m_holds_mask) release_signals(m_signals);
    throw IoError(error, "signalfd");
  }
  m_fd = detail::AsyncFd{fd};
}

SignalSet::~SignalSet() {
  m_fd.close();
  if (m_holds_mask) release_signals(m_signals);
}

Task<int> SignalSet::wait() {
  signalfd_siginfo info{};
  const std::size_t n = co_await m_fd.read(&info, sizeof info);
  if (n != sizeof info) throw IoError(EIO, "signalfd read");
  co_return static_cast<int>(info.ssi_signo);
}

Task<int> signal(int signal_number) {
  SignalSet set{signal_number};
  co_return co_await set.wait();
}

}  // namespace gearbox::os
