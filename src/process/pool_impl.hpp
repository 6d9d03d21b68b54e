// The inside of a ProcessPool, shared by the files that implement it:
//   process_pool.cpp    the façade: submit/map bookkeeping, shutdown, terminate, stats
//   dispatcher.cpp      the dispatcher thread's loop, reading results, completing futures
//   batching.cpp        which worker gets which queued calls, how many, and sending them
//   worker_start.cpp    spawning a worker and handing it its progress page
//   crash_and_stop.cpp  a worker's end (crash, timeout, retirement) and stopping the pool
// The header comment of process_pool.hpp describes the design; the notes here are about
// invariants.
//
// Locking: Impl::mutex guards the queue, the worker table and every worker's state and
// in-flight list, and the calls' bookkeeping fields. Frames are sent under it (sockets
// are non-blocking); frames are received without it (only the dispatcher reads). Futures
// are never completed under it: completion may resume a coroutine inline, which may
// submit again. Failures decided under the lock are queued in `outcomes` and delivered by
// deliver_outcomes() after unlocking.
#pragma once

#include <gearbox/process/process_pool.hpp>

#include <signal.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <exception>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "process/wire.hpp"

namespace gearbox::detail::pool {

namespace wire = detail::wire;
using SteadyTime = std::chrono::steady_clock;

inline int pidfd_open(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }
inline void kill_by_pidfd(int pidfd) { ::syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0); }

inline constexpr std::uint64_t k_wake_key = 0;  // epoll data of the eventfd; workers use key*4 + what
inline constexpr std::uint64_t k_socket_event = 1;
inline constexpr std::uint64_t k_pidfd_event = 2;
inline constexpr double k_backlog_us = 1000;       // how much work a worker is given ahead, in time
inline constexpr std::size_t k_max_window = 1024;  // and in calls
inline constexpr double k_prefetch_us = 100'000;   // calls shorter than this are sent one ahead

struct Worker {
  enum class State { starting, ready, retiring };

  std::uint64_t key = 0;  // unique per spawn (epoll events name a worker by it)
  pid_t pid = -1;
  int pidfd = -1;
  int socket = -1;
  wire::Progress* progress = nullptr;
  State state = State::starting;
  std::deque<ProcessCall*> in_flight;  // sent and not answered, in the order sent
  std::size_t tasks_sent = 0;
  bool traced = false;  // started while tracing: it writes its events when it exits
  bool exclusive = false;     // a timed call is in flight: nothing else goes to this worker
  bool send_blocked = false;  // the socket said EAGAIN (or worse): wait for EPOLLOUT
  bool write_closed = false;  // we shut our side: the worker exits when it has answered
  bool malformed = false;     // killed for a malformed frame
};

struct Outcome {
  ProcessCall* call;
  std::exception_ptr error;
};

}  // namespace gearbox::detail::pool

namespace gearbox {

struct ProcessPool::Impl {
  using Worker = detail::pool::Worker;
  using Outcome = detail::pool::Outcome;
  using ProcessCall = detail::ProcessCall;
  using SteadyTime = detail::pool::SteadyTime;
  enum class Phase { running, draining, stopping };

  explicit Impl(ProcessPoolOptions opts);  // the epoll set and the wake-up eventfd
  ~Impl();

  ProcessPoolOptions options;
  std::size_t worker_count = 0;
  int epoll = -1;
  int wake = -1;
  std::thread dispatcher;
  std::mutex join_mutex;  // one thread joins the dispatcher

  mutable std::mutex mutex;
  std::deque<ProcessCall*> queue;                // under mutex: not sent yet
  std::vector<std::unique_ptr<Worker>> workers;  // under mutex; changed by the dispatcher only
  std::vector<Outcome> outcomes;                 // under mutex: failures to deliver after unlocking
  std::uint64_t next_id = 1;                     // under mutex
  std::uint64_t next_key = 1;                    // under mutex
  std::size_t round_robin = 0;                   // under mutex
  Phase phase = Phase::running;                  // under mutex
  bool stop_cancels = false;                     // under mutex: stopping fails calls with Cancelled, else ShutdownError
  std::string broken;                            // under mutex: why the restart limit stopped the pool
  std::deque<SteadyTime::time_point> crash_times;     // under mutex
  // under mutex: per function name, a moving average of a call's run time in microseconds
  // (-1 until one has run); decides how many calls a worker is given ahead.
  std::unordered_map<std::string, double> run_time_us;
  Stats counters;                                // under mutex
  detail::wire::FrameWriter calls_frame{detail::wire::Kind::calls};    // under mutex: the frame being built
  detail::wire::Frame frame;                             // dispatcher only: the frame being read
  // Set by a queued call's stop callback (any thread, possibly under `mutex`): the
  // dispatcher should look for stopped calls. Memory ordering: the flag carries no data
  // (the stop state is read through the stop_token); relaxed, the eventfd write wakes.
  std::atomic<bool> stop_requested{false};

  // ---- called with the lock held ----

  static void on_stop(void* self) noexcept {
    auto* impl = static_cast<Impl*>(self);
    impl->stop_requested.store(true, std::memory_order_relaxed);
    impl->poke();
  }

  // A new exception per call: a consumer must hold the only reference to its exception,
  // so that it is freed on the consumer's thread.
  std::exception_ptr closed_error() const {
    return std::make_exception_ptr(broken.empty() ? ShutdownError() : ShutdownError(broken));
  }

  std::exception_ptr stop_error() const {
    return stop_cancels ? std::make_exception_ptr(Cancelled{}) : closed_error();
  }

  Worker* find(std::uint64_t key) const noexcept {
    for (auto& w : workers)
      if (w->key == key) return w.get();
    return nullptr;
  }

  void fail(ProcessCall* call, std::exception_ptr error) { outcomes.push_back({call, std::move(error)}); }

  // batching.cpp
  static std::size_t window(const ProcessCall& call) noexcept;  // calls a worker may hold
  void pump(bool from_submitter);                               // sends queued calls
  void share_out(bool idle_only, std::size_t later);
  void send_batch(Worker& w, SteadyTime::time_point now, std::size_t share);
  void drop_stopped();  // fails every queued call whose stop was requested

  // worker_start.cpp
  void spawn_worker();  // IoError if it cannot
  static void welcome_send(int socket, int page);

  // crash_and_stop.cpp
  void close_write(Worker& w);  // end of input: the worker exits once it has answered
  void on_exit(Worker& w, const siginfo_t& info);
  void note_crash(pid_t pid);  // counts towards the restart limit
  void stop(bool cancel);
  void check_deadlines();  // kills the workers whose timed call is late

  // ---- without the lock ----

  // dispatcher.cpp
  void deliver_outcomes();
  static void finish(ProcessCall* call, detail::wire::Record* record, std::exception_ptr error, int pid = 0);
  void poke() noexcept {  // wakes the dispatcher; any thread
    const std::uint64_t one = 1;
    (void)!::write(wake, &one, sizeof one);
  }

  // ---- the dispatcher thread ----

  // dispatcher.cpp
  void run(std::promise<void>& started);
  int next_timeout();
  void read_frames(std::uint64_t key);
  // crash_and_stop.cpp
  void reap(std::uint64_t key);
};

}  // namespace gearbox
