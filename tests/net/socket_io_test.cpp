// Stream sockets on each way a loop can wait for them (io_backend.hpp): epoll, io_uring
// with readiness, io_uring with completion. What completion changes is tested here on
// all three: a read cancelled by a timeout loses no data, close() from another task (on
// another worker of a Runtime) ends a blocked read, accept and connect with EBADF and
// closes the descriptor once they are over, more reads in flight than the ring's
// submission queue holds, a peer reset, and no descriptor left behind. The rest of the
// socket tests run under each mode through GEARBOX_IO_BACKEND and GEARBOX_SOCKET_IO (see
// tests/CMakeLists.txt).
#include <gearbox/net/tcp.hpp>
#include <gearbox/net/unix.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include <gearbox/combinators.hpp>
#include <gearbox/error.hpp>
#include <gearbox/io_backend.hpp>
#include <gearbox/loop.hpp>
#include <gearbox/runtime.hpp>
#include <gearbox/spawn.hpp>
#include <gearbox/task.hpp>
#include <gearbox/task_group.hpp>
#include <gearbox/time.hpp>

#include <gtest/gtest.h>

#include "loop/ring.hpp"
#include "support/describe.hpp"
#include "support/descriptors.hpp"
#include "support/hang_guard.hpp"

namespace gb = gearbox;
namespace net = gearbox::net;
using namespace std::chrono_literals;

namespace {

struct Mode {
  gb::IoBackend backend;
  gb::SocketIo sockets;
  const char* name;
};

constexpr Mode k_modes[] = {
    {gb::IoBackend::epoll, gb::SocketIo::readiness, "epoll"},
    {gb::IoBackend::io_uring, gb::SocketIo::readiness, "io_uring_readiness"},
    {gb::IoBackend::io_uring, gb::SocketIo::completion, "io_uring_completion"},
};

using gearbox_test::open_descriptors;

class SocketIo : public testing::TestWithParam<Mode> {
protected:
  void SetUp() override {
    const Mode& mode = GetParam();
    if (mode.backend == gb::IoBackend::io_uring && !gb::io_uring_support().available)
      GTEST_SKIP() << gb::io_uring_support().why_not;
    if (mode.sockets == gb::SocketIo::completion && !gb::io_uring_support().socket_completion)
      GTEST_SKIP() << "this kernel's io_uring cannot cancel by descriptor (Linux 5.19)";
  }

  gb::LoopOptions loop_options() const {
    return {.clock = nullptr,
            .auto_advance = false,
            .on_unhandled_exception = [](std::exception_ptr e) { ADD_FAILURE() << "unhandled: " << gearbox_test::describe(e); },
            .io_backend = GetParam().backend,
            .socket_io = GetParam().sockets};
  }
  gb::RuntimeOptions runtime_options(unsigned threads) const {
    gb::RuntimeOptions options;
    options.threads = threads;
    options.on_unhandled_exception = [](std::exception_ptr e) { ADD_FAILURE() << "unhandled: " << gearbox_test::describe(e); };
    options.io_backend = GetParam().backend;
    options.socket_io = GetParam().sockets;
    return options;
  }

