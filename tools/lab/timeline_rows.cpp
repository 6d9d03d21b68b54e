// From events to rows: every event becomes a part (run, wait or lifetime) of one row; a
// row's intervals are then set algebra on its parts: running = run - wait, waiting =
// wait + (lifetime - run). Spans need their thread's nesting first (which span a
// span.wait belongs to) and pool jobs need the thread's spans (the part they cover is
// already drawn), so those are resolved thread by thread.
#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_map>

#include "timeline_trace.hpp"

namespace gearbox::lab::detail {

std::string TraceTask::label() const {
  if (!name.empty()) return name;
  return number ? "task " + std::to_string(*number) : "task";
}

namespace {

struct Piece {
  double begin = 0;
  double end = 0;
};
using Pieces = std::vector<Piece>;

// The union of `pieces` as sorted, disjoint pieces of non-zero length.
Pieces unite(Pieces pieces) {
  std::sort(pieces.begin(), pieces.end(), [](const Piece& a, const Piece& b) { return a.begin < b.begin; });
  Pieces out;
  for (const Piece& p : pieces) {
    if (p.end <= p.begin) continue;
    if (!out.empty() && p.begin <= out.back().end) out.back().end = std::max(out.back().end, p.end);
    else out.push_back(p);
  }
  return out;
}

// a - b, both sorted and disjoint (as unite makes them).
Pieces subtract(const Pieces& a, const Pieces& b) {
  Pieces out;
  std::size_t j = 0;
  for (Piece p : a) {
    while (j < b.size() && b[j].end <= p.begin) ++j;
    for (std::size_t k = j; k < b.size() && b[k].begin < p.end; ++k) {
      if (b[k].begin > p.begin) out.push_back({p.begin, b[k].begin});
      p.begin = std::max(p.begin, b[k].end);
    }
    if (p.begin < p.end) out.push_back(p);
  }
  return out;
}

enum class Role : std::uint8_t { run, wait, life };

// Collects the parts of all rows, then turns them into the timeline.
class RowParts {
public:
  explicit RowParts(std::size_t rows) : m_first_event(rows, k_none) {}

  // `tid`: for a run part, the thread that ran it (0: not known).
  void add(std::uint32_t row, Role role, Piece piece, std::uint32_t event, std::int64_t tid = 0) {
    m_parts.push_back({piece, row, role, tid});
    m_first_event[row] = std::min(m_first_event[row], event);
  }

  template <class LabelOf>
  std::vector<TimelineRow> finish(const LabelOf& label_of) && {
    std::sort(m_parts.begin(), m_parts.end(), [](const Part& a, const Part& b) {
      return a.row != b.row ? a.row < b.row : a.piece.begin < b.piece.begin;
    });
    struct Order {
      double first_us;
      std::uint32_t first_event;
      std::uint32_t row;
      std::size_t parts_begin;
      std::size_t parts_end;
    };
    std::vector<Order> order;
    for (std::size_t i = 0, end = i; i < m_parts.size(); i = end) {
      while (end < m_parts.size() && m_parts[end].row == m_parts[i].row) ++end;
      order.push_back({m_parts[i].piece.begin, m_first_event[m_parts[i].row], m_parts[i].row, i, end});
    }
    std::sort(order.begin(), order.end(), [](const Order& a, const Order& b) {
      return a.first_us != b.first_us ? a.first_us < b.first_us : a.first_event < b.first_event;
    });
    std::vector<TimelineRow> rows;
    rows.reserve(order.size());
    for (const Order& o : order)
      rows.push_back({label_of(o.row), intervals(o.parts_begin, o.parts_end), o.first_us});
    return rows;
  }

private:
  static constexpr std::uint32_t k_none = std::numeric_limits<std::uint32_t>::max();
  struct Part {
    Piece piece;
    std::uint32_t row;
    Role role;
    std::int64_t tid;
  };

  std::vector<Interval> intervals(std::size_t begin, std::size_t end) const {
    Pieces run, wait, life;
    std::vector<std::pair<std::int64_t, Pieces>> run_by_thread;  // few threads per row: a vector will do
    for (std::size_t i = begin; i < end; ++i) {
      const Part& part = m_parts[i];
      (part.role == Role::run ? run : part.role == Role::wait ? wait : life).push_back(part.piece);
      if (part.role != Role::run) continue;
      auto it = std::find_if(run_by_thread.begin(), run_by_thread.end(), [&](const auto& t) { return t.first == part.tid; });
      if (it == run_by_thread.end()) it = run_by_thread.insert(run_by_thread.end(), {part.tid, {}});
      it->second.push_back(part.piece);
    }
    run = unite(std::move(run));
    wait = unite(std::move(wait));
    Pieces waiting = subtract(unite(std::move(life)), run);
    waiting.insert(waiting.end(), wait.begin(), wait.end());
    waiting = unite(std::move(waiting));
    std::vector<Interval> out;
    // Running, thread by thread: a task runs on one thread at a time, so these do not
    // overlap (a trace that says otherwise keeps each thread's own pieces).
    for (auto& [tid, pieces] : run_by_thread)
      for (const Piece& p : subtract(unite(std::move(pieces)), wait)) out.push_back({p.begin, p.end, SliceState::running, tid});
    for (const Piece& p : waiting) out.push_back({p.begin, p.end, SliceState::waiting, 0});
    std::sort(out.begin(), out.end(), [](const Interval& a, const Interval& b) { return a.begin_us < b.begin_us; });
    return out;
  }

