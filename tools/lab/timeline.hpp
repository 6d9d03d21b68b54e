// The lab's timeline model: who ran when, read from a gearbox trace (Chrome Trace Event
// JSON, the file Perfetto opens), as rows of running and waiting intervals.
//
//   Timeline t = gearbox::lab::load_timeline("trace.json");        // RowMode::automatic
//   for (const TimelineRow& row : t.rows) ...                       // first active first
//   std::cout << gearbox::lab::render_ascii(t, {});                 // timeline_render.hpp
//
// What a row is depends on the RowMode:
// - units: one row per logical unit of work. An async task (cat "task": its "X" run
//   slices and its "b"/"e" lifetime) runs during its slices and waits for the rest of its
//   lifetime. A user span (cat "span") is a row per distinct name per process; a
//   "span.wait" nested in a span on the same thread turns that part of the span's row to
//   waiting, and one outside any span is a waiting row of its own. A span named like an
//   async task of the same process joins that task's row. Pool jobs (cat "job") and
//   process-pool tasks (cat "process") outside any span are one row per thread.
// - threads: one row per (pid, tid); every known "X" event runs, "span.wait" waits.
// - automatic: units when the trace has any task or span event, threads otherwise.
//
// The contract with the recorder: ts and dur are microseconds on one timebase for all
// processes; events come in any order; the file is {"traceEvents": [...], ...} or a bare
// array. Unknown "ph" and "cat" values are skipped, so newer traces still load. Events
// that cannot be placed (no ts, an "X" with no dur, a ts or dur beyond ±1e18 µs, a "b"
// or "e" with no id) are skipped; a negative dur counts as 0; an "e" without its "b" is
// ignored; a "b" without its "e" lives to the end of the trace. A member the timeline
// reads that has the wrong JSON type ("ts": "12") is an error naming the event.
//
// The file is read in one pass without building a document, so memory grows with the
// number of events kept, not with the size of the text. All functions are pure apart
// from reading the file; they are safe to call from several threads at once.
#pragma once

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace gearbox::lab {

enum class RowMode { automatic, units, threads };

// "auto", "units", "threads" and back; parse_row_mode throws std::invalid_argument otherwise.
RowMode parse_row_mode(std::string_view name);
const char* to_string(RowMode mode) noexcept;

enum class SliceState : std::uint8_t { running, waiting };

struct Interval {
  double begin_us = 0;
  double end_us = 0;
  SliceState state = SliceState::running;
  // Running: the thread (its tid in the trace) that ran it, or 0 when not known. Running
  // intervals on two threads may touch (a task that moved between workers).
  std::int64_t tid = 0;

  friend bool operator==(const Interval&, const Interval&) = default;
};

struct TimelineRow {
  std::string label;
  // Sorted by begin, never overlapping; neighbours may touch.
  std::vector<Interval> intervals;
  double first_us = 0;  // the row's first activity (its order in Timeline::rows)
};

struct Timeline {
  RowMode mode = RowMode::units;  // as resolved: never automatic
  double begin_us = 0;            // the earliest event, or 0 when there is none
  double end_us = 0;              // the latest end of an event, >= begin_us
  std::vector<TimelineRow> rows;  // by first activity; ties keep the order of the file

  double duration_us() const noexcept { return end_us - begin_us; }
};

// Why a trace could not be read; what() is "<source>: <problem>", one line.
class TraceError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

// Reads the trace in `file`. Throws TraceError when the file cannot be opened or read, is
// not JSON, is not a trace, or has an event field of the wrong type.
Timeline load_timeline(const std::filesystem::path& file, RowMode mode = RowMode::automatic);

// The same from text already in memory; `source` names it in error messages.
Timeline parse_timeline(std::string_view json, RowMode mode = RowMode::automatic,
                        std::string_view source = "trace");

}  // namespace gearbox::lab
