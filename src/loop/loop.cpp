#include <gearbox/loop.hpp>

#include <gearbox/detail/unobserved.hpp>
#include <gearbox/detail/wait_lock.hpp>

#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <vector>

#include <gearbox/error.hpp>

#include "loop/reactor.hpp"
#include "loop/timer_wheel.hpp"
#include "runtime/runtime_core.hpp"
#include "trace/recorder.hpp"

namespace gearbox {
namespace {

thread_local Loop* t_current_loop = nullptr;

using Milliseconds = std::chrono::milliseconds;

// A function posted from another thread, queued as a Runnable.
struct PostedFunction final : detail::Runnable {
  explicit PostedFunction(std::function<void()> fn) : Runnable(&PostedFunction::run), m_fn(std::move(fn)) {}
  static void run(Runnable* self) noexcept {
    auto* posted = static_cast<PostedFunction*>(self);
    try {
      posted->m_fn();
    } catch (...) {
      detail::LoopAccess::report_unhandled(*Loop::current(), std::current_exception());
    }
    delete posted;
    if (trace::detail::on()) [[unlikely]]
      trace::detail::loop_gap();
  }
  std::function<void()> m_fn;
};

void default_unhandled(std::exception_ptr error) {
  detail::print_failure("a task failed and nobody awaited it", error);
}

}  // namespace

struct Loop::Impl : detail::IoWatcher {
  explicit Impl(Loop& loop, LoopOptions&& options)
      : IoWatcher(&Impl::on_wake), m_loop(loop), m_options(std::move(options)),
        m_reactor(detail::make_reactor(m_options.io_backend, m_options.socket_io)), m_wake_fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    if (m_wake_fd < 0) throw IoError(errno, "eventfd");
    m_reactor->add(m_wake_fd, this, detail::io_events::readable);
    if (m_reactor->socket_completion()) m_socket_ring = m_reactor->ring();
  }
  ~Impl() {
    m_reactor->remove(m_wake_fd);
    ::close(m_wake_fd);
    // ~Loop has run everything posted before it began; nothing is left to free here.
  }

  // Ticks are whole milliseconds since the loop was made. A deadline rounds up (a timer
  // never fires early); the present rounds down.
  std::uint64_t deadline_tick(time_point t) const noexcept {
    if (t <= m_origin) return 0;
    const auto ms = std::chrono::ceil<Milliseconds>(t - m_origin).count();
    return static_cast<std::uint64_t>(ms);
  }
  std::uint64_t now_tick(time_point t) const noexcept {
    if (t <= m_origin) return 0;
    return static_cast<std::uint64_t>(std::chrono::floor<Milliseconds>(t - m_origin).count());
  }
  time_point tick_time(std::uint64_t tick) const noexcept { return m_origin + Milliseconds(tick); }

  // Milliseconds the reactor may sleep before the next timer is due (-1: no timer).
  int poll_timeout(time_point now) noexcept {
    auto next = m_timers.next_deadline();
    if (!next) return -1;
    const time_point due = tick_time(*next);
    if (due <= now) return 0;
    const auto ms = std::chrono::ceil<Milliseconds>(due - now).count();
    return ms > 1'000'000 ? 1'000'000 : static_cast<int>(ms);
  }

  // Called by the reactor when another thread posted: moves posted work to the ready queue.
  static void on_wake(detail::IoWatcher* self, std::uint32_t) noexcept {
    auto* impl = static_cast<Impl*>(self);
    std::uint64_t count;
    detail::Runnable* head;
    {
      // Under the mutex, with post(): a poster that comes after this sees the flag clear
      // and writes the eventfd again, so nothing posted is missed.
      std::lock_guard lock(impl->m_remote_mutex);
      [[maybe_unused]] ssize_t n = ::read(impl->m_wake_fd, &count, sizeof count);
      impl->m_wake_pending.store(false, std::memory_order_relaxed);
      head = std::exchange(impl->m_remote_head, nullptr);
      impl->m_remote_tail = &impl->m_remote_head;
    }
    while (head) {
      detail::Runnable* next = head->m_next;
      impl->m_loop.schedule(head);
      head = next;
    }
  }

