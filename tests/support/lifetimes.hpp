// Lifetime counting for every test that proves an engine neither leaks a value, nor
// destroys one twice, nor uses one after its destruction. The counters are atomics, so
// the same Tracked serves the loop's single-thread tests and the pools' workers.
#pragma once

#include <atomic>

namespace gearbox_test {

struct Lifetimes {
  std::atomic<int> constructed{0};
  std::atomic<int> destroyed{0};
  std::atomic<int> corrupt{0};  // a destroyed object used or destroyed again
  int alive() const { return constructed.load() - destroyed.load(); }
};

// A value that counts its constructions (copies and moves included) and destructions in a
// Lifetimes, and checks a canary on every use.
class Tracked {
public:
  explicit Tracked(Lifetimes& lifetimes, int value = 0) : m_lifetimes(&lifetimes), m_value(value) {
    ++lifetimes.constructed;
  }
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

}  // namespace gearbox_test
