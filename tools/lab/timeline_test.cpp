// The timeline model, from hand-written traces: which rows a trace makes in each mode and
// their exact intervals, and every way a file can fail to be a trace. The drawing is
// tested in timeline_render_test.cpp.
#include "timeline.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

namespace lab = gearbox::lab;

namespace {

// A row as one line: "task 1: run 0-10, wait 10-50".
std::string describe(const lab::TimelineRow& row) {
  std::string out = row.label + ":";
  for (const lab::Interval& i : row.intervals) {
    char text[96];
    std::snprintf(text, sizeof text, "%s %s %g-%g", out.back() == ':' ? "" : ",",
                  i.state == lab::SliceState::running ? "run" : "wait", i.begin_us, i.end_us);
    out += text;
  }
  return out;
}

std::vector<std::string> describe(const lab::Timeline& timeline) {
  std::vector<std::string> rows;
  for (const lab::TimelineRow& row : timeline.rows) rows.push_back(describe(row));
  return rows;
}

std::string trace(const std::string& events) { return "{\"traceEvents\":[" + events + "]}"; }

// Two tasks on one loop thread: task 1 runs, waits on a timer, runs; task 2, spawned by
// task 1 at 5, runs once from 10 to 30.
const std::string k_two_tasks = R"(
  {"ph":"M","name":"thread_name","pid":1,"tid":2,"args":{"name":"loop"}},
  {"ph":"b","cat":"task","name":"task 1","id":"0x1","pid":1,"tid":2,"ts":0},
  {"ph":"X","cat":"task","name":"task 1","pid":1,"tid":2,"ts":0,"dur":10,"args":{"task":1,"then":"timer"}},
  {"ph":"X","cat":"task","name":"task 1","pid":1,"tid":2,"ts":50,"dur":10,"args":{"task":1,"then":"done"}},
  {"ph":"e","cat":"task","name":"task 1","id":"0x1","pid":1,"tid":2,"ts":60},
  {"ph":"b","cat":"task","name":"task 2","id":"0x2","pid":1,"tid":2,"ts":5,"args":{"parent":1}},
  {"ph":"X","cat":"task","name":"task 2","pid":1,"tid":2,"ts":10,"dur":20,"args":{"task":2,"then":"done"}},
  {"ph":"e","cat":"task","name":"task 2","id":"0x2","pid":1,"tid":2,"ts":30})";

std::string error_of(const std::string& text) {
  try {
    (void)lab::parse_timeline(text, lab::RowMode::automatic, "t.json");
  } catch (const lab::TraceError& e) {
    return e.what();
  }
  return "no error";
}

// A file that removes itself.
struct TempFile {
  explicit TempFile(const std::string& text)
      : path(std::filesystem::temp_directory_path() /
             ("timeline_test_" + std::to_string(::getpid()) + "_" + std::to_string(++count) + ".json")) {
    std::ofstream(path) << text;
  }
  ~TempFile() { std::filesystem::remove(path); }
  std::filesystem::path path;
  static inline int count = 0;
};

}  // namespace

TEST(Timeline, a_task_runs_in_its_slices_and_waits_for_the_rest_of_its_lifetime) {
  const auto t = lab::parse_timeline(trace(k_two_tasks), lab::RowMode::units);
  EXPECT_EQ(t.mode, lab::RowMode::units);
  EXPECT_EQ(t.begin_us, 0);
  EXPECT_EQ(t.end_us, 60);
  EXPECT_EQ(describe(t), (std::vector<std::string>{"task 1: run 0-10, wait 10-50, run 50-60",
                                                   "task 2: wait 5-10, run 10-30"}));
  EXPECT_EQ(t.rows[1].first_us, 5);
}

TEST(Timeline, by_threads_the_loop_is_one_row_running_whenever_any_task_ran_on_it) {
  const auto t = lab::parse_timeline(trace(k_two_tasks), lab::RowMode::threads);
  EXPECT_EQ(t.mode, lab::RowMode::threads);
  EXPECT_EQ(describe(t), (std::vector<std::string>{"loop: run 0-30, run 50-60"}));
}

