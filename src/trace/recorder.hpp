// The trace recorder: per-thread buffers of fixed-size events, and the hooks the runtime
// calls (the loop, the pools, the process workers). Private to the library.
//
// The hot path (a hook while tracing is on) is inline and touches only the calling
// thread's buffer: a timestamp and a 16-byte store, then a release store of the cursor.
// Chunks are added or recycled under the registry mutex (once per chunk: 4K events at
// first, doubling up to k_max_chunk_events, so a thread that records little costs 64 KiB),
// and a reader (the JSON writer) copies under the same mutex, so it never reads a chunk
// being reused.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <gearbox/detail/job.hpp>
#include <gearbox/detail/task_core.hpp>

#include "trace/trace_clock.hpp"

namespace gearbox::trace::detail {

enum class Kind : std::uint8_t {
  task_spawn,   // payload: the task (its spawner: the task running on this thread then)
  task_begin,   // payload: the task; a run slice begins on this thread
  task_end,     // payload: the task; aux: WaitOn, or k_done when it completed
  task_wake,    // payload: the task; it was made ready again
  task_name,    // payload: the task; the next event (a name_ref) holds its name
  name_ref,     // payload: a name index, for the event before it (task_name, call_begin)
  job_begin,    // payload: name index ("job", "blocking call")
  job_end,
  call_begin,   // in a process-pool worker; payload: the call id; a name_ref follows
  call_end,
  span_begin,   // payload: name index; aux: SpanKind
  span_end,
  steal,        // on a Runtime worker; payload: tasks taken; aux: the victim worker (mod 256)
  blocked,      // on a Runtime worker, as a slice ends that held it too long; payload: the threshold in ms
};

// A task_end's aux when the task completed rather than suspended.
inline constexpr std::uint8_t k_done = 0xff;

// 16 bytes: the timestamp, and kind, aux and a 48-bit payload packed in one word.
struct Event {
  std::uint64_t tsc;  // 0: untimed, it takes the time of the event before it on its thread
  std::uint64_t word;

  Kind kind() const noexcept { return static_cast<Kind>(word & 0xff); }
  std::uint8_t aux() const noexcept { return static_cast<std::uint8_t>(word >> 8); }
  std::uint64_t payload() const noexcept { return word >> 16; }
};
static_assert(sizeof(Event) == 16);

inline constexpr std::size_t k_first_chunk_events = 1 << 12;  // 64 KiB
inline constexpr std::size_t k_max_chunk_events = 1 << 17;    // 2 MiB

struct Chunk {
  Event* events;
  std::size_t capacity;
};

// One thread's events. Written only by its thread; read by the writer under the registry
// mutex (see the header comment for how the two stay apart).
class ThreadBuffer {
public:
  ThreadBuffer(std::uint32_t index, int pid, int tid, std::string thread_name);
  ~ThreadBuffer();

  void record(Kind kind, std::uint64_t payload, std::uint8_t aux = 0) noexcept { record_at(ticks(), kind, payload, aux); }
  // An event that happens inside the current slice and takes its time (the last time
  // recorded on this thread): a spawn, a wake. One clock read fewer, about 10 ns on x86.
  void record_untimed(Kind kind, std::uint64_t payload) noexcept { record_at(0, kind, payload, 0); }
  void record_at(std::uint64_t tsc, Kind kind, std::uint64_t payload, std::uint8_t aux) noexcept {
    if (m_cursor == m_chunk_end) [[unlikely]]
      next_chunk();
    m_cursor->tsc = tsc;
    m_cursor->word = payload << 16 | std::uint64_t{aux} << 8 | static_cast<std::uint64_t>(kind);
    // Memory ordering: release, paired with copy_events' acquire: the reader sees every
    // event up to the published cursor.
    m_published.store(++m_cursor, std::memory_order_release);
  }
  std::uint32_t intern(std::string_view name);
  // Unique in the process: the buffer's index in the high bits, a sequence in the low 32.
  std::uint64_t next_task_id() noexcept { return (std::uint64_t{m_index} << 32) | ++m_task_seq; }

  // Reader side, under the registry mutex.
  void copy_events(std::vector<Event>& out) const;
  void clear() noexcept;  // under the registry mutex
  const std::vector<std::string>& names() const noexcept { return m_names; }

  std::uint32_t m_index;
  // Owner thread only. true: something other than a task ran since the last timed event
  // (the loop polled, ran a posted function, a task was spawned mid-slice), so the next
  // slice's start must read the clock. false: the next slice starts where the last one
  // ended (the loop went straight from one ready task to the next), and takes its time.
  bool m_gap = true;
  const int m_pid;
  const int m_tid;
  std::string m_thread_name;    // written under the registry mutex
  std::uint64_t m_dropped = 0;  // written under the registry mutex

private:
  void next_chunk() noexcept;

