// ProcessPool: a worker's end (crash, timeout, retirement, stop) and what becomes of its
// calls; the restart limit; stopping the pool. See pool_impl.hpp for the locking rules.
#include "process/pool_impl.hpp"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <string>
#include <vector>

#ifndef P_PIDFD
#define P_PIDFD static_cast<idtype_t>(3)
#endif

namespace gearbox {

using namespace detail::pool;

void ProcessPool::Impl::close_write(Worker& w) {
  if (w.write_closed) return;
  w.write_closed = true;
  ::shutdown(w.socket, SHUT_WR);
}

// A worker's process has exited (status from waitid). Decides the fate of its calls.
void ProcessPool::Impl::on_exit(Worker& w, const siginfo_t& info) {
  const bool signalled = info.si_code == CLD_KILLED || info.si_code == CLD_DUMPED;
  const int signal = signalled ? info.si_status : 0;
  const int exit_code = signalled ? 0 : info.si_status;
  std::uint64_t running = 0;
  if (w.progress) {
    // Memory ordering: the worker is dead and reaped; its stores are all visible.
    running = std::atomic_ref<std::uint64_t>(w.progress->running).load(std::memory_order_acquire);
    ::munmap(w.progress, sizeof(wire::Progress));
    w.progress = nullptr;
  }
  ::epoll_ctl(epoll, EPOLL_CTL_DEL, w.socket, nullptr);
  ::epoll_ctl(epoll, EPOLL_CTL_DEL, w.pidfd, nullptr);
  ::close(w.socket);
  ::close(w.pidfd);

  if (phase == Phase::stopping) {
    for (ProcessCall* call : w.in_flight) fail(call, stop_error());
  } else {
    const bool clean = !signalled && exit_code == 0 && w.write_closed && w.in_flight.empty();
    ProcessCall* culprit = nullptr;
    for (ProcessCall* call : w.in_flight)
      if (running != 0 && call->m_id == running) culprit = call;
    const bool timed_out = culprit && culprit->m_timed_out;
    if (timed_out) ++counters.timeouts;
    if (!clean && !timed_out) note_crash(w.pid);
    std::vector<ProcessCall*> again;
    for (ProcessCall* call : w.in_flight) {
      call->m_timed_out = false;
      if (call != culprit) {
        again.push_back(call);  // it never ran, or its result was lost with the worker
      } else if (timed_out) {
        fail(call, std::make_exception_ptr(TimeoutError{}));
      } else if (call->retries > 0) {
        --call->retries;
        again.push_back(call);
      } else {
        fail(call, std::make_exception_ptr(
                       WorkerCrashed(w.pid, signal, exit_code, w.malformed ? "it sent a malformed message" : "")));
      }
    }
    for (auto it = again.rbegin(); it != again.rend(); ++it) queue.push_front(*it);
  }
  w.in_flight.clear();
  std::erase_if(workers, [&](const std::unique_ptr<Worker>& p) { return p.get() == &w; });

  if (phase == Phase::stopping) return;
  if (!broken.empty()) {
    stop(false);
    return;
  }
  if (phase == Phase::draining && queue.empty()) return;
  try {
    spawn_worker();
  } catch (const std::exception& e) {
    broken = std::string("gearbox: the process pool cannot replace a worker: ") + e.what();
    stop(false);
  }
}

void ProcessPool::Impl::note_crash(pid_t pid) {
  ++counters.crashes;
  const auto now = SteadyTime::now();
  crash_times.push_back(now);
  while (!crash_times.empty() && now - crash_times.front() > options.restart_window) crash_times.pop_front();
  if (crash_times.size() > static_cast<std::size_t>(std::max(options.max_restarts, 0)))
    broken = "gearbox: the process pool stopped: " + std::to_string(crash_times.size()) + " worker crashes within " +
             std::to_string(options.restart_window.count()) + " ms (max_restarts " +
             std::to_string(options.max_restarts) + "); the last was worker " + std::to_string(pid);
}

// Stops the pool: queued calls fail with Cancelled (`cancel`) or ShutdownError, workers
// are killed; their in-flight calls fail the same way as they are reaped.
void ProcessPool::Impl::stop(bool cancel) {
  if (phase == Phase::stopping) return;
  phase = Phase::stopping;
  stop_cancels = cancel;
  for (ProcessCall* call : queue) fail(call, stop_error());
  queue.clear();
  for (auto& w : workers) {
    // An idle worker that traces is let go (end of input) rather than killed, so it can
    // write its events (trace/recorder.hpp); it is reaped like the others.
    if (w->traced && w->in_flight.empty())
      close_write(*w);
    else
      kill_by_pidfd(w->pidfd);
  }
}

void ProcessPool::Impl::check_deadlines() {
  const auto now = SteadyTime::now();
  for (auto& w : workers) {
    if (!w->exclusive || w->in_flight.empty()) continue;
    ProcessCall* call = w->in_flight.front();
    if (!call->m_timed_out && call->m_deadline <= now) {
      call->m_timed_out = true;
      kill_by_pidfd(w->pidfd);
    }
  }
}

void ProcessPool::Impl::reap(std::uint64_t key) {
  read_frames(key);  // what it sent before it died is still in the socket
  int pidfd;
  {
    std::lock_guard lock{mutex};
    Worker* w = find(key);
    if (!w) return;
    pidfd = w->pidfd;
  }
  siginfo_t info{};
  int reaped;
  do reaped = ::waitid(P_PIDFD, static_cast<id_t>(pidfd), &info, WEXITED);
  while (reaped != 0 && errno == EINTR);
  std::lock_guard lock{mutex};
  if (Worker* w = find(key)) on_exit(*w, info);
}

}  // namespace gearbox
