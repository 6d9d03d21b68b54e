// ProcessPool: round trips of many types, errors from the worker, map and the streaming
// forms, cancellation, shutdown and co_await from a loop.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <optional>
#include <set>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <gearbox/gearbox.hpp>

#include "process/process_support.hpp"
#include "support/hang_guard.hpp"

namespace gb = gearbox;
using namespace std::chrono_literals;
using gearbox_test::expect_throw;
using gearbox_test::wait_until;

// Two functions of one name in two namespaces (functions_of_one_name_..._do_not_collide).
namespace geometry {
int scale(int x) { return 2 * x; }
int only_in_geometry(int x) { return x + 1; }
}  // namespace geometry
namespace audio {
int scale(int x) { return 100 * x; }
GEARBOX_REMOTE(scale);  // unqualified, inside its namespace
}  // namespace audio
GEARBOX_REMOTE(geometry::scale);
GEARBOX_REMOTE(geometry::only_in_geometry);

namespace {

struct Point {
  double x = 0;
  double y = 0;
  std::string label;
  template <class Archive>
  void serialize(Archive& archive) {
    archive(x, y, label);
  }
  bool operator==(const Point&) const = default;
};

class ParseError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

int square(int x) { return x * x; }
long add(long a, long b) { return a + b; }
double halve(double x) { return x / 2; }
std::string shout(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return s + "!";
}
std::vector<int> reversed(std::vector<int> v) {
  std::reverse(v.begin(), v.end());
  return v;
}
std::map<std::string, int> word_lengths(std::vector<std::string> words) {
  std::map<std::string, int> lengths;
  for (auto& w : words) lengths[w] = static_cast<int>(w.size());
  return lengths;
}
std::optional<int> maybe_positive(int x) { return x > 0 ? std::optional<int>(x) : std::nullopt; }
std::tuple<int, std::string, bool> describe(int x) { return {x, std::to_string(x), x % 2 == 0}; }
Point mirror(Point p) { return {p.y, p.x, p.label + "'"}; }
std::pair<int, int> divmod(int a, int b) { return {a / b, a % b}; }
std::uint64_t sum_bytes(std::vector<std::uint8_t> bytes) { return std::accumulate(bytes.begin(), bytes.end(), std::uint64_t{0}); }
std::vector<std::uint8_t> make_bytes(int size) {
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(size));
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::uint8_t>(i * 7);
  return bytes;
}
int worker_pid() { return static_cast<int>(::getpid()); }
// Long enough that every call of a burst is sent before the first one finishes.
int pid_after_a_while() {
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  return static_cast<int>(::getpid());
}
int parent_of_worker() { return static_cast<int>(::getppid()); }
void do_nothing() {}
int throw_runtime_error(int) { throw std::runtime_error("no luck"); }
int throw_parse_error(std::string text) { throw ParseError("cannot parse '" + text + "'"); }
int throw_an_int() { throw 42; }
int fail_on_three(int x) {
  if (x == 3 || x == 5) throw std::domain_error("bad " + std::to_string(x));
  return x * 10;
}
int sleep_ms_then(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return ms;
}
int open_fd_count() {
  int count = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) ++count;
  return count - 1;  // the iterator's own
}
bool fd_is_socket(int fd) {
  std::error_code error;
  auto target = std::filesystem::read_symlink("/proc/self/fd/" + std::to_string(fd), error);
  return !error && target.string().rfind("socket:", 0) == 0;
}
// Blocks until the file `path` exists (created by the test).
int wait_for_file(std::string path) {
  while (!std::filesystem::exists(path)) std::this_thread::sleep_for(1ms);
  return 1;
}

// Says which worker runs it (a file "<path>.held.<pid>"), then waits until `path` exists.
int hold_until_file_exists(std::string path) {
  { std::ofstream{path + ".held." + std::to_string(::getpid())}; }
  return wait_for_file(std::move(path));
}

// How many distinct workers have started a hold_until_file_exists(path).
int workers_holding(const std::string& path) {
  const std::filesystem::path gate{path};
  const std::string prefix = gate.filename().string() + ".held.";
  int holding = 0;
  for (const auto& entry : std::filesystem::directory_iterator(gate.parent_path()))
    if (entry.path().filename().string().starts_with(prefix)) ++holding;
  return holding;
}