TEST(Timeline, auto_draws_units_when_there_are_tasks_or_spans_and_threads_otherwise) {
  EXPECT_EQ(lab::parse_timeline(trace(k_two_tasks)).mode, lab::RowMode::units);
  const std::string jobs = R"({"ph":"X","cat":"job","name":"job","pid":1,"tid":7,"ts":0,"dur":5},
                              {"ph":"X","cat":"process","name":"f","pid":9,"tid":9,"ts":2,"dur":5})";
  const auto t = lab::parse_timeline(trace(jobs));
  EXPECT_EQ(t.mode, lab::RowMode::threads);
  EXPECT_EQ(describe(t), (std::vector<std::string>{"thread 7: run 0-5", "worker 9: run 2-7"}));
  const std::string span = R"({"ph":"X","cat":"span","name":"s","pid":1,"tid":7,"ts":0,"dur":5})";
  EXPECT_EQ(lab::parse_timeline(trace(span)).mode, lab::RowMode::units);
}

TEST(Timeline, a_span_wait_inside_a_span_turns_that_part_of_the_span_row_to_waiting) {
  const std::string events = R"(
    {"ph":"X","cat":"span","name":"client","pid":1,"tid":3,"ts":0,"dur":100},
    {"ph":"X","cat":"span.wait","name":"recv","pid":1,"tid":3,"ts":20,"dur":30},
    {"ph":"X","cat":"span","name":"parse","pid":1,"tid":3,"ts":60,"dur":20},
    {"ph":"X","cat":"span.wait","name":"lock","pid":1,"tid":3,"ts":65,"dur":5},
    {"ph":"X","cat":"span.wait","name":"recv","pid":1,"tid":4,"ts":10,"dur":5})";
  // recv inside client is client's; lock inside parse (innermost) is parse's; the recv on
  // thread 4 is inside no span, so it is a waiting row "recv" of its own.
  EXPECT_EQ(describe(lab::parse_timeline(trace(events))),
            (std::vector<std::string>{"client: run 0-20, wait 20-50, run 50-100", "recv: wait 10-15",
                                      "parse: run 60-65, wait 65-70, run 70-80"}));
}

TEST(Timeline, a_span_named_like_a_task_of_its_process_joins_the_task_row) {
  const std::string events = k_two_tasks + R"(,
    {"ph":"X","cat":"span","name":"task 2","pid":1,"tid":5,"ts":35,"dur":10},
    {"ph":"X","cat":"span.wait","name":"recv","pid":1,"tid":5,"ts":40,"dur":5},
    {"ph":"X","cat":"span","name":"task 2","pid":8,"tid":8,"ts":70,"dur":10})";
  // In process 1 the span adds running time to task 2 (and its wait turns part of it to
  // waiting); the span of the same name in process 8 is a row of its own.
  EXPECT_EQ(describe(lab::parse_timeline(trace(events))),
            (std::vector<std::string>{"task 1: run 0-10, wait 10-50, run 50-60",
                                      "task 2: wait 5-10, run 10-30, run 35-40, wait 40-45",
                                      "task 2: run 70-80"}));
}

TEST(Timeline, jobs_inside_a_span_are_drawn_once_and_the_rest_in_a_row_per_thread) {
  const std::string events = R"(
    {"ph":"M","name":"thread_name","pid":1,"tid":7,"args":{"name":"pool 1"}},
    {"ph":"X","cat":"span","name":"resize","pid":1,"tid":7,"ts":0,"dur":10},
    {"ph":"X","cat":"job","name":"job","pid":1,"tid":7,"ts":2,"dur":5},
    {"ph":"X","cat":"job","name":"job","pid":1,"tid":7,"ts":8,"dur":12},
    {"ph":"X","cat":"process","name":"lab.crunch","pid":4242,"tid":4242,"ts":1,"dur":4,"args":{"call":17}})";
  EXPECT_EQ(describe(lab::parse_timeline(trace(events))),
            (std::vector<std::string>{"resize: run 0-10", "worker 4242: run 1-5", "pool 1: run 10-20"}));
}