  std::vector<Part> m_parts;
  std::vector<std::uint32_t> m_first_event;  // by row: the first event that gave it a part
};

Piece piece_of(const TraceEvent& e) { return {e.begin_us, e.end_us}; }

bool is_task_event(const TraceEvent& e) {
  return e.kind == EventKind::task_slice || e.kind == EventKind::task_begin || e.kind == EventKind::task_end;
}
// A task or a span: what --rows auto takes as the sign that units are worth drawing.
bool is_unit_event(const TraceEvent& e) { return e.kind != EventKind::job && e.kind != EventKind::process; }

// Thread rows are named by "thread_name"; a process-pool worker with no name is "worker
// PID"; a process's main thread may go by the process's name.
std::string thread_label(const TraceEvents& trace, std::uint32_t thread, bool process_worker) {
  const TraceThread& t = trace.threads[thread];
  if (!t.name.empty()) return t.name;
  if (process_worker) return "worker " + std::to_string(t.pid);
  if (const auto it = trace.process_names.find(t.pid); t.tid == t.pid && it != trace.process_names.end())
    return it->second;
  return "thread " + std::to_string(t.tid);
}

std::vector<bool> process_workers(const TraceEvents& trace) {
  std::vector<bool> workers(trace.threads.size());
  for (const TraceEvent& e : trace.events)
    if (e.kind == EventKind::process) workers[e.thread] = true;
  return workers;
}

// The events are only needed until they are parts: a trace of a million tasks frees a
// hundred megabytes before the rows are made.
void drop_events(TraceEvents& trace) { std::vector<TraceEvent>().swap(trace.events); }

std::vector<TimelineRow> thread_rows(TraceEvents& trace) {
  RowParts parts(trace.threads.size());
  for (std::uint32_t i = 0; i < trace.events.size(); ++i) {
    const TraceEvent& e = trace.events[i];
    if (e.kind == EventKind::task_begin || e.kind == EventKind::task_end) continue;
    parts.add(e.thread, e.kind == EventKind::span_wait ? Role::wait : Role::run, piece_of(e), i, trace.threads[e.thread].tid);
  }
  const std::vector<bool> workers = process_workers(trace);
  drop_events(trace);
  return std::move(parts).finish([&](std::uint32_t row) { return thread_label(trace, row, workers[row]); });
}

// Units: rows [0, tasks) are tasks, then one per span name, then one per thread for jobs.
class UnitRows {
public:
  explicit UnitRows(TraceEvents& trace)
      : m_trace(trace), m_spans_from(trace.tasks.size()), m_threads_from(m_spans_from + trace.span_names.size()),
        m_parts(m_threads_from + trace.threads.size()) {
    merge_spans_into_tasks();
  }

  std::vector<TimelineRow> build() && {
    add_tasks();
    add_thread_by_thread();
    const std::vector<bool> workers = process_workers(m_trace);
    drop_events(m_trace);
    return std::move(m_parts).finish([&](std::uint32_t row) {
      if (row < m_spans_from) return m_trace.tasks[row].label();
      if (row < m_threads_from) return m_trace.span_names[row - m_spans_from].name;
      return thread_label(m_trace, row - m_threads_from, workers[row - m_threads_from]);
    });
  }

private:
  // A span named like a task of its process draws in the task's row (the first such task).
  void merge_spans_into_tasks() {
    m_span_row.resize(m_trace.span_names.size());
    std::unordered_map<std::string, std::vector<std::uint32_t>> spans_by_name;
    for (std::uint32_t s = 0; s < m_trace.span_names.size(); ++s) {
      m_span_row[s] = static_cast<std::uint32_t>(m_spans_from + s);
      spans_by_name[m_trace.span_names[s].name].push_back(s);
    }
    if (spans_by_name.empty()) return;
    std::vector<bool> merged(m_trace.span_names.size());
    for (std::uint32_t t = 0; t < m_trace.tasks.size(); ++t) {
      const auto it = spans_by_name.find(m_trace.tasks[t].label());
      if (it == spans_by_name.end()) continue;
      for (std::uint32_t s : it->second) {
        if (merged[s] || m_trace.span_names[s].pid != m_trace.tasks[t].pid) continue;
        m_span_row[s] = t;
        merged[s] = true;
      }
    }
  }

