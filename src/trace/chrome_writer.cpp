#include "trace/chrome_writer.hpp"

#include <algorithm>
#include <cstdio>
#include <unordered_map>

#include <gearbox/trace.hpp>

namespace gearbox::trace::detail {
namespace {

struct Ref {
  std::uint64_t tsc;
  std::uint32_t thread;
  std::uint32_t index;
};

struct TaskInfo {
  std::uint64_t number = 0;  // "task N": numbered in order of first appearance
  std::string name;          // set by name_task, else empty
  bool alive = false;        // its lifetime "b" was written, not yet its "e"
  const char* waiting_on = nullptr;  // its wait "b" was written, not yet its "e"
};

struct Open {  // a slice begun on a thread and not yet ended
  Kind kind;
  std::uint64_t id;  // the task, or the process-pool call
  double ts;
  std::uint64_t name_index = 0;  // jobs and spans
  std::uint8_t aux = 0;
  std::string call_name = {};    // process-pool calls
};

const char* then_name(std::uint8_t aux) noexcept {
  if (aux == k_done) return "done";
  return gearbox::detail::to_string(static_cast<gearbox::detail::WaitOn>(aux));
}

class Writer {
public:
  Writer(std::string& out, const std::vector<ThreadSnapshot>& threads, const TickConverter& clock,
         std::uint64_t origin_ns, bool& first)
      : m_out(out), m_threads(threads), m_clock(clock), m_origin_ns(origin_ns), m_first(first) {}

  void write() {
    for (std::uint32_t t = 0; t < m_threads.size(); ++t) {
      const ThreadSnapshot& thread = m_threads[t];
      begin_event("M", "thread_name", thread.pid, thread.tid);
      m_out += ",\"args\":{\"name\":" + json_string(thread.thread_name) + "}}";
      for (std::uint32_t i = 0; i < thread.events.size(); ++i) {
        const Event& e = thread.events[i];
        m_refs.push_back({e.tsc, t, i});
        if (e.kind() == Kind::task_name)
          if (const std::string* name = name_after(thread, i)) m_names[e.payload()] = *name;
      }
    }
    std::stable_sort(m_refs.begin(), m_refs.end(), [](const Ref& a, const Ref& b) { return a.tsc < b.tsc; });
    m_open.resize(m_threads.size());
    for (const Ref& ref : m_refs) write_event(ref.thread, ref.index);
  }

private:
  TaskInfo& task(std::uint64_t id) {
    TaskInfo& info = m_tasks[id];
    if (info.number == 0) {
      info.number = ++m_task_count;
      if (auto named = m_names.find(id); named != m_names.end()) info.name = std::move(named->second);
    }
    return info;
  }
  std::string task_label(const TaskInfo& info) const {
    return info.name.empty() ? "task " + std::to_string(info.number) : info.name;
  }
  double micros(std::uint64_t tsc) const noexcept {
    return (m_clock.to_ns(tsc) - static_cast<double>(m_origin_ns)) / 1000.0;
  }

  void begin_event(const char* ph, std::string_view name, int pid, int tid) {
    if (!m_first) m_out += ",\n";
    m_first = false;
    m_out += "{\"ph\":\"";
    m_out += ph;
    m_out += "\",\"name\":" + json_string(name) + ",\"pid\":" + std::to_string(pid) + ",\"tid\":" + std::to_string(tid);
  }
  void add_number(const char* key, double value) {
    char text[64];
    std::snprintf(text, sizeof text, ",\"%s\":%.3f", key, value);
    m_out += text;
  }
  // An async ("b"/"e") event on the task's own track.
  void async_event(const char* ph, const char* category, std::string_view name, const TaskInfo& info,
                   const ThreadSnapshot& thread, double ts, std::string_view args = {}) {
    begin_event(ph, name, thread.pid, thread.tid);
    m_out += ",\"cat\":\"";
    m_out += category;
    m_out += "\",\"id\":\"0x";
    char id[24];
    std::snprintf(id, sizeof id, "%llx", static_cast<unsigned long long>(info.number));
    m_out += id;
    m_out += "\"";
    add_number("ts", ts);
    if (!args.empty()) {
      m_out += ",\"args\":";
      m_out += args;
    }
    m_out += "}";
  }
  void slice(const char* category, std::string_view name, const ThreadSnapshot& thread, double begin, double end,
             std::string_view args = {}) {
    begin_event("X", name, thread.pid, thread.tid);
    m_out += ",\"cat\":\"";
    m_out += category;
    m_out += "\"";
    add_number("ts", begin);
    add_number("dur", std::max(0.0, end - begin));
    if (!args.empty()) {
      m_out += ",\"args\":";
      m_out += args;
    }
    m_out += "}";
  }

  void ensure_alive(TaskInfo& info, const ThreadSnapshot& thread, double ts, std::uint64_t parent) {
    if (info.alive) return;
    info.alive = true;
    async_event("b", "task", task_label(info), info, thread, ts, "{\"parent\":" + std::to_string(parent) + "}");
  }
  void end_wait(TaskInfo& info, const ThreadSnapshot& thread, double ts) {
    if (!info.waiting_on) return;
    async_event("e", "wait", std::string("wait ") + info.waiting_on, info, thread, ts);
    info.waiting_on = nullptr;
  }
  // The name a name_ref right after event `i` gives it (null if there is none: the pair
  // was split by the ring overwriting its first half).
  static const std::string* name_after(const ThreadSnapshot& thread, std::uint32_t i) {
    if (i + 1 >= thread.events.size()) return nullptr;
    const Event& next = thread.events[i + 1];
    if (next.kind() != Kind::name_ref || next.payload() >= thread.names.size()) return nullptr;
    return &thread.names[next.payload()];
  }
  static std::string name_of(const ThreadSnapshot& thread, std::uint64_t index) {
    return index < thread.names.size() ? thread.names[index] : std::string("?");
  }
  // The task running on the thread now (the innermost open task slice), or 0.
  std::uint64_t running_task(std::uint32_t t) const {
    const auto& stack = m_open[t];
    for (auto it = stack.rbegin(); it != stack.rend(); ++it)
      if (it->kind == Kind::task_begin) return it->id;
    return 0;
  }

