// FdWatch: a file descriptor registered with a loop's reactor, and the tasks waiting for
// it to become readable or writable. The building block of the loop's sockets, pipes and
// signal descriptors.
//
//   detail::FdWatch watch{loop, fd};            // fd must be non-blocking
//   for (;;) {
//     ssize_t n = ::read(fd, buf, size);
//     if (n >= 0) break;
//     if (errno != EAGAIN) throw IoError(errno, "read");
//     watch.clear_readable();                   // not ready until the next edge
//     co_await watch.readable();                // suspends this task only
//   }
//
// Readiness is edge-triggered: the reactor reports a change once, FdWatch remembers it,
// and the owner clears it when a read or write says EAGAIN. A wait on a direction that is
// still marked ready completes at once (counted against the task's resume budget, so a
// descriptor that is always ready cannot starve the loop). Hang-up and error mark both
// directions ready, so the next read or write reports them.
//
// A watch made with `assume_ready` starts with both directions marked ready: the owner's
// first read or write is then simply tried (a fresh socket is usually writable, and an
// accepted one often has data), and EAGAIN tells it otherwise.
//
// At most one task waits per direction (std::logic_error otherwise). Waits are
// cancellation points: a cancelled task throws Cancelled and the watch stays usable.
// Thread-safety: the loop's thread only. Destruction: no task may be waiting (call
// wake_waiters() first, as a close does); the descriptor is unregistered (not closed: the
// owner closes it).
#pragma once

#include <coroutine>
#include <cstdint>
#include <stdexcept>

#include <gearbox/detail/io_watcher.hpp>
#include <gearbox/detail/task_core.hpp>
#include <gearbox/error.hpp>
#include <gearbox/loop.hpp>

namespace gearbox::detail {

class FdWatch : private IoWatcher {
public:
  FdWatch(Loop& loop, int fd, bool assume_ready = false)
      : IoWatcher(&FdWatch::on_ready), m_loop(&loop), m_fd(fd) {
    m_direction[k_read].ready = m_direction[k_write].ready = assume_ready;
    LoopAccess::watch(loop, fd, this, io_events::readable | io_events::writable);
  }
  FdWatch(const FdWatch&) = delete;
  FdWatch& operator=(const FdWatch&) = delete;
  ~FdWatch() {
    if (m_loop) LoopAccess::unwatch(*m_loop, m_fd, this);
  }

  int fd() const noexcept { return m_fd; }
  // The loop it is registered with; null once that loop was destroyed (see detached()).
  Loop* loop() const noexcept { return m_loop; }
  // The loop was destroyed first: the watch is gone and waits are errors.
  bool detached() const noexcept { return m_loop == nullptr; }
  bool hung_up() const noexcept { return m_hung_up; }

  void clear_readable() noexcept { m_direction[k_read].ready = false; }
  void clear_writable() noexcept { m_direction[k_write].ready = false; }

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
      Direction& d = m_watch->m_direction[m_direction];
      if (d.ready) {
        if (m_core->take_budget()) return false;
        m_core->yield(awaiter);  // ready, but let the others run first
        return true;
      }
      if (d.waiter) throw std::logic_error("gearbox: another task already waits on this descriptor in this direction");
      d.waiter = this;
      m_core->suspend(awaiter, this, WaitOn::io);
      return true;
    }
    void await_resume() const {
      if (m_cancelled) throw Cancelled{};
    }

  private:
    friend class FdWatch;
    static void on_cancel(CancelSlot* slot) noexcept {
      auto* self = static_cast<Awaiter*>(slot);
      self->m_watch->m_direction[self->m_direction].waiter = nullptr;
      self->m_cancelled = true;
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
    bool ready = false;        // an edge was seen and no EAGAIN since
    Awaiter* waiter = nullptr;  // the task waiting, if any
  };

  static void on_ready(IoWatcher* base, std::uint32_t events) noexcept {
    auto* self = static_cast<FdWatch*>(base);
    if (events == io_events::detached) {  // every task of that loop has ended: none waits
      self->m_loop = nullptr;
      return;
    }
    const bool trouble = events & (io_events::hangup | io_events::error);
    if (events & io_events::hangup) self->m_hung_up = true;
    if ((events & io_events::readable) || trouble) self->mark_ready(k_read);
    if ((events & io_events::writable) || trouble) self->mark_ready(k_write);
  }

  void mark_ready(int direction) noexcept {
    Direction& d = m_direction[direction];
    d.ready = true;
    if (Awaiter* waiter = d.waiter) {
      d.waiter = nullptr;
      waiter->m_core->wake();
    }
  }

  Loop* m_loop;
  int m_fd;
  Direction m_direction[2];
  bool m_hung_up = false;
};

}  // namespace gearbox::detail