TEST(Timeline, rows_come_in_order_of_first_activity_whatever_the_order_of_the_file) {
  std::string reversed;
  std::string rest = k_two_tasks;
  while (!rest.empty()) {  // the events of k_two_tasks, last first (each is one line)
    const std::size_t line = rest.rfind('\n');
    std::string event = rest.substr(line + 1);
    rest.erase(line == std::string::npos ? 0 : line);
    if (event.back() != ',') event += ',';
    if (event.find('{') != std::string::npos) reversed += event;
  }
  reversed.pop_back();
  EXPECT_EQ(describe(lab::parse_timeline(trace(reversed))), describe(lab::parse_timeline(trace(k_two_tasks))));
}

TEST(Timeline, a_task_never_seen_to_complete_waits_until_the_end_of_the_trace) {
  const std::string events = R"(
    {"ph":"b","cat":"task","name":"stuck","id":"0x4","pid":1,"tid":2,"ts":10},
    {"ph":"X","cat":"task","name":"stuck","pid":1,"tid":2,"ts":10,"dur":5,"args":{"task":4,"then":"channel"}},
    {"ph":"e","cat":"task","name":"ghost","id":"0x9","pid":1,"tid":2,"ts":40},
    {"ph":"X","cat":"job","name":"job","pid":1,"tid":3,"ts":0,"dur":100})";
  // The "e" of task 9 without its "b" draws nothing (but the trace still ends after it).
  EXPECT_EQ(describe(lab::parse_timeline(trace(events))),
            (std::vector<std::string>{"thread 3: run 0-100", "stuck: run 10-15, wait 15-100"}));
}

TEST(Timeline, a_bare_array_of_events_reads_like_a_full_trace) {
  const auto bare = lab::parse_timeline("[" + k_two_tasks + "]");
  EXPECT_EQ(describe(bare), describe(lab::parse_timeline(trace(k_two_tasks))));
  EXPECT_TRUE(lab::parse_timeline("[]").rows.empty());
}

TEST(Timeline, unknown_phases_categories_and_metadata_are_skipped) {
  const std::string events = k_two_tasks + R"(,
    {"ph":"i","name":"mark","pid":1,"tid":2,"ts":"not checked"},
    {"ph":"X","cat":"io.future","name":"poll","pid":1,"tid":2,"ts":0,"dur":1000},
    {"ph":"M","name":"thread_sort_index","pid":1,"tid":2,"args":{"sort_index":[1]}},
    {"ph":"X","cat":"task","name":"task 2","pid":1,"tid":2,"ts":10,"dur":20,
     "args":{"meta":{"task":99,"more":[1,{"task":5}]},"task":2,"extra":{"name":7}}},
    {"name":"no phase"})";
  const auto t = lab::parse_timeline(R"({"displayTimeUnit":"ms","traceEvents":[)" + events +
                                     R"(],"otherData":{"generator":"gearbox","extra":[1,{"a":2}]}})");
  EXPECT_EQ(describe(t), describe(lab::parse_timeline(trace(k_two_tasks))));
  EXPECT_EQ(t.end_us, 60);
}

