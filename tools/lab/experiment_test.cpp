// The lab's experiments: the workloads and models in this process, the slow service and
// its bad input, whole experiments in child processes (structure, counts and traces, never
// timings), the verdicts and the guide.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <stdexcept>
#include <string>

#include "experiment.hpp"
#include "guide.hpp"
#include "slow_service.hpp"
#include "switch_cost.hpp"
#include "timeline.hpp"
#include "workload.hpp"
#include "redis_server.hpp"  // examples/07_cache

namespace lab = gearbox::lab;
using lab::Model;
using lab::Work;

namespace {

lab::WorkSpec small_spec(Work work, std::uint16_t port = 0) {
  lab::WorkSpec spec;
  spec.work = work;
  spec.tasks = 3;
  spec.wait_ms = 20;
  spec.units = lab::computes(work) ? 1000 : 0;
  spec.port = port;
  spec.cores = 2;
  return spec;
}

// Sends `request` raw to the service and returns everything it answers before closing.
std::string ask_raw(std::uint16_t port, const std::string& request) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_GE(fd, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address), 0);
  EXPECT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL), static_cast<ssize_t>(request.size()));
  std::string answer;
  char buffer[256];
  for (ssize_t n; (n = ::recv(fd, buffer, sizeof buffer, 0)) > 0 || (n < 0 && errno == EINTR);)
    if (n > 0) answer.append(buffer, static_cast<std::size_t>(n));
  ::close(fd);
  return answer;
}

}  // namespace

