// Tests of the tcp_echo servers: gearbox's own (bin/gearbox-echo-server, on a Loop and on
// a Runtime of 2 workers) and the peers bin/peer-{asio,uv,uring,go}-tcp_echo_server
// (bench/peers/*; Asio and Go at 1 and 2 threads): the server-peer protocol (a port line,
// clean exit on SIGTERM and on end of file on stdin, exit 2 on a bad command line) and
// faithful echoing under load, with large messages, after a client that vanishes, and
// when descriptors run out. A peer that was not built (its runtime is not installed, or
// the sanitizer presets, which build no peers) is skipped.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "echo_load.hpp"
#include "peer_runner.hpp"
#include "server_peer.hpp"

extern char** environ;

namespace {

using gearbox::bench::EchoLoadResult;
using gearbox::bench::run_echo_load;
using gearbox::bench::ServerPeer;
using gearbox::bench::ServerStats;
using namespace std::chrono_literals;

constexpr std::chrono::milliseconds k_generous_limit = 20s;

struct Server {
  std::string name;  // "gearbox" or a peer's runtime
  int threads;       // 0: no --threads option (a one-thread peer)
};

class EchoPeer : public testing::TestWithParam<Server> {
 protected:
  void SetUp() override {
    const std::string program = GetParam().name == "gearbox" ? "gearbox-echo-server" : "peer-" + GetParam().name + "-tcp_echo_server";
    m_path = gearbox::bench::executable_dir() / program;
    if (!std::filesystem::exists(m_path)) GTEST_SKIP() << m_path << " was not built";
  }
  // The server's command line: its path, --threads if it takes it, then `extra`.
  std::vector<std::string> argv(std::vector<std::string> extra = {}) const {
    std::vector<std::string> argv{m_path.string()};
    if (GetParam().threads > 0) {
      argv.push_back("--threads");
      argv.push_back(std::to_string(GetParam().threads));
    }
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  }
  gearbox::bench::PeerSpec spec(std::vector<std::string> extra = {}) const { return {GetParam().name, argv(std::move(extra))}; }
  std::filesystem::path m_path;
};

// A peer started by hand, with its stdin and stdout pipes held here, so that a test can
// close stdin without sending SIGTERM, or the other way round.
class HandStartedPeer {
 public:
  explicit HandStartedPeer(const std::vector<std::string>& args) {
    int in[2];
    int out[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) return;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    std::vector<char*> argv;
    for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    if (::posix_spawn(&m_pid, argv[0], &actions, nullptr, argv.data(), environ) != 0) m_pid = 0;
    posix_spawn_file_actions_destroy(&actions);
    ::close(in[0]);
    ::close(out[1]);
    m_stdin = in[1];
    m_stdout = out[0];
  }
  HandStartedPeer(const HandStartedPeer&) = delete;
  HandStartedPeer& operator=(const HandStartedPeer&) = delete;
  ~HandStartedPeer() {
    if (m_pid > 0 && !m_status) {
      ::kill(m_pid, SIGKILL);
      ::waitpid(m_pid, nullptr, 0);
    }
    close_stdin();
    if (m_stdout >= 0) ::close(m_stdout);
  }

  // The first line the peer printed, waiting at most `limit` for it.
  std::string first_line(std::chrono::milliseconds limit) {
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      pollfd fd{m_stdout, POLLIN, 0};
      if (::poll(&fd, 1, 100) <= 0) continue;
      char c = 0;
      if (::read(m_stdout, &c, 1) != 1) break;
      line += c;
    }
    return line;
  }

  void close_stdin() {
    if (m_stdin >= 0) ::close(m_stdin);
    m_stdin = -1;
  }
  void signal(int number) { ::kill(m_pid, number); }

  // The wait status once the peer has exited, waiting at most `limit`.
  std::optional<int> wait(std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!m_status && std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(m_pid, &status, WNOHANG) == m_pid) {
        m_status = status;
      } else {
        std::this_thread::sleep_for(10ms);
      }
    }
    return m_status;
  }

 private:
  pid_t m_pid = 0;
  int m_stdin = -1;
  int m_stdout = -1;
  std::optional<int> m_status;
};

TEST_P(EchoPeer, prints_one_port_line_then_echoes_every_request_and_exits_0_when_stopped) {
  ServerPeer server(spec(), k_generous_limit);
  ASSERT_TRUE(server.started()) << server.error();
  const EchoLoadResult load = run_echo_load({.port = server.port(), .connections = 50, .requests = 20000,
                                             .time_limit = k_generous_limit});
  EXPECT_TRUE(load.ok) << load.error;
  EXPECT_EQ(load.requests_done, 20000);
  const ServerStats stats = server.stop(k_generous_limit);
  EXPECT_TRUE(stats.ok) << stats.error;
  EXPECT_EQ(stats.exit, "exited with code 0");
}

TEST_P(EchoPeer, echoes_messages_larger_than_its_buffer_and_the_socket_buffers) {
  ServerPeer server(spec(), k_generous_limit);
  ASSERT_TRUE(server.started()) << server.error();
  const EchoLoadResult load = run_echo_load({.port = server.port(), .connections = 3, .requests = 12,
                                             .message_bytes = std::size_t{4} << 20, .time_limit = k_generous_limit});
  EXPECT_TRUE(load.ok) << load.error;
  EXPECT_TRUE(server.stop(k_generous_limit).ok);
}