  Loop& m_loop;
  LoopOptions m_options;
  std::unique_ptr<detail::Reactor> m_reactor;
  detail::Ring* m_socket_ring = nullptr;  // the reactor's ring, when sockets complete there
  // The IoWatchers registered through Loop::watch. Under the mutex: on a Runtime another
  // worker may register a descriptor with this loop's reactor (FdWatch's home).
  std::mutex m_watchers_mutex;
  detail::List m_watchers;  // under m_watchers_mutex
  detail::TimerWheel m_timers;
  time_point m_origin{};
  int m_wake_fd;

  std::mutex m_remote_mutex;
  detail::Runnable* m_remote_head = nullptr;          // written under m_remote_mutex
  detail::Runnable** m_remote_tail = &m_remote_head;  // written under m_remote_mutex
  // true: the eventfd has been written and on_wake has not consumed it yet. Written under
  // m_remote_mutex (set by post, cleared by on_wake); read without it only as a hint.
  std::atomic<bool> m_wake_pending{false};
  bool m_running = false;
  // Turns run back to back without looking at I/O (see run_turn).
  static constexpr int k_busy_poll_interval = 61;
  int m_busy_turns = 0;
};

Loop::Loop(LoopOptions options)
    : m_clock(options.clock ? options.clock : &SteadyClock::instance()) {
  if (options.auto_advance && !m_clock->is_manual())
    throw std::invalid_argument("gearbox: LoopOptions::auto_advance needs a ManualClock");
  m_impl = std::make_unique<Impl>(*this, std::move(options));
  m_impl->m_origin = m_clock->now();
}

Loop::~Loop() {
  // Cancel what is still alive and let it unwind, so destructors run and nothing leaks.
  if (m_live_count > 0 || !m_ready.empty() || m_impl->m_wake_pending.load(std::memory_order_relaxed)) {
    Loop* const outer = std::exchange(t_current_loop, this);
    // request_cancel only wakes or forwards; no task completes during the walk.
    m_live.for_each([](detail::ListNode* node) { detail::TaskCore::from_live_node(node)->request_cancel(); });
    try {
      drain();
    } catch (...) {
      std::fprintf(stderr, "gearbox: error while shutting a loop down\n");
    }
    t_current_loop = outer;
  }
  // Descriptors that outlive the loop (a listener bound in main, a SignalSet around run):
  // their watchers forget it, so their destructors do not reach into a dead loop.
  for (;;) {
    detail::ListNode* node;
    {
      std::lock_guard lock(m_impl->m_watchers_mutex);
      node = m_impl->m_watchers.pop_front();
    }
    if (!node) break;
    auto* watcher = static_cast<detail::IoWatcher*>(node);
    watcher->m_on_ready(watcher, detail::io_events::detached);
  }
}

Loop* Loop::current() noexcept { return t_current_loop; }

Loop& Loop::current_or_throw() {
  if (!t_current_loop) throw std::logic_error("gearbox: not on a gearbox::Loop (call this from a task)");
  return *t_current_loop;
}

void Loop::post(std::function<void()> fn) { post(new PostedFunction(std::move(fn))); }

Loop* detail::LoopAccess::enter(Loop* loop) noexcept { return std::exchange(t_current_loop, loop); }

void Loop::wake_up() noexcept {
  // As post() without a runnable: under the mutex, so on_wake's read of the eventfd and
  // this write cannot cross.
  std::lock_guard lock(m_impl->m_remote_mutex);
  if (!m_impl->m_wake_pending.load(std::memory_order_relaxed)) {
    m_impl->m_wake_pending.store(true, std::memory_order_relaxed);
    const std::uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(m_impl->m_wake_fd, &one, sizeof one);
  }
}

int Loop::drive(bool may_block) {
  Impl& impl = *m_impl;
  const int timeout = may_block ? impl.poll_timeout(m_clock->now()) : 0;
  int found = impl.m_reactor->poll(timeout);
  if (!impl.m_timers.empty()) {
    impl.m_timers.advance(impl.now_tick(m_clock->now()));
    found += static_cast<int>(impl.m_timers.fire_due());
  }
  for (std::size_t n = m_ready.size(); n > 0; --n, ++found) {
    detail::Runnable* runnable = m_ready.pop();
    runnable->m_run(runnable);
  }
  return found;
}

void Loop::wake_shared(detail::TaskCore* core) noexcept { m_runtime->schedule_woken(core); }
void Loop::reschedule(detail::TaskCore* core) noexcept { m_runtime->schedule_again(core); }

void Loop::note_started() noexcept {
  if (m_runtime)
    m_runtime->note_started(m_worker_index);
  else
    ++m_started;
}