GEARBOX_REMOTE(square);
GEARBOX_REMOTE(hold_until_file_exists);
GEARBOX_REMOTE(add);
GEARBOX_REMOTE(halve);
GEARBOX_REMOTE(shout);
GEARBOX_REMOTE(reversed);
GEARBOX_REMOTE(word_lengths);
GEARBOX_REMOTE(maybe_positive);
GEARBOX_REMOTE(describe);
GEARBOX_REMOTE(mirror);
GEARBOX_REMOTE(divmod);
GEARBOX_REMOTE(sum_bytes);
GEARBOX_REMOTE(make_bytes);
GEARBOX_REMOTE(worker_pid);
GEARBOX_REMOTE(pid_after_a_while);
GEARBOX_REMOTE(parent_of_worker);
GEARBOX_REMOTE(do_nothing);
GEARBOX_REMOTE(throw_runtime_error);
GEARBOX_REMOTE(throw_parse_error);
GEARBOX_REMOTE(throw_an_int);
GEARBOX_REMOTE(fail_on_three);
GEARBOX_REMOTE(sleep_ms_then);
GEARBOX_REMOTE(open_fd_count);
GEARBOX_REMOTE(fd_is_socket);
GEARBOX_REMOTE(wait_for_file);
[[maybe_unused]] const bool registered_by_name = gb::register_remote("times_three", +[](int x) { return 3 * x; });

int never_registered(int x) { return x; }

}  // namespace

TEST(ProcessPool, round_trips_scalars_strings_and_containers) {
  gb::ProcessPool pool{{.workers = 2}};
  EXPECT_EQ(pool.submit(gb::remote<square>, 12).get(), 144);
  EXPECT_EQ(pool.submit(gb::remote<add>, 40, 2).get(), 42);
  EXPECT_DOUBLE_EQ(pool.submit(gb::remote<halve>, 5.0).get(), 2.5);
  EXPECT_EQ(pool.submit(gb::remote<shout>, std::string("hello")).get(), "HELLO!");
  EXPECT_EQ(pool.submit(gb::remote<reversed>, std::vector<int>{1, 2, 3}).get(), (std::vector<int>{3, 2, 1}));
  EXPECT_EQ(pool.submit(gb::remote<word_lengths>, std::vector<std::string>{"a", "abc"}).get(),
            (std::map<std::string, int>{{"a", 1}, {"abc", 3}}));
  EXPECT_EQ(pool.submit(gb::remote<maybe_positive>, 4).get(), std::optional<int>(4));
  EXPECT_EQ(pool.submit(gb::remote<maybe_positive>, -4).get(), std::nullopt);
  EXPECT_EQ(pool.submit(gb::remote<describe>, 8).get(), std::make_tuple(8, std::string("8"), true));
  EXPECT_EQ(pool.submit(gb::remote<divmod>, 17, 5).get(), std::make_pair(3, 2));
  pool.submit(gb::remote<do_nothing>).get();
}

TEST(ProcessPool, round_trips_a_user_type_with_a_serialize_member) {
  gb::ProcessPool pool{{.workers = 1}};
  EXPECT_EQ(pool.submit(gb::remote<mirror>, Point{1.5, -2, "p"}).get(), (Point{-2, 1.5, "p'"}));
}

TEST(ProcessPool, arguments_and_results_larger_than_a_frame_cross_through_memfds) {
  gb::ProcessPool pool{{.workers = 1}};
  std::vector<std::uint8_t> big(3 << 20);
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<std::uint8_t>(i);
  const std::uint64_t expected = std::accumulate(big.begin(), big.end(), std::uint64_t{0});
  EXPECT_EQ(pool.submit(gb::remote<sum_bytes>, big).get(), expected);
  const auto made = pool.submit(gb::remote<make_bytes>, 1 << 20).get();
  ASSERT_EQ(made.size(), 1u << 20);
  EXPECT_EQ(made[12345], static_cast<std::uint8_t>(12345 * 7));
}

// A burst of long calls as large as the pool, on workers still starting: one call each,
// never two on one worker while another idles (which would double the wall time).
TEST(ProcessPool, a_burst_as_large_as_a_new_pool_runs_one_call_on_each_worker) {
  constexpr int workers = 4;
  gb::ProcessPool pool{{.workers = workers}};
  std::vector<gb::Future<int>> pids;
  for (int i = 0; i < workers; ++i) pids.push_back(pool.submit(gb::remote<pid_after_a_while>));
  std::set<int> distinct;
  for (auto& pid : pids) distinct.insert(pid.get());
  EXPECT_EQ(distinct.size(), static_cast<std::size_t>(workers));
}

