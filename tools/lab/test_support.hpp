// Helpers for the lab's tests: has a measurement left a thread or a child process behind,
// and what does a printed report say regardless of where its lines were wrapped?
//
//   const long before = lab::thread_count_at_rest();
//   ... run something that starts threads and forks ...
//   EXPECT_EQ(thread_count_settling_to(before), before);
//   EXPECT_TRUE(no_child_is_left());
//   EXPECT_NE(unwrapped(table).find("stopped at 4,096 threads"), std::string::npos);
//
// For the lab's tests only; call them on the test's main thread.
#pragma once

#include <sys/wait.h>

#include <cerrno>
#include <algorithm>
#include <chrono>
#include <sstream>
#include <string>
#include <thread>

#include "proc_stats.hpp"

namespace gearbox::lab {

// The process's thread count before a test starts threads. A sanitizer runtime starts a
// helper thread of its own at the first pthread_create (TSan's background thread), so one
// thread is started and joined first: the helper is then counted before and after.
inline long thread_count_at_rest() {
  std::thread([] {}).join();
  return read_thread_count();
}

// The process's thread count once it reaches `expected`, or what it is after 10 s. A
// joined thread leaves the count a moment after join() returns (the kernel wakes the
// joiner before it unlinks the thread), so the count is given time to settle; the bound
// only makes a real leak fail instead of hang.
inline long thread_count_settling_to(long expected) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  long now = read_thread_count();
  while (now != expected && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    now = read_thread_count();
  }
  return now;
}

// True if this process has no child, running or unreaped.
inline bool no_child_is_left() {
  errno = 0;
  return ::waitpid(-1, nullptr, WNOHANG) == -1 && errno == ECHILD;
}

// `text` with every line break and the indentation after it turned into one space.
inline std::string unwrapped(const std::string& text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\n') {
      out += text[i];
      continue;
    }
    out += ' ';
    while (i + 1 < text.size() && text[i + 1] == ' ') ++i;
  }
  return out;
}

// The widest line of `text`, in columns (UTF-8 continuation bytes take none).
inline std::size_t widest_line(const std::string& text) {
  std::istringstream lines(text);
  std::size_t widest = 0;
  for (std::string line; std::getline(lines, line);) {
    std::size_t columns = 0;
    for (const unsigned char c : line) columns += (c & 0xC0) != 0x80;
    widest = std::max(widest, columns);
  }
  return widest;
}

}  // namespace gearbox::lab