  std::vector<Chunk> m_chunks;  // oldest first; changed under the mutex
  std::size_t m_capacity = 0;   // events all chunks hold
  Event* m_cursor = nullptr;
  Event* m_chunk_end = nullptr;
  // The end of the recorded events in the newest chunk. Written by the owner thread
  // (release, after the event is stored); read by the writer (acquire, under the mutex).
  std::atomic<Event*> m_published{nullptr};
  std::uint32_t m_task_seq = 0;
  std::vector<std::string> m_names;                             // changed under the mutex
  std::unordered_map<std::string, std::uint32_t> m_name_index;  // owner thread only
};

// true while recording. Written by start()/stop(); read by every hook. Relaxed: a hook
// that misses a just-started trace records nothing, which is what a trace that starts a
// moment later looks like; nothing else is published through it.
extern std::atomic<bool> g_on;

inline bool on() noexcept { return g_on.load(std::memory_order_relaxed); }

// The calling thread's buffer (a plain TLS pointer: one load on the hot path).
extern __thread ThreadBuffer* t_buffer;
ThreadBuffer& make_buffer();
inline ThreadBuffer& buffer() {
  if (ThreadBuffer* b = t_buffer) [[likely]]
    return *b;
  return make_buffer();
}

// Hooks, called only when on() is true (callers test it, so off costs a branch).
inline void task_spawned(gearbox::detail::TaskCore& core) noexcept {
  ThreadBuffer& b = buffer();
  core.set_trace_id(b.next_task_id());
  // Untimed inside a task (it takes the time of the slice around it). A spawn from outside
  // any task (Runtime::run, Runtime::spawn from a plain thread) may be the only event of
  // its thread, with no time to borrow: it takes its own.
  if (gearbox::detail::current_core())
    b.record_untimed(Kind::task_spawn, core.trace_id());
  else
    b.record(Kind::task_spawn, core.trace_id());
  b.m_gap = true;  // an eager start runs the child inside this slice
}
inline void task_begin(gearbox::detail::TaskCore& core) noexcept {
  ThreadBuffer& b = buffer();
  if (core.trace_id() == 0) core.set_trace_id(b.next_task_id());  // spawned before the trace
  if (b.m_gap) {
    b.m_gap = false;
    b.record(Kind::task_begin, core.trace_id());
  } else {
    b.record_untimed(Kind::task_begin, core.trace_id());
  }
}
// The loop did something else than run the next ready task (see ThreadBuffer::m_gap).
inline void loop_gap() noexcept { buffer().m_gap = true; }
inline void task_end(const gearbox::detail::TaskCore& core, bool done, gearbox::detail::WaitOn on) noexcept {
  buffer().record(Kind::task_end, core.trace_id(), done ? k_done : static_cast<std::uint8_t>(on));
}
inline void task_woken(const gearbox::detail::TaskCore& core) noexcept {
  if (core.trace_id() != 0) buffer().record_untimed(Kind::task_wake, core.trace_id());
}
// A Runtime worker (this thread) took `tasks` tasks from worker `victim`'s queue.
inline void steal(unsigned victim, std::uint64_t tasks) noexcept {
  buffer().record(Kind::steal, tasks, static_cast<std::uint8_t>(victim));
}
// The run slice that just ended on this Runtime worker held it for `threshold_ms` or more.
inline void blocked(std::uint64_t threshold_ms) noexcept { buffer().record(Kind::blocked, threshold_ms); }
void job_begin(const char* what) noexcept;
inline void job_end() noexcept { buffer().record(Kind::job_end, 0); }
void call_begin(std::uint64_t call, std::string_view function) noexcept;
inline void call_end() noexcept { buffer().record(Kind::call_end, 0); }

// Runs a pool's job, recorded as a slice named `what` while tracing is on.
inline void run_job(gearbox::detail::Job* job, const char* what) noexcept {
  if (!on()) [[likely]] {
    job->m_run(job);
    return;
  }
  job_begin(what);
  job->m_run(job);
  job_end();
}

// Process-pool support. The variable a worker is started with while tracing is on
// ("name=value"), or empty when off.
std::string worker_environment();
// In a worker: starts recording if the pool asked for it (see worker_environment).
void start_worker_if_asked();
// In a worker about to exit: writes its events where the pool's writer will find them.
void flush_worker() noexcept;

}  // namespace gearbox::trace::detail
