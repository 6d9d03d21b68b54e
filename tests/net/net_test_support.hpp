// Shared by the tests of Unix domain stream sockets (unix_test, unix_stream_io_test): a
// bounded run on the manual-clock test loop (or on a Runtime), and a read to the end of a
// stream.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <utility>

#include <gearbox/net/stream.hpp>
#include <gearbox/task.hpp>
#include <gearbox/time.hpp>

#include "support/flavors.hpp"
#include "support/hang_guard.hpp"
#include "support/test_loop.hpp"

namespace gearbox_test {

namespace gb = gearbox;
namespace net = gearbox::net;

// run_on_test_loop with a deadline around the task. Unix sockets deliver within the
// writer's system call, so the manual clock reaches the deadline only when no task can go
// on: a lost wake-up fails with TimeoutError at once instead of spinning on the reactor.
template <class T>
inline T run_bounded(gb::Task<T> task) {
  return gearbox_test::run_on_test_loop(gb::timeout(gearbox_test::k_hang_guard, std::move(task)));
}

// run_bounded on `flavor`: the Loop flavor as above; the Runtime flavor on 2 workers and
// the real clock, under the same bound.
template <class T>
inline T run_bounded(Flavor flavor, gb::Task<T> task) {
  if (flavor == Flavor::loop) return run_bounded(std::move(task));
  return run_on(Flavor::runtime, gb::timeout(gearbox_test::k_hang_guard, std::move(task)));
}

inline gb::Task<std::string> read_to_end(net::ByteStream& stream) {
  std::string all;
  std::array<char, 4096> buffer{};
  for (;;) {
    const std::size_t n = co_await stream.read(buffer);
    if (n == 0) co_return all;
    all.append(buffer.data(), n);
  }
}

}  // namespace gearbox_test
