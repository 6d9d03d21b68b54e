// Turns recorded events into Chrome Trace Event JSON (the format Perfetto and
// chrome://tracing open, and `gearbox-lab timeline` reads). Private to the library.
//
// What each recorded event becomes:
//   task slices    "X" cat "task", name "task N" (or its name), args {task: N, then: why it
//                  stopped: timer, io, channel, event, lock, future, join, children, yield,
//                  other, or done}
//   task lifetime  "b"/"e" cat "task", id N, from spawn to completion (args {parent: M})
//   task waits     "b"/"e" cat "wait", id N, name "wait <on>", from suspension to wake
//   jobs           "X" cat "job" (thread pool) on the worker thread
//   process calls  "X" cat "process", name = the task function, in the worker's pid
//   spans          "X" cat "span" or "span.wait"
// Timestamps are microseconds since the trace's origin (CLOCK_MONOTONIC, shared by the
// pool's workers), so the parent's and the workers' events share one timebase.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "trace/trace_clock.hpp"
#include "trace/recorder.hpp"

namespace gearbox::trace::detail {

struct ThreadSnapshot {
  int pid = 0;
  int tid = 0;
  std::string thread_name;
  std::vector<Event> events;
  std::vector<std::string> names;
};

// Appends the events of `threads`, each preceded by a comma unless `first` (which is then
// cleared): a fragment of the traceEvents array.
void append_chrome_events(std::string& out, const std::vector<ThreadSnapshot>& threads, const TickConverter& clock,
                          std::uint64_t origin_ns, bool& first);

// A JSON string literal (quoted and escaped).
std::string json_string(std::string_view text);

}  // namespace gearbox::trace::detail