TEST(Workload, names_parse_both_ways_and_a_bad_model_is_named_in_the_error) {
  for (Work w : {Work::io, Work::sleep, Work::cpu, Work::mixed, Work::db}) EXPECT_EQ(lab::parse_work(lab::to_string(w)), w);
  EXPECT_FALSE(lab::parse_work("gpu"));
  EXPECT_EQ(lab::parse_models("seq,threads,async,procs"),
            (std::vector<Model>{Model::sequential, Model::threads, Model::async, Model::processes}));
  EXPECT_EQ(lab::parse_models("async,async"), std::vector<Model>{Model::async}) << "duplicates are dropped";
  EXPECT_EQ(lab::parse_models("async-cores,async+procs"), (std::vector<Model>{Model::async_cores, Model::async_processes}));
  EXPECT_EQ(lab::to_string(Model::async_cores), std::string("async-cores"));
  try {
    lab::parse_models("seq,fibers");
    FAIL() << "an unknown model was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'fibers'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(lab::parse_models(""), std::invalid_argument);
}

TEST(Workload, pools_get_a_thread_per_waiting_task_and_a_thread_per_core_for_computing) {
  lab::WorkSpec spec = small_spec(Work::io);
  spec.tasks = 5;
  EXPECT_EQ(lab::pool_size(spec), 5u);
  spec.work = Work::cpu;
  EXPECT_EQ(lab::pool_size(spec), 2u);
  spec.tasks = 1;
  EXPECT_EQ(lab::pool_size(spec), 1u);
}

TEST(Workload, the_compute_kernel_counts_primes) {
  EXPECT_EQ(lab::count_primes(1000), 61u);  // primes in [10^7, 10^7 + 1000), by a second method
  EXPECT_EQ(lab::count_primes(0), 0u);
  EXPECT_GT(lab::calibrate_units_per_second(5), 0.0);
}

TEST(Workload, every_model_runs_every_task_in_this_process) {
  lab::SlowService service;
  for (Work work : {Work::io, Work::sleep, Work::cpu, Work::mixed}) {
    const lab::WorkSpec spec = small_spec(work, service.port());
    for (Model model : {Model::sequential, Model::threads, Model::async, Model::processes, Model::async_processes,
                        Model::async_cores}) {
      if (lab::unfit(model, work)) {
        EXPECT_THROW(lab::run_model(spec, model), std::invalid_argument);
        continue;
      }
      const lab::ModelRun run = lab::run_model(spec, model);
      EXPECT_EQ(run.tasks_done, spec.tasks) << lab::to_string(work) << " " << lab::to_string(model);
      EXPECT_TRUE(run.errors.empty()) << (run.errors.empty() ? "" : run.errors.front());
      EXPECT_EQ(run.checksum, lab::computes(work) ? 61u * spec.tasks : 0u);
      EXPECT_GT(run.wall_s, 0.0);
    }
  }
}

TEST(Workload, only_a_model_that_offloads_computing_refuses_work_that_does_not_compute) {
  for (Work work : {Work::io, Work::sleep, Work::cpu, Work::mixed}) EXPECT_FALSE(lab::unfit(Model::async_cores, work));
  const std::optional<std::string> why = lab::unfit(Model::async_processes, Work::sleep);
  ASSERT_TRUE(why);
  EXPECT_NE(why->find("computing"), std::string::npos) << *why;
}

TEST(Workload, a_task_whose_service_is_gone_fails_alone_and_is_reported) {
  std::uint16_t port;
  {
    lab::SlowService service;
    port = service.port();
  }  // nobody listens there now
  const lab::ModelRun run = lab::run_model(small_spec(Work::io, port), Model::async);
  EXPECT_EQ(run.tasks_done, 0);
  ASSERT_EQ(run.errors.size(), 3u);
  const lab::ModelRun blocking = lab::run_model(small_spec(Work::io, port), Model::threads);
  EXPECT_EQ(blocking.errors.size(), 3u);
  EXPECT_NE(blocking.errors.front().find("connect"), std::string::npos) << blocking.errors.front();
}

TEST(Workload, db_tasks_find_every_preloaded_value_in_every_model) {
  cache::RedisServer redis;  // RedisError (failing the test) if redis-server is not installed
  const auto port = static_cast<std::uint16_t>(redis.port());
  lab::preload_db_keys(port);
  lab::WorkSpec spec = small_spec(Work::db, port);
  spec.units = 150;  // more GETs per task than there are keys: every key is read
  for (const Model model : {Model::sequential, Model::threads, Model::async, Model::async_cores, Model::processes}) {
    const lab::ModelRun run = lab::run_model(spec, model);
    EXPECT_TRUE(run.errors.empty()) << lab::to_string(model) << ": " << run.errors.front();
    EXPECT_EQ(run.tasks_done, 3) << lab::to_string(model);
    EXPECT_EQ(run.checksum, 3u * 150u) << lab::to_string(model);
  }
}

TEST(Workload, db_tasks_against_a_server_that_is_down_fail_alone_and_say_so) {
  std::uint16_t port;
  {
    lab::SlowService nobody;  // a port that was free a moment ago, and is closed now
    port = nobody.port();
  }
  for (const Model model : {Model::sequential, Model::async}) {
    lab::WorkSpec spec = small_spec(Work::db, port);
    spec.units = 5;
    const lab::ModelRun run = lab::run_model(spec, model);
    EXPECT_EQ(run.tasks_done, 0);
    ASSERT_EQ(run.errors.size(), 3u);
    EXPECT_NE(run.errors.front().find("Connection refused"), std::string::npos) << run.errors.front();
  }
}

TEST(SlowService, answers_after_the_asked_wait_and_rejects_bad_requests_with_a_reason) {
  lab::SlowService service;
  EXPECT_EQ(ask_raw(service.port(), "WAIT 1\n"), "DONE 1\n");
  EXPECT_EQ(ask_raw(service.port(), "HELLO\n"), "ERROR expected WAIT <ms>\n");
  EXPECT_EQ(ask_raw(service.port(), "WAIT -5\n"), "ERROR expected WAIT <ms>\n");
  EXPECT_EQ(ask_raw(service.port(), "WAIT 9999999\n"), "ERROR expected WAIT <ms>\n") << "over the 10-minute cap";
  EXPECT_EQ(ask_raw(service.port(), std::string(1000, 'x') + "\n"), "") << "an oversized line just closes";
  // A client that vanishes mid-wait does not disturb the others.
  {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(service.port());
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address), 0);
    const std::string request = lab::slow_request(50);
    ASSERT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL), static_cast<ssize_t>(request.size()));
    ::close(fd);
  }
  EXPECT_NO_THROW(lab::wait_on_service_blocking(service.port(), 60));
}

