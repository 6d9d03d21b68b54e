// The trace: what the runtime records (tasks, waits, jobs, spans, process-pool calls in
// their workers) and the Chrome Trace JSON it writes, checked by parsing it back.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <gearbox/gearbox.hpp>
#include <gearbox/runtime.hpp>
#include <gearbox/process/process_pool.hpp>
#include <gearbox/process/registry.hpp>

namespace gb = gearbox;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

int traced_square(int x) {
  gb::trace::Span span("inside square");
  return x * x;
}

}  // namespace

GEARBOX_REMOTE(traced_square);

namespace {

// Records what `body` does, from a clean slate, and returns the parsed trace.
template <class Body>
json record(Body&& body) {
  gb::trace::clear();
  gb::trace::start();
  body();
  gb::trace::stop();
  json trace = json::parse(gb::trace::to_json());
  gb::trace::clear();
  return trace;
}

std::vector<json> events_where(const json& trace, const std::string& ph, const std::string& cat) {
  std::vector<json> found;
  for (const json& e : trace.at("traceEvents"))
    if (e.at("ph") == ph && e.value("cat", "") == cat) found.push_back(e);
  return found;
}

gb::Task<void> nap(std::chrono::milliseconds d) { co_await gb::sleep_for(d); }

gb::Task<int> receive_one(gb::Channel<int>& channel) {
  gb::trace::name_task("receiver");
  std::optional<int> value = co_await channel.receive();
  co_return value.value();
}

gb::Task<void> send_later(gb::Channel<int>& channel) {
  co_await gb::sleep_for(1ms);
  co_await channel.send(42);
}

gb::Task<int> parent_of_three(gb::Channel<int>& channel) {
  auto receiver = gb::spawn(receive_one(channel));
  auto sender = gb::spawn(send_later(channel));
  auto sleeper = gb::spawn(nap(2ms));
  co_await sender;
  co_await sleeper;
  co_return co_await receiver;
}

gb::Task<int> note_ran(std::atomic<bool>* ran) {
  ran->store(true, std::memory_order_release);
  co_return 1;
}

// Spawns children onto this worker's queue, then holds the worker until one has run:
// only another worker can have run it, by stealing (as in runtime_test).
gb::Task<int> spawn_then_hold(int children) {
  std::atomic<bool> ran{false};
  std::vector<gb::JoinHandle<int>> handles;
  for (int i = 0; i < children; ++i) handles.push_back(gb::spawn(note_ran(&ran)));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!ran.load(std::memory_order_acquire) && std::chrono::steady_clock::now() < deadline) {
  }
  int sum = 0;
  for (auto& handle : handles) sum += co_await handle;
  co_return sum;
}

std::map<int, std::string> thread_names_of(const json& trace) {
  std::map<int, std::string> names;
  for (const json& m : trace.at("traceEvents"))
    if (m.at("ph") == "M" && m.at("name") == "thread_name") names[m.at("tid").get<int>()] = m.at("args").at("name");
  return names;
}

}  // namespace

TEST(Trace, off_nothing_is_recorded) {
  gb::trace::stop();
  gb::trace::clear();
  gb::Loop loop;
  loop.run(nap(1ms));
  const json trace = json::parse(gb::trace::to_json());
  EXPECT_TRUE(events_where(trace, "X", "task").empty());
  EXPECT_TRUE(events_where(trace, "b", "task").empty());
}