TEST(Timeline, hostile_numbers_are_skipped_or_clamped_never_trusted) {
  const std::string events = R"(
    {"ph":"X","cat":"job","pid":1,"tid":1,"ts":10,"dur":-5},
    {"ph":"X","cat":"job","pid":1,"tid":1,"ts":20},
    {"ph":"X","cat":"job","pid":1,"tid":1,"dur":3},
    {"ph":"X","cat":"job","pid":1,"tid":1,"ts":1e300,"dur":1},
    {"ph":"X","cat":"job","pid":1,"tid":1,"ts":30,"dur":1e300},
    {"ph":"X","cat":"job","pid":18446744073709551615,"tid":-1,"ts":40,"dur":2},
    {"ph":"X","cat":"task","name":"t","pid":1,"tid":1,"ts":50,"dur":1,"args":{"task":18446744073709551615}},
    {"ph":"b","cat":"task","pid":1,"tid":1,"ts":45},
    {"ph":"b","cat":"task","id":"0xffffffffffffffffffff","pid":1,"tid":1,"ts":48},
    {"ph":"e","cat":"task","id":"0x7","pid":1,"tid":1,"ts":44})";
  const auto t = lab::parse_timeline(trace(events), lab::RowMode::threads);
  // Kept: the job at 10 (as 0 long: it draws nothing), the job at 40 and the task "t";
  // the "b" whose id is no number is a task of its own; the "b" with no id cannot be
  // placed; the lone "e" draws nothing.
  EXPECT_EQ(t.begin_us, 10);
  EXPECT_EQ(t.end_us, 51);
  EXPECT_EQ(describe(t), (std::vector<std::string>{"thread 1: run 50-51", "thread -1: run 40-42"}));
  const auto units = lab::parse_timeline(trace(events), lab::RowMode::units);
  EXPECT_EQ(describe(units),
            (std::vector<std::string>{"thread -1: run 40-42", "task: wait 48-51", "t: run 50-51"}));
}

TEST(Timeline, a_missing_file_or_a_directory_is_an_error_that_names_it) {
  try {
    (void)lab::load_timeline("/no/such/dir/trace.json");
    ADD_FAILURE() << "a missing file loaded";
  } catch (const lab::TraceError& e) {
    EXPECT_EQ(std::string(e.what()), "/no/such/dir/trace.json: cannot open: No such file or directory");
  }
  const auto directory = std::filesystem::temp_directory_path();
  try {
    (void)lab::load_timeline(directory);
    ADD_FAILURE() << "a directory loaded";
  } catch (const lab::TraceError& e) {
    EXPECT_EQ(std::string(e.what()), directory.string() + ": is a directory, not a trace file");
  }
}

TEST(Timeline, a_file_is_read_like_text_and_its_errors_name_it) {
  const TempFile good(trace(k_two_tasks));
  EXPECT_EQ(describe(lab::load_timeline(good.path)), describe(lab::parse_timeline(trace(k_two_tasks))));
  const TempFile bad("{\"traceEvents\": [");
  try {
    (void)lab::load_timeline(bad.path);
    ADD_FAILURE() << "a truncated file loaded";
  } catch (const lab::TraceError& e) {
    EXPECT_TRUE(std::string(e.what()).starts_with(bad.path.string() + ": not valid JSON: ")) << e.what();
  }
}

TEST(Timeline, text_that_is_not_json_is_an_error) {
  EXPECT_TRUE(error_of("").starts_with("t.json: not valid JSON: ")) << error_of("");
  EXPECT_TRUE(error_of("hello").starts_with("t.json: not valid JSON: ")) << error_of("hello");
  EXPECT_TRUE(error_of(trace(k_two_tasks) + ",").starts_with("t.json: not valid JSON: "));
  EXPECT_TRUE(error_of(trace(R"({"ph":"X","ts":NaN})")).starts_with("t.json: not valid JSON: "));
  EXPECT_TRUE(error_of(trace(R"({"ph":"X","ts":1e400})")).starts_with("t.json: not valid JSON: "));
  EXPECT_EQ(error_of("{\"traceEvents\":[\"\\ud800\"]}").find("t.json: not valid JSON: "), 0u);
  const std::string deep(100000, '[');  // the parser does not recurse
  EXPECT_TRUE(error_of("{\"other\":" + deep).starts_with("t.json: not valid JSON: ")) << error_of("{\"other\":" + deep);
  EXPECT_EQ(error_of(deep + std::string(100000, ']')),
            "t.json: event 1 is an array, not an object");
}

