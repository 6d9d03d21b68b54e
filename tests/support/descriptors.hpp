// open_descriptors(): how many file descriptors this process has open now, for tests that
// prove nothing leaked (count before, count after). The directory's own descriptor is
// counted too, the same way each time.
#pragma once

#include <cstddef>
#include <filesystem>

namespace gearbox_test {

inline std::size_t open_descriptors() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

}  // namespace gearbox_test