TEST(Trace, tasks_their_slices_what_they_waited_on_and_their_lifetimes_are_written) {
  int received = 0;
  const json trace = record([&] {
    gb::Loop loop;
    gb::Channel<int> channel(1);
    received = loop.run(parent_of_three(channel));
  });
  EXPECT_EQ(received, 42);

  // Four tasks: the root and its three children, each with one lifetime "b" and one "e".
  const auto begins = events_where(trace, "b", "task");
  const auto ends = events_where(trace, "e", "task");
  ASSERT_EQ(begins.size(), 4u);
  ASSERT_EQ(ends.size(), 4u);
  std::map<std::string, json> by_name;
  for (const json& b : begins) by_name[b.at("name")] = b;
  ASSERT_TRUE(by_name.count("receiver")) << "name_task renames the task";
  const std::string root_id = by_name.at("task 1").at("id");
  EXPECT_EQ(by_name.at("task 1").at("args").at("parent"), 0);
  EXPECT_EQ(by_name.at("receiver").at("args").at("parent"), 1) << "spawned by task 1";

  // Why slices ended: the receiver waited on the channel, the sender and the sleeper on a
  // timer, the root on its children; each task's last slice says "done".
  std::multiset<std::string> thens;
  std::map<std::string, std::string> last_then;
  for (const json& x : events_where(trace, "X", "task")) {
    thens.insert(x.at("args").at("then"));
    last_then[x.at("name")] = x.at("args").at("then");
    EXPECT_GE(x.at("dur").get<double>(), 0.0);
  }
  EXPECT_GE(thens.count("channel"), 1u);
  EXPECT_GE(thens.count("timer"), 2u);
  EXPECT_GE(thens.count("join"), 1u);
  EXPECT_EQ(thens.count("done"), 4u);
  for (const auto& [name, then] : last_then) EXPECT_EQ(then, "done") << name;

  // Waits are nested on the task's track, opened at the suspension, closed at the wake.
  const auto wait_begins = events_where(trace, "b", "wait");
  const auto wait_ends = events_where(trace, "e", "wait");
  EXPECT_EQ(wait_begins.size(), wait_ends.size());
  EXPECT_FALSE(wait_begins.empty());
  (void)root_id;
}

TEST(Trace, timestamps_follow_the_order_of_a_tasks_own_events) {
  const json trace = record([] {
    gb::Loop loop;
    loop.run(nap(2ms));
  });
  const auto b = events_where(trace, "b", "task");
  const auto e = events_where(trace, "e", "task");
  ASSERT_EQ(b.size(), 1u);
  ASSERT_EQ(e.size(), 1u);
  // The task slept 2 ms between its spawn and its end: at least that apart (a timer never
  // fires early). This is a property of the clock conversion, not a timing threshold.
  EXPECT_GE(e[0].at("ts").get<double>() - b[0].at("ts").get<double>(), 2000.0 * 0.99);
}

TEST(Trace, a_runtime_workers_slice_after_a_park_begins_when_it_resumes) {
  const json trace = record([] {
    gb::Runtime rt{{.threads = 1}};
    rt.run(nap(20ms));
  });
  // Two run slices of the task: before its sleep and after. Its worker parked in between,
  // so the second begins at least 20 ms after the first (a timer never fires early).
  const auto slices = events_where(trace, "X", "task");
  ASSERT_EQ(slices.size(), 2u);
  EXPECT_GE(slices[1].at("ts").get<double>() - slices[0].at("ts").get<double>(), 20000.0 * 0.99);
}

TEST(Trace, a_runtime_has_one_row_per_worker_and_its_steals_are_marked) {
  int sum = 0;
  const json trace = record([&] {
    gb::Runtime rt{{.threads = 2}};
    sum = rt.run(spawn_then_hold(50));
  });
  EXPECT_EQ(sum, 50);
  const std::map<int, std::string> names = thread_names_of(trace);
  std::set<std::string> rows_with_tasks;
  for (const json& s : events_where(trace, "X", "task")) rows_with_tasks.insert(names.at(s.at("tid").get<int>()));
  EXPECT_EQ(rows_with_tasks, (std::set<std::string>{"gearbox-rt0", "gearbox-rt1"}));
  // Every event has a time on the trace's axis: the main thread's only event, the spawn
  // of run()'s task from outside any task, takes its own time.
  for (const json& event : trace.at("traceEvents"))
    if (event.contains("ts")) {
      EXPECT_GE(event.at("ts").get<double>(), 0.0) << event.dump();
    }
  const auto steals = events_where(trace, "i", "steal");
  ASSERT_FALSE(steals.empty());
  for (const json& steal : steals) {
    EXPECT_TRUE(names.at(steal.at("tid").get<int>()).starts_with("gearbox-rt"));
    EXPECT_GE(steal.at("args").at("tasks").get<int>(), 1);
    EXPECT_LE(steal.at("args").at("victim").get<int>(), 1);
  }
}

