// Subprocesses (include/gearbox/os/process.hpp): exit codes and signals, captured output,
// a large stdin round trip through cat, spawn errors, working directory and environment,
// wait() under a timeout, no zombie after destruction, a child that closes its stdin, the
// child's signal mask and dispositions, and many children at once.
//
// The children are real programs (sh, cat, sleep, env, grep, head, pwd), so every test
// runs on the steady clock under a generous deadline (see os_test_support.hpp). Tests that
// check "no child left" use waitpid(-1, WNOHANG): every test reaps what it starts, so any
// child still there is a leak.
#include <gearbox/os/process.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <gearbox/combinators.hpp>
#include <gearbox/error.hpp>
#include <gearbox/join_handle.hpp>
#include <gearbox/os/signal.hpp>
#include <gearbox/spawn.hpp>
#include <gearbox/task.hpp>
#include <gearbox/time.hpp>

#include <gtest/gtest.h>

#include "os/os_test_support.hpp"

namespace gb = gearbox;
namespace os = gearbox::os;
using namespace std::chrono_literals;
using gearbox_test::run_with_deadline;
using gearbox_test::TempDir;

namespace {

constexpr int k_children = 50;

// True if this process has no child left to reap (running or zombie).
bool no_children_left() {
  errno = 0;
  return ::waitpid(-1, nullptr, WNOHANG) == -1 && errno == ECHILD;
}

// The parent pid of `pid` from /proc, or nullopt if there is no such process.
std::optional<pid_t> parent_of(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  if (!status) return std::nullopt;
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("PPid:", 0) == 0) return static_cast<pid_t>(std::stol(line.substr(5)));
  return std::nullopt;
}

