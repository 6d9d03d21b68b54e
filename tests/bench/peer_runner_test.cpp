// Tests of gearbox::bench::run_peer and find_peers: the runner that starts a benchmark's
// peers as child processes. The peers here are shell and Python one-liners that succeed,
// fail, crash, hang or print garbage on purpose.
#include "peer_runner.hpp"

#include <gtest/gtest.h>

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using gearbox::bench::find_peers_in;
using gearbox::bench::PeerResult;
using gearbox::bench::PeerSpec;
using gearbox::bench::run_peer;
using namespace std::chrono_literals;

// Long enough for any of these one-liners on a loaded machine; the timeout tests use less.
constexpr std::chrono::milliseconds k_generous_limit = 20s;

PeerSpec shell_peer(const std::string& script) { return {"sh", {"/bin/sh", "-c", script}}; }

// True if this process has a child that has exited but was not reaped (a zombie).
bool has_zombie_child() {
  siginfo_t info{};
  const int rc = ::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT);
  return rc == 0 && info.si_pid != 0;
}

// A fresh empty directory, removed with everything in it when the test ends.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "peer_runner_test.XXXXXX").string();
    if (::mkdtemp(pattern.data()) != nullptr) m_path = pattern;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ignored;
    if (!m_path.empty()) std::filesystem::remove_all(m_path, ignored);
  }
  const std::filesystem::path& path() const { return m_path; }

 private:
  std::filesystem::path m_path;
};

void touch(const std::filesystem::path& file) {
  std::filesystem::create_directories(file.parent_path());
  std::ofstream{file} << "peer\n";
}

TEST(PeerRunner, a_peer_that_prints_a_json_line_is_reported_with_its_time_result_and_extra_fields) {
  // (It lives 50 ms, so that its memory is sampled before it exits.)
  const PeerResult peer = run_peer(
      shell_peer(R"(sleep 0.05; echo '{"ms": 1.5, "result": 7, "ns_per_switch": 3.25}')"), k_generous_limit);
  EXPECT_TRUE(peer.ok) << peer.error;
  EXPECT_EQ(peer.error, "");
  EXPECT_EQ(peer.name, "sh");
  EXPECT_DOUBLE_EQ(peer.ms, 1.5);
  EXPECT_EQ(peer.result, 7);
  EXPECT_DOUBLE_EQ(peer.extra.at("ns_per_switch").get<double>(), 3.25);
  EXPECT_GT(peer.peak_rss_kb, 0);
  EXPECT_FALSE(has_zombie_child());
}

// A peer's peak memory is its own: not this process's, which a child started by
// posix_spawn inherits as its starting ru_maxrss (what the runner once reported).
TEST(PeerRunner, a_small_peer_started_by_a_big_parent_reports_its_own_small_peak) {
  constexpr std::size_t big = 256u << 20;
  std::vector<char> ballast(big, 1);  // touched: this process's peak is now above 256 MiB
  const PeerResult peer = run_peer(shell_peer(R"(sleep 0.1; echo '{"ms": 1, "result": 1}')"), k_generous_limit);
  ASSERT_TRUE(peer.ok) << peer.error;
  EXPECT_GT(peer.peak_rss_kb, 0);
  EXPECT_LT(peer.peak_rss_kb, 64 * 1024) << "the parent's " << ballast.size() / 1024 << " KiB leaked into the figure";
}

