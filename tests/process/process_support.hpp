// Shared by the process-pool tests: what a test observes about its own process (children,
// descriptors, memfds) and how it waits for a condition without a timing threshold.
#pragma once

#include <dirent.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <exception>
#include <filesystem>
#include <stdexcept>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace gearbox_test {

// Open descriptors of this process (their link targets).
inline std::vector<std::string> open_fds() {
  std::vector<std::string> targets;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code error;
    auto target = std::filesystem::read_symlink(entry.path(), error);
    targets.push_back(error ? std::string("?") : target.string());
  }
  return targets;  // includes the directory iterator's own descriptor, before and after alike
}

inline std::size_t open_memfds() {
  std::size_t count = 0;
  for (const auto& target : open_fds())
    if (target.rfind("/memfd:", 0) == 0) ++count;
  return count;
}

// True if this process has no child at all, running or zombie.
inline bool has_no_children() {
  siginfo_t info{};
  return ::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) == -1 && errno == ECHILD;
}

// 'R', 'S', 'Z'... of a process, or 0 if it does not exist.
inline char process_state(int pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return 0;
  const auto close = line.rfind(')');
  return close == std::string::npos || close + 2 >= line.size() ? 0 : line[close + 2];
}

// A process that is gone or dead (a zombie is dead: it only waits to be reaped).
inline bool process_is_gone(int pid) {
  const char state = process_state(pid);
  return state == 0 || state == 'Z' || state == 'X';
}

// Polls `condition` until it holds. The test's ctest timeout bounds the wait: a condition
// that never comes is a hang, reported as a failure, never a timing threshold.
template <class F>
void wait_until(F&& condition) {
  while (!condition()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

// Runs f and returns the E it throws; a test failure if it throws something else or nothing.
template <class E, class F>
E expect_throw(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw something else: " << e.what();
    throw;
  }
  ADD_FAILURE() << "did not throw";
  throw std::logic_error("did not throw");
}


inline std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("gearbox-" + name + "-" + std::to_string(::getpid()) + "-" +
           std::to_string(std::chrono::steady_clock::now().time_since_epoch().count())))
      .string();
}

}  // namespace gearbox_test
