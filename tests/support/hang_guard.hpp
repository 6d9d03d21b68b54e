// Bounds on every wait a test makes for another thread, process or task: a lost wake-up
// becomes a failure with a message instead of a hang that ctest kills without one.
#pragma once

#include <chrono>
#include <stdexcept>

#include <gearbox/future.hpp>

namespace gearbox_test {

// Far above any honest wait (a sanitizer build on a loaded 2-core machine included), and
// below ctest's 120 s timeout so that the failure is reported by the test.
inline constexpr std::chrono::seconds k_hang_guard{60};

// future.get(), after waiting at most k_hang_guard for it.
template <class T>
T get_guarded(gearbox::Future<T>& future) {
  if (!future.wait_for(k_hang_guard)) throw std::runtime_error("test: a future never completed");
  return future.get();
}

}  // namespace gearbox_test