TEST(ProcessPool, a_task_runs_in_a_worker_process_whose_parent_is_this_process) {
  gb::ProcessPool pool{{.workers = 2}};
  const int pid = pool.submit(gb::remote<worker_pid>).get();
  EXPECT_NE(pid, ::getpid());
  const auto pids = pool.worker_pids();
  EXPECT_NE(std::find(pids.begin(), pids.end(), pid), pids.end());
  EXPECT_EQ(pool.submit(gb::remote<parent_of_worker>).get(), ::getpid());
}

TEST(ProcessPool, a_worker_inherits_only_its_socket_and_the_standard_streams) {
  // Descriptors this process leaves open without close-on-exec must not reach a worker.
  int leaky[2];
  ASSERT_EQ(::pipe(leaky), 0);
  gb::ProcessPool pool{{.workers = 1}};
  EXPECT_EQ(pool.submit(gb::remote<open_fd_count>).get(), 4);  // 0, 1, 2 and the socket
  EXPECT_TRUE(pool.submit(gb::remote<fd_is_socket>, 3).get());
  ::close(leaky[0]);
  ::close(leaky[1]);
}

TEST(ProcessPool, a_function_registered_by_name_is_called_by_name) {
  gb::ProcessPool pool{{.workers = 1}};
  EXPECT_EQ(pool.submit<int>("times_three", 14).get(), 42);
  EXPECT_EQ(pool.submit<int>("square", 9).get(), 81);
}

TEST(ProcessPool, functions_of_one_name_in_two_namespaces_do_not_collide) {
  // Both are registered: the macro used the qualified name for one, the unqualified name
  // inside its namespace for the other; each is known by its fully qualified name.
  EXPECT_EQ(gb::remote<geometry::scale>.name(), "geometry::scale");
  EXPECT_EQ(gb::remote<audio::scale>.name(), "audio::scale");
  gb::ProcessPool pool{{.workers = 1}};
  EXPECT_EQ(pool.submit(gb::remote<geometry::scale>, 5).get(), 10);
  EXPECT_EQ(pool.submit(gb::remote<audio::scale>, 5).get(), 500);
  EXPECT_EQ(pool.submit<int>("geometry::scale", 6).get(), 12);
  EXPECT_EQ(pool.submit<int>("audio::scale", 6).get(), 600);
  // An unambiguous tail is enough; an ambiguous one is refused, naming both.
  EXPECT_EQ(pool.submit<int>("only_in_geometry", 2).get(), 3);
  auto ambiguous = expect_throw<gb::RemoteError>([&] { pool.submit<int>("scale", 1).get(); });
  EXPECT_EQ(ambiguous.type_name(), "gearbox::UnregisteredFunction");
  EXPECT_NE(ambiguous.message().find("geometry::scale"), std::string::npos) << ambiguous.message();
  EXPECT_NE(ambiguous.message().find("audio::scale"), std::string::npos) << ambiguous.message();
}

TEST(ProcessPool, an_exception_comes_back_as_RemoteError_with_its_type_message_and_pid) {
  gb::ProcessPool pool{{.workers = 1}};
  auto error = expect_throw<gb::RemoteError>([&] { pool.submit(gb::remote<throw_runtime_error>, 1).get(); });
  EXPECT_EQ(error.type_name(), "std::runtime_error");
  EXPECT_EQ(error.message(), "no luck");
  EXPECT_EQ(error.pid(), pool.worker_pids().at(0));
  auto custom = expect_throw<gb::RemoteError>([&] { pool.submit(gb::remote<throw_parse_error>, std::string("x")).get(); });
  EXPECT_NE(custom.type_name().find("ParseError"), std::string::npos) << custom.type_name();
  EXPECT_EQ(custom.message(), "cannot parse 'x'");
  auto odd = expect_throw<gb::RemoteError>([&] { pool.submit(gb::remote<throw_an_int>).get(); });
  EXPECT_EQ(odd.type_name(), "int");
  // The worker survives its tasks' exceptions.
  EXPECT_EQ(pool.submit(gb::remote<square>, 3).get(), 9);
  EXPECT_EQ(pool.stats().spawned, 1u);
}