  void add_tasks() {
    constexpr double k_unset = std::numeric_limits<double>::quiet_NaN();
    std::vector<double> spawned(m_trace.tasks.size(), k_unset), completed(m_trace.tasks.size(), k_unset);
    std::vector<std::uint32_t> spawn_event(m_trace.tasks.size());
    for (std::uint32_t i = 0; i < m_trace.events.size(); ++i) {
      const TraceEvent& e = m_trace.events[i];
      if (e.kind == EventKind::task_slice) m_parts.add(e.unit, Role::run, piece_of(e), i, m_trace.threads[e.thread].tid);
      if (e.kind == EventKind::task_begin && !(e.begin_us >= spawned[e.unit])) {
        spawned[e.unit] = e.begin_us;
        spawn_event[e.unit] = i;
      }
      if (e.kind == EventKind::task_end && !(e.begin_us <= completed[e.unit])) completed[e.unit] = e.begin_us;
    }
    // A task never seen to complete lives to the end of the trace; an "e" alone says nothing.
    for (std::uint32_t t = 0; t < m_trace.tasks.size(); ++t) {
      if (std::isnan(spawned[t])) continue;
      const double end = !std::isnan(completed[t]) ? std::max(spawned[t], completed[t]) : m_trace.end_us;
      m_parts.add(t, Role::life, {spawned[t], end}, spawn_event[t]);
    }
  }

  // Spans, span.waits and jobs, grouped by thread and sorted so that an enclosing span
  // comes before what it encloses.
  void add_thread_by_thread() {
    std::vector<std::uint32_t> order;
    for (std::uint32_t i = 0; i < m_trace.events.size(); ++i) {
      if (!is_task_event(m_trace.events[i])) order.push_back(i);
    }
    std::sort(order.begin(), order.end(), [&](std::uint32_t x, std::uint32_t y) {
      const TraceEvent& a = m_trace.events[x];
      const TraceEvent& b = m_trace.events[y];
      if (a.thread != b.thread) return a.thread < b.thread;
      if (a.begin_us != b.begin_us) return a.begin_us < b.begin_us;
      if (a.end_us != b.end_us) return a.end_us > b.end_us;
      return a.kind < b.kind;  // a span before a span.wait of the same extent
    });
    for (std::size_t i = 0, end = i; i < order.size(); i = end) {
      while (end < order.size() && m_trace.events[order[end]].thread == m_trace.events[order[i]].thread) ++end;
      add_one_thread(order.data() + i, order.data() + end);
    }
  }

  void add_one_thread(const std::uint32_t* first, const std::uint32_t* last) {
    struct Open {
      double end_us;
      std::uint32_t row;
    };
    std::vector<Open> open;  // the spans enclosing the current event, innermost last
    Pieces covered, jobs;
    std::uint32_t first_job = 0;
    for (const std::uint32_t* it = first; it != last; ++it) {
      const TraceEvent& e = m_trace.events[*it];
      if (!is_unit_event(e)) {
        if (jobs.empty()) first_job = *it;
        jobs.push_back(piece_of(e));
        continue;
      }
      while (!open.empty() && open.back().end_us <= e.begin_us) open.pop_back();
      covered.push_back(piece_of(e));
      if (e.kind == EventKind::span) {
        m_parts.add(m_span_row[e.unit], Role::run, piece_of(e), *it, m_trace.threads[e.thread].tid);
        open.push_back({e.end_us, m_span_row[e.unit]});
        continue;
      }
      auto enclosing = std::find_if(open.rbegin(), open.rend(), [&](const Open& o) { return o.end_us >= e.end_us; });
      m_parts.add(enclosing != open.rend() ? enclosing->row : m_span_row[e.unit], Role::wait, piece_of(e), *it);
    }
    const std::uint32_t thread = m_trace.events[*first].thread;
    for (const Piece& p : subtract(unite(std::move(jobs)), unite(std::move(covered))))
      m_parts.add(static_cast<std::uint32_t>(m_threads_from + thread), Role::run, p, first_job, m_trace.threads[thread].tid);
  }

  TraceEvents& m_trace;
  std::size_t m_spans_from;
  std::size_t m_threads_from;
  RowParts m_parts;
  std::vector<std::uint32_t> m_span_row;  // by span name: the row it draws in
};

}  // namespace

Timeline build_timeline(TraceEvents&& trace, RowMode mode) {
  if (mode == RowMode::automatic) {
    const bool any_unit = std::any_of(trace.events.begin(), trace.events.end(), is_unit_event);
    mode = any_unit ? RowMode::units : RowMode::threads;
  }
  Timeline timeline;
  timeline.mode = mode;
  timeline.begin_us = trace.begin_us;
  timeline.end_us = trace.end_us;
  timeline.rows = mode == RowMode::threads ? thread_rows(trace) : UnitRows(trace).build();
  return timeline;
}

}  // namespace gearbox::lab::detail