TEST(Timeline, json_that_is_not_a_trace_is_an_error_that_says_why) {
  EXPECT_EQ(error_of(R"({"events":[]})"), R"(t.json: not a trace: no "traceEvents")");
  EXPECT_EQ(error_of(R"({"traceEvents":{"ph":"X"}})"),
            R"(t.json: not a trace: "traceEvents" is an object, not an array)");
  EXPECT_EQ(error_of("42"), "t.json: not a trace: the top level is a number, "
                            R"(not an object with "traceEvents" or an array of events)");
}

TEST(Timeline, an_event_field_of_the_wrong_type_is_an_error_that_names_the_event) {
  EXPECT_EQ(error_of(trace(k_two_tasks + ",7")), "t.json: event 9 is a number, not an object");
  EXPECT_EQ(error_of(trace("[1]")), "t.json: event 1 is an array, not an object");
  EXPECT_EQ(error_of(R"([{"ph":5}])"), R"(t.json: event 1: "ph" is a number, expected a string)");
  EXPECT_EQ(error_of(R"([{"ph":"X","cat":"job","ts":"12"}])"),
            R"(t.json: event 1: "ts" is a string, expected a number)");
  EXPECT_EQ(error_of(R"([{"ph":"X","cat":"job","ts":1,"dur":null}])"),
            R"(t.json: event 1: "dur" is null, expected a number)");
  EXPECT_EQ(error_of(R"([{"ph":"X","cat":"job","ts":1,"dur":1,"pid":1.5}])"),
            R"(t.json: event 1: "pid" is a number, expected an integer)");
  EXPECT_EQ(error_of(R"([{"ph":"X","cat":"task","ts":1,"dur":1,"args":[]}])"),
            R"(t.json: event 1: "args" is an array, expected an object)");
  EXPECT_EQ(error_of(R"([{"ph":"X","cat":"task","ts":1,"dur":1,"args":{"task":"3"}}])"),
            R"(t.json: event 1: "args.task" is a string, expected an integer)");
  EXPECT_EQ(error_of(R"([{"ph":"b","cat":"task","ts":1,"id":{}}])"),
            R"(t.json: event 1: "id" is an object, expected a string or an integer)");
  EXPECT_EQ(error_of(R"([{"ph":"M","name":"thread_name","args":{"name":true}}])"),
            R"(t.json: event 1: "args.name" is a boolean, expected a string)");
}

TEST(Timeline, row_modes_have_names) {
  for (auto mode : {lab::RowMode::automatic, lab::RowMode::units, lab::RowMode::threads})
    EXPECT_EQ(lab::parse_row_mode(lab::to_string(mode)), mode);
  EXPECT_THROW((void)lab::parse_row_mode("tasks"), std::invalid_argument);
}

TEST(Timeline, a_trace_of_many_tasks_has_a_row_for_each_in_order_of_spawning) {
  constexpr int k_tasks = 20000;
  std::string events;
  for (int i = k_tasks; i >= 1; --i) {  // last spawned first in the file
    const std::string id = std::to_string(i);
    const std::string ts = std::to_string(2 * i);
    events += R"({"ph":"b","cat":"task","id":")" + id + R"(","pid":1,"tid":2,"ts":)" + ts + "},";
    events += R"({"ph":"X","cat":"task","pid":1,"tid":2,"ts":)" + ts + R"(,"dur":1,"args":{"task":)" + id + "}},";
    events += R"({"ph":"e","cat":"task","id":")" + id + R"(","pid":1,"tid":2,"ts":)" + std::to_string(2 * i + 3) + "},";
  }
  events.pop_back();
  const auto t = lab::parse_timeline("[" + events + "]");
  ASSERT_EQ(t.rows.size(), static_cast<std::size_t>(k_tasks));
  EXPECT_EQ(describe(t.rows.front()), "task 1: run 2-3, wait 3-5");
  EXPECT_EQ(describe(t.rows.back()), "task 20000: run 40000-40001, wait 40001-40003");
  EXPECT_TRUE(std::is_sorted(t.rows.begin(), t.rows.end(),
                             [](const auto& a, const auto& b) { return a.first_us < b.first_us; }));
}