TEST(ProcessPool, an_unregistered_name_is_a_RemoteError_on_that_future_only) {
  gb::ProcessPool pool{{.workers = 1}};
  auto bad = pool.submit<int>("no_such_task", 1);
  auto good = pool.submit(gb::remote<square>, 2);
  auto error = expect_throw<gb::RemoteError>([&] { bad.get(); });
  EXPECT_EQ(error.type_name(), "gearbox::UnregisteredFunction");
  EXPECT_NE(error.message().find("no_such_task"), std::string::npos);
  EXPECT_EQ(good.get(), 4);
  auto local = expect_throw<gb::RemoteError>([&] { pool.submit(gb::remote<never_registered>, 1).get(); });
  EXPECT_EQ(local.type_name(), "gearbox::UnregisteredFunction");
}

TEST(ProcessPool, arguments_that_do_not_decode_are_a_RemoteError_BadArguments) {
  gb::ProcessPool pool{{.workers = 1}};
  // shout takes a std::string: an int is too short to hold its length.
  auto short_args = expect_throw<gb::RemoteError>([&] { pool.submit<std::string>("shout", 5).get(); });
  EXPECT_EQ(short_args.type_name(), "gearbox::BadArguments");
  // square takes one int: a second one is left over.
  auto extra = expect_throw<gb::RemoteError>([&] { pool.submit<int>("square", 5, 6).get(); });
  EXPECT_EQ(extra.type_name(), "gearbox::BadArguments");
  EXPECT_EQ(pool.submit(gb::remote<square>, 5).get(), 25);
}

TEST(ProcessPool, a_result_of_the_wrong_type_fails_to_decode_on_the_callers_side) {
  gb::ProcessPool pool{{.workers = 1}};
  // square answers 4 bytes; a std::string needs at least 8 for its length.
  auto f = pool.submit<std::string>("square", 2);
  EXPECT_THROW(f.get(), std::exception);
}

TEST(ProcessPool, map_returns_results_in_the_order_of_the_range_whatever_the_chunk) {
  gb::ProcessPool pool{{.workers = 2}};
  std::vector<int> inputs(1000);
  std::iota(inputs.begin(), inputs.end(), 0);
  std::vector<int> expected;
  for (int x : inputs) expected.push_back(x * x);
  for (std::size_t chunk : {std::size_t{1}, std::size_t{7}, std::size_t{1000}, std::size_t{5000}})
    EXPECT_EQ(pool.map(gb::remote<square>, inputs, chunk).get(), expected) << "chunk " << chunk;
  EXPECT_TRUE(pool.map(gb::remote<square>, std::vector<int>{}).get().empty());
}

TEST(ProcessPool, map_takes_tuples_for_tasks_of_several_parameters) {
  gb::ProcessPool pool{{.workers = 2}};
  std::vector<std::tuple<long, long>> pairs{{1, 2}, {3, 4}, {5, 6}};
  EXPECT_EQ(pool.map(gb::remote<add>, pairs).get(), (std::vector<long>{3, 7, 11}));
}

TEST(ProcessPool, map_rethrows_the_error_of_the_earliest_failed_element) {
  gb::ProcessPool pool{{.workers = 2}};
  auto error = expect_throw<gb::RemoteError>([&] { pool.map(gb::remote<fail_on_three>, std::vector<int>{1, 2, 3, 4, 5, 6}).get(); });
  EXPECT_EQ(error.message(), "bad 3");
}

TEST(ProcessPool, imap_unordered_yields_every_result_once_then_nullopt) {
  gb::ProcessPool pool{{.workers = 2}};
  std::vector<int> inputs(300);
  std::iota(inputs.begin(), inputs.end(), 0);
  auto stream = pool.imap_unordered(gb::remote<square>, inputs, 4);
  std::multiset<int> seen;
  while (auto value = stream.next().get()) seen.insert(*value);
  std::multiset<int> expected;
  for (int x : inputs) expected.insert(x * x);
  EXPECT_EQ(seen, expected);
  EXPECT_EQ(stream.next().get(), std::nullopt);
}

