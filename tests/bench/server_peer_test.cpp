// Tests of gearbox::bench::ServerPeer, the runner of server peers. The servers are
// bench_test_echo_server (a plain-sockets echo server built with the tests) and shell
// one-liners that never print a port, ignore SIGTERM, crash or exit with an error on
// purpose.
#include "server_peer.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "echo_load.hpp"

namespace {

using gearbox::bench::PeerSpec;
using gearbox::bench::ServerPeer;
using gearbox::bench::ServerStats;
using namespace std::chrono_literals;

// Long enough for any of these servers on a loaded machine; the limit tests use less.
constexpr std::chrono::milliseconds k_generous_limit = 20s;

PeerSpec test_server() { return {"test", {GEARBOX_TEST_ECHO_SERVER}}; }
PeerSpec shell_server(const std::string& script) { return {"sh", {"/bin/sh", "-c", script}}; }

bool has_zombie_child() {
  siginfo_t info{};
  const int rc = ::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT);
  return rc == 0 && info.si_pid != 0;
}

// True if this process has no child left at all (none running, none to reap).
bool has_no_child() {
  siginfo_t info{};
  return ::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0 && errno == ECHILD;
}

// The crash tests kill servers with SIGSEGV; their children inherit this limit, so no
// core file is left behind.
void no_core_dumps() {
  rlimit none{0, 0};
  ::setrlimit(RLIMIT_CORE, &none);
}

// Sends `text` to 127.0.0.1:port and returns what comes back (as many bytes as were sent).
std::string echo_once(int port, const std::string& text) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "socket failed";
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string back;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
      ::send(fd, text.data(), text.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(text.size())) {
    char buffer[256];
    while (back.size() < text.size()) {
      const ssize_t got = ::recv(fd, buffer, sizeof buffer, 0);
      if (got <= 0) break;
      back.append(buffer, static_cast<std::size_t>(got));
    }
  }
  ::close(fd);
  return back;
}

TEST(ServerPeer, a_server_that_prints_its_port_is_started_and_serves_on_that_port) {
  ServerPeer server(test_server(), k_generous_limit);
  ASSERT_TRUE(server.started()) << server.error();
  EXPECT_EQ(server.error(), "");
  EXPECT_EQ(server.name(), "test");
  EXPECT_GT(server.port(), 0);
  EXPECT_GT(server.pid(), 0);
  EXPECT_EQ(echo_once(server.port(), "hello"), "hello");
}

TEST(ServerPeer, stop_ends_a_well_behaved_server_cleanly_and_reports_its_memory_and_exit) {
  ServerPeer server(test_server(), k_generous_limit);
  ASSERT_TRUE(server.started()) << server.error();
  const auto load = gearbox::bench::run_echo_load({.port = server.port(), .connections = 4, .requests = 2000});
  EXPECT_TRUE(load.ok) << load.error;

  const ServerStats stats = server.stop(k_generous_limit);
  EXPECT_TRUE(stats.ok) << stats.error;
  EXPECT_EQ(stats.error, "");
  EXPECT_EQ(stats.exit, "exited with code 0");
  EXPECT_GT(stats.peak_rss_kb, 0);
  EXPECT_EQ(server.pid(), 0) << "the pid is not reported once the server is reaped";
  EXPECT_TRUE(has_no_child());
}

TEST(ServerPeer, the_peak_memory_reported_is_the_servers_own_not_that_of_the_process_that_started_it) {
  // wait4's ru_maxrss would report at least this process's 256 MiB: posix_spawn starts
  // the child in the parent's memory.
  std::vector<char> ballast(std::size_t{256} << 20);
  std::memset(ballast.data(), 1, ballast.size());
  // A small server whatever the preset (the test server is sanitized under asan/tsan).
  ServerPeer server(shell_server(R"(echo '{"port": 9}'; exec cat > /dev/null)"), k_generous_limit);
  ASSERT_TRUE(server.started()) << server.error();
  const ServerStats stats = server.stop(k_generous_limit);
  EXPECT_TRUE(stats.ok) << stats.error;
  EXPECT_GT(stats.peak_rss_kb, 0);
  EXPECT_LT(stats.peak_rss_kb, 128 * 1024) << "the test's ballast was counted";
  EXPECT_EQ(ballast[ballast.size() / 2], 1);
}

TEST(ServerPeer, stop_reports_the_cpu_time_the_server_used) {
  // Busy for a few hundred thousand shell loop turns before it even prints its port.
  ServerPeer server(shell_server(R"(i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done
                                    echo '{"port": 9}'; exec cat > /dev/null)"),
                    k_generous_limit);
  ASSERT_TRUE(server.started()) << server.error();
  const ServerStats stats = server.stop(k_generous_limit);
  EXPECT_TRUE(stats.ok) << stats.error;
  EXPECT_GT(stats.cpu_ms, 0);
}

