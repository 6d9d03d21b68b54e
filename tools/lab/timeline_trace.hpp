// Private to the timeline, in three steps: timeline_json.cpp parses the JSON and hands
// over each event's members (EventFields); timeline.cpp checks them and keeps what it
// places (TraceEvents, compact: a trace of a million tasks holds a few million events);
// timeline_rows.cpp turns those into rows.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "timeline.hpp"

namespace gearbox::lab::detail {

// One member of an event as the parser saw it: its JSON type, and its value if a scalar.
struct JsonValue {
  enum class Type : std::uint8_t { absent, null, boolean, integer, number, string, object, array };
  Type type = Type::absent;
  std::int64_t integer = 0;  // Type::integer (wrapped if above INT64_MAX)
  double number = 0;         // Type::integer and Type::number
  std::string text;          // Type::string
};

// For messages: "a string", "an object", "null".
std::string a_type(JsonValue::Type type);

// The members of one event that the timeline reads; the parser skips all others.
struct EventFields {
  JsonValue ph, cat, name, pid, tid, ts, dur, id, args;
  JsonValue args_task, args_name;  // args.task, args.name

  JsonValue* member(std::string_view key) noexcept;       // the field for a member, or null
  JsonValue* args_member(std::string_view key) noexcept;  // the same in args
};

// Called with each event, in the order of the file, and its index counting from 1.
using EventSink = std::function<void(std::size_t index, const EventFields& event)>;

// Parses a trace, handing each event that is an object to `sink`. Throws TraceError,
// "<source>: <problem>", when the input is not JSON or not a trace, or has an event that
// is not an object; exceptions from `sink` pass through.
void parse_trace_json(std::istream& input, std::string_view source, const EventSink& sink);
void parse_trace_json(std::string_view text, std::string_view source, const EventSink& sink);

enum class EventKind : std::uint8_t {
  task_slice,  // "X" cat "task": the task ran (unit = task)
  task_begin,  // "b" cat "task": spawned (unit = task; begin_us == end_us)
  task_end,    // "e" cat "task": completed (unit = task; begin_us == end_us)
  job,         // "X" cat "job": a thread-pool job ran
  process,     // "X" cat "process": a process-pool task ran in its worker
  span,        // "X" cat "span": user code ran (unit = span name)
  span_wait,   // "X" cat "span.wait": user code waited (unit = span name)
};

struct TraceEvent {
  double begin_us = 0;
  double end_us = 0;
  std::uint32_t thread = 0;  // index into TraceEvents::threads
  std::uint32_t unit = 0;    // index into tasks or span_names, by kind; 0 for jobs
  EventKind kind = EventKind::job;
};

struct TraceThread {
  std::int64_t pid = 0;
  std::int64_t tid = 0;
  std::string name;  // from "thread_name" metadata, or empty
};

struct TraceTask {
  std::int64_t pid = 0;
  std::optional<std::uint64_t> number;  // from args.task or the async id, when a number
  std::string name;                     // the first name an event gave it, or empty

  std::string label() const;  // the name, else "task N"
};

struct TraceSpanName {
  std::int64_t pid = 0;
  std::string name;
};

struct TraceEvents {
  std::vector<TraceEvent> events;  // in file order
  std::vector<TraceThread> threads;
  std::vector<TraceTask> tasks;
  std::vector<TraceSpanName> span_names;
  std::unordered_map<std::int64_t, std::string> process_names;  // "process_name" metadata
  double begin_us = 0;  // the earliest begin and latest end of the events
  double end_us = 0;
};

// The rows of `trace` in `mode`; consumes the events.
Timeline build_timeline(TraceEvents&& trace, RowMode mode);

}  // namespace gearbox::lab::detail