TEST(ProcessPool, imap_unordered_rethrows_a_failed_element_and_goes_on) {
  gb::ProcessPool pool{{.workers = 1}};
  auto stream = pool.imap_unordered(gb::remote<fail_on_three>, std::vector<int>{1, 3, 4});
  std::vector<int> values;
  int errors = 0;
  for (;;) {
    try {
      auto value = stream.next().get();
      if (!value) break;
      values.push_back(*value);
    } catch (const gb::RemoteError& e) {
      EXPECT_EQ(e.message(), "bad 3");
      ++errors;
    }
  }
  std::sort(values.begin(), values.end());
  EXPECT_EQ(values, (std::vector<int>{10, 40}));
  EXPECT_EQ(errors, 1);
}

TEST(ProcessPool, as_completed_gives_each_index_once_with_its_outcome) {
  gb::ProcessPool pool{{.workers = 2}};
  std::vector<int> inputs{0, 1, 2, 3, 4, 5, 6};
  auto stream = pool.as_completed(gb::remote<fail_on_three>, inputs);
  std::vector<int> hits(inputs.size());
  while (auto done = stream.next().get()) {
    ++hits.at(done->index);
    const int x = inputs[done->index];
    if (x == 3 || x == 5) {
      EXPECT_TRUE(done->failed());
      EXPECT_THROW(done->result(), gb::RemoteError);
    } else {
      EXPECT_EQ(done->result(), x * 10);
    }
  }
  EXPECT_EQ(hits, std::vector<int>(inputs.size(), 1));
}

TEST(ProcessPool, a_loop_task_awaits_a_result_without_blocking_its_loop) {
  gb::ProcessPool pool{{.workers = 1}};
  std::vector<std::string> log;
  auto app = [&]() -> gb::Task<int> {
    // The lambda takes the log as a parameter: a coroutine lambda's captures die with the
    // temporary lambda, its parameters live in the coroutine frame.
    auto other = gb::Loop::current()->spawn([](std::vector<std::string>& out) -> gb::Task<void> {
      out.push_back("other ran");
      co_return;
    }(log));
    auto future = pool.submit(gb::remote<sleep_ms_then>, 50);
    const auto thread = std::this_thread::get_id();
    const int value = co_await future;
    log.push_back("result");
    EXPECT_EQ(std::this_thread::get_id(), thread);
    co_await other;
    co_return value;
  };
  EXPECT_EQ(gb::run(app()), 50);
  EXPECT_EQ(log, (std::vector<std::string>{"other ran", "result"}));
}

TEST(ProcessPool, many_threads_submit_at_once_and_every_result_is_right) {
  gb::ProcessPool pool{{.workers = 2}};
  constexpr int k_threads = 4;
  constexpr int k_each = 2000;
  std::vector<std::thread> threads;
  std::vector<int> wrong(k_threads, 0);
  for (int t = 0; t < k_threads; ++t)
    threads.emplace_back([&, t] {
      std::vector<gb::Future<int>> futures;
      for (int i = 0; i < k_each; ++i) futures.push_back(pool.submit(gb::remote<square>, t * k_each + i));
      for (int i = 0; i < k_each; ++i)
        if (futures[static_cast<std::size_t>(i)].get() != square(t * k_each + i)) ++wrong[static_cast<std::size_t>(t)];
    });
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(wrong, std::vector<int>(k_threads, 0));
}

TEST(ProcessPool, cancel_pending_fails_queued_tasks_with_Cancelled_and_spares_the_running_one) {
  const std::string gate = gearbox_test::temp_path("gate");
  gb::ProcessPool pool{{.workers = 1}};
  EXPECT_EQ(pool.submit(gb::remote<square>, 0).get(), 0);  // the worker is up and idle
  auto blocker = pool.submit(gb::remote<wait_for_file>, gate);  // sent at once, to the idle worker
  // A task this pool has not timed yet: a busy worker is given at most 2 of them ahead.
  std::vector<gb::Future<long>> queued;
  for (int i = 0; i < 20; ++i) queued.push_back(pool.submit(gb::remote<add>, i, i));
  const std::size_t cancelled = pool.cancel_pending();
  { std::ofstream{gate}; }
  EXPECT_EQ(blocker.get(), 1);
  std::size_t saw_cancelled = 0;
  for (int i = 0; i < 20; ++i) {
    try {
      EXPECT_EQ(queued[static_cast<std::size_t>(i)].get(), 2 * i);
    } catch (const gb::Cancelled&) {
      ++saw_cancelled;
    }
  }
  EXPECT_EQ(saw_cancelled, cancelled);
  EXPECT_GE(cancelled, 19u);  // the worker holds the blocker and at most one more
  std::filesystem::remove(gate);
}

