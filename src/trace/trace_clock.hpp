// The trace's clock: a cheap counter read on the hot path, converted to CLOCK_MONOTONIC
// nanoseconds when the trace is written. CLOCK_MONOTONIC is shared by every process of
// the machine, so a worker's events line up with its parent's.
#pragma once

#include <time.h>

#include <cstdint>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

namespace gearbox::trace::detail {

inline std::uint64_t monotonic_ns() noexcept {
  timespec now;
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<std::uint64_t>(now.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(now.tv_nsec);
}

// About 10 ns on x86 (the time-stamp counter, constant-rate on every CPU gearbox targets),
// half of a vDSO clock_gettime; elsewhere the monotonic clock itself.
inline std::uint64_t ticks() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  return __rdtsc();
#else
  return monotonic_ns();
#endif
}

// Maps ticks to monotonic nanoseconds by a line through two points taken far apart: one
// when tracing first starts, one when the trace is written.
class TickConverter {
public:
  TickConverter(std::uint64_t ticks0, std::uint64_t ns0, std::uint64_t ticks1, std::uint64_t ns1) noexcept
      : m_ticks0(ticks0), m_ns0(ns0),
        m_ns_per_tick(ticks1 > ticks0 ? static_cast<double>(ns1 - ns0) / static_cast<double>(ticks1 - ticks0) : 1.0) {}
  double to_ns(std::uint64_t t) const noexcept {
    const double delta = t >= m_ticks0 ? static_cast<double>(t - m_ticks0) : -static_cast<double>(m_ticks0 - t);
    return static_cast<double>(m_ns0) + delta * m_ns_per_tick;
  }

private:
  std::uint64_t m_ticks0;
  std::uint64_t m_ns0;
  double m_ns_per_tick;
};

}  // namespace gearbox::trace::detail
