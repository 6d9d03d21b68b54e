// The trace's JSON, read with nlohmann's SAX interface: no document is built, each element
// of the events is handed over as the few members the timeline reads (EventFields) as
// soon as it closes. Three times faster than a DOM with a filtering callback, and the
// memory stays one event's worth whatever the size of the file.
#include <istream>

#include <nlohmann/json.hpp>

#include "timeline_trace.hpp"

namespace gearbox::lab::detail {
namespace {

using nlohmann::json;
using Type = JsonValue::Type;

constexpr std::pair<std::string_view, JsonValue EventFields::*> k_members[] = {
    {"ph", &EventFields::ph},   {"cat", &EventFields::cat}, {"name", &EventFields::name},
    {"pid", &EventFields::pid}, {"tid", &EventFields::tid}, {"ts", &EventFields::ts},
    {"dur", &EventFields::dur}, {"id", &EventFields::id},   {"args", &EventFields::args},
};

JsonValue value_of(Type type, std::int64_t integer = 0, double number = 0, std::string text = {}) {
  JsonValue value;
  value.type = type;
  value.integer = integer;
  value.number = number;
  value.text = std::move(text);
  return value;
}

// nlohmann's what() starts with "[json.exception.parse_error.101] "; the reader wants the rest.
std::string without_prefix(const char* what) {
  const std::string text = what;
  const std::size_t close = text.find("] ");
  return text.starts_with("[json.exception.") && close != std::string::npos ? text.substr(close + 2) : text;
}

// Depths count the containers open around a value: the top level is at depth 0, the
// elements of a bare array at 1, those of {"traceEvents": [...]} at 2.
class EventsHandler final : public nlohmann::json_sax<json> {
public:
  EventsHandler(std::string_view source, const EventSink& sink) : m_source(source), m_sink(sink) {}

  // After the parse: the document has the shape of a trace, or this throws why not.
  void check_shape() const {
    if (m_top == Type::array) return;
    if (m_top != Type::object)
      fail(": not a trace: the top level is " + a_type(m_top) +
           ", not an object with \"traceEvents\" or an array of events");
    if (m_events == Type::absent) fail(": not a trace: no \"traceEvents\"");
    if (m_events != Type::array) fail(": not a trace: \"traceEvents\" is " + a_type(m_events) + ", not an array");
  }

  bool null() override { return scalar(value_of(Type::null)); }
  bool boolean(bool) override { return scalar(value_of(Type::boolean)); }
  bool number_integer(number_integer_t value) override {
    return scalar(value_of(Type::integer, value, static_cast<double>(value)));
  }
  bool number_unsigned(number_unsigned_t value) override {
    return scalar(value_of(Type::integer, static_cast<std::int64_t>(value), static_cast<double>(value)));
  }
  bool number_float(number_float_t value, const string_t&) override { return scalar(value_of(Type::number, 0, value)); }
  bool string(string_t& value) override { return scalar(value_of(Type::string, 0, 0, std::move(value))); }
  bool binary(binary_t&) override { return scalar(value_of(Type::string)); }  // not from JSON text

  bool start_object(std::size_t) override { return open(Type::object); }
  bool start_array(std::size_t) override { return open(Type::array); }

  bool key(string_t& name) override {
    if (at_top_member()) m_top_key = name;
    else if (m_depth == m_events_depth + 1) m_slot = m_event.member(name);
    else if (m_depth == m_events_depth + 2 && m_in_args) m_slot = m_event.args_member(name);
    return true;
  }

  bool end_object() override {
    close();
    if (m_depth == m_events_depth) m_sink(++m_index, m_event);
    return true;
  }
  bool end_array() override {
    close();
    if (m_depth == m_events_depth - 1) m_events_depth = -1;
    return true;
  }

  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    fail(": not valid JSON: " + without_prefix(e.what()));
  }

private:
  [[noreturn]] void fail(const std::string& problem) const { throw TraceError(m_source + problem); }

  bool at_top_member() const { return m_depth == 1 && m_top == Type::object; }
  bool at_trace_events() const { return at_top_member() && m_top_key == "traceEvents"; }

  // A scalar, or the start of a container (with no value).
  void place(JsonValue&& value) {
    if (m_depth == 0) m_top = value.type;
    else if (at_trace_events()) m_events = value.type;
    else if (m_depth == m_events_depth)
      fail(": event " + std::to_string(++m_index) + " is " + a_type(value.type) + ", not an object");
    else if (m_slot) *m_slot = std::move(value);
    m_slot = nullptr;
  }

  bool scalar(JsonValue&& value) {
    place(std::move(value));
    return true;
  }

  bool open(Type type) {
    const bool events_array = type == Type::array && (m_depth == 0 || at_trace_events());
    if (type == Type::object && m_depth == m_events_depth) {
      m_event = EventFields{};
    } else {
      if (m_depth == m_events_depth + 1) m_in_args = type == Type::object && m_slot == &m_event.args;
      place(value_of(type));
    }
    ++m_depth;
    if (events_array) m_events_depth = m_depth;
    return true;
  }

  void close() {
    --m_depth;
    if (m_depth == m_events_depth + 1) m_in_args = false;  // a member of the event ended
  }

  std::string m_source;
  const EventSink& m_sink;
  int m_depth = 0;
  int m_events_depth = -1;  // the depth of the events while inside their array
  Type m_top = Type::absent;
  Type m_events = Type::absent;  // the type of the top-level "traceEvents"
  std::string m_top_key;         // the top-level member being read
  std::size_t m_index = 0;       // of the last event, counting from 1
  EventFields m_event;           // the event being read
  JsonValue* m_slot = nullptr;   // where the next value of the event goes, if anywhere
  bool m_in_args = false;        // inside the event's "args"
};

template <class Input>
void parse_with(Input&& input, std::string_view source, const EventSink& sink) {
  EventsHandler handler(source, sink);
  (void)json::sax_parse(std::forward<Input>(input), &handler);  // errors throw from the handler
  handler.check_shape();
}

}  // namespace

std::string a_type(JsonValue::Type type) {
  switch (type) {
  case Type::absent: return "missing";
  case Type::null: return "null";
  case Type::boolean: return "a boolean";
  case Type::integer:
  case Type::number: return "a number";
  case Type::string: return "a string";
  case Type::object: return "an object";
  case Type::array: return "an array";
  }
  return "?";
}

JsonValue* EventFields::member(std::string_view key) noexcept {
  for (auto [name, field] : k_members)
    if (key == name) return &(this->*field);
  return nullptr;
}

JsonValue* EventFields::args_member(std::string_view key) noexcept {
  if (key == "task") return &args_task;
  return key == "name" ? &args_name : nullptr;
}

void parse_trace_json(std::istream& input, std::string_view source, const EventSink& sink) {
  parse_with(input, source, sink);
}

void parse_trace_json(std::string_view text, std::string_view source, const EventSink& sink) {
  parse_with(text, source, sink);
}

}  // namespace gearbox::lab::detail