TEST(PeerRunner, a_peer_that_grows_reports_its_peak) {
  if (::access("/usr/bin/python3", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/python3";
  // 128 MiB touched, then freed, then 100 ms of sleep: the peak outlives the memory.
  const PeerResult peer = run_peer(
      {"python", {"/usr/bin/python3", "-c",
                  "import json, time\n"
                  "b = b'x' * (128 << 20)\n"
                  "del b\n"
                  "time.sleep(0.1)\n"
                  "print(json.dumps({'ms': 1, 'result': 1}))\n"}},
      k_generous_limit);
  ASSERT_TRUE(peer.ok) << peer.error;
  EXPECT_GE(peer.peak_rss_kb, 128 * 1024);
}

TEST(PeerRunner, a_string_result_is_kept_as_a_string) {
  const PeerResult peer = run_peer(shell_peer(R"(echo '{"ms": 2, "result": "abc"}')"), k_generous_limit);
  ASSERT_TRUE(peer.ok) << peer.error;
  EXPECT_EQ(peer.result, "abc");
}

TEST(PeerRunner, a_python_peer_found_on_path_is_run) {
  if (::access("/usr/bin/python3", X_OK) != 0 && ::access("/usr/local/bin/python3", X_OK) != 0) {
    GTEST_SKIP() << "no python3";
  }
  const PeerResult peer = run_peer(
      {"python", {"python3", "-c", R"(import json; print(json.dumps({"ms": 2.5, "result": 499999500000})))"}},
      k_generous_limit);
  ASSERT_TRUE(peer.ok) << peer.error;
  EXPECT_DOUBLE_EQ(peer.ms, 2.5);
  EXPECT_EQ(peer.result.get<long long>(), 499999500000LL);
}

TEST(PeerRunner, the_last_json_line_is_the_report_and_other_lines_are_ignored) {
  const PeerResult peer = run_peer(
      shell_peer(R"(echo starting; echo '{"ms": 1, "result": 1}'; echo '{"ms": 2, "result": 2}'; echo trailing words)"),
      k_generous_limit);
  ASSERT_TRUE(peer.ok) << peer.error;
  EXPECT_DOUBLE_EQ(peer.ms, 2);
  EXPECT_EQ(peer.result, 2);
}

TEST(PeerRunner, a_report_after_megabytes_of_other_output_is_still_found) {
  const PeerResult peer = run_peer(
      shell_peer(R"(head -c 3000000 /dev/zero | tr '\0' x; echo; echo '{"ms": 4, "result": 4}')"), k_generous_limit);
  ASSERT_TRUE(peer.ok) << peer.error;
  EXPECT_EQ(peer.result, 4);
}

TEST(PeerRunner, a_peer_that_exits_nonzero_is_reported_with_its_exit_code) {
  const PeerResult peer = run_peer(shell_peer(R"(echo '{"ms": 1, "result": 1}'; exit 3)"), k_generous_limit);
  EXPECT_FALSE(peer.ok);
  EXPECT_NE(peer.error.find("exited with code 3"), std::string::npos) << peer.error;
  EXPECT_FALSE(has_zombie_child());
}

TEST(PeerRunner, a_peer_that_exits_nonzero_with_an_error_in_its_report_is_reported_with_that_reason) {
  const PeerResult peer = run_peer(
      shell_peer(R"(echo '{"ms": 0, "result": null, "error": "needs ~1346268 threads, refusing"}'; exit 3)"),
      k_generous_limit);
  EXPECT_FALSE(peer.ok);
  EXPECT_NE(peer.error.find("exited with code 3: needs ~1346268 threads, refusing"), std::string::npos)
      << peer.error;
  EXPECT_TRUE(peer.result.is_null());
  const nlohmann::json j = peer;
  EXPECT_EQ(j.at("error"), peer.error) << "the runner's error replaces the peer's own field";
}

TEST(PeerRunner, a_peer_killed_by_a_signal_is_reported_with_the_signal) {
  const PeerResult peer = run_peer(shell_peer("kill -TERM $$; sleep 5"), k_generous_limit);
  EXPECT_FALSE(peer.ok);
  EXPECT_NE(peer.error.find("signal 15"), std::string::npos) << peer.error;
  EXPECT_NE(peer.error.find("SIGTERM"), std::string::npos) << peer.error;
  EXPECT_FALSE(has_zombie_child());
}

TEST(PeerRunner, a_peer_that_runs_past_its_limit_is_killed_and_reported_as_a_timeout) {
  const PeerResult peer = run_peer(shell_peer("exec sleep 30"), 200ms);
  EXPECT_FALSE(peer.ok);
  EXPECT_NE(peer.error.find("timed out"), std::string::npos) << peer.error;
  EXPECT_NE(peer.error.find("200 ms"), std::string::npos) << peer.error;
  EXPECT_FALSE(has_zombie_child());
}

// True once `pid` has ended: no such process, or a zombie waiting for init to reap it.
bool has_ended(pid_t pid) {
  std::ifstream stat{"/proc/" + std::to_string(pid) + "/stat"};
  std::string line;
  if (!std::getline(stat, line)) return true;
  const auto after_name = line.rfind(')');
  return after_name != std::string::npos && line.compare(after_name, 3, ") Z") == 0;
}

TEST(PeerRunner, a_timeout_also_kills_what_the_peer_started) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::filesystem::path pid_file = dir.path() / "grandchild.pid";
  const PeerResult peer = run_peer(shell_peer("sleep 30 & echo $! > '" + pid_file.string() + "'; wait"), 500ms);
  EXPECT_NE(peer.error.find("timed out"), std::string::npos) << peer.error;

  pid_t grandchild = 0;
  std::ifstream{pid_file} >> grandchild;
  ASSERT_GT(grandchild, 0) << "the peer did not get to start its child within the limit";
  bool ended = has_ended(grandchild);
  for (int i = 0; i < 200 && !ended; ++i) {  // SIGKILL is delivered asynchronously
    std::this_thread::sleep_for(10ms);
    ended = has_ended(grandchild);
  }
  if (!ended) ::kill(grandchild, SIGKILL);
  EXPECT_TRUE(ended) << "the peer's child " << grandchild << " survived the timeout";
}

TEST(PeerRunner, a_peer_that_closes_its_stdout_and_hangs_is_still_killed_at_its_limit) {
  const PeerResult peer = run_peer(shell_peer("exec >&-; exec sleep 30"), 200ms);
  EXPECT_FALSE(peer.ok);
  EXPECT_NE(peer.error.find("timed out"), std::string::npos) << peer.error;
  EXPECT_FALSE(has_zombie_child());
}

TEST(PeerRunner, a_grandchild_that_keeps_stdout_open_does_not_hold_up_the_report) {
  // The background sleep inherits the pipe; the runner must not wait for its end of file.
  // It reports its pid as the result so that the test can end it.
  const PeerResult peer = run_peer(shell_peer(R"(sleep 30 & echo "{\"ms\": 1, \"result\": $!}"; exit 0)"), 10s);
  if (peer.result.is_number_integer()) ::kill(peer.result.get<pid_t>(), SIGKILL);
  EXPECT_TRUE(peer.ok) << peer.error;
  EXPECT_FALSE(has_zombie_child());
}

TEST(PeerRunner, output_that_is_not_json_is_reported_as_bad_json) {
  const PeerResult peer = run_peer(shell_peer("echo 'ms=1 result=7'; echo '{\"ms\": 1,'"), k_generous_limit);
  EXPECT_FALSE(peer.ok);
  EXPECT_NE(peer.error.find("bad JSON"), std::string::npos) << peer.error;
  EXPECT_NE(peer.error.find("ms=1 result=7"), std::string::npos) << "the error quotes the output: " << peer.error;
}

TEST(PeerRunner, a_json_report_without_a_numeric_ms_is_rejected) {
  const PeerResult peer = run_peer(shell_peer(R"(echo '{"ms": "fast", "result": 7}')"), k_generous_limit);
  EXPECT_FALSE(peer.ok);
  EXPECT_NE(peer.error.find("\"ms\""), std::string::npos) << peer.error;
  EXPECT_EQ(peer.result, 7);
}

TEST(PeerRunner, a_peer_that_prints_nothing_is_reported_as_such) {
  const PeerResult peer = run_peer(shell_peer("true"), k_generous_limit);
  EXPECT_FALSE(peer.ok);
  EXPECT_NE(peer.error.find("printed nothing"), std::string::npos) << peer.error;
}

TEST(PeerRunner, a_missing_program_is_reported_as_not_found) {
  const PeerResult peer = run_peer({"ghost", {"/nonexistent/peer-go-skynet", "--n", "10"}}, k_generous_limit);
  EXPECT_FALSE(peer.ok);
  EXPECT_EQ(peer.name, "ghost");
  EXPECT_NE(peer.error.find("not found"), std::string::npos) << peer.error;
  EXPECT_NE(peer.error.find("/nonexistent/peer-go-skynet"), std::string::npos) << peer.error;
}

TEST(PeerRunner, a_file_that_is_not_executable_is_reported_with_the_reason) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  touch(dir.path() / "peer-asio-skynet");  // mode 0644
  const PeerResult peer = run_peer({"asio", {(dir.path() / "peer-asio-skynet").string()}}, k_generous_limit);
  EXPECT_FALSE(peer.ok);
  EXPECT_NE(peer.error.find("cannot start"), std::string::npos) << peer.error;
}

TEST(PeerRunner, an_empty_command_line_is_an_error_not_a_crash) {
  const PeerResult peer = run_peer({"nothing", {}}, k_generous_limit);
  EXPECT_FALSE(peer.ok);
  EXPECT_NE(peer.error.find("empty"), std::string::npos) << peer.error;
}

TEST(PeerRunner, a_failed_result_converts_to_json_with_its_error) {
  const PeerResult peer = run_peer(shell_peer("exit 3"), k_generous_limit);
  const nlohmann::json j = peer;
  EXPECT_EQ(j.at("ok"), false);
  EXPECT_NE(j.at("error").get<std::string>().find("code 3"), std::string::npos);
}

TEST(PeerRunner, a_successful_result_converts_to_json_with_the_peers_extra_fields) {
  const PeerResult peer =
      run_peer(shell_peer(R"(sleep 0.05; echo '{"ms": 3, "result": 9, "tasks": 11}')"), k_generous_limit);
  const nlohmann::json j = peer;
  EXPECT_EQ(j.at("ok"), true);
  EXPECT_EQ(j.at("ms"), 3.0);
  EXPECT_EQ(j.at("result"), 9);
  EXPECT_EQ(j.at("tasks"), 11);
  EXPECT_GT(j.at("peak_rss_kb").get<long>(), 0);
  EXPECT_FALSE(j.contains("error"));
}

TEST(FindPeers, only_the_peers_whose_files_exist_are_listed_with_n_and_the_extra_arguments) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  touch(dir.path() / "peer-go-sleepers");
  touch(dir.path() / "peers" / "python" / "sleepers.py");
  touch(dir.path() / "peer-asio-skynet");  // another benchmark's peer

  const std::vector<PeerSpec> peers = find_peers_in(dir.path(), "sleepers", 1000, {"--seconds", "0.5"});
  ASSERT_EQ(peers.size(), 2U);

  EXPECT_EQ(peers[0].name, "go");
  const std::vector<std::string> go_argv{(dir.path() / "peer-go-sleepers").string(), "--n", "1000", "--seconds",
                                         "0.5"};
  EXPECT_EQ(peers[0].argv, go_argv);

  EXPECT_EQ(peers[1].name, "python");
  ASSERT_EQ(peers[1].argv.size(), 6U);
  EXPECT_NE(peers[1].argv[0].find("python3"), std::string::npos) << peers[1].argv[0];
  EXPECT_EQ(peers[1].argv[1], (dir.path() / "peers" / "python" / "sleepers.py").string());
  EXPECT_EQ(peers[1].argv[3], "1000");
}

TEST(FindPeers, every_kind_of_peer_is_found_in_the_order_asio_go_python_tbb_std_async) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  touch(dir.path() / "peer-stdasync-fib");
  touch(dir.path() / "peer-tbb-fib");
  touch(dir.path() / "peers" / "python" / "fib.py");
  touch(dir.path() / "peer-go-fib");
  touch(dir.path() / "peer-asio-fib");
  touch(dir.path() / "peer-tbb-parallel_sum");  // another benchmark's peer

  const std::vector<PeerSpec> peers = find_peers_in(dir.path(), "fib", 30, {"--threads", "2"});
  std::vector<std::string> names;
  for (const auto& peer : peers) names.push_back(peer.name);
  EXPECT_EQ(names, (std::vector<std::string>{"asio", "go", "python", "tbb", "std::async"}));
  ASSERT_EQ(peers.size(), 5U);

  const std::vector<std::string> tbb_argv{(dir.path() / "peer-tbb-fib").string(), "--n", "30", "--threads", "2"};
  EXPECT_EQ(peers[3].argv, tbb_argv);
  const std::vector<std::string> stdasync_argv{(dir.path() / "peer-stdasync-fib").string(), "--n", "30", "--threads",
                                               "2"};
  EXPECT_EQ(peers[4].argv, stdasync_argv);
}

TEST(FindPeers, a_directory_without_peers_yields_none) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  EXPECT_TRUE(find_peers_in(dir.path(), "skynet", 10, {}).empty());
  EXPECT_TRUE(find_peers_in({}, "skynet", 10, {}).empty());
}

TEST(FindPeers, the_executable_dir_holds_this_test_binary) {
  const std::filesystem::path dir = gearbox::bench::executable_dir();
  ASSERT_FALSE(dir.empty());
  EXPECT_TRUE(std::filesystem::exists(dir / "peer_runner_test")) << dir;
}

}  // namespace
