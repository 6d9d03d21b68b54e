#include "loop/multishot.hpp"

#include <utility>

#include <gearbox/error.hpp>

namespace gearbox::detail {

Multishot::Multishot(Loop& loop, Ring& ring) noexcept
    : RingOp(&Multishot::on_complete), RingResident(&Multishot::on_ring_exit), m_loop(&loop), m_ring(&ring) {
  ring.adopt(this);
}

Multishot::~Multishot() { RingResident::unlink(); }

void Multishot::rebind_to(Loop& loop, Ring& ring) noexcept {
  m_loop = &loop;
  m_ring = &ring;
  ring.adopt(this);
}

io_uring_sqe* Multishot::prepare_arm() {
  io_uring_sqe* sqe = m_ring->prepare(this);
  m_armed = true;
  return sqe;
}

void Multishot::disarm() noexcept {
  if (!m_armed || m_disarming) return;
  m_disarming = true;
  m_ring->cancel(this);
}

void Multishot::on_complete(RingOp* op, int result, std::uint32_t flags) noexcept {
  auto* self = static_cast<Multishot*>(op);
  self->on_result(result, flags);
  if (!(flags & IORING_CQE_F_MORE)) {
    self->m_armed = false;
    self->m_disarming = false;
    if (!self->m_attached) {
      delete self;
      return;
    }
  }
  self->wake_reader();
}

void Multishot::on_ring_exit(RingResident* resident) noexcept {
  auto* self = static_cast<Multishot*>(resident);
  if (!self->m_attached) {
    delete self;
    return;
  }
  self->keep_queued();
  self->m_loop = nullptr;
  self->m_ring = nullptr;
  self->m_armed = self->m_disarming = false;
  self->RingResident::unlink();
  if (self->m_reader) std::exchange(self->m_reader, nullptr)->m_owner = nullptr;
}

void Multishot::wake_reader() noexcept {
  if (Next* reader = std::exchange(m_reader, nullptr)) reader->wake();
}

void Multishot::detach() noexcept {
  m_attached = false;
  wake_reader();  // it finds the descriptor closed
  if (!m_ring) {  // its ring is gone: it is no longer listed
    delete this;
    return;
  }
  drop_queued();
  if (!m_armed) {
    delete this;
    return;
  }
  disarm();
  // Submitted and run now, not at the loop's next poll: the operation holds the socket (its
  // file) open, and a close must close it even if the loop does not poll again. Its last
  // completion frees this.
  if (m_ring->may_submit_here()) {
    try {
      m_ring->submit_and_wait(0);
    } catch (const IoError&) {
      // The cancel waits in the queue for the loop's next poll.
    }
  }
}

bool Multishot::Next::await_suspend(std::coroutine_handle<> awaiter) {
  m_core = &current_core_or_throw();
  if (m_core->cancel_requested()) {
    m_cancelled = true;
    return false;
  }
  m_owner->m_reader = this;
  m_core->suspend(awaiter, this, WaitOn::io);
  return true;
}

void Multishot::Next::await_resume() const {
  if (m_cancelled) throw Cancelled{};
}

void Multishot::Next::wake() noexcept {
  m_owner = nullptr;
  m_core->wake();
}

void Multishot::Next::on_cancel(CancelSlot* slot) noexcept {
  auto* self = static_cast<Next*>(slot);
  if (self->m_owner && self->m_owner->m_reader == self) self->m_owner->m_reader = nullptr;
  self->m_owner = nullptr;
  self->m_cancelled = true;  // the operation stays armed: what comes waits for the next task
  self->m_core->wake();
}

}  // namespace gearbox::detail
