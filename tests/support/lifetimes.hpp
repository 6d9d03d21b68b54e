// Shared by the thread-engine tests: thread-safe lifetime counting with a canary, so a
// test sees leaks, double destruction and use after destruction.
#pragma once

#include <atomic>
#include <cstddef>
#include <string>

namespace gearbox_test {

struct Lifetimes {
  std::atomic<int> constructed{0};
  std::atomic<int> destroyed{0};
  std::atomic<int> corrupt{0};  // a destroyed object used or destroyed again
  int alive() const { return constructed.load() - destroyed.load(); }
};

class Tracked {
public:
  Tracked(Lifetimes& lifetimes, int value) : m_lifetimes(&lifetimes), m_value(value) { ++lifetimes.constructed; }
  Tracked(const Tracked& other) : m_lifetimes(other.m_lifetimes), m_value(other.value()) { ++m_lifetimes->constructed; }
  Tracked(Tracked&& other) noexcept : m_lifetimes(other.m_lifetimes), m_value(other.value()) {
    ++m_lifetimes->constructed;
  }
  Tracked& operator=(const Tracked&) = delete;
  ~Tracked() {
    if (m_canary != k_alive) ++m_lifetimes->corrupt;
    m_canary = k_dead;
    ++m_lifetimes->destroyed;
  }
  int value() const {
    if (m_canary != k_alive) ++m_lifetimes->corrupt;
    return m_value;
  }

private:
  static constexpr unsigned k_alive = 0xA11CEu;
  static constexpr unsigned k_dead = 0xDEADu;
  Lifetimes* m_lifetimes;
  int m_value;
  unsigned m_canary = k_alive;
};

// How many times `needle` occurs in `haystack`.
inline std::size_t count_of(const std::string& haystack, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + needle.size())) ++n;
  return n;
}

}  // namespace gearbox_test
