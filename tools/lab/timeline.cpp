// Reading a trace: each event the parser (timeline_json.cpp) hands over is checked and,
// if the timeline can place it, kept as a compact TraceEvent. The rows are built in
// timeline_rows.cpp.
#include "timeline.hpp"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <optional>
#include <unordered_map>

#include "timeline_trace.hpp"

namespace gearbox::lab {
namespace {

using detail::EventFields;
using detail::EventKind;
using detail::JsonValue;
using Type = JsonValue::Type;

// Times beyond this many microseconds (31,000 years) are taken as garbage: keeping them
// would only make every sum and difference of times overflow or lose all precision.
constexpr double k_time_limit_us = 1e18;

bool placeable(double us) { return std::isfinite(us) && std::fabs(us) <= k_time_limit_us; }

std::optional<EventKind> kind_of(std::string_view ph, std::string_view cat) {
  if (ph == "X") {
    if (cat == "task") return EventKind::task_slice;
    if (cat == "job") return EventKind::job;
    if (cat == "process") return EventKind::process;
    if (cat == "span") return EventKind::span;
    if (cat == "span.wait") return EventKind::span_wait;
  } else if (cat == "task") {
    if (ph == "b") return EventKind::task_begin;
    if (ph == "e") return EventKind::task_end;
  }
  return std::nullopt;
}

// A pair of 64-bit numbers as a hash key: (pid, tid) for threads, (pid, id) for tasks.
using PairKey = std::pair<std::int64_t, std::uint64_t>;
struct PairKeyHash {
  std::size_t operator()(const PairKey& key) const noexcept {
    return std::hash<std::uint64_t>{}(static_cast<std::uint64_t>(key.first) * 0x9e3779b97f4a7c15ULL ^ key.second);
  }
};
using NameKey = std::pair<std::int64_t, std::string>;
struct NameKeyHash {
  std::size_t operator()(const NameKey& key) const noexcept {
    return PairKeyHash{}({key.first, std::hash<std::string>{}(key.second)});
  }
};

// A task's identity in its process: the number in args.task ("X") or in the async id
// "0x3" ("b", "e"); a name or an id that is not a number stands for itself.
struct TaskIdentity {
  std::optional<std::uint64_t> number;
  std::string text;
};

std::optional<std::uint64_t> parse_task_number(std::string_view id) {
  int base = 10;
  if (id.starts_with("0x") || id.starts_with("0X")) {
    id.remove_prefix(2);
    base = 16;
  }
  std::uint64_t value = 0;
  const auto [end, error] = std::from_chars(id.data(), id.data() + id.size(), value, base);
  if (id.empty() || error != std::errc() || end != id.data() + id.size()) return std::nullopt;
  return value;
}

// Reads the elements of traceEvents one by one into TraceEvents.
class TraceReader {
public:
  explicit TraceReader(std::string_view source) : m_source(source) {}

  void read(std::size_t index, const EventFields& event) {
    m_index = index;
    const std::optional<std::string_view> ph = text(event.ph, "ph");
    if (!ph) return;
    if (*ph == "M") return read_metadata(event);
    const std::optional<EventKind> kind = kind_of(*ph, text(event.cat, "cat").value_or(""));
    if (!kind) return;
    const std::optional<double> ts = number(event.ts, "ts");
    if (!ts || !placeable(*ts)) return;
    double end = *ts;
    if (*ph == "X") {
      const std::optional<double> dur = number(event.dur, "dur");
      if (!dur || !placeable(*dur)) return;
      end = *ts + std::max(0.0, *dur);
    }
    const std::int64_t pid = integer(event.pid, "pid").value_or(0);
    const std::uint32_t thread = thread_index(pid, integer(event.tid, "tid").value_or(0));
    const std::string_view name = text(event.name, "name").value_or("");
    std::uint32_t unit = 0;
    if (*kind == EventKind::span || *kind == EventKind::span_wait) {
      unit = span_index(pid, name.empty() ? "span" : name);
    } else if (*kind != EventKind::job && *kind != EventKind::process) {
      const std::optional<TaskIdentity> task = task_identity(event, *kind, name);
      if (!task) return;
      unit = task_index(pid, *task, name);
    }
    m_trace.begin_us = m_trace.events.empty() ? *ts : std::min(m_trace.begin_us, *ts);
    m_trace.end_us = m_trace.events.empty() ? end : std::max(m_trace.end_us, end);
    m_trace.events.push_back({*ts, end, thread, unit, *kind});
  }

  detail::TraceEvents take() && { return std::move(m_trace); }

private:
  [[noreturn]] void fail(const std::string& problem) const {
    throw TraceError(m_source + ": event " + std::to_string(m_index) + problem);
  }

  // The value of a member, if it is there; an error if it has another type.
  const JsonValue* field(const JsonValue& value, const char* shown, bool matches, const char* expected) const {
    if (value.type == Type::absent) return nullptr;
    if (!matches) fail(": \"" + std::string(shown) + "\" is " + a_type(value.type) + ", expected " + expected);
    return &value;
  }
  std::optional<std::string_view> text(const JsonValue& value, const char* shown) const {
    if (!field(value, shown, value.type == Type::string, "a string")) return std::nullopt;
    return value.text;
  }
  std::optional<double> number(const JsonValue& value, const char* shown) const {
    const bool matches = value.type == Type::integer || value.type == Type::number;
    if (!field(value, shown, matches, "a number")) return std::nullopt;
    return value.number;
  }
  std::optional<std::int64_t> integer(const JsonValue& value, const char* shown) const {
    if (!field(value, shown, value.type == Type::integer, "an integer")) return std::nullopt;
    return value.integer;
  }
  bool has_args(const EventFields& event) const {
    return field(event.args, "args", event.args.type == Type::object, "an object") != nullptr;
  }

