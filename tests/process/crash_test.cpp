// ProcessPool under failure: workers that are killed, abort, segfault, exit or hang; the
// restart limit; max_calls_per_child; random crashes under load; and what is left behind
// (zombies, descriptors, memfds, orphans).
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gearbox/gearbox.hpp>

#include "process/process_support.hpp"

extern char** environ;

namespace gb = gearbox;
using namespace std::chrono_literals;
using gearbox_test::wait_until;

namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool k_sanitized = true;
#else
constexpr bool k_sanitized = false;
#endif

int twice(int x) { return 2 * x; }
int my_pid() { return static_cast<int>(::getpid()); }
// Creates `path` (so the test knows the task runs), then blocks until killed.
int announce_and_block(std::string path) {
  { std::ofstream{path} << ::getpid(); }
  for (;;) ::pause();
}
int call_abort() { std::abort(); }
int segfault() {
  volatile int* nowhere = nullptr;
  *nowhere = 1;
  return 0;
}
int exit_three() { std::exit(3); }
int spin_forever() {
  volatile unsigned long spins = 0;
  for (;;) spins = spins + 1;
}
int die_on_multiples_of(int x, int n) {
  if (x % n == 0) ::raise(SIGKILL);
  return 2 * x;
}
int send_garbage() {
  const char garbage[] = "this is not a frame";
  ::send(3, garbage, sizeof garbage, MSG_NOSIGNAL);
  for (;;) ::pause();
}
void failing_initializer() { throw std::runtime_error("cannot initialize"); }
std::uint64_t sum_shared(gb::SharedBuffer buffer) {
  std::uint64_t sum = 0;
  for (std::byte b : buffer.bytes()) sum += static_cast<std::uint8_t>(b);
  return sum;
}
gb::SharedBuffer make_shared(int size) {
  auto buffer = gb::SharedBuffer::create(static_cast<std::size_t>(size));
  auto bytes = buffer.writable();
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::byte>(i % 251);
  buffer.seal();
  return buffer;
}

GEARBOX_REMOTE(twice);
GEARBOX_REMOTE(my_pid);
GEARBOX_REMOTE(announce_and_block);
GEARBOX_REMOTE(call_abort);
GEARBOX_REMOTE(segfault);
GEARBOX_REMOTE(exit_three);
GEARBOX_REMOTE(spin_forever);
GEARBOX_REMOTE(die_on_multiples_of);
GEARBOX_REMOTE(send_garbage);
GEARBOX_REMOTE(failing_initializer);
GEARBOX_REMOTE(sum_shared);
GEARBOX_REMOTE(make_shared);

gb::WorkerCrashed crash_of(gb::Future<int>& f) {
  return gearbox_test::expect_throw<gb::WorkerCrashed>([&] { f.get(); });
}

int read_pid(const std::string& path) {
  wait_until([&] {
    std::ifstream in{path};
    int pid = 0;
    return static_cast<bool>(in >> pid) && pid > 0;
  });
  std::ifstream in{path};
  int pid = 0;
  in >> pid;
  return pid;
}

}  // namespace

TEST(ProcessCrash, kill_9_of_a_worker_mid_task_fails_only_that_task_and_the_next_ones_succeed) {
  const std::string marker = gearbox_test::temp_path("running");
  gb::ProcessPool pool{{.workers = 1}};
  auto victim = pool.submit(gb::remote<announce_and_block>, marker);
  std::vector<gb::Future<int>> behind;
  for (int i = 0; i < 10; ++i) behind.push_back(pool.submit(gb::remote<twice>, i));
  const int pid = read_pid(marker);
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  auto crash = crash_of(victim);
  EXPECT_EQ(crash.pid(), pid);
  EXPECT_EQ(crash.signal(), SIGKILL);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(behind[static_cast<std::size_t>(i)].get(), 2 * i);
  EXPECT_EQ(pool.submit(gb::remote<twice>, 21).get(), 42);
  EXPECT_EQ(pool.stats().crashes, 1u);
  EXPECT_EQ(pool.stats().spawned, 2u);
  std::filesystem::remove(marker);
}

TEST(ProcessCrash, a_worker_ignores_SIGINT_which_a_terminal_sends_to_the_whole_group) {
  gb::ProcessPool pool{{.workers = 1}};
  const int pid = pool.submit(gb::remote<my_pid>).get();
  ASSERT_EQ(::kill(pid, SIGINT), 0);
  EXPECT_EQ(pool.submit(gb::remote<my_pid>).get(), pid);  // the same worker, still serving
  EXPECT_EQ(pool.stats().crashes, 0u);
}

