// Multishot: a multishot operation of one descriptor (a socket's receive, a listener's
// accept) that outlives the awaits it serves. Armed once, it completes again and again;
// what it delivers is queued by the derived class (RecvStream, AcceptStream) until a task
// takes it, and a task that finds nothing queued waits for the next completion (next()).
// A wait that is cancelled loses nothing: the operation stays armed, and what comes stays
// queued for the next task.
//
// Lifetime: the owner (an AsyncFd) holds it while attached; an armed operation keeps it
// alive until its last completion. detach() (the descriptor is closed) drops what is
// queued and cancels the operation, and it is freed at the last completion, or at once
// when it is not armed. The ring lists it: when the ring goes (its loop is destroyed) a
// detached one is freed, and an attached one keeps what it had (keep_queued) for the loop
// that uses the descriptor next (rebind).
//
// Only on a standalone Loop (not a Runtime's worker): a worker's ring is driven by its own
// thread alone, and an operation armed there would pin the descriptor to that worker.
//
// Thread-safety: the loop's thread only.
#pragma once

#include <coroutine>

#include <gearbox/detail/task_core.hpp>

#include "loop/ring.hpp"

namespace gearbox {
class Loop;
}

namespace gearbox::detail {

class Multishot : private RingOp, private RingResident {
public:
  Multishot(const Multishot&) = delete;
  Multishot& operator=(const Multishot&) = delete;

  // The loop whose ring it uses; null once that ring is gone.
  Loop* loop() const noexcept { return m_loop; }
  bool armed() const noexcept { return m_armed; }
  // It ended for good (the end of a stream, or an error: error() is its errno, 0 for the end).
  bool ended() const noexcept { return m_ended; }
  int error() const noexcept { return m_error; }

  // Waits for the next completion: something queued, the end, or a disarm. Cancellable
  // (Cancelled), and then nothing is lost. Ready at once when one of those is there.
  class Next;
  Next next() noexcept;

  // The owner lets go (see Lifetime). It no longer owns this.
  void detach() noexcept;

protected:
  Multishot(Loop& loop, Ring& ring) noexcept;
  virtual ~Multishot();

  Ring& ring() const noexcept { return *m_ring; }
  bool attached() const noexcept { return m_attached; }
  // Binds an attached one whose ring is gone to `loop`'s `ring`.
  void rebind_to(Loop& loop, Ring& ring) noexcept;
  // A submission entry for the operation, which is then armed: the derived class fills it.
  io_uring_sqe* prepare_arm();
  // Asks the kernel to end the operation (its last completion disarms it); once.
  void disarm() noexcept;
  void end(int error) noexcept {
    m_ended = true;
    m_error = error;
  }

  // One completion (`flags`: the kernel's; the base handles IORING_CQE_F_MORE after this).
  // Detached, what it delivers is nobody's: release it.
  virtual void on_result(int result, std::uint32_t flags) noexcept = 0;
  virtual bool has_queued() const noexcept = 0;
  // Detached: releases what is queued.
  virtual void drop_queued() noexcept = 0;
  // The ring goes while attached: keeps what is queued, without the ring.
  virtual void keep_queued() noexcept = 0;

private:
  static void on_complete(RingOp* op, int result, std::uint32_t flags) noexcept;
  static void on_ring_exit(RingResident* resident) noexcept;
  void wake_reader() noexcept;

  Loop* m_loop;
  Ring* m_ring;
  Next* m_reader = nullptr;  // the task waiting in next()
  bool m_attached = true;
  bool m_armed = false;
  bool m_disarming = false;  // a cancel is on its way
  bool m_ended = false;
  int m_error = 0;
};

class Multishot::Next : private CancelSlot {
public:
  explicit Next(Multishot& owner) noexcept : CancelSlot(&Next::on_cancel), m_owner(&owner) {}
  Next(const Next&) = delete;
  Next& operator=(const Next&) = delete;
  ~Next() {
    if (m_owner && m_owner->m_reader == this) m_owner->m_reader = nullptr;  // its task was destroyed
  }

  bool await_ready() const noexcept { return m_owner->has_queued() || m_owner->m_ended || !m_owner->m_armed; }
  bool await_suspend(std::coroutine_handle<> awaiter);
  void await_resume() const;

private:
  friend class Multishot;
  static void on_cancel(CancelSlot* slot) noexcept;
  void wake() noexcept;

  Multishot* m_owner;  // null once woken: the owner may be freed before the task resumes
  TaskCore* m_core = nullptr;
  bool m_cancelled = false;
};

inline Multishot::Next Multishot::next() noexcept { return Next(*this); }

}  // namespace gearbox::detail