TEST_P(EchoPeer, a_client_that_vanishes_with_data_in_flight_does_not_stop_the_server) {
  ServerPeer server(spec({"--port", "0"}), k_generous_limit);
  ASSERT_TRUE(server.started()) << server.error();
  // Write much more than the socket buffers hold without reading any echo, then close:
  // the server's pending write fails (or is reset) and it must carry on.
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(server.port()));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  pollfd writable{fd, POLLOUT, 0};
  ::poll(&writable, 1, 5000);
  std::vector<char> junk(1 << 20, 'x');
  for (int i = 0; i < 16; ++i) {  // bounded: the buffers on both sides fill up after a few MiB
    if (::send(fd, junk.data(), junk.size(), MSG_NOSIGNAL) < 0 && errno == EAGAIN) ::poll(&writable, 1, 20);
  }
  ::close(fd);

  const EchoLoadResult load = run_echo_load({.port = server.port(), .connections = 4, .requests = 1000,
                                             .time_limit = k_generous_limit});
  EXPECT_TRUE(load.ok) << load.error;
  EXPECT_TRUE(server.stop(k_generous_limit).ok);
}

TEST_P(EchoPeer, running_out_of_descriptors_while_accepting_does_not_end_the_server) {
  // A limit of 24 descriptors leaves the server room for about a dozen connections; the
  // first load asks for 40, so accept fails with EMFILE while they wait.
  std::string script = "ulimit -n 24 && exec";
  for (const std::string& arg : argv()) script += " '" + arg + "'";
  ServerPeer server({GetParam().name, {"/bin/sh", "-c", script}}, k_generous_limit);
  ASSERT_TRUE(server.started()) << server.error();
  const EchoLoadResult crowded = run_echo_load({.port = server.port(), .connections = 40, .requests = 40,
                                                .time_limit = 1s});
  EXPECT_FALSE(crowded.ok) << "40 connections cannot all be served with 24 descriptors";
  // Once the server has seen those connections close, it serves again. Until then a new
  // connection may be dropped (libuv accepts and closes what it cannot keep, so that the
  // listening socket does not spin), hence a bounded number of tries.
  EchoLoadResult after;
  for (int attempt = 0; attempt < 100 && !after.ok; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(20ms);
    after = run_echo_load({.port = server.port(), .connections = 4, .requests = 1000, .time_limit = k_generous_limit});
  }
  EXPECT_TRUE(after.ok) << after.error;
  const ServerStats stats = server.stop(k_generous_limit);
  EXPECT_TRUE(stats.ok) << stats.error;
  EXPECT_EQ(stats.exit, "exited with code 0");
}

TEST_P(EchoPeer, exits_0_when_its_stdin_reaches_end_of_file) {
  HandStartedPeer peer(argv());
  ASSERT_NE(peer.first_line(k_generous_limit).find("{\"port\": "), std::string::npos);
  peer.close_stdin();
  const std::optional<int> status = peer.wait(k_generous_limit);
  ASSERT_TRUE(status.has_value()) << "still running after its stdin was closed";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << "wait status " << *status;
}

TEST_P(EchoPeer, exits_0_on_sigterm_and_on_sigint_while_its_stdin_stays_open) {
  for (const int signal : {SIGTERM, SIGINT}) {
    HandStartedPeer peer(argv());
    ASSERT_NE(peer.first_line(k_generous_limit).find("{\"port\": "), std::string::npos);
    peer.signal(signal);
    const std::optional<int> status = peer.wait(k_generous_limit);
    ASSERT_TRUE(status.has_value()) << "still running after signal " << signal;
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << "signal " << signal << ": wait status " << *status;
  }
}

TEST_P(EchoPeer, a_bad_command_line_exits_with_code_2) {
  const auto peer = gearbox::bench::run_peer(spec({"--port", "70000"}), k_generous_limit);
  EXPECT_NE(peer.error.find("exited with code 2"), std::string::npos) << peer.error;
  const auto other = gearbox::bench::run_peer(spec({"--bogus"}), k_generous_limit);
  EXPECT_NE(other.error.find("exited with code 2"), std::string::npos) << other.error;
  if (GetParam().threads > 0) {
    const auto no_threads = gearbox::bench::run_peer({GetParam().name, {m_path.string(), "--threads", "0"}}, k_generous_limit);
    EXPECT_NE(no_threads.error.find("exited with code 2"), std::string::npos) << no_threads.error;
  }
}

INSTANTIATE_TEST_SUITE_P(Peers, EchoPeer,
                         testing::Values(Server{"gearbox", 0}, Server{"gearbox", 2}, Server{"asio", 0}, Server{"asio", 2},
                                         Server{"uv", 0}, Server{"uring", 0}, Server{"go", 1}, Server{"go", 2}),
                         [](const testing::TestParamInfo<Server>& info) {
                           return info.param.name + (info.param.threads > 0 ? "_threads_" + std::to_string(info.param.threads) : "");
                         });

}  // namespace