TEST(ProcessCrash, a_task_that_calls_abort_fails_with_SIGABRT) {
  gb::ProcessPool pool{{.workers = 1}};
  auto f = pool.submit(gb::remote<call_abort>);
  auto crash = crash_of(f);
  EXPECT_EQ(crash.signal(), SIGABRT);
  EXPECT_EQ(pool.submit(gb::remote<twice>, 2).get(), 4);
}

TEST(ProcessCrash, a_task_that_segfaults_fails_with_WorkerCrashed) {
  gb::ProcessPool pool{{.workers = 1}};
  auto f = pool.submit(gb::remote<segfault>);
  auto crash = crash_of(f);
  if (k_sanitized) {
    // The sanitizer catches the fault itself, reports it and ends the worker its own way
    // (abort, or an exit code): still a crash of that worker, not of this process.
    EXPECT_TRUE(crash.signal() != 0 || crash.exit_code() != 0);
  } else {
    EXPECT_EQ(crash.signal(), SIGSEGV);
  }
  EXPECT_EQ(pool.submit(gb::remote<twice>, 2).get(), 4);
}

TEST(ProcessCrash, a_task_that_exits_3_fails_with_its_exit_code) {
  gb::ProcessPool pool{{.workers = 1}};
  auto f = pool.submit(gb::remote<exit_three>);
  auto crash = crash_of(f);
  EXPECT_EQ(crash.signal(), 0);
  EXPECT_EQ(crash.exit_code(), 3);
  EXPECT_EQ(pool.submit(gb::remote<twice>, 2).get(), 4);
}

TEST(ProcessCrash, a_task_past_its_timeout_is_killed_and_fails_with_TimeoutError) {
  gb::ProcessPool pool{{.workers = 1}};
  EXPECT_EQ(pool.submit(gb::remote<twice>, 1).get(), 2);  // idle and ready: the submitter sends it itself
  auto stuck = pool.submit({.timeout = 100ms}, gb::remote<spin_forever>);
  auto next = pool.submit(gb::remote<twice>, 5);
  EXPECT_THROW(stuck.get(), gb::TimeoutError);
  EXPECT_EQ(next.get(), 10);
  EXPECT_EQ(pool.stats().timeouts, 1u);
  EXPECT_EQ(pool.stats().crashes, 0u);
}

TEST(ProcessCrash, the_pool_default_timeout_applies_to_every_task) {
  gb::ProcessPool pool{{.workers = 1, .call_timeout = 100ms}};
  auto stuck = pool.submit(gb::remote<spin_forever>);
  EXPECT_THROW(stuck.get(), gb::TimeoutError);
  EXPECT_EQ(pool.submit(gb::remote<twice>, 3).get(), 6);
}

TEST(ProcessCrash, a_task_with_retries_is_run_again_after_a_crash_and_then_reports_it) {
  gb::ProcessPool pool{{.workers = 1}};
  auto f = pool.submit({.retries = 2}, gb::remote<call_abort>);
  auto crash = crash_of(f);
  EXPECT_EQ(crash.signal(), SIGABRT);
  EXPECT_EQ(pool.stats().crashes, 3u);  // the first run and two retries
}

TEST(ProcessCrash, a_malformed_frame_from_a_worker_counts_as_its_crash) {
  gb::ProcessPool pool{{.workers = 1}};
  auto f = pool.submit(gb::remote<send_garbage>);
  auto crash = crash_of(f);
  EXPECT_EQ(crash.signal(), SIGKILL);
  EXPECT_NE(std::string(crash.what()).find("malformed"), std::string::npos) << crash.what();
  EXPECT_EQ(pool.submit(gb::remote<twice>, 4).get(), 8);
}

