// ProcessPool: the dispatcher thread, worker spawning and failure handling. The header
// comment of process_pool.hpp describes the design; the notes here are about invariants.
//
// Locking: Impl::mutex guards the queue, the worker table and every worker's state and
// in-flight list, and the calls' bookkeeping fields. Frames are sent under it (sockets
// are non-blocking); frames are received without it (only the dispatcher reads). Futures
// are never completed under it: completion may resume a coroutine inline, which may
// submit again. Failures decided under the lock are queued in `outcomes` and delivered by
// deliver_outcomes() after unlocking.
#include <gearbox/process/process_pool.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <condition_variable>
#include <deque>
#include <future>
#include <thread>
#include <unordered_map>

#include "process/wire.hpp"
#include "process/worker_protocol.hpp"
#include "trace/recorder.hpp"

extern char** environ;

#ifndef P_PIDFD
#define P_PIDFD static_cast<idtype_t>(3)
#endif

namespace gearbox {

namespace {

namespace wire = detail::wire;
using SteadyTime = std::chrono::steady_clock;
using detail::ProcessCall;

int pidfd_open(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }
void kill_by_pidfd(int pidfd) { ::syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0); }

constexpr std::uint64_t k_wake_key = 0;  // epoll data of the eventfd; workers use key*4 + what
constexpr std::uint64_t k_socket_event = 1;
constexpr std::uint64_t k_pidfd_event = 2;
constexpr double k_backlog_us = 1000;     // how much work a worker is given ahead, in time
constexpr std::size_t k_max_window = 1024;  // and in calls
constexpr double k_prefetch_us = 100'000;   // calls shorter than this are sent one ahead

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
  bool exclusive = false;     // a timed task is in flight: nothing else goes to this worker
  bool send_blocked = false;  // the socket said EAGAIN (or worse): wait for EPOLLOUT
  bool write_closed = false;  // we shut our side: the worker exits when it has answered
  bool malformed = false;     // killed for a malformed frame
};

struct Outcome {
  ProcessCall* call;
  std::exception_ptr error;
};

}  // namespace

struct ProcessPool::Impl {
  enum class Phase { running, draining, stopping };

