// The recorder's buffers and hooks, and the trace session: start, stop, clear, the
// GEARBOX_TRACE variable, and the hand-over with process-pool workers.
#include "trace/recorder.hpp"

#include <pthread.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <system_error>

#include <gearbox/error.hpp>
#include <gearbox/trace.hpp>

#include "trace/chrome_writer.hpp"
#include "trace/trace_clock.hpp"

namespace gearbox::trace {
namespace detail {

std::atomic<bool> g_on{false};

namespace {

constexpr const char* k_trace_variable = "GEARBOX_TRACE";
constexpr const char* k_worker_variable = "GEARBOX_TRACE_WORKER";

// The session. Everything here is written under g_mutex.
std::mutex g_mutex;
std::vector<std::unique_ptr<ThreadBuffer>> g_buffers;  // every thread that recorded
bool g_calibrated = false;
std::uint64_t g_ticks0 = 0;     // ticks() when tracing first started
std::uint64_t g_ns0 = 0;        // monotonic_ns() at the same moment
std::uint64_t g_origin_ns = 0;  // time zero of the trace (the parent's, in a worker)
std::string g_worker_dir;       // where workers leave their events (made on demand)
std::string g_worker_part;      // in a worker: the file its events go to at exit

std::string current_thread_name() {
  char name[32] = {};
  if (pthread_getname_np(pthread_self(), name, sizeof name) != 0 || name[0] == '\0') return "thread";
  return name;
}

void calibrate_locked() {
  if (g_calibrated) return;
  g_calibrated = true;
  g_ns0 = monotonic_ns();
  g_ticks0 = ticks();
  if (g_origin_ns == 0) g_origin_ns = g_ns0;
}

TickConverter converter_locked() { return TickConverter(g_ticks0, g_ns0, ticks(), monotonic_ns()); }

std::vector<ThreadSnapshot> snapshot_locked() {
  std::vector<ThreadSnapshot> threads;
  threads.reserve(g_buffers.size());
  for (const auto& buffer : g_buffers) {
    ThreadSnapshot& t = threads.emplace_back();
    t.pid = buffer->m_pid;
    t.tid = buffer->m_tid;
    t.thread_name = buffer->m_thread_name;
    t.names = buffer->names();
    buffer->copy_events(t.events);
    // Untimed events take the time of the event before them on the thread (the first
    // ones, of the one after them).
    std::uint64_t last = 0;
    for (Event& e : t.events) {
      if (e.tsc == 0) e.tsc = last;
      last = e.tsc;
    }
    for (auto it = t.events.begin(); it != t.events.end() && it->tsc == 0; ++it) {
      const auto timed = std::find_if(it, t.events.end(), [](const Event& e) { return e.tsc != 0; });
      if (timed == t.events.end()) break;
      std::for_each(it, timed, [&](Event& e) { e.tsc = timed->tsc; });
      break;
    }
  }
  return threads;
}

void remove_worker_parts_locked(bool remove_directory) {
  if (g_worker_dir.empty()) return;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(g_worker_dir, error))
    std::filesystem::remove(entry.path(), error);
  if (remove_directory) {
    std::filesystem::remove(g_worker_dir, error);
    g_worker_dir.clear();
  }
}

// Workers' fragments (each a run of ",{...}" events), appended to `out` and deleted.
void merge_worker_parts_locked(std::string& out, bool& first) {
  if (g_worker_dir.empty()) return;
  std::error_code error;
  std::vector<std::filesystem::path> parts;
  for (const auto& entry : std::filesystem::directory_iterator(g_worker_dir, error))
    if (entry.path().extension() == ".json") parts.push_back(entry.path());
  std::sort(parts.begin(), parts.end());
  for (const auto& part : parts) {
    std::ifstream in(part);
    std::stringstream text;
    text << in.rdbuf();
    std::string fragment = text.str();
    if (fragment.empty()) continue;
    // Fragments are written with a leading comma; the first event of the file has none.
    if (first) {
      if (fragment.front() == ',') fragment.erase(0, 1);
      first = false;
    }
    out += fragment;
  }
}

std::string build_json_locked() {
  const TickConverter clock = converter_locked();
  std::string out = "{\"traceEvents\":[\n";
  bool first = true;
  char program[64] = "gearbox";
  if (std::ifstream comm("/proc/self/comm"); comm) comm.getline(program, sizeof program);
  out += "{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":" + std::to_string(::getpid()) +
         ",\"tid\":" + std::to_string(::getpid()) + ",\"args\":{\"name\":" + json_string(program) + "}}";
  first = false;
  append_chrome_events(out, snapshot_locked(), clock, g_origin_ns, first);
  merge_worker_parts_locked(out, first);
  out += "\n],\"displayTimeUnit\":\"ms\",\"otherData\":{\"generator\":\"gearbox\",\"clock\":\"CLOCK_MONOTONIC\"}}\n";
  return out;
}

// GEARBOX_TRACE=path: trace the whole run, written at exit. Read before main, while the
// process has one thread, so the variable can be removed: programs this one starts (a
// child gearbox program) do not also write to `path`. Process-pool workers get their own
// variable instead (worker_environment).
std::string g_exit_path;

void write_at_exit() {
  try {
    write_json(g_exit_path);
    std::fprintf(stderr, "gearbox: trace written to %s\n", g_exit_path.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gearbox: cannot write the trace: %s\n", e.what());
  }
  std::lock_guard lock(g_mutex);
  remove_worker_parts_locked(true);
}

[[maybe_unused]] const bool g_started_from_environment = [] {
  if (std::getenv(k_worker_variable)) return false;  // a worker: see start_worker_if_asked
  const char* path = std::getenv(k_trace_variable);
  if (!path || !*path) return false;
  g_exit_path = path;
  ::unsetenv(k_trace_variable);
  start();
  std::atexit(write_at_exit);
  return true;
}();

}  // namespace

// ---- ThreadBuffer ----

__thread ThreadBuffer* t_buffer = nullptr;

namespace {

// Chunks are mapped with their pages populated: one system call instead of a page fault
// per 4 KiB while recording.
Event* map_chunk(std::size_t events) noexcept {
  void* memory = ::mmap(nullptr, events * sizeof(Event), PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  return memory == MAP_FAILED ? nullptr : static_cast<Event*>(memory);
}

void unmap_chunk(const Chunk& chunk) noexcept { ::munmap(chunk.events, chunk.capacity * sizeof(Event)); }

}  // namespace

ThreadBuffer::ThreadBuffer(std::uint32_t index, int pid, int tid, std::string thread_name)
    : m_index(index), m_pid(pid), m_tid(tid), m_thread_name(std::move(thread_name)) {}

ThreadBuffer::~ThreadBuffer() {
  for (const Chunk& chunk : m_chunks) unmap_chunk(chunk);
}

void ThreadBuffer::next_chunk() noexcept {
  std::lock_guard lock(g_mutex);
  const std::size_t size =
      m_chunks.empty() ? k_first_chunk_events : std::min(m_chunks.back().capacity * 2, k_max_chunk_events);
  Event* events = m_capacity + size <= k_max_events_per_thread ? map_chunk(size) : nullptr;
  if (events) {
    m_chunks.push_back({events, size});
    m_capacity += size;
  } else if (!m_chunks.empty()) {
    // Full (or out of memory): the oldest chunk becomes the newest (a ring of chunks).
    std::rotate(m_chunks.begin(), m_chunks.begin() + 1, m_chunks.end());
    m_dropped += m_chunks.size() == 1 ? static_cast<std::uint64_t>(m_cursor - m_chunks.back().events)
                                      : m_chunks.back().capacity;
  } else {
    std::abort();  // not even one chunk: nowhere to record
  }
  m_cursor = m_chunks.back().events;
  m_chunk_end = m_cursor + m_chunks.back().capacity;
  m_published.store(m_cursor, std::memory_order_relaxed);  // under the mutex, which the reader holds
}

std::uint32_t ThreadBuffer::intern(std::string_view name) {
  std::string key(name);
  if (auto found = m_name_index.find(key); found != m_name_index.end()) return found->second;
  std::lock_guard lock(g_mutex);
  const auto index = static_cast<std::uint32_t>(m_names.size());
  m_names.push_back(key);
  m_name_index.emplace(std::move(key), index);
  return index;
}

void ThreadBuffer::copy_events(std::vector<Event>& out) const {
  if (m_chunks.empty()) return;
  // Memory ordering: acquire, paired with record's release (see m_published).
  const Event* end = m_published.load(std::memory_order_acquire);
  out.reserve(out.size() + m_capacity);
  for (std::size_t i = 0; i + 1 < m_chunks.size(); ++i)
    out.insert(out.end(), m_chunks[i].events, m_chunks[i].events + m_chunks[i].capacity);
  out.insert(out.end(), static_cast<const Event*>(m_chunks.back().events), end);
}

void ThreadBuffer::clear() noexcept {
  // Keeps the newest chunk (the owner may be writing into it) and empties it.
  while (m_chunks.size() > 1) {
    m_capacity -= m_chunks.front().capacity;
    unmap_chunk(m_chunks.front());
    m_chunks.erase(m_chunks.begin());
  }
  if (!m_chunks.empty()) {
    m_cursor = m_chunks.back().events;
    m_chunk_end = m_cursor + m_chunks.back().capacity;
    m_published.store(m_cursor, std::memory_order_relaxed);
  }
  m_dropped = 0;
}

ThreadBuffer& make_buffer() {
  auto made = std::make_unique<ThreadBuffer>(0, ::getpid(), static_cast<int>(::syscall(SYS_gettid)), current_thread_name());
  std::lock_guard lock(g_mutex);
  made->m_index = static_cast<std::uint32_t>(g_buffers.size() + 1);
  t_buffer = made.get();
  g_buffers.push_back(std::move(made));  // kept after the thread ends: its events stay
  return *t_buffer;
}

// ---- hooks that name things ----

void job_begin(const char* what) noexcept {
  ThreadBuffer& b = buffer();
  try {
    b.record(Kind::job_begin, b.intern(what));
  } catch (...) {  // out of memory for a name: the job is not traced
  }
}

void call_begin(std::uint64_t call, std::string_view function) noexcept {
  ThreadBuffer& b = buffer();
  try {
    const std::uint32_t name = b.intern(function);
    b.record(Kind::call_begin, call);
    b.record(Kind::name_ref, name);
  } catch (...) {
  }
}

// ---- workers ----

std::string worker_environment() {
  if (!on()) return {};
  std::lock_guard lock(g_mutex);
  if (g_worker_dir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    std::string dir = std::string(tmp && *tmp ? tmp : "/tmp") + "/gearbox-trace-XXXXXX";
    if (!::mkdtemp(dir.data())) return {};  // workers go untraced; the parent's trace is intact
    g_worker_dir = dir;
    static const bool removed_at_exit = [] {
      // Unless GEARBOX_TRACE's writer runs after this (atexit runs in reverse order) and
      // still has the workers' events to merge: it removes the directory itself.
      std::atexit([] {
        if (!g_exit_path.empty()) return;
        std::lock_guard lock(g_mutex);
        remove_worker_parts_locked(true);
      });
      return true;
    }();
    (void)removed_at_exit;
  }
  return std::string(k_worker_variable) + "=" + std::to_string(g_origin_ns) + ":" + g_worker_dir;
}

void start_worker_if_asked() {
  const char* value = std::getenv(k_worker_variable);
  if (!value) return;
  char* rest = nullptr;
  const unsigned long long origin = std::strtoull(value, &rest, 10);
  if (!rest || *rest != ':' || rest[1] != '/') return;
  {
    std::lock_guard lock(g_mutex);
    g_origin_ns = origin;
    g_worker_part = std::string(rest + 1) + "/" + std::to_string(::getpid());
  }
  name_thread("worker " + std::to_string(::getpid()));
  start();
}

void flush_worker() noexcept {
  try {
    std::lock_guard lock(g_mutex);
    if (g_worker_part.empty()) return;
    g_on.store(false, std::memory_order_relaxed);
    std::string fragment;
    bool first = false;  // every event with its leading comma
    fragment += ",{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":" + std::to_string(::getpid()) +
                ",\"tid\":" + std::to_string(::getpid()) + ",\"args\":{\"name\":\"gearbox worker " +
                std::to_string(::getpid()) + "\"}}";
    append_chrome_events(fragment, snapshot_locked(), converter_locked(), g_origin_ns, first);
    // Written under a temporary name and renamed: the parent never merges half a file.
    const std::string partial = g_worker_part + ".tmp";
    std::ofstream(partial, std::ios::trunc) << fragment;
    std::filesystem::rename(partial, g_worker_part + ".json");
  } catch (...) {  // a worker's trace is best effort: it must still exit
  }
}

}  // namespace detail

// ---- public API ----

void start() {
  std::lock_guard lock(detail::g_mutex);
  detail::calibrate_locked();
  // Memory ordering: relaxed (see g_on). The mutex orders the calibration for writers.
  detail::g_on.store(true, std::memory_order_relaxed);
}

void stop() { detail::g_on.store(false, std::memory_order_relaxed); }

bool enabled() noexcept { return detail::on(); }

std::string to_json() {
  std::lock_guard lock(detail::g_mutex);
  if (!detail::g_calibrated) detail::calibrate_locked();
  return detail::build_json_locked();
}

void write_json(const std::filesystem::path& path) {
  const std::string json = to_json();
  std::FILE* file = std::fopen(path.c_str(), "w");
  if (!file) throw IoError(errno, "cannot open trace file " + path.string());
  const std::size_t written = std::fwrite(json.data(), 1, json.size(), file);
  const int saved = errno;
  if (std::fclose(file) != 0 || written != json.size())
    throw IoError(written != json.size() ? saved : errno, "cannot write trace file " + path.string());
}

void clear() {
  std::lock_guard lock(detail::g_mutex);
  for (const auto& buffer : detail::g_buffers) buffer->clear();
  detail::remove_worker_parts_locked(false);
}

std::uint64_t dropped_events() noexcept {
  std::lock_guard lock(detail::g_mutex);
  std::uint64_t dropped = 0;
  for (const auto& buffer : detail::g_buffers) dropped += buffer->m_dropped;
  return dropped;
}

void name_task(std::string_view name) {
  if (!detail::on()) return;
  const gearbox::detail::TaskCore* core = gearbox::detail::current_core();
  if (!core || core->trace_id() == 0) return;
  detail::ThreadBuffer& b = detail::buffer();
  const std::uint32_t index = b.intern(name);
  b.record(detail::Kind::task_name, core->trace_id());
  b.record(detail::Kind::name_ref, index);
}

void name_thread(std::string_view name) {
  detail::ThreadBuffer& b = detail::buffer();
  std::lock_guard lock(detail::g_mutex);
  b.m_thread_name = std::string(name);
}

Span::Span(std::string_view name, SpanKind kind) : m_recorded(detail::on()) {
  if (!m_recorded) return;
  detail::ThreadBuffer& b = detail::buffer();
  b.record(detail::Kind::span_begin, b.intern(name), static_cast<std::uint8_t>(kind));
}

Span::~Span() {
  if (m_recorded) detail::buffer().record(detail::Kind::span_end, 0);
}

}  // namespace gearbox::trace
