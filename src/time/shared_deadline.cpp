#include <gearbox/detail/shared_deadline.hpp>

#include <thread>

#include <gearbox/loop.hpp>

namespace gearbox::detail {

SharedDeadline::SharedDeadline(Loop& loop, TaskCore& target) noexcept
    : TimerNode(&SharedDeadline::on_fire), Runnable(&SharedDeadline::run_disarm), m_loop(&loop), m_target(&target) {}

SharedDeadline* SharedDeadline::arm(Loop& loop, TaskCore& target, Clock::time_point deadline) {
  auto* self = new SharedDeadline(loop, target);
  LoopAccess::add_timer(loop, self, deadline);
  return self;
}

void SharedDeadline::on_fire(TimerNode* timer) noexcept {
  auto* self = static_cast<SharedDeadline*>(timer);
  std::uint8_t expected = armed;
  if (!self->m_state.compare_exchange_strong(expected, firing, std::memory_order_acq_rel)) return;  // finish's post releases
  self->m_target->request_cancel();
  self->m_state.store(fired, std::memory_order_release);
  self->release();  // the timer's reference: it is no longer linked
}

void SharedDeadline::run_disarm(Runnable* posted) noexcept {
  auto* self = static_cast<SharedDeadline*>(posted);
  // On the loop's thread, as on_fire: if the timer fired meanwhile it lost the exchange
  // and left its reference to us.
  if (self->linked()) LoopAccess::cancel_timer(*self->m_loop, self);
  self->release();
}

bool SharedDeadline::finish(SharedDeadline* self) noexcept {
  std::uint8_t expected = armed;
  if (self->m_state.compare_exchange_strong(expected, disarmed, std::memory_order_acq_rel)) {
    if (Loop::current() == self->m_loop) {
      LoopAccess::cancel_timer(*self->m_loop, self);  // still linked: on_fire runs on this thread
      self->release();                                // the timer's reference
    } else {
      LoopAccess::post(*self->m_loop, self);  // run_disarm releases the timer's reference
    }
    self->release();
    return false;
  }
  // The timer won: wait until it is done with the target (request_cancel is a few stores
  // and, off its worker, one post).
  while (self->m_state.load(std::memory_order_acquire) != fired) std::this_thread::yield();
  self->release();
  return true;
}

void SharedDeadline::release() noexcept {
  if (m_refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
}

}  // namespace gearbox::detail