  // The innermost open slice of `kind` on the thread, removed from its stack.
  bool pop_open(std::uint32_t t, Kind kind, Open& found) {
    auto& stack = m_open[t];
    for (auto it = stack.rbegin(); it != stack.rend(); ++it) {
      if (it->kind != kind) continue;
      found = *it;
      stack.erase(std::next(it).base());
      return true;
    }
    return false;  // it began before the trace did
  }

  void write_event(std::uint32_t t, std::uint32_t index) {
    const ThreadSnapshot& thread = m_threads[t];
    const Event& e = thread.events[index];
    const double ts = micros(e.tsc);
    const std::uint64_t id = e.payload();
    switch (e.kind()) {
      case Kind::task_spawn: {
        const std::uint64_t spawner = running_task(t);
        const std::uint64_t parent = spawner ? task(spawner).number : 0;
        ensure_alive(task(id), thread, ts, parent);
        break;
      }
      case Kind::task_begin: {
        TaskInfo& info = task(id);
        ensure_alive(info, thread, ts, 0);
        end_wait(info, thread, ts);
        m_open[t].push_back({Kind::task_begin, id, ts, 0, 0});
        break;
      }
      case Kind::task_end: {
        TaskInfo& info = task(id);
        Open begun;
        if (pop_open(t, Kind::task_begin, begun))
          slice("task", task_label(info), thread, begun.ts, ts,
                "{\"task\":" + std::to_string(info.number) + ",\"then\":\"" + then_name(e.aux()) + "\"}");
        if (e.aux() == k_done) {
          if (info.alive) async_event("e", "task", task_label(info), info, thread, ts);
          info.alive = false;
        } else if (info.alive) {
          info.waiting_on = then_name(e.aux());
          async_event("b", "wait", std::string("wait ") + info.waiting_on, info, thread, ts);
        }
        break;
      }
      case Kind::task_wake:
        end_wait(task(id), thread, ts);
        break;
      case Kind::task_name:
      case Kind::name_ref:
        break;  // read with the event they follow
      case Kind::job_begin:
      case Kind::span_begin:
        m_open[t].push_back({e.kind(), 0, ts, id, e.aux()});
        break;
      case Kind::call_begin: {
        const std::string* name = name_after(thread, index);
        m_open[t].push_back({e.kind(), id, ts, 0, 0, name ? *name : std::string("call")});
        break;
      }
      case Kind::job_end: {
        Open begun;
        if (pop_open(t, Kind::job_begin, begun)) slice("job", name_of(thread, begun.name_index), thread, begun.ts, ts);
        break;
      }
      case Kind::call_end: {
        Open begun;
        if (pop_open(t, Kind::call_begin, begun))
          slice("process", begun.call_name, thread, begun.ts, ts,
                "{\"call\":" + std::to_string(begun.id) + "}");
        break;
      }
      case Kind::steal: {
        // An instant event on the thief's row: who it took from, and how many.
        begin_event("i", "steal", thread.pid, thread.tid);
        m_out += ",\"cat\":\"steal\",\"s\":\"t\"";
        add_number("ts", ts);
        m_out += ",\"args\":{\"victim\":" + std::to_string(e.aux()) + ",\"tasks\":" + std::to_string(id) + "}}";
        break;
      }
      case Kind::blocked: {
        // An instant event on the worker's row, where the slice that blocked it just ended.
        begin_event("i", "blocked", thread.pid, thread.tid);
        m_out += ",\"cat\":\"blocked\",\"s\":\"t\"";
        add_number("ts", ts);
        m_out += ",\"args\":{\"at_least_ms\":" + std::to_string(id) + "}}";
        break;
      }
      case Kind::span_end: {
        Open begun;
        if (pop_open(t, Kind::span_begin, begun))
          slice(begun.aux == static_cast<std::uint8_t>(SpanKind::wait) ? "span.wait" : "span",
                name_of(thread, begun.name_index), thread, begun.ts, ts);
        break;
      }
    }
  }

  std::string& m_out;
  const std::vector<ThreadSnapshot>& m_threads;
  const TickConverter& m_clock;
  std::uint64_t m_origin_ns;
  bool& m_first;
  std::vector<Ref> m_refs;
  std::unordered_map<std::uint64_t, TaskInfo> m_tasks;
  std::unordered_map<std::uint64_t, std::string> m_names;  // from name_task, by task id
  std::uint64_t m_task_count = 0;
  std::vector<std::vector<Open>> m_open;  // per thread
};

}  // namespace

std::string json_string(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
          out += escaped;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

void append_chrome_events(std::string& out, const std::vector<ThreadSnapshot>& threads, const TickConverter& clock,
                          std::uint64_t origin_ns, bool& first) {
  Writer(out, threads, clock, origin_ns, first).write();
}

}  // namespace gearbox::trace::detail