TEST(ServerPeer, lines_before_the_port_line_are_ignored) {
  ServerPeer server(
      shell_server(R"(echo starting; echo '{"ready": true}'; echo '{"port": 4242}'; exec cat > /dev/null)"),
      k_generous_limit);
  ASSERT_TRUE(server.started()) << server.error();
  EXPECT_EQ(server.port(), 4242);
  EXPECT_TRUE(server.stop(k_generous_limit).ok);
}

TEST(ServerPeer, closing_stdin_alone_stops_a_server_that_ignores_sigterm_but_watches_stdin) {
  ServerPeer server(shell_server(R"(trap '' TERM; echo '{"port": 9}'; exec cat > /dev/null)"), k_generous_limit);
  ASSERT_TRUE(server.started()) << server.error();
  const ServerStats stats = server.stop(k_generous_limit);
  EXPECT_TRUE(stats.ok) << stats.error;
  EXPECT_EQ(stats.exit, "exited with code 0");
}

TEST(ServerPeer, a_server_that_ends_by_the_default_action_of_sigterm_is_stopped_cleanly) {
  ServerPeer server(shell_server(R"(echo '{"port": 9}'; exec sleep 30)"), k_generous_limit);
  ASSERT_TRUE(server.started()) << server.error();
  const ServerStats stats = server.stop(k_generous_limit);
  EXPECT_TRUE(stats.ok) << stats.error;
  EXPECT_NE(stats.exit.find("SIGTERM"), std::string::npos) << stats.exit;
}

TEST(ServerPeer, a_server_that_never_prints_its_port_fails_to_start_within_the_startup_limit) {
  ServerPeer server(shell_server("echo 'listening somewhere'; exec sleep 30"), 300ms);
  EXPECT_FALSE(server.started());
  EXPECT_EQ(server.port(), 0);
  EXPECT_EQ(server.pid(), 0);
  EXPECT_NE(server.error().find("did not print its port"), std::string::npos) << server.error();
  EXPECT_NE(server.error().find("300 ms"), std::string::npos) << server.error();
  EXPECT_TRUE(has_no_child());

  const ServerStats stats = server.stop(k_generous_limit);
  EXPECT_FALSE(stats.ok);
  EXPECT_EQ(stats.error, server.error());
}

TEST(ServerPeer, a_port_line_with_a_port_out_of_range_is_not_taken) {
  ServerPeer server(shell_server(R"(echo '{"port": 70000}'; echo '{"port": "80"}'; exec sleep 30)"), 300ms);
  EXPECT_FALSE(server.started());
  EXPECT_NE(server.error().find("did not print its port"), std::string::npos) << server.error();
}

TEST(ServerPeer, a_server_that_exits_before_printing_its_port_is_reported_with_its_exit_code_and_output) {
  ServerPeer server(shell_server("echo 'cannot bind here'; exit 4"), k_generous_limit);
  EXPECT_FALSE(server.started());
  EXPECT_NE(server.error().find("exited with code 4 before printing its port"), std::string::npos)
      << server.error();
  EXPECT_NE(server.error().find("cannot bind here"), std::string::npos) << "quotes its output: " << server.error();
  EXPECT_FALSE(has_zombie_child());
}

TEST(ServerPeer, a_server_that_crashes_while_starting_is_reported_with_the_signal) {
  no_core_dumps();
  ServerPeer server(shell_server("kill -SEGV $$"), k_generous_limit);
  EXPECT_FALSE(server.started());
  EXPECT_NE(server.error().find("SIGSEGV"), std::string::npos) << server.error();
}

TEST(ServerPeer, a_server_that_ignores_sigterm_and_stdin_is_killed_at_the_stop_limit) {
  ServerPeer server(shell_server(R"(trap '' TERM; echo '{"port": 9}'; exec sleep 30)"), k_generous_limit);
  ASSERT_TRUE(server.started()) << server.error();
  const ServerStats stats = server.stop(300ms);
  EXPECT_FALSE(stats.ok);
  EXPECT_NE(stats.error.find("did not exit within 300 ms"), std::string::npos) << stats.error;
  EXPECT_NE(stats.exit.find("SIGKILL"), std::string::npos) << stats.exit;
  EXPECT_GT(stats.peak_rss_kb, 0);
  EXPECT_TRUE(has_no_child());
}

