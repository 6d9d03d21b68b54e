// FdWatch: a file descriptor registered with a loop's reactor, and the tasks waiting for
// it to become readable or writable. The building block of the sockets, pipes and signal
// and process descriptors (through AsyncFd).
//
//   detail::FdWatch watch{loop, fd};            // fd must be non-blocking
//   for (;;) {
//     const auto tick = watch.read_tick();      // before the syscall
//     ssize_t n = ::read(fd, buf, size);
//     if (n >= 0) break;
//     if (errno != EAGAIN) throw IoError(errno, "read");
//     watch.clear_readable(tick);               // not ready until the next edge
//     co_await watch.readable();                // suspends this task only
//   }
//
// Readiness is edge-triggered: the reactor reports a change once, FdWatch remembers it,
// and the owner clears it when a read or write says EAGAIN. Each edge bumps the
// direction's tick, and a clear takes the tick read before the syscall: an edge that
// arrived in between (on a Runtime the reactor runs on the registering worker while the
// task reads on another) is then kept, not lost. A wait on a direction that is still
// marked ready completes at once (counted against the task's resume budget, so a
// descriptor that is always ready cannot starve the loop). Hang-up and error mark both
// directions ready, so the next read or write reports them.
//
// A watch made with `assume_ready` starts with both directions marked ready: the owner's
// first read or write is then simply tried (a fresh socket is usually writable, and an
// accepted one often has data), and EAGAIN tells it otherwise.
//
// At most one task waits per direction (std::logic_error otherwise). Waits are
// cancellation points: a cancelled task throws Cancelled and the watch stays usable.
//
// Thread-safety: on a Loop, the loop's thread only. On a Runtime the watch is registered
// with the worker AsyncFd picks (LoopAccess::home_for_new_descriptor: the workers in
// turn; readiness arrives there, and the woken task runs there) and used by tasks on any
// worker:
// a WaitLock guards the readiness and the waiters, a woken task is woken wherever it is,
// and unregister() and retire() may be called from any worker.
// Lifetime: unregister() stops the reactor's reports (call it before closing the
// descriptor); retire() ends the object: at once on the registering loop's thread,
// otherwise on that thread's next turn, after any report its reactor had already
// returned. No task may be waiting (wake_waiters() first, as a close does), and no
// cancellation may be in flight (AsyncFd's contract: destroy only after its waits ended).
#pragma once

#include <coroutine>
#include <cstdint>
#include <mutex>
#include <stdexcept>

#include <gearbox/detail/io_watcher.hpp>
#include <gearbox/detail/task_core.hpp>
#include <gearbox/detail/wait_lock.hpp>
#include <gearbox/error.hpp>
#include <gearbox/loop.hpp>

namespace gearbox::detail {

class FdWatch : private IoWatcher, private Runnable {
public:
  FdWatch(Loop& loop, int fd, bool assume_ready = false)
      : IoWatcher(&FdWatch::on_ready), Runnable(&FdWatch::run_retired), m_loop(&loop), m_fd(fd) {
    // Under the lock: on a Runtime `loop` may be another worker's, whose reactor may report
    // as soon as the descriptor is added; its on_ready takes the lock, so it sees this.
    std::lock_guard guard{m_lock};
    m_direction[k_read].ready = m_direction[k_write].ready = assume_ready;
    LoopAccess::watch_fd(loop, fd, this, io_events::readable | io_events::writable);
  }
  FdWatch(const FdWatch&) = delete;
  FdWatch& operator=(const FdWatch&) = delete;

  // On the registering loop's thread only (or after that loop was destroyed); from
  // elsewhere, retire() a watch made with new.
  ~FdWatch() {
    if (m_loop) {
      if (m_registered)
        LoopAccess::unwatch(*m_loop, m_fd, this);
      else
        LoopAccess::forget_watcher(*m_loop, this);
    }
  }

  // Ends a watch made with new (see the header comment).
  static void retire(FdWatch* watch) noexcept {
    Loop* loop = watch->registered_loop();
    // A single-thread Loop's watch belongs to that loop's thread, whatever is current.
    if (!loop || !LoopAccess::runtime(*loop) || Loop::current() == loop) {
      delete watch;
      return;
    }
    watch->unregister();
    LoopAccess::post(*loop, watch);  // run_retired, on the registering loop's thread
  }

  // Stops the reactor's reports; idempotent; any thread.
  void unregister() noexcept {
    std::lock_guard guard{m_lock};
    if (!m_registered || !m_loop) return;
    m_registered = false;
    LoopAccess::unregister(*m_loop, m_fd);
  }

  int fd() const noexcept { return m_fd; }
  // The loop it is registered with; null once that loop was destroyed (see detached()).
  Loop* loop() const noexcept { return registered_loop(); }
  // The loop was destroyed first: the watch is gone and waits are errors.
  bool detached() const noexcept { return registered_loop() == nullptr; }
  bool hung_up() const noexcept {
    std::lock_guard guard{m_lock};
    return m_hung_up;
  }

