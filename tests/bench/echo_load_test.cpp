// Tests of gearbox::bench::run_echo_load, the load generator of the tcp_echo benchmark,
// against PollEchoServer on a thread of the test: a faithful server, and servers that
// corrupt a byte, fall silent, hang up or answer twice.
#include "echo_load.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>

#include "poll_echo_server.hpp"

namespace {

using gearbox::bench::EchoLoadOptions;
using gearbox::bench::EchoLoadResult;
using gearbox::bench::run_echo_load;
using gearbox_test::EchoMisbehaviour;
using gearbox_test::PollEchoServer;
using namespace std::chrono_literals;

// Long enough for any of these runs on a loaded machine (under the sanitizers too); the
// time-limit tests use less.
constexpr std::chrono::milliseconds k_generous_limit = 60s;

// PollEchoServer serving on a thread of its own until destroyed.
class ThreadedEchoServer {
 public:
  explicit ThreadedEchoServer(EchoMisbehaviour misbehaviour = {}) : m_server(misbehaviour) {
    if (::pipe2(m_stop, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    m_thread = std::thread([this] { m_server.serve(m_stop[0]); });
  }
  ThreadedEchoServer(const ThreadedEchoServer&) = delete;
  ThreadedEchoServer& operator=(const ThreadedEchoServer&) = delete;
  ~ThreadedEchoServer() { stop(); }

  int port() const { return m_server.port(); }

  // Stops the server and returns how many bytes it echoed.
  long stop() {
    if (m_thread.joinable()) {
      ::close(m_stop[1]);  // the serving thread sees end of file
      m_thread.join();
      ::close(m_stop[0]);
    }
    return m_server.bytes_echoed();
  }

 private:
  PollEchoServer m_server;
  int m_stop[2] = {-1, -1};
  std::thread m_thread;
};

EchoLoadOptions options_for(int port, int connections, long requests, std::size_t message_bytes = 64) {
  return {.port = port, .connections = connections, .requests = requests, .message_bytes = message_bytes,
          .time_limit = k_generous_limit};
}

TEST(EchoLoad, every_request_comes_back_verified_and_is_counted) {
  ThreadedEchoServer server;
  const EchoLoadResult load = run_echo_load(options_for(server.port(), 8, 3000));
  EXPECT_TRUE(load.ok) << load.error;
  EXPECT_EQ(load.error, "");
  EXPECT_EQ(load.requests_done, 3000);
  EXPECT_EQ(server.stop(), 3000L * 64) << "the server echoed exactly the requests, once each";
  EXPECT_GT(load.seconds, 0);
  EXPECT_GT(load.requests_per_sec, 0);
  EXPECT_GT(load.p50_us, 0);
  EXPECT_GE(load.p99_us, load.p50_us);
}

TEST(EchoLoad, fewer_requests_than_connections_leaves_the_extra_connections_idle) {
  ThreadedEchoServer server;
  const EchoLoadResult load = run_echo_load(options_for(server.port(), 10, 3));
  EXPECT_TRUE(load.ok) << load.error;
  EXPECT_EQ(load.requests_done, 3);
  EXPECT_EQ(server.stop(), 3L * 64);
}

TEST(EchoLoad, one_byte_messages_work) {
  ThreadedEchoServer server;
  const EchoLoadResult load = run_echo_load(options_for(server.port(), 3, 500, 1));
  EXPECT_TRUE(load.ok) << load.error;
  EXPECT_EQ(load.requests_done, 500);
  EXPECT_EQ(server.stop(), 500);
}

TEST(EchoLoad, messages_larger_than_the_socket_buffers_are_written_in_parts_and_verified) {
  ThreadedEchoServer server;
  constexpr std::size_t k_bytes = std::size_t{8} << 20;  // more than loopback's socket buffers take at once
  const EchoLoadResult load = run_echo_load(options_for(server.port(), 2, 6, k_bytes));
  EXPECT_TRUE(load.ok) << load.error;
  EXPECT_EQ(load.requests_done, 6);
  EXPECT_EQ(server.stop(), 6L * static_cast<long>(k_bytes));
}

TEST(EchoLoad, a_server_that_corrupts_one_byte_is_detected) {
  ThreadedEchoServer server({.corrupt_byte = 64 * 100 + 37});
  const EchoLoadResult load = run_echo_load(options_for(server.port(), 1, 1000));
  EXPECT_FALSE(load.ok);
  EXPECT_NE(load.error.find("corrupt echo"), std::string::npos) << load.error;
  EXPECT_NE(load.error.find("byte 37 of a 64-byte message"), std::string::npos) << load.error;
  EXPECT_EQ(load.requests_done, 100) << "the requests before the corrupt one were fine";
}

TEST(EchoLoad, a_corrupt_byte_among_many_connections_is_detected) {
  ThreadedEchoServer server({.corrupt_byte = 64 * 300 + 63});
  const EchoLoadResult load = run_echo_load(options_for(server.port(), 16, 3000));
  EXPECT_FALSE(load.ok);
  EXPECT_NE(load.error.find("byte 63 of a 64-byte message"), std::string::npos) << load.error;
  EXPECT_LT(load.requests_done, 3000);
}

TEST(EchoLoad, a_corrupt_byte_in_the_request_number_is_detected) {
  ThreadedEchoServer server({.corrupt_byte = 64 * 10 + 2});
  const EchoLoadResult load = run_echo_load(options_for(server.port(), 1, 100));
  EXPECT_FALSE(load.ok);
  EXPECT_NE(load.error.find("byte 2 of"), std::string::npos) << load.error;
}

TEST(EchoLoad, a_server_that_echoes_twice_is_detected) {
  ThreadedEchoServer server({.echo_twice = true});
  const EchoLoadResult load = run_echo_load(options_for(server.port(), 1, 100));
  EXPECT_FALSE(load.ok);
  EXPECT_LT(load.requests_done, 100);
  const bool named = load.error.find("more bytes") != std::string::npos ||
                     load.error.find("corrupt echo") != std::string::npos;
  EXPECT_TRUE(named) << load.error;
}

TEST(EchoLoad, a_server_that_stops_answering_hits_the_time_limit) {
  ThreadedEchoServer server({.silent_after = 64 * 50});
  EchoLoadOptions options = options_for(server.port(), 2, 1000);
  options.time_limit = 500ms;
  const EchoLoadResult load = run_echo_load(options);
  EXPECT_FALSE(load.ok);
  EXPECT_NE(load.error.find("time limit of 500 ms"), std::string::npos) << load.error;
  EXPECT_NE(load.error.find("stopped answering"), std::string::npos) << load.error;
  // (How many of the 50 answered requests were done by the limit depends on the machine.)
  EXPECT_LE(load.requests_done, 50);
}

TEST(EchoLoad, a_server_that_closes_the_connections_is_reported) {
  ThreadedEchoServer server({.close_after = 64 * 20});
  const EchoLoadResult load = run_echo_load(options_for(server.port(), 1, 1000));
  EXPECT_FALSE(load.ok);
  const bool named = load.error.find("closed") != std::string::npos ||
                     load.error.find("reset") != std::string::npos;
  EXPECT_TRUE(named) << load.error;
  EXPECT_EQ(load.requests_done, 20);
}

TEST(EchoLoad, no_server_listening_is_reported_as_refused) {
  // A port that was just bound and released: nothing listens there.
  int port = 0;
  { port = PollEchoServer().port(); }
  const EchoLoadResult load = run_echo_load(options_for(port, 2, 10));
  EXPECT_FALSE(load.ok);
  EXPECT_NE(load.error.find("refused"), std::string::npos) << load.error;
  EXPECT_EQ(load.requests_done, 0);
}

TEST(EchoLoad, running_out_of_file_descriptors_is_reported_with_the_ulimit_hint) {
  ThreadedEchoServer server;
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
  rlimit low = saved;
  low.rlim_cur = 64;  // this test runs in a process of its own under ctest; restored below anyway
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  const EchoLoadResult load = run_echo_load(options_for(server.port(), 100, 100));
  ::setrlimit(RLIMIT_NOFILE, &saved);
  EXPECT_FALSE(load.ok);
  EXPECT_NE(load.error.find("Too many open files"), std::string::npos) << load.error;
  EXPECT_NE(load.error.find("ulimit -n"), std::string::npos) << load.error;
  EXPECT_EQ(load.requests_done, 0);
}

TEST(EchoLoad, bad_options_are_errors_not_crashes) {
  EXPECT_NE(run_echo_load({.port = 0}).error.find("bad port"), std::string::npos);
  EXPECT_NE(run_echo_load({.port = 9, .connections = 0}).error.find("bad connection count"), std::string::npos);
  EXPECT_NE(run_echo_load({.port = 9, .requests = 0}).error.find("bad request count"), std::string::npos);
  EXPECT_NE(run_echo_load({.port = 9, .message_bytes = 0}).error.find("bad message size"), std::string::npos);
  EXPECT_FALSE(run_echo_load({.port = 9, .time_limit = 0ms}).ok);
}

}  // namespace
