#include "loop/timer_wheel.hpp"

#include <algorithm>
#include <bit>

namespace gearbox::detail {

int TimerWheel::level_for(std::uint64_t elapsed, std::uint64_t tick) noexcept {
  // The highest 6-bit group in which the two differ; `| (k_slots - 1)` maps a difference
  // confined to the lowest group (or none) to level 0.
  const std::uint64_t differing = (elapsed ^ tick) | (k_slots - 1);
  const int significant_bit = 63 - std::countl_zero(differing);
  return std::min(significant_bit / k_slot_bits, k_levels - 1);
}

void TimerWheel::insert(TimerNode* timer, std::uint64_t tick) noexcept {
  remove(timer);  // re-arming an armed timer moves it
  timer->m_tick = std::min(tick, k_max_tick);
  if (timer->m_tick <= m_elapsed) {
    m_due.push_back(timer);
    return;
  }
  file(timer);
}

void TimerWheel::file(TimerNode* timer) noexcept {
  const int level = level_for(m_elapsed, timer->m_tick);
  const int slot = static_cast<int>((timer->m_tick >> (level * k_slot_bits)) & (k_slots - 1));
  Level& l = m_levels[static_cast<std::size_t>(level)];
  l.slots[static_cast<std::size_t>(slot)].push_back(timer);
  l.occupied |= std::uint64_t{1} << slot;
  ++m_armed;
}

void TimerWheel::remove(TimerNode* timer) noexcept {
  if (!timer->linked()) return;
  // A filed timer's tick is after elapsed; a due one's is not. The occupied bit of the slot
  // it leaves is cleared lazily by next_slot().
  if (timer->m_tick > m_elapsed) --m_armed;
  timer->unlink();
}

std::optional<TimerWheel::Slot> TimerWheel::next_slot() noexcept {
  if (m_armed == 0) return std::nullopt;
  for (int level = 0; level < k_levels; ++level) {
    Level& l = m_levels[static_cast<std::size_t>(level)];
    const int shift = level * k_slot_bits;
    const int current = static_cast<int>((m_elapsed >> shift) & (k_slots - 1));
    // By the invariant only slots after `current` can hold timers; mask off the rest.
    std::uint64_t candidates = l.occupied & (current == k_slots - 1 ? 0 : ~std::uint64_t{0} << (current + 1));
    while (candidates) {
      const int slot = std::countr_zero(candidates);
      if (!l.slots[static_cast<std::size_t>(slot)].empty()) {
        const std::uint64_t window_bits = static_cast<std::uint64_t>(shift + k_slot_bits);
        const std::uint64_t window_start = window_bits >= 64 ? 0 : m_elapsed & ~((std::uint64_t{1} << window_bits) - 1);
        return Slot{level, slot, window_start + (static_cast<std::uint64_t>(slot) << shift)};
      }
      l.occupied &= ~(std::uint64_t{1} << slot);  // emptied by remove(): clear lazily
      candidates &= candidates - 1;
    }
  }
  return std::nullopt;
}

std::optional<std::uint64_t> TimerWheel::next_deadline() noexcept {
  if (!m_due.empty()) return m_elapsed;
  if (auto slot = next_slot()) return slot->start;
  return std::nullopt;
}

void TimerWheel::advance(std::uint64_t now) noexcept {
  while (auto slot = next_slot()) {
    if (slot->start > now) break;
    m_elapsed = slot->start;
    Level& l = m_levels[static_cast<std::size_t>(slot->level)];
    l.occupied &= ~(std::uint64_t{1} << slot->index);
    List taken;
    taken.splice_back(l.slots[static_cast<std::size_t>(slot->index)]);
    while (ListNode* node = taken.pop_front()) {
      auto* timer = static_cast<TimerNode*>(node);
      --m_armed;
      if (timer->m_tick <= m_elapsed)
        m_due.push_back(timer);
      else
        file(timer);  // cascades to a lower level
    }
  }
  m_elapsed = std::max(m_elapsed, now);
}

std::size_t TimerWheel::fire_due() noexcept {
  std::size_t fired = 0;
  // Only the timers due now: a callback that arms an already-due timer gets it fired at the
  // next call, so a timer loop cannot spin here forever.
  List batch;
  batch.splice_back(m_due);
  while (ListNode* node = batch.pop_front()) {
    auto* timer = static_cast<TimerNode*>(node);
    timer->m_on_fire(timer);
    ++fired;
  }
  return fired;
}

}  // namespace gearbox::detail