TEST(ProcessPool, a_stop_request_cancels_a_task_that_is_still_queued) {
  const std::string gate = gearbox_test::temp_path("gate");
  gb::ProcessPool pool{{.workers = 1}};
  auto blocker = pool.submit(gb::remote<wait_for_file>, gate);
  auto ahead = pool.submit(gb::remote<square>, 1);  // fills the worker's window
  std::stop_source stop;
  auto stopped = pool.submit({.stop_token = stop.get_token()}, gb::remote<square>, 2);
  auto kept = pool.submit(gb::remote<square>, 3);
  stop.request_stop();
  EXPECT_THROW(stopped.get(), gb::Cancelled);  // at once: the blocker is still running
  EXPECT_FALSE(blocker.ready());
  { std::ofstream{gate}; }
  EXPECT_EQ(blocker.get(), 1);
  EXPECT_EQ(ahead.get(), 1);
  EXPECT_EQ(kept.get(), 9);
  std::filesystem::remove(gate);
}

TEST(ProcessPool, graceful_shutdown_finishes_queued_work_then_refuses_more) {
  gb::ProcessPool pool{{.workers = 2}};
  std::vector<gb::Future<int>> futures;
  for (int i = 0; i < 200; ++i) futures.push_back(pool.submit(gb::remote<square>, i));
  pool.shutdown(gb::ShutdownMode::wait);
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(futures[static_cast<std::size_t>(i)].ready());
    EXPECT_EQ(futures[static_cast<std::size_t>(i)].get(), i * i);
  }
  EXPECT_THROW((void)pool.submit(gb::remote<square>, 1), gb::ShutdownError);
  EXPECT_TRUE(pool.worker_pids().empty());
  EXPECT_TRUE(gearbox_test::has_no_children());
}

TEST(ProcessPool, terminate_cancels_queued_and_running_tasks_without_waiting_for_them) {
  const std::string gate = gearbox_test::temp_path("never");  // never created
  gb::ProcessPool pool{{.workers = 1}};
  auto stuck = pool.submit(gb::remote<wait_for_file>, gate);
  auto queued = pool.submit(gb::remote<square>, 2);
  auto later = pool.submit(gb::remote<square>, 3);
  pool.terminate();
  EXPECT_THROW(stuck.get(), gb::Cancelled);
  EXPECT_THROW(queued.get(), gb::Cancelled);
  EXPECT_THROW(later.get(), gb::Cancelled);
  EXPECT_TRUE(gearbox_test::has_no_children());
}

TEST(ProcessPool, shutdown_cancel_pending_cancels_the_queue_and_lets_the_running_call_finish) {
  const std::string gate = gearbox_test::temp_path("gate");
  gb::ProcessPool pool{{.workers = 1}};
  auto running = pool.submit(gb::remote<wait_for_file>, gate);
  while (pool.stats().running == 0) std::this_thread::yield();  // sent to the worker
  // A busy worker may be sent a few calls ahead of time; those run. The rest stay queued.
  std::vector<gb::Future<int>> queued;
  for (int i = 0; i < 10; ++i) queued.push_back(pool.submit(gb::remote<square>, i));
  std::jthread opener([&] {
    while (!queued.back().ready()) std::this_thread::yield();  // cancelled by shutdown
    std::ofstream{gate};
  });
  pool.shutdown(gb::ShutdownMode::cancel_pending);
  opener.join();  // it read queued.back(): done with it before this thread takes the results
  EXPECT_EQ(running.get(), 1);
  std::size_t cancelled = 0;
  for (std::size_t i = 0; i < queued.size(); ++i) {
    try {
      EXPECT_EQ(queued[i].get(), int(i * i));
      EXPECT_EQ(cancelled, 0u) << "a call after a cancelled one ran: the queue is not FIFO";
    } catch (const gb::Cancelled&) {
      ++cancelled;
    }
  }
  EXPECT_GE(cancelled, 1u);
  EXPECT_EQ(pool.stats().cancelled, cancelled);
  EXPECT_THROW((void)pool.submit(gb::remote<square>, 1), gb::ShutdownError);
  EXPECT_TRUE(gearbox_test::has_no_children());
  std::filesystem::remove(gate);
}