gb::Task<int> hold_a_worker(std::chrono::milliseconds hold) {
  co_await gb::yield_now();
  const auto end = std::chrono::steady_clock::now() + hold;
  while (std::chrono::steady_clock::now() < end) {
  }
  co_return 1;
}

TEST(Trace, a_slice_that_blocked_a_runtime_worker_is_marked_on_its_row) {
  int result = 0;
  const json trace = record([&] {
    gb::Runtime rt{{.threads = 2, .blocking_threshold = std::chrono::milliseconds(10)}};
    result = rt.run(hold_a_worker(std::chrono::milliseconds(300)));
  });
  EXPECT_EQ(result, 1);
  const std::map<int, std::string> names = thread_names_of(trace);
  const auto marks = events_where(trace, "i", "blocked");
  ASSERT_FALSE(marks.empty());
  for (const json& mark : marks) {
    EXPECT_TRUE(names.at(mark.at("tid").get<int>()).starts_with("gearbox-rt"));
    EXPECT_EQ(mark.at("args").at("at_least_ms").get<int>(), 10);
  }
}

TEST(Trace, thread_pool_jobs_are_slices_on_the_worker_threads) {
  constexpr int jobs = 20;
  const json trace = record([] {
    gb::ThreadPool pool{{.workers = 2}};
    std::vector<gb::Future<int>> results;
    for (int i = 0; i < jobs; ++i) results.push_back(pool.submit([i] { return i; }));
    for (auto& r : results) r.get();
  });
  const auto slices = events_where(trace, "X", "job");
  EXPECT_EQ(slices.size(), static_cast<std::size_t>(jobs));
  std::set<std::string> thread_names;
  std::set<int> tids;
  for (const json& s : slices) tids.insert(s.at("tid").get<int>());
  for (const json& m : trace.at("traceEvents"))
    if (m.at("ph") == "M" && m.at("name") == "thread_name" && tids.count(m.at("tid").get<int>()))
      thread_names.insert(m.at("args").at("name"));
  EXPECT_EQ(thread_names.size(), tids.size()) << "every thread with jobs is named";
  EXPECT_LE(tids.size(), 2u);
}

TEST(Trace, spans_nest_and_a_wait_span_is_marked_as_waiting) {
  const json trace = record([] {
    gb::trace::Span outer("outer");
    {
      gb::trace::Span blocked("blocked read", gb::trace::SpanKind::wait);
    }
  });
  const auto running = events_where(trace, "X", "span");
  const auto waiting = events_where(trace, "X", "span.wait");
  ASSERT_EQ(running.size(), 1u);
  ASSERT_EQ(waiting.size(), 1u);
  EXPECT_EQ(running[0].at("name"), "outer");
  EXPECT_EQ(waiting[0].at("name"), "blocked read");
  const double outer_begin = running[0].at("ts"), outer_end = outer_begin + running[0].at("dur").get<double>();
  const double inner_begin = waiting[0].at("ts"), inner_end = inner_begin + waiting[0].at("dur").get<double>();
  EXPECT_LE(outer_begin, inner_begin);
  EXPECT_LE(inner_end, outer_end);
}

TEST(Trace, a_full_thread_buffer_overwrites_its_oldest_events_and_counts_them) {
  gb::trace::clear();
  gb::trace::start();
  const std::uint64_t spans = gb::trace::k_max_events_per_thread / 2 + 70'000;  // two events each
  for (std::uint64_t i = 0; i < spans; ++i) gb::trace::Span span("tick");
  gb::trace::stop();
  EXPECT_GT(gb::trace::dropped_events(), 0u);
  // Counted in the text: parsing two million events would only slow the test down.
  const std::string text = gb::trace::to_json();
  std::size_t kept = 0;
  for (std::size_t at = text.find("\"cat\":\"span\""); at != std::string::npos; at = text.find("\"cat\":\"span\"", at + 1))
    ++kept;
  EXPECT_LT(kept, spans);
  EXPECT_GT(kept, spans / 2) << "only the oldest chunk(s) are dropped";
  gb::trace::clear();
  EXPECT_EQ(gb::trace::dropped_events(), 0u);
}

