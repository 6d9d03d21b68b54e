// Tracing: who ran when. The runtime records compact events per thread — a task spawned,
// a run slice began and ended (and what the task then waited on: timer, socket, channel,
// future...), a task woken, a task completed; thread-pool jobs; process-pool tasks inside
// the worker processes — and writes them as Chrome Trace Event JSON, which opens in
// Perfetto (ui.perfetto.dev) or chrome://tracing and which `gearbox-lab timeline` draws.
//
//   GEARBOX_TRACE=run.json ./my_program        // traces the whole run, written at exit
//
//   gearbox::trace::start();                   // or around a part of a program
//   loop.run(work());
//   gearbox::trace::stop();
//   gearbox::trace::write_json("run.json");
//
//   { gearbox::trace::Span span("resize " + name); ... }   // your own slices
//
// Process-pool workers started while tracing is on record too; each writes its events
// when it exits normally (a pool's shutdown), and write_json merges them, on one timebase
// (CLOCK_MONOTONIC), under the worker's pid. A worker that crashed takes its events with it.
//
// Cost: off, each hook in the runtime is one load and a predictable branch. On, an event
// is a timestamp (the CPU's time-stamp counter where it has one) and a 32-byte store into
// a per-thread buffer, no locks and no allocation except one chunk per 64K events. Each
// thread keeps at most k_max_events_per_thread: beyond, its oldest events are overwritten
// (a ring), and dropped_events() says how many.
//
// Thread-safety: every function may be called from any thread. write_json and clear see
// the events recorded before they are called; call them when the traced work has
// finished (events recorded while they run may or may not be included).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace gearbox::trace {

inline constexpr std::uint64_t k_max_events_per_thread = std::uint64_t{1} << 21;

// Starts recording on every thread of the process (idempotent). Process-pool workers
// spawned from now on record too. Does not clear what was recorded before.
void start();
// Stops recording (idempotent). What was recorded stays until clear() or process exit.
void stop();
// True while recording.
bool enabled() noexcept;

// Writes everything recorded so far (this process, and the workers that have exited) as
// Chrome Trace Event JSON. Throws gearbox::IoError if the file cannot be written.
void write_json(const std::filesystem::path& path);
// The same, as a string.
std::string to_json();
// Forgets everything recorded so far (workers' events too).
void clear();

// Events overwritten because a thread's buffer was full, since the last clear().
std::uint64_t dropped_events() noexcept;

// Names the calling task in the trace (instead of "task 17"). Call from a task on a loop;
// elsewhere, or while tracing is off, it does nothing.
void name_task(std::string_view name);
// Names the calling thread in the trace (default: its pthread name).
void name_thread(std::string_view name);

// A slice of your own on the calling thread, from construction to destruction: `run`
// shows as running, `wait` as blocked (a blocking read, a lock). Spans nest. Recorded only
// if tracing was on when the span began.
enum class SpanKind : std::uint8_t { run, wait };

class Span {
public:
  explicit Span(std::string_view name, SpanKind kind = SpanKind::run);
  ~Span();
  Span(const Span&) = delete;
  Span& operator=(const Span&) = delete;

private:
  bool m_recorded;
};

}  // namespace gearbox::trace