TEST(ProcessPool, the_destructor_waits_for_queued_and_running_tasks_like_a_python_with_block) {
  const std::string gate = gearbox_test::temp_path("gate");
  gb::Future<int> first, second;
  {
    gb::ProcessPool pool{{.workers = 1}};
    first = pool.submit(gb::remote<wait_for_file>, gate);
    second = pool.submit(gb::remote<square>, 3);  // queued behind the first
    std::ofstream{gate};
  }
  EXPECT_EQ(first.get(), 1);
  EXPECT_EQ(second.get(), 9);
  EXPECT_TRUE(gearbox_test::has_no_children());
  std::filesystem::remove(gate);
}

TEST(ProcessPool, terminate_before_the_destructor_does_not_wait_for_a_task_that_never_ends) {
  const std::string gate = gearbox_test::temp_path("never");
  gb::Future<int> stuck;
  {
    gb::ProcessPool pool{{.workers = 1}};
    stuck = pool.submit(gb::remote<wait_for_file>, gate);
    auto started = pool.submit(gb::remote<square>, 1);  // behind the stuck one: never runs
    (void)started;
    pool.terminate();
  }
  EXPECT_THROW(stuck.get(), gb::Cancelled);
  EXPECT_TRUE(gearbox_test::has_no_children());
}

TEST(ProcessPool, calls_of_unknown_cost_on_fresh_workers_are_shared_out_one_per_worker) {
  // batching.cpp: idle workers share the queue with the workers still starting, so two
  // long calls on two new workers run one each (and neither waits behind the other).
  const std::string gate = gearbox_test::temp_path("shared");
  gb::ProcessPool pool{{.workers = 2}};
  auto both = pool.map(gb::remote<hold_until_file_exists>, std::vector<std::string>{gate, gate});
  const auto until = std::chrono::steady_clock::now() + gearbox_test::k_hang_guard;
  while (workers_holding(gate) < 2 && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(1ms);
  EXPECT_EQ(workers_holding(gate), 2) << "one worker was given both calls while the other idled";
  { std::ofstream{gate}; }
  EXPECT_EQ(both.get(), (std::vector<int>{1, 1}));
  const std::filesystem::path dir = std::filesystem::path(gate).parent_path();
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    if (entry.path().filename().string().starts_with(std::filesystem::path(gate).filename().string()))
      std::filesystem::remove(entry.path());
}

TEST(ProcessPool, cancel_withdraws_a_queued_call_and_not_a_running_one) {
  const std::string gate = gearbox_test::temp_path("gate");
  gb::ProcessPool pool{{.workers = 1}};
  // A call with a timeout runs alone: nothing is sent ahead to its worker, so the next call
  // stays queued until the test cancels it, by construction.
  const gb::CallOptions alone{.timeout = std::chrono::minutes(10)};
  auto running = pool.submit(alone, gb::remote<wait_for_file>, gate);
  while (pool.stats().running == 0) std::this_thread::yield();
  auto queued = pool.submit(gb::remote<square>, 4);
  EXPECT_TRUE(queued.cancel());
  EXPECT_TRUE(queued.ready());
  EXPECT_FALSE(queued.cancel());  // already ended
  EXPECT_FALSE(running.cancel());
  std::ofstream{gate};
  EXPECT_EQ(running.get(), 1);
  EXPECT_THROW(queued.get(), gb::Cancelled);
  auto after = pool.submit(gb::remote<square>, 5);
  EXPECT_EQ(after.get(), 25);  // the withdrawn call was disposed of, the worker went on
  const auto stats = pool.stats();
  EXPECT_EQ(stats.submitted, 3u);
  EXPECT_EQ(stats.completed, 2u);
  EXPECT_EQ(stats.cancelled, 1u);
  EXPECT_EQ(stats.queued + stats.running + stats.failed, 0u);
  std::filesystem::remove(gate);
}

TEST(ProcessPool, an_initializer_runs_in_every_worker_before_its_tasks) {
  gb::ProcessPool pool{{.workers = 2, .initializer = "mark_initialized"}};
  for (int i = 0; i < 10; ++i) EXPECT_EQ(pool.submit<int>("initialized_mark").get(), 1234);
}

namespace {
int g_mark = 0;
void mark_initialized() { g_mark = 1234; }
int initialized_mark() { return g_mark; }
GEARBOX_REMOTE(mark_initialized);
GEARBOX_REMOTE(initialized_mark);
}  // namespace