TEST(Trace, process_pool_calls_are_recorded_in_the_workers_and_merged_under_their_pids) {
  constexpr int calls = 12;
  const json trace = record([] {
    gb::ProcessPool pool{{.workers = 2}};
    std::vector<gb::Future<int>> results;
    for (int i = 0; i < calls; ++i) results.push_back(pool.submit(gb::remote<traced_square>, i));
    for (int i = 0; i < calls; ++i) EXPECT_EQ(results[i].get(), i * i);
    pool.shutdown(gb::ShutdownMode::wait);  // the workers exit and leave their events
  });
  const auto slices = events_where(trace, "X", "process");
  ASSERT_EQ(slices.size(), static_cast<std::size_t>(calls));
  std::set<int> pids;
  std::set<std::uint64_t> call_ids;
  for (const json& s : slices) {
    EXPECT_EQ(s.at("name"), gb::remote<traced_square>.name());  // its qualified name
    EXPECT_NE(s.at("pid").get<int>(), ::getpid()) << "recorded in a worker";
    pids.insert(s.at("pid").get<int>());
    call_ids.insert(s.at("args").at("call").get<std::uint64_t>());
  }
  EXPECT_EQ(call_ids.size(), static_cast<std::size_t>(calls));
  EXPECT_LE(pids.size(), 2u);
  // The user's spans inside the task come along, inside the call's slice.
  EXPECT_EQ(events_where(trace, "X", "span").size(), static_cast<std::size_t>(calls));
  // Each worker process is named.
  std::set<int> named;
  for (const json& m : trace.at("traceEvents"))
    if (m.at("ph") == "M" && m.at("name") == "process_name") named.insert(m.at("pid").get<int>());
  for (int pid : pids) EXPECT_TRUE(named.count(pid)) << pid;
}

// GEARBOX_TRACE=path traces a whole program run and writes the file at exit. The program
// is this test executable, started again to run only the child case below.
TEST(Trace, the_environment_variable_traces_a_whole_run_into_a_file) {
  const std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("gearbox-trace-test-" + std::to_string(::getpid()) + ".json");
  std::filesystem::remove(path);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::setenv("GEARBOX_TRACE", path.c_str(), 1);
    ::setenv("GEARBOX_TRACE_CHILD", "1", 1);
    ::execl("/proc/self/exe", "trace_test", "--gtest_filter=TraceChild.*", nullptr);
    ::_exit(127);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
  std::ifstream in(path);
  ASSERT_TRUE(in) << "no trace at " << path;
  const json trace = json::parse(in);
  std::filesystem::remove(path);
  EXPECT_EQ(events_where(trace, "b", "task").size(), 3u);
  EXPECT_EQ(events_where(trace, "e", "task").size(), 3u);
  EXPECT_EQ(trace.at("otherData").at("generator"), "gearbox");
}

gb::Task<void> two_naps() {
  auto a = gb::spawn(nap(1ms));
  auto b = gb::spawn(nap(1ms));
  co_await a;
  co_await b;
}

TEST(TraceChild, runs_three_tasks_when_started_by_the_environment_test) {
  if (!std::getenv("GEARBOX_TRACE_CHILD")) GTEST_SKIP() << "run by the_environment_variable_traces_a_whole_run_into_a_file";
  EXPECT_TRUE(gb::trace::enabled());
  EXPECT_EQ(std::getenv("GEARBOX_TRACE"), nullptr) << "not passed on to programs this one starts";
  gb::Loop loop;
  loop.run(two_naps());
}