  // The direction's tick, to pass to clear_readable / clear_writable (see above).
  std::uint32_t read_tick() const noexcept { return tick(k_read); }
  std::uint32_t write_tick() const noexcept { return tick(k_write); }
  // Marks the direction not ready, unless an edge arrived since `tick` was read.
  void clear_readable(std::uint32_t tick) noexcept { clear(k_read, tick); }
  void clear_writable(std::uint32_t tick) noexcept { clear(k_write, tick); }

  // Resumes the tasks waiting in either direction (as if the descriptor became ready), so
  // that the owner can close it: they find it closed when they retry their operation.
  void wake_waiters() noexcept {
    mark_ready(k_read);
    mark_ready(k_write);
  }

  class Awaiter : private CancelSlot {
  public:
    Awaiter(FdWatch& watch, int direction) noexcept
        : CancelSlot(&Awaiter::on_cancel), m_watch(&watch), m_direction(direction) {}
    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> awaiter) {
      m_core = &current_core_or_throw();
      if (m_core->cancel_requested()) {
        m_cancelled = true;
        return false;
      }
      {
        std::lock_guard guard{m_watch->m_lock};
        Direction& d = m_watch->m_direction[m_direction];
        if (!d.ready) {
          if (d.waiter) throw std::logic_error("gearbox: another task already waits on this descriptor in this direction");
          d.waiter = this;
          // Under the lock: on a Runtime a report on another worker may wake it at once
          // (it is rescheduled once this slice returns).
          m_core->suspend(awaiter, this, WaitOn::io);
          return true;
        }
      }
      if (m_core->take_budget()) return false;
      m_core->yield(awaiter);  // ready, but let the others run first
      return true;
    }
    void await_resume() const {
      if (m_cancelled) throw Cancelled{};
    }

  private:
    friend class FdWatch;
    // Abandons the wait, unless a report took the waiter first (then the wake-up it sent
    // delivers the readiness, and the task throws at its next await).
    static void on_cancel(CancelSlot* slot) noexcept {
      auto* self = static_cast<Awaiter*>(slot);
      {
        std::lock_guard guard{self->m_watch->m_lock};
        Direction& d = self->m_watch->m_direction[self->m_direction];
        if (d.waiter != self) return;
        d.waiter = nullptr;
        self->m_cancelled = true;
      }
      self->m_core->wake();
    }

    FdWatch* m_watch;
    int m_direction;
    TaskCore* m_core = nullptr;
    bool m_cancelled = false;
  };

  // Resumes the calling task once the descriptor is (or may be) readable / writable.
  [[nodiscard]] Awaiter readable() noexcept { return Awaiter{*this, k_read}; }
  [[nodiscard]] Awaiter writable() noexcept { return Awaiter{*this, k_write}; }

private:
  static constexpr int k_read = 0;
  static constexpr int k_write = 1;
  struct Direction {
    bool ready = false;         // an edge was seen and no EAGAIN since
    std::uint32_t tick = 0;     // edges seen (wraps)
    Awaiter* waiter = nullptr;  // the task waiting, if any
  };

  Loop* registered_loop() const noexcept {
    std::lock_guard guard{m_lock};
    return m_loop;
  }

  std::uint32_t tick(int direction) const noexcept {
    std::lock_guard guard{m_lock};
    return m_direction[direction].tick;
  }

  void clear(int direction, std::uint32_t tick) noexcept {
    std::lock_guard guard{m_lock};
    Direction& d = m_direction[direction];
    if (d.tick == tick) d.ready = false;
  }

  // On the registering loop's thread.
  static void on_ready(IoWatcher* base, std::uint32_t events) noexcept {
    auto* self = static_cast<FdWatch*>(base);
    if (events == io_events::detached) {  // every task of that loop has ended: none waits
      std::lock_guard guard{self->m_lock};
      self->m_loop = nullptr;
      return;
    }
    const bool trouble = events & (io_events::hangup | io_events::error);
    if (events & io_events::hangup) {
      std::lock_guard guard{self->m_lock};
      self->m_hung_up = true;
    }
    if ((events & io_events::readable) || trouble) self->mark_ready(k_read);
    if ((events & io_events::writable) || trouble) self->mark_ready(k_write);
  }

  // Posted by retire(), on the registering loop's thread (unregistered already).
  static void run_retired(Runnable* base) noexcept { delete static_cast<FdWatch*>(base); }

  void mark_ready(int direction) noexcept {
    Awaiter* waiter;
    {
      std::lock_guard guard{m_lock};
      Direction& d = m_direction[direction];
      d.ready = true;
      ++d.tick;
      waiter = d.waiter;
      d.waiter = nullptr;
    }
    // After the lock: the task may run at once on another worker.
    if (waiter) waiter->m_core->wake();
  }

  mutable WaitLock m_lock;  // guards everything below but m_fd
  Loop* m_loop;
  const int m_fd;
  Direction m_direction[2];
  bool m_hung_up = false;
  bool m_registered = true;
};

}  // namespace gearbox::detail