TEST(ProcessCrash, a_crash_loop_stops_the_pool_with_a_clear_error_instead_of_respawning) {
  gb::ProcessPool pool{{.workers = 1, .max_restarts = 2, .restart_window = std::chrono::hours{1}}};
  std::vector<gb::Future<int>> crashing;
  for (int i = 0; i < 3; ++i) crashing.push_back(pool.submit(gb::remote<call_abort>));
  auto queued = pool.submit(gb::remote<twice>, 1);
  for (auto& f : crashing) EXPECT_EQ(crash_of(f).signal(), SIGABRT);
  try {
    queued.get();
    ADD_FAILURE() << "the pool kept going";
  } catch (const gb::ShutdownError& e) {
    EXPECT_NE(std::string(e.what()).find("3 worker crashes"), std::string::npos) << e.what();
  }
  EXPECT_THROW((void)pool.submit(gb::remote<twice>, 1), gb::ShutdownError);
  EXPECT_EQ(pool.stats().spawned, 3u);  // the first worker and max_restarts replacements
}

TEST(ProcessCrash, an_initializer_that_fails_stops_the_pool_after_the_restart_limit) {
  gb::ProcessPool pool{{.workers = 1, .initializer = "failing_initializer", .max_restarts = 2,
                        .restart_window = std::chrono::hours{1}}};
  auto f = pool.submit(gb::remote<twice>, 1);
  EXPECT_THROW(f.get(), gb::ShutdownError);
  EXPECT_EQ(pool.stats().spawned, 3u);
}

TEST(ProcessCrash, max_tasks_per_child_replaces_a_worker_after_that_many_tasks) {
  gb::ProcessPool pool{{.workers = 1, .max_calls_per_child = 2}};
  std::map<int, int> tasks_per_pid;
  for (int i = 0; i < 7; ++i) ++tasks_per_pid[pool.submit(gb::remote<my_pid>).get()];
  EXPECT_EQ(tasks_per_pid.size(), 4u);
  for (auto [pid, count] : tasks_per_pid) EXPECT_LE(count, 2) << pid;
  EXPECT_EQ(pool.stats().crashes, 0u);
}

TEST(ProcessCrash, with_crashes_among_1000_tasks_every_task_completes_once_and_only_culprits_fail) {
  constexpr int k_tasks = 1000;
  constexpr int k_every = k_sanitized ? 100 : 40;  // spawning is slow under the sanitizers
  gb::ProcessPool pool{{.workers = 2, .max_restarts = 1000}};
  std::vector<std::tuple<int, int>> inputs;
  for (int i = 1; i <= k_tasks; ++i) inputs.emplace_back(i, k_every);
  auto stream = pool.as_completed(gb::remote<die_on_multiples_of>, inputs);
  std::vector<int> completions(k_tasks, 0);
  int crashed = 0;
  while (auto done = stream.next().get()) {
    const int x = std::get<0>(inputs.at(done->index));
    ++completions.at(done->index);
    if (x % k_every == 0) {
      ++crashed;
      EXPECT_THROW(done->result(), gb::WorkerCrashed) << x;
    } else {
      EXPECT_EQ(done->result(), 2 * x);
    }
  }
  EXPECT_EQ(completions, std::vector<int>(k_tasks, 1));
  EXPECT_EQ(crashed, k_tasks / k_every);
  EXPECT_EQ(pool.stats().crashes, static_cast<std::size_t>(k_tasks / k_every));
}

TEST(ProcessCrash, with_workers_killed_at_random_every_future_still_completes_exactly_once) {
  constexpr int k_tasks = 1000;
  gb::ProcessPool pool{{.workers = 2, .max_restarts = 1000}};
  std::vector<gb::Future<int>> futures;
  std::atomic<bool> done{false};
  std::thread killer([&] {
    std::mt19937 random{12345};
    for (int kills = 0; kills < (k_sanitized ? 5 : 15) && !done.load(); ++kills) {
      std::this_thread::sleep_for(std::chrono::milliseconds(random() % 5));
      auto pids = pool.worker_pids();
      if (!pids.empty()) ::kill(pids[random() % pids.size()], SIGKILL);
    }
  });
  for (int i = 0; i < k_tasks; ++i) futures.push_back(pool.submit(gb::remote<twice>, i));
  int values = 0;
  int crashes = 0;
  for (int i = 0; i < k_tasks; ++i) {
    try {
      EXPECT_EQ(futures[static_cast<std::size_t>(i)].get(), 2 * i);
      ++values;
    } catch (const gb::WorkerCrashed&) {
      ++crashes;
    }
    EXPECT_FALSE(futures[static_cast<std::size_t>(i)].valid());  // taken once
  }
  done = true;
  killer.join();
  EXPECT_EQ(values + crashes, k_tasks);
  EXPECT_LE(static_cast<std::size_t>(crashes), pool.stats().crashes);
}

