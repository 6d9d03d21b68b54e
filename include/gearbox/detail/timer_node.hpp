// TimerNode: one armed timer in a loop's timing wheel, embedded in whatever waits for it
// (a sleep awaiter, a timeout scope), so arming and cancelling allocate nothing.
#pragma once

#include <cstdint>

#include <gearbox/detail/intrusive_list.hpp>

namespace gearbox::detail {

struct TimerNode : ListNode {
  using Fn = void (*)(TimerNode*) noexcept;
  explicit TimerNode(Fn on_fire) noexcept : m_on_fire(on_fire) {}

  Fn m_on_fire;           // called on the loop's thread when the deadline has passed
  std::uint64_t m_tick = 0;  // deadline in wheel ticks (milliseconds since the loop began)
};

}  // namespace gearbox::detail