// The child is gone: not waitable by us, and no process with its pid is our child.
void expect_reaped(pid_t pid) {
  errno = 0;
  EXPECT_EQ(::waitpid(pid, nullptr, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
  const std::optional<pid_t> parent = parent_of(pid);
  if (parent) {
    EXPECT_NE(*parent, ::getpid()) << "pid " << pid << " is still our child";
  }
}

// Descriptors open in this process now (the directory's own descriptor included, the same
// way each time).
std::size_t open_descriptors() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

std::string pattern(std::size_t size) {
  std::string data(size, '\0');
  for (std::size_t i = 0; i < size; ++i) data[i] = static_cast<char>('a' + (i * 7 + i / 4096) % 26);
  return data;
}

// The value of a "Name:\tvalue" line of /proc/<pid>/status output.
std::string field(const std::string& status_text, const std::string& name) {
  std::istringstream lines(status_text);
  std::string line;
  while (std::getline(lines, line))
    if (line.rfind(name + ":", 0) == 0) return line.substr(line.find_first_not_of(" \t", name.size() + 1));
  return "<missing " + name + ">";
}

gb::Task<void> write_and_close(gb::net::ByteStream& stream, const std::string& data) {
  co_await stream.write_all(data);
  stream.close();
}

}  // namespace

TEST(Process, a_child_that_exits_3_reports_exit_code_3) {
  const os::ExitStatus status = run_with_deadline([]() -> gb::Task<os::ExitStatus> {
    auto child = os::Process::spawn({.args = {"/bin/sh", "-c", "exit 3"}});
    co_return co_await child.wait();
  }());
  EXPECT_EQ(status.code, 3);
  EXPECT_EQ(status.signal, 0);
  EXPECT_FALSE(status.success());
  EXPECT_EQ(status.to_string(), "exit code 3");
}

TEST(Process, a_child_that_exits_0_succeeds_and_a_second_wait_returns_the_same_status) {
  run_with_deadline([]() -> gb::Task<void> {
    auto child = os::Process::spawn({.args = {"true"}});  // found on PATH
    const os::ExitStatus first = co_await child.wait();
    EXPECT_TRUE(first.success());
    EXPECT_TRUE(child.status().has_value());
    const os::ExitStatus second = co_await child.wait();
    EXPECT_EQ(second.code, 0);
    EXPECT_EQ(second.signal, 0);
    child.kill();  // no effect once reaped
  }());
}

TEST(Process, a_child_killed_with_SIGKILL_reports_the_signal) {
  const os::ExitStatus status = run_with_deadline([]() -> gb::Task<os::ExitStatus> {
    auto child = os::Process::spawn({.args = {"sleep", "100"}});
    child.kill();
    co_return co_await child.wait();
  }());
  EXPECT_EQ(status.signal, SIGKILL);
  EXPECT_EQ(status.code, -1);
  EXPECT_FALSE(status.success());
  EXPECT_NE(status.to_string().find("signal 9"), std::string::npos) << status.to_string();
}

TEST(Process, kill_with_SIGTERM_ends_a_child_with_SIGTERM) {
  const os::ExitStatus status = run_with_deadline([]() -> gb::Task<os::ExitStatus> {
    auto child = os::Process::spawn({.args = {"sleep", "100"}});
    child.kill(SIGTERM);
    co_return co_await child.wait();
  }());
  EXPECT_EQ(status.signal, SIGTERM);
}

TEST(Process, run_captures_stdout_stderr_and_the_exit_code) {
  const os::Output output = run_with_deadline(
      os::run({.args = {"/bin/sh", "-c", "echo to-out; echo to-err >&2; echo more-out; exit 4"}}));
  EXPECT_EQ(output.out, "to-out\nmore-out\n");
  EXPECT_EQ(output.err, "to-err\n");
  EXPECT_EQ(output.status.code, 4);
}

TEST(Process, run_gives_a_child_without_input_an_empty_stdin) {
  const os::Output output = run_with_deadline(os::run({.args = {"cat"}}));
  EXPECT_EQ(output.out, "");
  EXPECT_TRUE(output.status.success());
}

TEST(Process, four_mebibytes_through_cat_come_back_unchanged) {
  const std::string input = pattern(4 << 20);
  const std::string output = run_with_deadline([](const std::string& input) -> gb::Task<std::string> {
    auto child = os::Process::spawn(
        {.args = {"cat"}, .stdin_mode = os::Stdio::pipe, .stdout_mode = os::Stdio::pipe});
    // Far more than a pipe holds: the write and the read must proceed together.
    auto [written, echoed] =
        co_await gb::gather(write_and_close(child.stdin_stream(), input), os::read_all(child.stdout_stream()));
    (void)written;
    const os::ExitStatus status = co_await child.wait();
    EXPECT_TRUE(status.success()) << status.to_string();
    co_return echoed;
  }(input));
  EXPECT_EQ(output.size(), input.size());
  EXPECT_TRUE(output == input);
}

TEST(Process, run_feeds_a_large_input_and_captures_the_output_at_once) {
  const std::string input = pattern(4 << 20);
  const os::Output output = run_with_deadline(os::run({.args = {"cat"}}, input));
  EXPECT_TRUE(output.status.success());
  EXPECT_EQ(output.out.size(), input.size());
  EXPECT_TRUE(output.out == input);
}

TEST(Process, run_with_input_for_a_child_that_never_reads_it_still_succeeds) {
  const os::Output output = run_with_deadline(os::run({.args = {"true"}}, pattern(4 << 20)));
  EXPECT_TRUE(output.status.success()) << output.status.to_string();
}

TEST(Process, read_all_returns_everything_a_child_writes_to_stdout) {
  const std::string out = run_with_deadline([]() -> gb::Task<std::string> {
    auto child = os::Process::spawn({.args = {"head", "-c", "300000", "/dev/zero"}, .stdout_mode = os::Stdio::pipe});
    std::string all = co_await os::read_all(child.stdout_stream());
    EXPECT_TRUE((co_await child.wait()).success());
    co_return all;
  }());
  EXPECT_EQ(out.size(), 300000u);
  EXPECT_EQ(out.find_first_not_of('\0'), std::string::npos);
}

// The child's last output and its exit (the pipe's hang-up) can reach the loop in one
// readiness report. The read that takes the output is short; the next one must still see
// the end of the stream, though no further edge will come. Made deterministic by holding
// the loop's thread until the child has exited (waitid with WNOWAIT leaves it to reap).
TEST(Process, output_that_arrives_together_with_the_childs_exit_is_read_to_its_end) {
  const std::string out = run_with_deadline([]() -> gb::Task<std::string> {
    auto child = os::Process::spawn({.args = {"/bin/sh", "-c", "read line; echo \"$line\""},
                                     .stdin_mode = os::Stdio::pipe, .stdout_mode = os::Stdio::pipe});
    auto reader = gb::spawn(os::read_all(child.stdout_stream()));
    co_await gb::yield_now();  // the reader finds nothing yet and waits
    EXPECT_FALSE(reader.done());
    co_await child.stdin_stream().write_all("hello\n");
    child.stdin_stream().close();
    siginfo_t info{};
    EXPECT_EQ(::waitid(P_PID, static_cast<id_t>(child.pid()), &info, WEXITED | WNOWAIT), 0);
    std::string all = co_await reader;
    EXPECT_TRUE((co_await child.wait()).success());
    co_return all;
  }());
  EXPECT_EQ(out, "hello\n");
}

TEST(Process, a_program_that_does_not_exist_is_an_IoError_ENOENT) {
  for (const char* program : {"gearbox-test-no-such-program", "/nonexistent/gearbox-test"}) {
    try {
      auto child = os::Process::spawn({.args = {program}});
      ADD_FAILURE() << program << " was started as pid " << child.pid();
    } catch (const gb::IoError& e) {
      EXPECT_EQ(e.error_number(), ENOENT) << e.what();
      EXPECT_NE(e.operation().find(program), std::string::npos) << e.operation();
    }
  }
  EXPECT_TRUE(no_children_left());
}

TEST(Process, a_file_that_is_not_executable_is_an_IoError_EACCES) {
  TempDir dir;
  const auto script = dir / "not-executable";
  std::ofstream(script) << "#!/bin/sh\nexit 0\n";
  ::chmod(script.c_str(), 0644);
  try {
    auto child = os::Process::spawn({.args = {script.string()}});
    ADD_FAILURE() << "started as pid " << child.pid();
  } catch (const gb::IoError& e) {
    EXPECT_EQ(e.error_number(), EACCES) << e.what();
  }
}

TEST(Process, empty_args_are_an_invalid_argument) {
  EXPECT_THROW((void)os::Process::spawn({}), std::invalid_argument);
  EXPECT_THROW(run_with_deadline(os::run({})), std::invalid_argument);
}

TEST(Process, the_streams_of_a_child_whose_stdio_was_not_piped_are_a_logic_error) {
  os::Process child = os::Process::spawn({.args = {"true"}, .stdout_mode = os::Stdio::null});
  EXPECT_THROW((void)child.stdin_stream(), std::logic_error);
  EXPECT_THROW((void)child.stdout_stream(), std::logic_error);
  EXPECT_THROW((void)child.stderr_stream(), std::logic_error);
  EXPECT_TRUE(run_with_deadline(child.wait()).success());
  os::Process none;
  EXPECT_THROW(run_with_deadline(none.wait()), std::logic_error);
}

TEST(Process, the_working_directory_option_sets_the_childs_directory) {
  TempDir dir;
  const os::Output output =
      run_with_deadline(os::run({.args = {"pwd", "-P"}, .working_directory = dir.path().string()}));
  EXPECT_TRUE(output.status.success()) << output.err;
  EXPECT_EQ(output.out, std::filesystem::canonical(dir.path()).string() + "\n");
}

TEST(Process, a_working_directory_that_does_not_exist_is_an_IoError) {
  TempDir dir;
  try {
    auto child = os::Process::spawn({.args = {"true"}, .working_directory = (dir / "missing").string()});
    ADD_FAILURE() << "started as pid " << child.pid();
  } catch (const gb::IoError& e) {
    EXPECT_EQ(e.error_number(), ENOENT) << e.what();
  }
  EXPECT_TRUE(no_children_left());
}

TEST(Process, the_environment_option_replaces_the_whole_environment) {
  const os::Output output = run_with_deadline(
      os::run({.args = {"/usr/bin/env"}, .environment = std::vector<std::string>{"GEARBOX_A=1", "GEARBOX_B=two words"}}));
  EXPECT_EQ(output.out, "GEARBOX_A=1\nGEARBOX_B=two words\n");
  const os::Output empty =
      run_with_deadline(os::run({.args = {"/usr/bin/env"}, .environment = std::vector<std::string>{}}));
  EXPECT_EQ(empty.out, "");
}

TEST(Process, without_the_environment_option_the_child_inherits_the_parents) {
  ASSERT_EQ(::setenv("GEARBOX_TEST_INHERITED", "yes", 1), 0);
  const os::Output output = run_with_deadline(os::run({.args = {"/bin/sh", "-c", "echo \"$GEARBOX_TEST_INHERITED\""}}));
  ::unsetenv("GEARBOX_TEST_INHERITED");
  EXPECT_EQ(output.out, "yes\n");
}

TEST(Process, a_wait_that_times_out_leaves_the_child_running_and_kill_then_wait_reports_the_signal) {
  run_with_deadline([]() -> gb::Task<void> {
    auto child = os::Process::spawn({.args = {"sleep", "100"}});
    EXPECT_THROW(co_await gb::timeout(20ms, child.wait()), gb::TimeoutError);
    EXPECT_FALSE(child.status().has_value());
    EXPECT_EQ(::kill(child.pid(), 0), 0) << "the child should still run";
    child.kill();
    const os::ExitStatus status = co_await child.wait();
    EXPECT_EQ(status.signal, SIGKILL);
    child.kill();  // reaped: no effect, no error
  }());
  EXPECT_TRUE(no_children_left());
}

TEST(Process, destroying_a_running_process_kills_and_reaps_it) {
  pid_t pid = -1;
  {
    auto child = os::Process::spawn({.args = {"sleep", "100"}});
    pid = child.pid();
    ASSERT_GT(pid, 0);
  }
  expect_reaped(pid);
}

TEST(Process, destroying_a_process_after_a_cancelled_wait_kills_and_reaps_it) {
  const pid_t pid = run_with_deadline([]() -> gb::Task<pid_t> {
    auto child = os::Process::spawn({.args = {"sleep", "100"}, .stdin_mode = os::Stdio::pipe,
                                     .stdout_mode = os::Stdio::pipe});
    EXPECT_THROW(co_await gb::timeout(20ms, child.wait()), gb::TimeoutError);
    co_return child.pid();  // destroyed here, on the loop its pidfd is attached to
  }());
  expect_reaped(pid);
}

TEST(Process, moving_a_process_moves_the_child_and_assigning_over_one_kills_the_old_child) {
  run_with_deadline([]() -> gb::Task<void> {
    auto first = os::Process::spawn({.args = {"sleep", "100"}});
    const pid_t old_pid = first.pid();
    os::Process moved = std::move(first);
    EXPECT_EQ(moved.pid(), old_pid);
    EXPECT_EQ(first.pid(), -1);  // NOLINT(bugprone-use-after-move): the moved-from state is specified
    moved = os::Process::spawn({.args = {"/bin/sh", "-c", "exit 7"}});
    expect_reaped(old_pid);
    EXPECT_EQ((co_await moved.wait()).code, 7);
  }());
  EXPECT_TRUE(no_children_left());
}

TEST(Process, a_child_that_closes_its_stdin_makes_the_writer_fail_with_EPIPE_not_SIGPIPE) {
  run_with_deadline([]() -> gb::Task<void> {
    auto child = os::Process::spawn({.args = {"/bin/sh", "-c", "exec 0<&-; exec sleep 100"},
                                     .stdin_mode = os::Stdio::pipe});
    const std::string data = pattern(1 << 20);  // more than a pipe holds: the write must wait
    try {
      co_await child.stdin_stream().write_all(data);
      ADD_FAILURE() << "1 MiB was written to a pipe nobody reads";
    } catch (const gb::IoError& e) {
      EXPECT_EQ(e.error_number(), EPIPE) << e.what();
    }
    // We are still alive (no SIGPIPE), and so is the child.
    EXPECT_FALSE(child.status().has_value());
    child.kill();
    EXPECT_EQ((co_await child.wait()).signal, SIGKILL);
  }());
  struct sigaction current{};
  ASSERT_EQ(::sigaction(SIGPIPE, nullptr, &current), 0);
  EXPECT_EQ(current.sa_handler, SIG_IGN) << "a stdin pipe sets SIGPIPE to be ignored in the parent";
}

TEST(Process, the_childs_signal_mask_and_dispositions_are_reset_even_if_the_parent_blocks_and_ignores) {
  // The loop's thread blocks SIGUSR1 and SIGTERM (a live SignalSet), and SIGPIPE is ignored
  // once a child had a stdin pipe: the child must see none of that.
  gb::os::SignalSet signals{SIGUSR1, SIGTERM};
  ASSERT_NO_THROW((void)run_with_deadline(os::run({.args = {"true"}}, "x")));  // a stdin pipe: SIGPIPE ignored here
  struct sigaction parent_sigpipe{};
  ASSERT_EQ(::sigaction(SIGPIPE, nullptr, &parent_sigpipe), 0);
  ASSERT_EQ(parent_sigpipe.sa_handler, SIG_IGN) << "the test needs the parent to ignore SIGPIPE";
  os::Output output;
  ASSERT_NO_THROW(output = run_with_deadline(os::run({.args = {"grep", "^Sig", "/proc/self/status"}})));
  ASSERT_TRUE(output.status.success()) << output.err;
  EXPECT_EQ(field(output.out, "SigBlk"), "0000000000000000") << output.out;
  // glibc's posix_spawn leaves its two internal real-time signals (32 and 33) ignored in
  // every child (it will not reset them); every signal a program can name is reset.
  const unsigned long long ignored = std::stoull(field(output.out, "SigIgn"), nullptr, 16);
  EXPECT_EQ(ignored & ~((1ULL << 31) | (1ULL << 32)), 0u) << output.out;
  EXPECT_EQ(ignored & (1ULL << (SIGPIPE - 1)), 0u) << "SIGPIPE is ignored in the child";
}

TEST(Process, fifty_children_at_once_all_exit_and_are_all_reaped) {
  const std::vector<os::ExitStatus> statuses = run_with_deadline([]() -> gb::Task<std::vector<os::ExitStatus>> {
    std::vector<os::Process> children;
    children.reserve(k_children);  // wait() holds `this`: the vector must not reallocate
    for (int i = 0; i < k_children; ++i)
      children.push_back(os::Process::spawn({.args = {"/bin/sh", "-c", "exit " + std::to_string(i % 5)}}));
    std::vector<gb::Task<os::ExitStatus>> waits;
    for (auto& child : children) waits.push_back(child.wait());
    co_return co_await gb::gather(std::move(waits));
  }());
  ASSERT_EQ(statuses.size(), static_cast<std::size_t>(k_children));
  for (int i = 0; i < k_children; ++i) EXPECT_EQ(statuses[i].code, i % 5) << "child " << i;
  EXPECT_TRUE(no_children_left());
}

TEST(Process, spawning_running_killing_and_failing_to_spawn_leave_no_descriptor_open) {
  const std::size_t before = open_descriptors();
  run_with_deadline([]() -> gb::Task<void> {
    for (int i = 0; i < 3; ++i) {
      gb::os::ProcessOptions options{.args = {"cat"}};
      const os::Output output = co_await os::run(std::move(options), "through cat");
      EXPECT_EQ(output.out, "through cat");
    }
    {
      // Every stream piped and attached to the loop, then destroyed without a wait.
      auto child = os::Process::spawn({.args = {"sleep", "100"}, .stdin_mode = os::Stdio::pipe,
                                       .stdout_mode = os::Stdio::pipe, .stderr_mode = os::Stdio::pipe});
      EXPECT_THROW(co_await gb::timeout(10ms, child.wait()), gb::TimeoutError);
      std::array<char, 8> buffer{};
      EXPECT_THROW((void)co_await gb::timeout(10ms, child.stdout_stream().read(buffer)), gb::TimeoutError);
    }
    for (int i = 0; i < 3; ++i) {
      // A failed spawn after its pipes were made.
      EXPECT_THROW((void)os::Process::spawn({.args = {"gearbox-test-no-such-program"}, .stdin_mode = os::Stdio::pipe,
                                             .stdout_mode = os::Stdio::pipe, .stderr_mode = os::Stdio::pipe}),
                   gb::IoError);
    }
  }());
  EXPECT_EQ(open_descriptors(), before);
  EXPECT_TRUE(no_children_left());
}

TEST(Process, a_run_cancelled_by_a_timeout_kills_and_reaps_its_child) {
  run_with_deadline([]() -> gb::Task<void> {
    // The task is made in a statement of its own: g++ 12 rejects a braced ProcessOptions
    // temporary inside a co_await expression.
    auto running = os::run({.args = {"sleep", "100"}});
    EXPECT_THROW(co_await gb::timeout(20ms, std::move(running)), gb::TimeoutError);
  }());
  EXPECT_TRUE(no_children_left());
}