  template <class T>
  T run(gb::Task<T> task) {
    gb::Loop loop{loop_options()};
    EXPECT_EQ(loop.socket_io(), GetParam().sockets);
    return loop.run(gb::timeout(gearbox_test::k_hang_guard, std::move(task)));
  }
};

INSTANTIATE_TEST_SUITE_P(Modes, SocketIo, testing::ValuesIn(k_modes),
                         [](const testing::TestParamInfo<Mode>& info) { return std::string(info.param.name); });

TEST_P(SocketIo, a_read_cancelled_by_a_timeout_loses_no_data_and_the_socket_goes_on) {
  const std::string got = run([]() -> gb::Task<std::string> {
    auto [a, b] = net::UnixStream::pair();
    char buffer[16];
    EXPECT_THROW((void)co_await gb::timeout(5ms, a.read(std::span<char>(buffer))), gb::TimeoutError);
    co_await b.write_all("after");
    std::string text;
    while (text.size() < 5) {
      const std::size_t n = co_await a.read(std::span<char>(buffer));
      if (n == 0) break;
      text.append(buffer, n);
    }
    co_return text;
  }());
  EXPECT_EQ(got, "after");
}

TEST_P(SocketIo, close_from_another_task_ends_a_blocked_read_accept_and_connect_with_EBADF) {
  const std::size_t before = open_descriptors();
  const std::vector<int> errors = run([]() -> gb::Task<std::vector<int>> {
    auto error_of = [](gb::Task<void> operation) -> gb::Task<int> {
      try {
        co_await std::move(operation);
      } catch (const gb::IoError& e) {
        co_return e.error_number();
      }
      co_return 0;
    };
    auto [a, b] = net::UnixStream::pair();
    auto listener = net::TcpListener::bind(net::SocketAddress::loopback(0));
    auto reading = gb::spawn(error_of([](net::UnixStream& s) -> gb::Task<void> {
      char c;
      (void)co_await s.read(std::span<char>(&c, 1));
    }(a)));
    auto accepting = gb::spawn(error_of([](net::TcpListener& l) -> gb::Task<void> { (void)co_await l.accept(); }(listener)));
    co_await gb::sleep_for(2ms);  // both wait in the kernel now
    a.close();
    listener.close();
    const int read_error = co_await std::move(reading);
    const int accept_error = co_await std::move(accepting);
    b.close();
    co_return std::vector<int>{read_error, accept_error};
  }());
  EXPECT_EQ(errors, (std::vector<int>{EBADF, EBADF}));
  EXPECT_EQ(open_descriptors(), before) << "a descriptor was not closed once its operations ended";
}

TEST_P(SocketIo, on_a_runtime_a_close_on_any_worker_ends_the_read_on_another) {
  const std::size_t before = open_descriptors();
  for (const unsigned threads : {2u, 4u}) {
    gb::Runtime runtime{runtime_options(threads)};
    const int ebadf = runtime.run([]() -> gb::Task<int> {
      std::atomic<int> count{0};
      gb::TaskGroup group;
      for (int i = 0; i < 100; ++i) {
        auto [a, b] = net::UnixStream::pair();
        auto shared = std::make_shared<std::pair<net::UnixStream, net::UnixStream>>(std::move(a), std::move(b));
        group.spawn([](std::shared_ptr<std::pair<net::UnixStream, net::UnixStream>> pair, std::atomic<int>& count) -> gb::Task<void> {
          auto reader = gb::spawn([](net::UnixStream& s, std::atomic<int>& count) -> gb::Task<void> {
            char c;
            try {
              (void)co_await s.read(std::span<char>(&c, 1));
            } catch (const gb::IoError& e) {
              if (e.error_number() == EBADF) count.fetch_add(1, std::memory_order_relaxed);
            }
          }(pair->first, count));
          co_await gb::sleep_for(1ms);
          pair->first.close();  // wherever this task runs now
          co_await std::move(reader);
        }(shared, count));
      }
      co_await group.join();
      co_return count.load(std::memory_order_relaxed);
    }());
    EXPECT_EQ(ebadf, 100) << threads << " workers";
  }
  EXPECT_EQ(open_descriptors(), before);
}

TEST_P(SocketIo, more_reads_in_flight_than_the_submission_queue_holds_all_get_their_bytes) {
  constexpr int k_pairs = 3 * static_cast<int>(gb::detail::Ring::k_entries);
  const std::size_t before = open_descriptors();
  const int ok = run([]() -> gb::Task<int> {
    std::vector<std::pair<net::UnixStream, net::UnixStream>> pairs;
    for (int i = 0; i < k_pairs; ++i) pairs.push_back(net::UnixStream::pair());
    std::vector<gb::Task<bool>> reads;
    for (int i = 0; i < k_pairs; ++i)
      reads.push_back([](net::UnixStream& s, int expected) -> gb::Task<bool> {
        int got = -1;
        const std::size_t n = co_await s.read(std::span<char>(reinterpret_cast<char*>(&got), sizeof got));
        co_return n == sizeof got && got == expected;
      }(pairs[static_cast<std::size_t>(i)].first, i));
    auto all = gb::spawn(gb::gather(std::move(reads)));
    co_await gb::sleep_for(1ms);  // every read waits
    for (int i = 0; i < k_pairs; ++i)
      co_await pairs[static_cast<std::size_t>(i)].second.write_all(std::string_view(reinterpret_cast<const char*>(&i), sizeof i));
    int good = 0;
    for (bool b : co_await std::move(all)) good += b;
    co_return good;
  }());
  EXPECT_EQ(ok, k_pairs);
  EXPECT_EQ(open_descriptors(), before);
}

TEST_P(SocketIo, a_peer_that_resets_the_connection_is_an_IoError_and_end_of_stream_is_0) {
  const std::vector<int> outcome = run([]() -> gb::Task<std::vector<int>> {
    auto listener = net::TcpListener::bind(net::SocketAddress::loopback(0));
    auto client = co_await net::TcpStream::connect(listener.local_address());
    auto server = co_await listener.accept();
    auto reader = gb::spawn([](net::TcpStream& s) -> gb::Task<int> {
      char buffer[8];
      try {
        co_return static_cast<int>(co_await s.read(std::span<char>(buffer)));
      } catch (const gb::IoError& e) {
        co_return -e.error_number();
      }
    }(server));
    co_await gb::sleep_for(1ms);
    // SO_LINGER 0: close sends a reset instead of an end of stream.
    const linger reset{.l_onoff = 1, .l_linger = 0};
    ::setsockopt(client.native_handle(), SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    client.close();
    const int reset_result = co_await std::move(reader);
    auto other = co_await net::TcpStream::connect(listener.local_address());
    auto served = co_await listener.accept();
    other.close();
    char buffer[8];
    const int eof = static_cast<int>(co_await served.read(std::span<char>(buffer)));
    co_return std::vector<int>{reset_result, eof};
  }());
  EXPECT_EQ(outcome, (std::vector<int>{-ECONNRESET, 0}));
}

}  // namespace