TEST(ServerPeer, a_server_that_crashed_before_stop_is_reported_as_such) {
  no_core_dumps();
  ServerPeer server(shell_server(R"(echo '{"port": 9}'; exec sleep 30)"), k_generous_limit);
  ASSERT_TRUE(server.started()) << server.error();
  // Crash it, and wait for its end without reaping it (that is the runner's job).
  ASSERT_EQ(::kill(server.pid(), SIGSEGV), 0);
  siginfo_t info{};
  ASSERT_EQ(::waitid(P_PID, static_cast<id_t>(server.pid()), &info, WEXITED | WNOWAIT), 0) << std::strerror(errno);

  const ServerStats stats = server.stop(k_generous_limit);
  EXPECT_FALSE(stats.ok);
  EXPECT_NE(stats.error.find("already ended before it was stopped"), std::string::npos) << stats.error;
  EXPECT_NE(stats.error.find("SIGSEGV"), std::string::npos) << stats.error;
  EXPECT_TRUE(has_no_child());
}

TEST(ServerPeer, a_server_that_exits_with_an_error_when_stopped_is_reported_with_its_code) {
  ServerPeer server(shell_server(R"(trap '' TERM; echo '{"port": 9}'; cat > /dev/null; exit 3)"), k_generous_limit);
  ASSERT_TRUE(server.started()) << server.error();
  const ServerStats stats = server.stop(k_generous_limit);
  EXPECT_FALSE(stats.ok);
  EXPECT_NE(stats.error.find("exited with code 3 when stopped"), std::string::npos) << stats.error;
}

TEST(ServerPeer, stopping_twice_returns_the_same_stats) {
  ServerPeer server(test_server(), k_generous_limit);
  ASSERT_TRUE(server.started()) << server.error();
  const ServerStats first = server.stop(k_generous_limit);
  const ServerStats second = server.stop(k_generous_limit);
  EXPECT_TRUE(first.ok) << first.error;
  EXPECT_EQ(first.exit, second.exit);
  EXPECT_EQ(first.peak_rss_kb, second.peak_rss_kb);
  EXPECT_EQ(first.cpu_ms, second.cpu_ms);
}

TEST(ServerPeer, the_destructor_stops_and_reaps_a_running_server) {
  {
    ServerPeer server(test_server(), k_generous_limit);
    ASSERT_TRUE(server.started()) << server.error();
  }
  EXPECT_TRUE(has_no_child());
}

TEST(ServerPeer, a_moved_server_is_stopped_once_by_its_new_owner) {
  ServerPeer first(test_server(), k_generous_limit);
  ASSERT_TRUE(first.started()) << first.error();
  const int port = first.port();
  ServerPeer second = std::move(first);
  EXPECT_FALSE(first.started());  // NOLINT(bugprone-use-after-move): moved-from state is specified
  EXPECT_EQ(second.port(), port);
  EXPECT_EQ(echo_once(port, "still here"), "still here");
  EXPECT_TRUE(second.stop(k_generous_limit).ok);
  EXPECT_FALSE(first.stop(k_generous_limit).ok);
}

TEST(ServerPeer, a_missing_program_is_reported_as_not_found) {
  ServerPeer server({"ghost", {"/nonexistent/peer-asio-tcp_echo_server"}}, k_generous_limit);
  EXPECT_FALSE(server.started());
  EXPECT_NE(server.error().find("not found"), std::string::npos) << server.error();
  EXPECT_NE(server.error().find("/nonexistent/peer-asio-tcp_echo_server"), std::string::npos) << server.error();
}

TEST(ServerPeer, an_empty_command_line_is_an_error_not_a_crash) {
  ServerPeer server({"nothing", {}}, k_generous_limit);
  EXPECT_FALSE(server.started());
  EXPECT_NE(server.error().find("empty"), std::string::npos) << server.error();
}

TEST(ServerPeer, the_server_does_not_inherit_the_stdin_pipe_of_another_server) {
  // If the second server held the first one's stdin pipe open, closing it would not
  // reach the first one, which ignores SIGTERM and waits for end of file on stdin.
  ServerPeer first(shell_server(R"(trap '' TERM; echo '{"port": 9}'; exec cat > /dev/null)"), k_generous_limit);
  ASSERT_TRUE(first.started()) << first.error();
  ServerPeer second(shell_server(R"(trap '' TERM; echo '{"port": 10}'; exec cat > /dev/null)"), k_generous_limit);
  ASSERT_TRUE(second.started()) << second.error();
  EXPECT_TRUE(first.stop(k_generous_limit).ok);
  EXPECT_TRUE(second.stop(k_generous_limit).ok);
}

}  // namespace
