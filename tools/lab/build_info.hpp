// How this gearbox-lab was built, for the figures it prints: a debug or sanitizer build
// runs gearbox's own code (tasks, channels) several times slower than a release build,
// while the kernel's share (threads, processes) costs the same.
//
//   if (!lab::k_build_caveat.empty()) std::puts(lab::k_build_caveat.data());
#pragma once

#include <string_view>

namespace gearbox::lab {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr std::string_view k_build_kind = "sanitizer";
#elif defined(NDEBUG)
inline constexpr std::string_view k_build_kind = "optimised";
#else
inline constexpr std::string_view k_build_kind = "debug";
#endif

// A sentence to print under the figures of an unoptimised build, or empty.
inline constexpr std::string_view k_build_caveat =
    k_build_kind == "optimised" ? std::string_view{}
                                : "This gearbox-lab is a debug or sanitizer build: the figures for coroutines and "
                                  "tasks are several times what a release build (cmake --preset release) gives.";

}  // namespace gearbox::lab
