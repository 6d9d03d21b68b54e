// TimerWheel: a hierarchical timing wheel (Varghese & Lauck; the layout Tokio and the
// Linux kernel use). O(1) arm, O(1) cancel, and expiry in deadline order.
//
// Time is counted in ticks (1 ms) since the loop began. Level L has 64 slots of 64^L
// ticks each; ten levels cover 2^60 ticks, so nothing overflows. A timer is filed at the
// level of the highest 6-bit group in which its deadline differs from the wheel's current
// time, in the slot that group names. Invariant: every filed timer is in a slot strictly
// after the current time's slot at its level, within the current time's window of that
// level. So the lowest non-empty level holds the earliest timers, and a level's earliest
// occupied slot is found with one bit scan.
//
// Advancing jumps from one occupied slot to the next (never tick by tick): a level-0 slot
// expires its timers; a higher slot is re-filed ("cascaded") into lower levels.
// Not thread-safe: the loop's thread only.
#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include <gearbox/detail/intrusive_list.hpp>
#include <gearbox/detail/timer_node.hpp>

namespace gearbox::detail {

class TimerWheel {
public:
  static constexpr int k_levels = 10;
  static constexpr int k_slot_bits = 6;
  static constexpr int k_slots = 1 << k_slot_bits;
  static constexpr std::uint64_t k_max_tick = (std::uint64_t{1} << (k_levels * k_slot_bits)) - 1;

  // The current time of the wheel, in ticks.
  std::uint64_t elapsed() const noexcept { return m_elapsed; }
  bool empty() const noexcept { return m_armed == 0 && m_due.empty(); }
  std::size_t armed() const noexcept { return m_armed; }

  // Arms `timer` for `tick` (clamped to k_max_tick). A tick at or before elapsed() makes
  // it due at once: it is handed out by the next fire_due().
  void insert(TimerNode* timer, std::uint64_t tick) noexcept;
  // Disarms `timer` wherever it is (filed or due). No effect on an unarmed timer.
  void remove(TimerNode* timer) noexcept;

  // The earliest tick at which some timer may be due: now if timers are due, else the
  // start of the earliest occupied slot. Empty if no timer is armed.
  std::optional<std::uint64_t> next_deadline() noexcept;

  // Moves time forward to `now` (never backwards), moving every timer whose tick is at or
  // before `now` to the due list.
  void advance(std::uint64_t now) noexcept;

  // Calls on_fire for each due timer, in deadline order; a timer is unlinked before its
  // callback runs, and callbacks may arm or cancel other timers. Returns how many fired.
  std::size_t fire_due() noexcept;

private:
  struct Level {
    std::array<List, k_slots> slots;
    std::uint64_t occupied = 0;  // bit s: slots[s] may be non-empty (cleared lazily)
  };
  struct Slot {
    int level;
    int index;
    std::uint64_t start;
  };

  static int level_for(std::uint64_t elapsed, std::uint64_t tick) noexcept;
  std::optional<Slot> next_slot() noexcept;
  void file(TimerNode* timer) noexcept;

  std::array<Level, k_levels> m_levels;
  List m_due;
  std::uint64_t m_elapsed = 0;
  std::size_t m_armed = 0;  // filed timers, not counting due ones
};

}  // namespace gearbox::detail