TEST(ProcessCrash, a_destroyed_pool_leaves_no_zombie_no_descriptor_and_no_memfd) {
  const auto fds_before = gearbox_test::open_fds();
  const std::size_t memfds_before = gearbox_test::open_memfds();
  std::vector<int> pids;
  {
    gb::ProcessPool pool{{.workers = 2}};
    auto buffer = gb::SharedBuffer::create(1 << 16);
    std::fill(buffer.writable().begin(), buffer.writable().end(), std::byte{1});
    buffer.seal();
    EXPECT_EQ(pool.submit(gb::remote<sum_shared>, buffer).get(), 1u << 16);
    auto returned = pool.submit(gb::remote<make_shared>, 1000).get();
    EXPECT_EQ(returned.size(), 1000u);
    EXPECT_EQ(returned.bytes()[260], std::byte{9});
    auto crash = pool.submit(gb::remote<call_abort>);
    EXPECT_THROW(crash.get(), gb::WorkerCrashed);
    pids = pool.worker_pids();
    EXPECT_EQ(pids.size(), 2u);
  }
  EXPECT_TRUE(gearbox_test::has_no_children());
  for (int pid : pids) EXPECT_TRUE(gearbox_test::process_is_gone(pid)) << pid;
  EXPECT_EQ(gearbox_test::open_fds().size(), fds_before.size());
  EXPECT_EQ(gearbox_test::open_memfds(), memfds_before);
}

// ---- a pool whose parent dies ----

// Not a test on its own: the body of the parent process that the next test kills. It
// prints its workers' pids and waits to be killed.
TEST(ProcessCrashHelper, parent_that_waits_to_be_killed) {
  if (!std::getenv("GEARBOX_TEST_ORPHAN_PARENT")) GTEST_SKIP() << "runs only as the child of an orphan test";
  gb::ProcessPool pool{{.workers = 2}};
  (void)pool.map(gb::remote<twice>, std::vector<int>{1, 2, 3, 4}).get();
  wait_until([&] { return pool.worker_pids().size() == 2; });
  for (int pid : pool.worker_pids()) std::printf("%d\n", pid);
  std::printf("ready\n");
  std::fflush(stdout);
  for (;;) ::pause();
}

namespace {

// Runs this executable as the helper above, kills it with `signal` once its pool is up,
// and returns its workers' pids.
std::vector<int> kill_a_parent_with(int signal) {
  int out[2];
  EXPECT_EQ(::pipe2(out, O_CLOEXEC), 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) env_strings.emplace_back(*e);
  env_strings.emplace_back("GEARBOX_TEST_ORPHAN_PARENT=1");
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string filter = "--gtest_filter=ProcessCrashHelper.parent_that_waits_to_be_killed";
  char* argv[] = {const_cast<char*>("crash_test_parent"), filter.data(), nullptr};
  pid_t parent = -1;
  EXPECT_EQ(::posix_spawn(&parent, "/proc/self/exe", &actions, nullptr, argv, envp.data()), 0);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  std::vector<int> pids;
  std::string text;
  char chunk[256];
  while (text.find("ready\n") == std::string::npos) {
    const ssize_t n = ::read(out[0], chunk, sizeof chunk);
    if (n <= 0) break;
    text.append(chunk, static_cast<std::size_t>(n));
  }
  ::close(out[0]);
  std::istringstream lines{text};
  for (std::string line; std::getline(lines, line);)
    if (!line.empty() && std::isdigit(static_cast<unsigned char>(line[0]))) pids.push_back(std::stoi(line));
  ::kill(parent, signal);
  int status = 0;
  ::waitpid(parent, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status));
  return pids;
}

}  // namespace

TEST(ProcessCrash, a_parent_killed_with_SIGKILL_leaves_no_worker_behind) {
  const auto pids = kill_a_parent_with(SIGKILL);
  ASSERT_EQ(pids.size(), 2u);
  for (int pid : pids) wait_until([&] { return gearbox_test::process_is_gone(pid); });
}

TEST(ProcessCrash, a_parent_ended_by_SIGINT_leaves_no_worker_behind) {
  const auto pids = kill_a_parent_with(SIGINT);
  ASSERT_EQ(pids.size(), 2u);
  for (int pid : pids) wait_until([&] { return gearbox_test::process_is_gone(pid); });
}