TEST(Experiment, each_model_runs_in_its_own_child_and_is_measured_and_traced) {
  lab::SlowService service;
  const lab::WorkSpec spec = small_spec(Work::mixed, service.port());
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / ("lab-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  lab::RunOptions options;
  options.trace_dir = dir;
  options.program = GEARBOX_LAB_PROGRAM;
  int progress_calls = 0;
  options.progress = [&](Model, double elapsed, double expected) {
    ++progress_calls;
    EXPECT_GE(elapsed, 0.0);
    EXPECT_GT(expected, 0.0);
  };
  const std::vector<Model> models = {Model::sequential, Model::threads, Model::async, Model::processes,
                                     Model::async_processes};
  const lab::Experiment e = lab::run_experiment(spec, 0.001, models, options);
  ASSERT_EQ(e.results.size(), models.size());
  for (std::size_t i = 0; i < models.size(); ++i) {
    const lab::ModelResult& r = e.results[i];
    SCOPED_TRACE(lab::to_string(r.model));
    EXPECT_EQ(r.model, models[i]);
    EXPECT_EQ(r.error, "");
    EXPECT_EQ(r.tasks_done, spec.tasks);
    EXPECT_GT(r.wall_s, 0.0);
    EXPECT_GE(r.cpu_s(), 0.0);
    EXPECT_GT(r.peak_rss_kb, 0);
    EXPECT_GT(r.voluntary_switches, 0) << "every model waits at least once";
    // The trace parses back with one row per task, whatever ran it.
    ASSERT_TRUE(std::filesystem::exists(r.trace));
    const lab::Timeline timeline = lab::load_timeline(r.trace, lab::RowMode::units);
    std::set<std::string> labels;
    for (const auto& row : timeline.rows) labels.insert(row.label);
    for (int t = 1; t <= spec.tasks; ++t) EXPECT_TRUE(labels.count("task " + std::to_string(t))) << "task " << t;
    // The lab's own view: exactly one row per task, in order, each of which ran and waited
    // (mixed work), with no overlap inside a row.
    const lab::Timeline tasks = lab::task_timeline(r.trace);
    ASSERT_EQ(tasks.rows.size(), static_cast<std::size_t>(spec.tasks));
    for (int t = 1; t <= spec.tasks; ++t) {
      const lab::TimelineRow& row = tasks.rows[static_cast<std::size_t>(t - 1)];
      EXPECT_EQ(row.label, "task " + std::to_string(t));
      bool ran = false, waited = false;
      for (std::size_t i = 0; i < row.intervals.size(); ++i) {
        ran = ran || row.intervals[i].state == lab::SliceState::running;
        waited = waited || row.intervals[i].state == lab::SliceState::waiting;
        if (i > 0) {
          EXPECT_LE(row.intervals[i - 1].end_us, row.intervals[i].begin_us + 1e-6);
        }
      }
      EXPECT_TRUE(ran) << row.label;
      EXPECT_TRUE(waited) << row.label;
    }
  }
  EXPECT_GT(e.speedup(e.results[0]), 0.0);
  EXPECT_NE(lab::render_table(e, 2).find("async+procs"), std::string::npos);
  const nlohmann::json json = lab::to_json(e, 2);
  EXPECT_EQ(json.at("models").size(), models.size());
  EXPECT_EQ(json.at("work"), "mixed");
  std::filesystem::remove_all(dir);
}

TEST(Experiment, a_model_that_fails_in_its_child_is_reported_not_thrown) {
  lab::RunOptions options;
  options.program = GEARBOX_LAB_PROGRAM;
  lab::WorkSpec spec = small_spec(Work::sleep);
  // async+procs refuses work that does not compute: the child exits with an error.
  const lab::Experiment e = lab::run_experiment(spec, 0, {Model::async_processes, Model::async}, options);
  ASSERT_EQ(e.results.size(), 2u);
  EXPECT_NE(e.results[0].error.find("failed"), std::string::npos) << e.results[0].error;
  EXPECT_EQ(e.results[1].error, "");
  EXPECT_NE(lab::render_table(e, 2).find("failed"), std::string::npos);
}

TEST(Verdict, follows_from_the_figures) {
  lab::Experiment io;
  io.spec.work = Work::io;
  io.results = {{.model = Model::sequential, .wall_s = 10.0, .user_s = 0.01, .peak_rss_kb = 4000},
                {.model = Model::threads, .wall_s = 2.0, .user_s = 0.01, .peak_rss_kb = 5000},
                {.model = Model::async, .wall_s = 2.0, .user_s = 0.01, .peak_rss_kb = 4100},
                {.model = Model::processes, .wall_s = 2.1, .user_s = 0.05, .peak_rss_kb = 20000}};
  const std::string text = lab::verdict(io, 2);
  EXPECT_EQ(text.rfind("async: 5.0x faster than sequential", 0), 0u) << text;  // as fast as threads, less memory
  EXPECT_NE(text.find("waited"), std::string::npos) << text;

  lab::Experiment cpu;
  cpu.spec.work = Work::cpu;
  cpu.results = {{.model = Model::sequential, .wall_s = 2.0, .user_s = 2.0, .peak_rss_kb = 4000},
                 {.model = Model::async, .wall_s = 2.0, .user_s = 2.0, .peak_rss_kb = 4000},
                 {.model = Model::threads, .wall_s = 1.0, .user_s = 2.0, .peak_rss_kb = 4500}};
  const std::string cpu_text = lab::verdict(cpu, 2);
  EXPECT_EQ(cpu_text.rfind("threads: 2.0x faster", 0), 0u) << cpu_text;
  EXPECT_NE(cpu_text.find("Async gained nothing"), std::string::npos) << cpu_text;
  EXPECT_EQ(cpu_text.find("gb::Runtime"), std::string::npos) << "no async-cores figure, no claim: " << cpu_text;
  cpu.results.push_back({.model = Model::async_cores, .wall_s = 1.05, .user_s = 2.0, .peak_rss_kb = 4200});
  const std::string cores_text = lab::verdict(cpu, 2);
  EXPECT_NE(cores_text.find("on a gb::Runtime of 2 workers used them: 1.90x"), std::string::npos) << cores_text;

  lab::Experiment mixed;
  mixed.spec.work = Work::mixed;
  mixed.results = {{.model = Model::sequential, .wall_s = 6.0, .user_s = 2.0, .peak_rss_kb = 5000},
                   {.model = Model::async, .wall_s = 3.0, .user_s = 2.0, .peak_rss_kb = 5000},
                   {.model = Model::async_processes, .wall_s = 2.0, .user_s = 2.0, .peak_rss_kb = 13000}};
  const std::string mixed_text = lab::verdict(mixed, 2);
  EXPECT_EQ(mixed_text.rfind("async+procs: 3.0x faster", 0), 0u) << mixed_text;
  EXPECT_NE(mixed_text.find("overlapped the waits (2.00x)"), std::string::npos) << mixed_text;
}

TEST(Guide, shows_a_quick_run_marked_as_one_until_a_full_run_replaces_it) {
  const nlohmann::json quick_io = {{"tasks", 5}, {"models", {{{"model", "async"}, {"wall_s", 0.21}}}}};
  const nlohmann::json full_io = {{"tasks", 5}, {"models", {{{"model", "async"}, {"wall_s", 2.01}}}}};
  const std::string after_quick = lab::render_guide({{"demo.quick.io", quick_io}}, 2);
  EXPECT_NE(after_quick.find("I/O-bound, quick run (5 tasks): async 0.2 s"), std::string::npos) << after_quick;
  EXPECT_NE(after_quick.find("a tenth"), std::string::npos) << after_quick;
  EXPECT_NE(after_quick.find("CPU-bound: not measured yet"), std::string::npos) << after_quick;
  const std::string after_full = lab::render_guide({{"demo.quick.io", quick_io}, {"demo.io", full_io}}, 2);
  EXPECT_NE(after_full.find("I/O-bound (5 tasks): async 2.0 s"), std::string::npos) << after_full;
  EXPECT_EQ(after_full.find("quick"), std::string::npos) << after_full;
}

TEST(Guide, quotes_switch_costs_with_the_switch_tables_names_in_its_order) {
  // Saved JSON sorts its keys (process_* before thread_*); the table lists threads first.
  const nlohmann::json switches = {{"switches",
                                    {{"process_one_core", {{"ns_per_switch", 3000.0}}},
                                     {"thread_one_core", {{"ns_per_switch", 2000.0}}},
                                     {"gearbox_task", {{"ns_per_switch", 40.0}}}}}};
  const std::string guide = lab::render_guide({{"switch", switches}}, 2);
  const std::size_t task = guide.find(lab::label(lab::SwitchKind::gearbox_task));
  const std::size_t thread = guide.find(lab::label(lab::SwitchKind::thread_one_core));
  const std::size_t process = guide.find(lab::label(lab::SwitchKind::process_one_core));
  ASSERT_NE(task, std::string::npos) << guide;
  ASSERT_NE(thread, std::string::npos) << guide;
  ASSERT_NE(process, std::string::npos) << guide;
  EXPECT_LT(task, thread) << guide;
  EXPECT_LT(thread, process) << guide;
  EXPECT_NE(guide.find("2000 ns"), std::string::npos) << guide;
  EXPECT_EQ(guide.find(lab::label(lab::SwitchKind::coroutine_resume)), std::string::npos) << guide;  // not measured
}

TEST(Guide, names_what_is_not_measured_yet_and_quotes_what_is) {
  const std::string empty = lab::render_guide(nlohmann::json::object(), 2);
  EXPECT_NE(empty.find("not measured yet (run gearbox-lab)"), std::string::npos);
  EXPECT_NE(empty.find("no GIL"), std::string::npos);
  const nlohmann::json results = {
      {"demo.io",
       {{"tasks", 5},
        {"models", {{{"model", "sequential"}, {"wall_s", 10.02}}, {{"model", "async"}, {"wall_s", 2.01}}}}}}};
  const std::string guide = lab::render_guide(results, 2);
  EXPECT_NE(guide.find("I/O-bound (5 tasks): sequential 10.0 s, async 2.0 s"), std::string::npos) << guide;
  for (std::size_t start = 0, end; start < guide.size(); start = end + 1) {
    end = guide.find('\n', start);
    if (end == std::string::npos) end = guide.size();
    EXPECT_LE(end - start, 80u) << guide.substr(start, end - start);
  }
}

TEST(Guide, says_which_io_back_end_the_loops_use_and_why_io_uring_is_not_used) {
  const std::string ring = lab::render_io_backend(gearbox::IoBackend::io_uring, {true, "", true});
  EXPECT_NE(ring.find("io_uring. Files"), std::string::npos) << ring;
  const std::string refused =
      lab::render_io_backend(gearbox::IoBackend::epoll, {false, "io_uring_setup failed: EPERM (Operation not permitted)", false});
  EXPECT_NE(refused.find("epoll"), std::string::npos) << refused;
  EXPECT_NE(refused.find("unavailable:"), std::string::npos) << refused;  // (the lines wrap anywhere)
  EXPECT_NE(refused.find("EPERM"), std::string::npos) << refused;
  const std::string forced = lab::render_io_backend(gearbox::IoBackend::epoll, {true, "", true});
  EXPECT_NE(forced.find("GEARBOX_IO_BACKEND chose epoll"), std::string::npos) << forced;
  for (const std::string& text : {ring, refused, forced})
    for (std::size_t start = 0, end; start < text.size(); start = end + 1) {
      end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      EXPECT_LE(end - start, 80u) << text.substr(start, end - start);
    }
}