  explicit Impl(ProcessPoolOptions opts) : options(std::move(opts)) {
    worker_count = options.workers ? options.workers : std::max(1u, std::thread::hardware_concurrency());
    epoll = ::epoll_create1(EPOLL_CLOEXEC);
    if (epoll < 0) throw IoError(errno, "epoll_create1");
    wake = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake < 0) {
      ::close(epoll);
      throw IoError(errno, "eventfd");
    }
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u64 = k_wake_key;
    ::epoll_ctl(epoll, EPOLL_CTL_ADD, wake, &event);
  }
  ~Impl() {
    ::close(wake);
    ::close(epoll);
  }

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
  // under mutex: per task name, a moving average of a call's run time in microseconds
  // (-1 until one has run); decides how many calls a worker is given ahead.
  std::unordered_map<std::string, double> run_time_us;
  Stats counters;                                // under mutex
  wire::FrameWriter tasks{wire::Kind::tasks};    // under mutex: the frame being built
  wire::Frame frame;                             // dispatcher only: the frame being read
  // Set by a queued call's stop callback (any thread, possibly under `mutex`): the
  // dispatcher should look for stopped calls. Memory ordering: the flag carries no data
  // (the stop state is read through the stop_token); relaxed, the eventfd write wakes.
  std::atomic<bool> stop_requested{false};

  static void on_stop(void* self) noexcept {
    auto* impl = static_cast<Impl*>(self);
    impl->stop_requested.store(true, std::memory_order_relaxed);
    impl->poke();
  }

  // Fails every queued call whose stop was requested.
  void drop_stopped() {
    std::erase_if(queue, [&](ProcessCall* call) {
      if (!call->stop_token.stop_requested()) return false;
      fail(call, std::make_exception_ptr(Cancelled{}));
      return true;
    });
  }

  // ---- called with the lock held ----

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

  // How many calls like `call` a worker may hold: about k_backlog_us of work, 2 while the
  // task's cost is unknown. At least 2 unless a call takes longer than k_prefetch_us: a
  // worker that finishes a call then has the next one at hand, instead of idling through
  // two wake-ups (its answer, our send), which on a busy machine cost milliseconds each.
  // The price is at most one call of imbalance between workers at the end of a burst.
  static std::size_t window(const ProcessCall& call) noexcept {
    const double us = *call.m_run_time_us;
    if (us < 0) return 2;
    const std::size_t floor = us < k_prefetch_us ? 2 : 1;
    return std::clamp<std::size_t>(static_cast<std::size_t>(k_backlog_us / std::max(us, 1.0)), floor, k_max_window);
  }

  void spawn_worker() {
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) throw IoError(errno, "socketpair");
    int child = pair[1];
    if (child == wire::k_socket_fd) {  // dup2 onto itself would keep FD_CLOEXEC set
      child = ::fcntl(pair[1], F_DUPFD_CLOEXEC, 10);
      ::close(pair[1]);
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, child, wire::k_socket_fd);
    posix_spawn_file_actions_addclosefrom_np(&actions, wire::k_socket_fd + 1);
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    sigset_t none;
    sigemptyset(&none);
    sigset_t all;
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attributes, &none);
    posix_spawnattr_setsigdefault(&attributes, &all);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    const std::string parent = std::to_string(::getpid());
    char* argv[] = {const_cast<char*>("gearbox-worker"), const_cast<char*>(detail::k_worker_flag),
                    const_cast<char*>(detail::k_protocol_tag), const_cast<char*>(parent.c_str()),
                    options.initializer.empty() ? nullptr : const_cast<char*>(options.initializer.c_str()), nullptr};
    // While tracing, the worker is told where to leave its events (see trace/recorder.hpp).
    std::string trace_variable = trace::detail::worker_environment();
    std::vector<char*> environment;
    if (!trace_variable.empty()) {
      for (char** entry = environ; *entry; ++entry) environment.push_back(*entry);
      environment.push_back(trace_variable.data());
      environment.push_back(nullptr);
    }
    pid_t pid = -1;
    const int spawned = ::posix_spawn(&pid, "/proc/self/exe", &actions, &attributes, argv,
                                      environment.empty() ? environ : environment.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    ::close(child);
    if (spawned != 0) {
      ::close(pair[0]);
      throw IoError(spawned, "posix_spawn(/proc/self/exe)");
    }
    auto w = std::make_unique<Worker>();
    w->key = next_key++;
    w->pid = pid;
    w->traced = !trace_variable.empty();
    w->socket = pair[0];
    w->pidfd = pidfd_open(pid);
    if (w->pidfd < 0) {
      const int error = errno;
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      ::close(pair[0]);
      throw IoError(error, "pidfd_open");
    }
    ::fcntl(w->socket, F_SETFL, ::fcntl(w->socket, F_GETFL) | O_NONBLOCK);
    // The progress page, handed over in the welcome frame (only the socket is inherited).
    const int page = ::memfd_create("gearbox-progress", MFD_CLOEXEC);
    if (page >= 0 && ::ftruncate(page, sizeof(wire::Progress)) == 0) {
      void* address = ::mmap(nullptr, sizeof(wire::Progress), PROT_READ | PROT_WRITE, MAP_SHARED, page, 0);
      if (address != MAP_FAILED) w->progress = static_cast<wire::Progress*>(address);
    }
    welcome_send(w->socket, page);
    if (page >= 0) ::close(page);
    epoll_event event{};
    event.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    event.data.u64 = w->key * 4 + k_socket_event;
    ::epoll_ctl(epoll, EPOLL_CTL_ADD, w->socket, &event);
    event.events = EPOLLIN;
    event.data.u64 = w->key * 4 + k_pidfd_event;
    ::epoll_ctl(epoll, EPOLL_CTL_ADD, w->pidfd, &event);
    ++counters.spawned;
    workers.push_back(std::move(w));
  }

  static void welcome_send(int socket, int page) {
    // A frame with no records and one descriptor; a failure shows up as the worker's exit.
    wire::FrameHeader header{wire::k_magic, wire::k_version, static_cast<std::uint16_t>(wire::Kind::welcome), 0,
                             page >= 0 ? 1u : 0u};
    iovec iov{&header, sizeof header};
    msghdr message{};
    message.msg_iov = &iov;
    message.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    if (page >= 0) {
      message.msg_control = control;
      message.msg_controllen = sizeof control;
      cmsghdr* cmsg = CMSG_FIRSTHDR(&message);
      cmsg->cmsg_level = SOL_SOCKET;
      cmsg->cmsg_type = SCM_RIGHTS;
      cmsg->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(cmsg), &page, sizeof(int));
    }
    (void)::sendmsg(socket, &message, MSG_NOSIGNAL);
  }

  void fail(ProcessCall* call, std::exception_ptr error) { outcomes.push_back({call, std::move(error)}); }

  // Sends queued calls. Idle workers come first, sharing the queue with the workers still
  // starting (they get their share when they are ready), so that one worker does not take
  // a burst while another idles: 5 long calls on 5 new workers run 1 each. Then, only from
  // the dispatcher and once every worker is up, busy workers get their calls ahead (see
  // window()); a submitter only ever sends to idle workers.
  void pump(bool from_submitter) {
    if (phase == Phase::stopping || queue.empty() || workers.empty()) return;
    std::size_t starting = 0;
    for (auto& w : workers) starting += w->state == Worker::State::starting ? 1 : 0;
    share_out(/*idle_only=*/true, starting);
    if (!from_submitter && starting == 0) share_out(/*idle_only=*/false, 0);
    ++round_robin;
  }

  // Shares the queue among the workers that can take calls now and `later` more.
  void share_out(bool idle_only, std::size_t later) {
    const auto now = SteadyTime::now();
    const std::size_t n = workers.size();
    auto takes = [&](const Worker& w) {
      return w.state == Worker::State::ready && !w.send_blocked && !w.exclusive && (!idle_only || w.in_flight.empty());
    };
    std::size_t takers = 0;
    for (auto& w : workers) takers += takes(*w) ? 1 : 0;
    std::size_t sharers = takers + later;
    for (std::size_t k = 0; k < n && !queue.empty() && takers > 0; ++k) {
      Worker& w = *workers[(round_robin + k) % n];
      if (!takes(w)) continue;
      send_batch(w, now, (queue.size() + sharers - 1) / sharers);
      --takers;
      --sharers;
    }
  }

  void send_batch(Worker& w, SteadyTime::time_point now, std::size_t share) {
    const std::size_t limit = window(*queue.front());
    if (w.in_flight.size() >= limit) return;
    std::size_t room = std::min(limit - w.in_flight.size(), share);
    if (options.max_calls_per_child) room = std::min(room, options.max_calls_per_child - w.tasks_sent);
    tasks.reset(wire::Kind::tasks);
    std::vector<ProcessCall*> batch;
    while (!queue.empty() && batch.size() < room) {
      ProcessCall* call = queue.front();
      // Withdrawn (Future::cancel) or stopped (its stop_token): never sent. A withdrawn
      // call's fail() only disposes of it.
      if (!call->claim() || call->stop_token.stop_requested()) {
        queue.pop_front();
        fail(call, std::make_exception_ptr(Cancelled{}));
        continue;
      }
      const bool timed = call->timeout.count() > 0;
      if (timed && !(batch.empty() && w.in_flight.empty())) break;
      if (!batch.empty() && (tasks.size() + call->args.size() + call->name.size() + sizeof(wire::TaskRecord) >
                                 wire::k_frame_budget ||
                             tasks.fd_count() + call->fds.size() > wire::k_max_fds))
        break;
      queue.pop_front();
      const bool spilled = call->spill.valid();
      std::vector<int> fds = call->fds;
      if (spilled) fds.push_back(call->spill.fd());
      tasks.add_task(call->m_id, call->name, call->args, call->spill.size(), fds,
                     static_cast<std::uint16_t>((call->chunk ? wire::k_chunk : 0) | (spilled ? wire::k_spilled : 0)));
      batch.push_back(call);
      if (timed) {
        call->m_deadline = now + call->timeout;
        w.exclusive = true;
        break;
      }
    }
    if (batch.empty()) return;
    if (const int error = tasks.send(w.socket); error != 0) {
      for (auto it = batch.rbegin(); it != batch.rend(); ++it) queue.push_front(*it);
      w.exclusive = false;
      w.send_blocked = true;  // EAGAIN: until EPOLLOUT
      // Anything else: the worker is dying, or its socket is unusable; replace it (its
      // death, seen through the pidfd, counts as a crash).
      if (error != EAGAIN && error != EWOULDBLOCK) kill_by_pidfd(w.pidfd);
      return;
    }
    w.in_flight.insert(w.in_flight.end(), batch.begin(), batch.end());
    w.tasks_sent += batch.size();
    if (w.exclusive) poke();  // a new deadline: the dispatcher may be asleep with none
    if (options.max_calls_per_child && w.tasks_sent >= options.max_calls_per_child) w.state = Worker::State::retiring;
  }

  void close_write(Worker& w) {
    if (w.write_closed) return;
    w.write_closed = true;
    ::shutdown(w.socket, SHUT_WR);
  }

  // A worker's process has exited (status from waitid). Decides the fate of its calls.
  void on_exit(Worker& w, const siginfo_t& info) {
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

  void note_crash(pid_t pid) {
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
  void stop(bool cancel) {
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

  // ---- without the lock ----

  void deliver_outcomes() {
    std::vector<Outcome> ready;
    {
      std::lock_guard lock{mutex};
      ready.swap(outcomes);
      for (const Outcome& outcome : ready)
        (detail::is_cancellation(outcome.error) ? counters.cancelled : counters.failed) += outcome.call->units;
    }
    for (auto& [call, error] : ready) finish(call, nullptr, std::move(error));  // keep no reference
  }

  // Completes a call with a result record (or fails it with `error`).
  static void finish(ProcessCall* call, wire::Record* record, std::exception_ptr error, int pid = 0) {
    call->m_stop_callback.reset();  // before the pool may go: the callback points to it
    call->args.clear();
    call->fds.clear();
    call->owners.clear();
    call->spill = {};
    if (!record) {
      call->fail(std::move(error));
      return;
    }
    std::span<int> fds = record->fds;
    std::string_view bytes = record->bytes;
    SharedBuffer spilled;
    try {
      if (record->flags & wire::k_spilled) {
        spilled = SharedBuffer::adopt_sealed(std::exchange(fds.back(), -1));
        fds = fds.first(fds.size() - 1);
        if (spilled.size() != record->spilled_size) throw std::runtime_error("gearbox: a spilled result has the wrong size");
        bytes = std::string_view(reinterpret_cast<const char*>(spilled.bytes().data()), spilled.size());
      }
    } catch (...) {
      detail::DecodeScope close_them{fds};
      call->fail(std::current_exception());
      return;
    }
    detail::DecodeScope scope{fds};
    switch (static_cast<wire::Status>(record->status)) {
      case wire::Status::ok:
        call->complete(bytes);
        return;
      case wire::Status::unregistered:
        try {
          call->fail(std::make_exception_ptr(RemoteError(
              "gearbox::UnregisteredFunction", detail::decode<std::string>(bytes), pid)));
        } catch (...) {
          call->fail(std::current_exception());
        }
        return;
      default:
        try {
          auto [type, message] = detail::decode<std::pair<std::string, std::string>>(bytes);
          call->fail(std::make_exception_ptr(RemoteError(std::move(type), std::move(message), pid)));
        } catch (...) {
          call->fail(std::current_exception());
        }
        return;
    }
  }

  void poke() noexcept {
    const std::uint64_t one = 1;
    (void)!::write(wake, &one, sizeof one);
  }

  // ---- the dispatcher thread ----

  void run(std::promise<void>& started) {
    {
      std::lock_guard lock{mutex};
      try {
        for (std::size_t i = 0; i < worker_count; ++i) spawn_worker();
        started.set_value();
      } catch (...) {
        started.set_exception(std::current_exception());
        stop(false);
      }
    }
    epoll_event events[64];
    for (;;) {
      const int timeout = next_timeout();
      const int n = ::epoll_wait(epoll, events, 64, timeout);
      for (int i = 0; i < n; ++i) {
        const std::uint64_t data = events[i].data.u64;
        if (data == k_wake_key) {
          std::uint64_t count;
          (void)!::read(wake, &count, sizeof count);
          continue;
        }
        const std::uint64_t key = data / 4;
        if (data % 4 == k_socket_event) {
          if (events[i].events & EPOLLOUT) {
            std::lock_guard lock{mutex};
            if (Worker* w = find(key)) w->send_blocked = false;
          }
          read_frames(key);
        } else {
          reap(key);
        }
      }
      {
        std::lock_guard lock{mutex};
        if (stop_requested.exchange(false, std::memory_order_relaxed)) drop_stopped();
        check_deadlines();
        if (phase == Phase::draining && queue.empty()) {
          bool idle = true;
          for (auto& w : workers) idle = idle && w->in_flight.empty();
          if (idle)
            for (auto& w : workers) close_write(*w);
        }
        pump(false);
      }
      deliver_outcomes();
      std::lock_guard lock{mutex};
      if (phase != Phase::running && workers.empty()) return;
    }
  }

  int next_timeout() {
    std::lock_guard lock{mutex};
    std::optional<SteadyTime::time_point> earliest;
    for (auto& w : workers)
      if (w->exclusive && !w->in_flight.empty() && !w->in_flight.front()->m_timed_out) {
        const auto deadline = w->in_flight.front()->m_deadline;
        if (!earliest || deadline < *earliest) earliest = deadline;
      }
    if (!earliest) return -1;
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(*earliest - SteadyTime::now()).count();
    return static_cast<int>(std::clamp<long long>(left, 0, 60'000));
  }

  void check_deadlines() {
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

  // Reads every frame the worker has sent (until EAGAIN or the end of the stream).
  void read_frames(std::uint64_t key) {
    int socket;
    pid_t pid;
    {
      std::lock_guard lock{mutex};
      Worker* w = find(key);
      if (!w) return;
      socket = w->socket;
      pid = w->pid;
    }
    for (;;) {
      std::size_t size = 0;
      const int got = wire::receive(socket, frame, size);
      if (got == -EAGAIN || got == 0) return;
      std::optional<std::vector<wire::Record>> records;
      if (got == 1) {
        if (frame.header.kind == static_cast<std::uint16_t>(wire::Kind::hello) && frame.header.count == 0)
          records.emplace();
        else
          records = wire::parse(frame, size, wire::Kind::results);
      }
      std::vector<std::pair<ProcessCall*, wire::Record*>> done;
      {
        std::lock_guard lock{mutex};
        Worker* w = find(key);
        if (!w) return;
        bool good = records.has_value();
        if (good && frame.header.kind == static_cast<std::uint16_t>(wire::Kind::hello)) {
          good = w->state == Worker::State::starting;
          if (good) w->state = Worker::State::ready;
        } else if (good) {
          good = w->state != Worker::State::starting;
          for (auto& record : *records) {
            if (!good || w->in_flight.empty() || w->in_flight.front()->m_id != record.id) {
              good = false;
              break;
            }
            done.emplace_back(w->in_flight.front(), &record);
            w->in_flight.pop_front();
            (record.status == static_cast<std::uint16_t>(wire::Status::ok) ? counters.completed : counters.failed) +=
                done.back().first->units;
            double& us = *done.back().first->m_run_time_us;
            us = us < 0 ? record.run_us : 0.9 * us + 0.1 * record.run_us;
          }
          if (w->in_flight.empty()) w->exclusive = false;
        }
        if (!good) {
          // Calls already matched keep their results; the rest fail as a crash when it is reaped.
          w->malformed = true;
          kill_by_pidfd(w->pidfd);
        } else if (w->state == Worker::State::retiring && w->in_flight.empty()) {
          close_write(*w);
        }
        pump(false);
      }
      for (auto& [call, record] : done) finish(call, record, nullptr, pid);
      if (got < 0 || !records) return;
    }
  }

  void reap(std::uint64_t key) {
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
};

ProcessPool::ProcessPool(ProcessPoolOptions options) {
  if (!initialized())
    throw std::logic_error("gearbox: call gb::init(argc, argv) first in main before starting a ProcessPool");
  m_impl = std::make_unique<Impl>(std::move(options));
  std::promise<void> started;
  std::future<void> spawned = started.get_future();
  m_impl->dispatcher = std::thread([impl = m_impl.get(), &started] { impl->run(started); });
  try {
    spawned.get();
  } catch (...) {
    terminate();
    throw;
  }
}

ProcessPool::~ProcessPool() { shutdown(ShutdownMode::wait); }

std::size_t ProcessPool::size() const noexcept { return m_impl->worker_count; }

void ProcessPool::check_open() const {
  std::lock_guard lock{m_impl->mutex};
  if (m_impl->phase != Impl::Phase::running) std::rethrow_exception(m_impl->closed_error());
}

void ProcessPool::prepare(detail::ProcessCall& call, const CallOptions& options) const {
  const auto& defaults = m_impl->options;
  call.timeout = options.timeout.count() > 0 ? options.timeout : defaults.call_timeout;
  call.retries = options.retries >= 0 ? options.retries : defaults.retries;
  call.stop_token = options.stop_token;
  if (call.fds.size() + 1 > wire::k_max_fds)
    throw std::invalid_argument("gearbox: a task call can carry at most " + std::to_string(wire::k_max_fds - 1) +
                                " SharedBuffers");
  if (call.args.size() > wire::k_inline_max) {
    call.spill = SharedBuffer::copy_of(std::as_bytes(std::span(call.args.data(), call.args.size())));
    call.args.clear();
    call.args.shrink_to_fit();
  }
}

void ProcessPool::enqueue(detail::ProcessCall* call) {
  std::vector<detail::ProcessCall*> calls{call};
  enqueue(calls);
}

void ProcessPool::enqueue(std::vector<detail::ProcessCall*>& calls) {
  Impl& impl = *m_impl;
  {
    std::lock_guard lock{impl.mutex};
    for (detail::ProcessCall* call : calls) {
      if (!call) continue;  // failed while it was encoded
      if (call->name.empty()) {
        impl.fail(call, std::make_exception_ptr(RemoteError(
                            "gearbox::UnregisteredFunction", "this function was never registered (GEARBOX_REMOTE)", 0)));
      } else if (impl.phase != Impl::Phase::running) {
        impl.fail(call, impl.closed_error());
      } else {
        impl.counters.submitted += call->units;
        call->m_id = impl.next_id++;
        call->m_run_time_us = &impl.run_time_us.try_emplace(call->name, -1.0).first->second;  // nodes are stable
        if (call->stop_token.stop_possible())
          call->m_stop_callback.emplace(call->stop_token, detail::StopPoke{&Impl::on_stop, &impl});
        impl.queue.push_back(call);
      }
    }
    impl.pump(true);
  }
  impl.deliver_outcomes();
}

std::size_t ProcessPool::cancel_pending() {
  std::size_t count = 0;
  {
    std::lock_guard lock{m_impl->mutex};
    count = m_impl->queue.size();
    for (auto* call : m_impl->queue) m_impl->fail(call, std::make_exception_ptr(Cancelled{}));
    m_impl->queue.clear();
  }
  m_impl->deliver_outcomes();
  return count;
}

void ProcessPool::shutdown(ShutdownMode mode) {
  {
    std::lock_guard lock{m_impl->mutex};
    if (m_impl->phase == Impl::Phase::running) m_impl->phase = Impl::Phase::draining;
    if (mode == ShutdownMode::cancel_pending && m_impl->phase == Impl::Phase::draining) {
      for (auto* call : m_impl->queue) m_impl->fail(call, std::make_exception_ptr(Cancelled{}));
      m_impl->queue.clear();
    }
  }
  join_dispatcher();
}

void ProcessPool::terminate() {
  {
    std::lock_guard lock{m_impl->mutex};
    m_impl->stop(true);
  }
  join_dispatcher();
}

void ProcessPool::join_dispatcher() {
  m_impl->poke();
  m_impl->deliver_outcomes();
  std::lock_guard join{m_impl->join_mutex};
  if (m_impl->dispatcher.joinable()) m_impl->dispatcher.join();
}

std::vector<int> ProcessPool::worker_pids() const {
  std::lock_guard lock{m_impl->mutex};
  std::vector<int> pids;
  for (auto& w : m_impl->workers) pids.push_back(w->pid);
  return pids;
}

ProcessPool::Stats ProcessPool::stats() const {
  std::lock_guard lock{m_impl->mutex};
  Stats stats = m_impl->counters;
  for (const ProcessCall* call : m_impl->queue) stats.queued += call->units;
  for (const auto& w : m_impl->workers)
    for (const ProcessCall* call : w->in_flight) stats.running += call->units;
  // Failures decided but not delivered yet are ended already.
  for (const Outcome& outcome : m_impl->outcomes)
    (detail::is_cancellation(outcome.error) ? stats.cancelled : stats.failed) += outcome.call->units;
  return stats;
}

}  // namespace gearbox