void Loop::post(detail::Runnable* posted) noexcept {
  // Everything, the eventfd write included, happens under m_remote_mutex: once a poster
  // lets go of it, it never touches the loop again, so a loop that has run the posted work
  // may be destroyed at once (a Future completed from another thread relies on this).
  std::lock_guard lock(m_impl->m_remote_mutex);
  posted->m_next = nullptr;
  *m_impl->m_remote_tail = posted;
  m_impl->m_remote_tail = &posted->m_next;
  // Memory ordering: the flag is written under the mutex; its relaxed reads outside it
  // (run_turn's busy check) are only hints, confirmed by on_wake under the mutex.
  if (!m_impl->m_wake_pending.load(std::memory_order_relaxed)) {
    m_impl->m_wake_pending.store(true, std::memory_order_relaxed);
    const std::uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(m_impl->m_wake_fd, &one, sizeof one);
  }
}

void Loop::add_timer(detail::TimerNode* timer, time_point deadline) noexcept {
  m_impl->m_timers.insert(timer, m_impl->deadline_tick(deadline));
}

void Loop::cancel_timer(detail::TimerNode* timer) noexcept { m_impl->m_timers.remove(timer); }

void Loop::watch(int fd, detail::IoWatcher* watcher, std::uint32_t events, bool on_a_runtime) {
  if (m_runtime && !on_a_runtime)
    throw std::logic_error("gearbox: this descriptor's watcher is not yet supported on gb::Runtime (use a Loop)");
  {
    std::lock_guard lock(m_impl->m_watchers_mutex);
    m_impl->m_watchers.push_back(watcher);
  }
  try {
    m_impl->m_reactor->add(fd, watcher, events);
  } catch (...) {
    forget(watcher);
    throw;
  }
}

void Loop::unwatch(int fd, detail::IoWatcher* watcher) noexcept {
  m_impl->m_reactor->remove(fd);
  forget(watcher);
}

void Loop::forget(detail::IoWatcher* watcher) noexcept {
  std::lock_guard lock(m_impl->m_watchers_mutex);
  watcher->unlink();
}

Loop& detail::LoopAccess::home_for_new_descriptor(Loop& loop) noexcept {
  return loop.m_runtime ? loop.m_runtime->next_descriptor_home() : loop;
}

void Loop::unregister(int fd) noexcept { m_impl->m_reactor->remove(fd); }

detail::Ring* detail::LoopAccess::ring(Loop& loop) noexcept { return loop.m_impl->m_reactor->ring(); }

detail::Ring* detail::LoopAccess::socket_ring(Loop& loop) noexcept { return loop.m_impl->m_socket_ring; }

IoBackend Loop::io_backend() const noexcept { return m_impl->m_reactor->backend(); }
SocketIo Loop::socket_io() const noexcept { return m_impl->m_socket_ring ? SocketIo::completion : SocketIo::readiness; }

void Loop::report_unhandled(std::exception_ptr error) noexcept {
  try {
    if (m_impl->m_options.on_unhandled_exception)
      m_impl->m_options.on_unhandled_exception(error);
    else
      default_unhandled(error);
  } catch (...) {
    default_unhandled(std::current_exception());
  }
}

void Loop::adopt(detail::TaskCore* core, Start start) noexcept {
  if (m_runtime) {
    m_runtime->adopt(core, start);
    return;
  }
  m_live.push_back(core->live_node());
  ++m_live_count;
  ++m_spawned;
  if (trace::detail::on()) [[unlikely]]
    trace::detail::task_spawned(*core);
  // Eager starts nest on this thread's stack; count them so the depth stays bounded.
  static thread_local int t_eager_depth = 0;
  if (start == Start::eager && t_eager_depth < k_max_eager_depth && t_current_loop == this) {
    ++t_eager_depth;
    detail::TaskCore::run_scheduled(core);
    --t_eager_depth;
  } else {
    schedule(core);
  }
}

void Loop::forget(detail::TaskCore* core) noexcept {
  if (m_runtime) {
    m_runtime->forget(core);
    return;
  }
  core->live_node()->unlink();
  --m_live_count;
  const std::exception_ptr error = core->exception();
  if (!error)
    ++m_completed;
  else if (detail::is_cancellation(error))
    ++m_cancelled;
  else
    ++m_failed;
}

