// Blocking waits on a 32-bit atomic with an optional deadline (a futex on Linux), and the
// hook by which a thread-pool worker helps with other jobs instead of blocking. Out of line
// in src/thread/.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>

namespace gearbox::detail {

// Sleeps while `word` holds `expected`, until woken, until `deadline` (if any), or
// spuriously. The caller re-checks its condition after every return.
void wait_on(std::atomic<std::uint32_t>& word, std::uint32_t expected,
             std::optional<std::chrono::steady_clock::time_point> deadline) noexcept;
// Wakes every thread sleeping in wait_on(word, ...).
void wake_all(std::atomic<std::uint32_t>& word) noexcept;
// Wakes at most one of them.
void wake_one(std::atomic<std::uint32_t>& word) noexcept;

// If the calling thread is a ThreadPool worker, runs one job of its pool (if any) and
// returns true; otherwise returns false. Lets fork-join waits help instead of block.
bool help_pool_once() noexcept;
// True if the calling thread is a ThreadPool worker.
bool on_pool_worker() noexcept;

}  // namespace gearbox::detail