  void read_metadata(const EventFields& event) {
    const std::string_view name = text(event.name, "name").value_or("");
    if (name != "process_name" && name != "thread_name") return;
    const std::optional<std::string_view> label =
        has_args(event) ? text(event.args_name, "args.name") : std::nullopt;
    if (!label) return;
    const std::int64_t pid = integer(event.pid, "pid").value_or(0);
    if (name == "process_name") m_trace.process_names[pid] = *label;
    else m_trace.threads[thread_index(pid, integer(event.tid, "tid").value_or(0))].name = *label;
  }

  std::optional<TaskIdentity> task_identity(const EventFields& event, EventKind kind, std::string_view name) const {
    if (kind == EventKind::task_slice) {
      if (const auto number = has_args(event) ? integer(event.args_task, "args.task") : std::nullopt)
        return TaskIdentity{static_cast<std::uint64_t>(*number), {}};
      return TaskIdentity{std::nullopt, "name:" + std::string(name)};
    }
    const bool matches = event.id.type == Type::integer || event.id.type == Type::string;
    if (!field(event.id, "id", matches, "a string or an integer")) return std::nullopt;  // cannot be paired
    if (event.id.type == Type::integer) return TaskIdentity{static_cast<std::uint64_t>(event.id.integer), {}};
    if (const auto number = parse_task_number(event.id.text)) return TaskIdentity{number, {}};
    return TaskIdentity{std::nullopt, "id:" + event.id.text};
  }

  std::uint32_t thread_index(std::int64_t pid, std::int64_t tid) {
    const auto [it, added] = m_threads.try_emplace({pid, static_cast<std::uint64_t>(tid)},
                                                   static_cast<std::uint32_t>(m_trace.threads.size()));
    if (added) m_trace.threads.push_back({pid, tid, {}});
    return it->second;
  }

  std::uint32_t span_index(std::int64_t pid, std::string_view name) {
    const auto [it, added] =
        m_spans.try_emplace({pid, std::string(name)}, static_cast<std::uint32_t>(m_trace.span_names.size()));
    if (added) m_trace.span_names.push_back({pid, std::string(name)});
    return it->second;
  }

  std::uint32_t task_index(std::int64_t pid, const TaskIdentity& task, std::string_view name) {
    const auto next = static_cast<std::uint32_t>(m_trace.tasks.size());
    const std::uint32_t index = task.number ? m_numbered_tasks.try_emplace({pid, *task.number}, next).first->second
                                            : m_named_tasks.try_emplace({pid, task.text}, next).first->second;
    if (index == next) m_trace.tasks.push_back({pid, task.number, std::string(name)});
    else if (std::string& known = m_trace.tasks[index].name; known.empty()) known = name;  // an "e" came first
    return index;
  }

  std::string m_source;
  std::size_t m_index = 0;  // of the event being read, counting from 1, for messages
  detail::TraceEvents m_trace;
  std::unordered_map<PairKey, std::uint32_t, PairKeyHash> m_threads;
  std::unordered_map<PairKey, std::uint32_t, PairKeyHash> m_numbered_tasks;
  std::unordered_map<NameKey, std::uint32_t, NameKeyHash> m_named_tasks;
  std::unordered_map<NameKey, std::uint32_t, NameKeyHash> m_spans;
};

// Reads `input` (a stream or text) with the parser and the reader.
template <class Input>
detail::TraceEvents read_trace(Input&& input, std::string_view source) {
  TraceReader reader(source);
  detail::parse_trace_json(std::forward<Input>(input), source,
                           [&](std::size_t index, const EventFields& event) { reader.read(index, event); });
  return std::move(reader).take();
}

}  // namespace

RowMode parse_row_mode(std::string_view name) {
  if (name == "auto") return RowMode::automatic;
  if (name == "units") return RowMode::units;
  if (name == "threads") return RowMode::threads;
  throw std::invalid_argument("rows must be auto, units or threads, not '" + std::string(name) + "'");
}

const char* to_string(RowMode mode) noexcept {
  switch (mode) {
  case RowMode::automatic: return "auto";
  case RowMode::units: return "units";
  case RowMode::threads: return "threads";
  }
  return "?";
}

Timeline load_timeline(const std::filesystem::path& file, RowMode mode) {
  const std::string source = file.string();
  std::error_code error;
  if (std::filesystem::is_directory(file, error)) throw TraceError(source + ": is a directory, not a trace file");
  std::ifstream in(file, std::ios::binary);
  if (!in) throw TraceError(source + ": cannot open: " + std::strerror(errno));
  return detail::build_timeline(read_trace(in, source), mode);
}

Timeline parse_timeline(std::string_view json, RowMode mode, std::string_view source) {
  return detail::build_timeline(read_trace(json, source), mode);
}

}  // namespace gearbox::lab