EngineStats Loop::stats() const noexcept {
  const std::uint64_t ended = m_completed + m_failed + m_cancelled;
  return {.submitted = m_spawned,
          .queued = m_spawned - m_started,
          .running = m_started - ended,
          .completed = m_completed,
          .failed = m_failed,
          .cancelled = m_cancelled};
}

void Loop::check_can_run() const {
  if (m_impl->m_running) throw std::logic_error("gearbox: Loop::run is not reentrant");
  if (t_current_loop && t_current_loop != this) throw std::logic_error("gearbox: another loop is running on this thread");
}

void Loop::run_until_done(detail::TaskCore& core) {
  struct Scope {
    Loop& loop;
    Loop* outer;
    explicit Scope(Loop& l)
        : loop(l), outer(std::exchange(t_current_loop, &l)),
          outer_exclusive(std::exchange(detail::t_exclusive_loop_thread, true)) {
      loop.m_impl->m_running = true;
    }
    ~Scope() {
      loop.m_impl->m_running = false;
      t_current_loop = outer;
      detail::t_exclusive_loop_thread = outer_exclusive;
    }
    bool outer_exclusive;
  } scope{*this};
  while (!core.done()) run_turn(&core);
}

void Loop::drain() {
  m_impl->m_running = true;
  // Posted functions still queued behind the eventfd are run too.
  while (m_live_count > 0 || !m_ready.empty() || m_impl->m_wake_pending.load(std::memory_order_relaxed)) run_turn(nullptr);
  m_impl->m_running = false;
}

void Loop::run_turn(const detail::TaskCore* target) {
  Impl& impl = *m_impl;
  if (trace::detail::on()) [[unlikely]]
    trace::detail::loop_gap();
  // 1. Run what was ready when the turn began. What they wake runs next turn, after
  //    timers (and, every few turns, I/O) have been looked at, so nothing starves them.
  for (std::size_t n = m_ready.size(); n > 0; --n) {
    detail::Runnable* runnable = m_ready.pop();
    runnable->m_run(runnable);
  }

  // 2. I/O. While tasks are ready, peek at I/O only every k_busy_poll_interval turns (a
  //    syscall per turn would dominate fast task switching). When nothing is ready, wait
  //    for I/O until the next timer is due, unless what the caller waits for (`target`, or
  //    every live task when draining) has already ended.
  const bool busy = !m_ready.empty();
  const bool finished = target ? target->done() : m_live_count == 0;
  int ready_io = 0;
  if (busy || finished) {
    // Memory ordering: relaxed is enough for a hint; the mutex in on_wake orders the posted
    // work itself. A post we miss here is seen next turn.
    const bool posted = impl.m_wake_pending.load(std::memory_order_relaxed);
    // Operations prepared for io_uring are submitted at once, not k_busy_poll_interval
    // turns later (the poll that submits them costs one system call).
    if (posted || impl.m_reactor->has_unsubmitted() || ++impl.m_busy_turns >= Impl::k_busy_poll_interval) {
      impl.m_busy_turns = 0;
      ready_io = impl.m_reactor->poll(0);
    }
  } else {
    impl.m_busy_turns = 0;
    int timeout = impl.poll_timeout(m_clock->now());
    if (m_clock->is_manual() && timeout != 0) {
      // Manual time does not pass while we sleep: never block on a timer. Without
      // auto_advance, wait only for I/O or posts (a task advances the clock).
      if (impl.m_options.auto_advance) {
        if (timeout < 0 && impl.m_reactor->watched() <= 1)
          throw std::logic_error("gearbox: deadlock: every task waits, and no timer, I/O or post can wake one");
        timeout = 0;
      } else {
        timeout = -1;
      }
    }
    ready_io = impl.m_reactor->poll(timeout);
  }

  // 3. Timers. With auto_advance, when nothing else can happen, jump to the next deadline.
  if (impl.m_timers.empty()) return;
  time_point now = m_clock->now();
  if (impl.m_options.auto_advance && !finished && ready_io == 0 && m_ready.empty()) {
    if (auto next = impl.m_timers.next_deadline()) {
      const time_point due = impl.tick_time(*next);
      if (due > now) {
        static_cast<ManualClock*>(m_clock)->advance_to(due);
        now = due;
      }
    }
  }
  impl.m_timers.advance(impl.now_tick(now));
  impl.m_timers.fire_due();
}

}  // namespace gearbox
