// IoWatcher: what a loop's reactor tells when a watched file descriptor becomes ready.
// Readiness is edge-triggered: the watcher is told when the state changes, so its owner
// must read or write until EAGAIN before waiting again.
#pragma once

#include <cstdint>

#include <gearbox/detail/intrusive_list.hpp>

namespace gearbox::detail {

namespace io_events {
inline constexpr std::uint32_t readable = 1u << 0;
inline constexpr std::uint32_t writable = 1u << 1;
inline constexpr std::uint32_t hangup = 1u << 2;  // peer closed, or both directions shut
inline constexpr std::uint32_t error = 1u << 3;
// Alone, not with the others: the loop is being destroyed and no longer watches the fd;
// the watcher must forget the loop (and not unwatch it).
inline constexpr std::uint32_t detached = 1u << 4;
}  // namespace io_events

// Linked (as a ListNode) in the loop's list of watchers while it watches.
struct IoWatcher : ListNode {
  using Fn = void (*)(IoWatcher*, std::uint32_t events) noexcept;
  explicit IoWatcher(Fn on_ready) noexcept : m_on_ready(on_ready) {}
  Fn m_on_ready;  // called on the loop's thread with a mask of io_events
};

}  // namespace gearbox::detail
