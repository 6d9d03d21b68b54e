#include <gearbox/runtime.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>

#include <pthread.h>

#include <gearbox/detail/blocking_wait.hpp>
#include <gearbox/detail/unobserved.hpp>

#include "runtime/runtime_core.hpp"
#include "thread/signals_blocked.hpp"
#include "trace/recorder.hpp"

namespace gearbox {
namespace detail {
namespace {

// Tasks run between two looks at the injection queue and at the worker's own I/O, timers
// and posts while it is busy (Go's and Tokio's 61: a prime, so it does not beat in step
// with a program's own periods).
constexpr std::uint32_t k_global_interval = 61;
// Tasks a worker runs from its LIFO slot in a row before it takes one from its queue.
constexpr unsigned k_max_lifo_polls = 3;
// The most workers a runtime may have (m_counts packs 16-bit counts).
constexpr unsigned k_max_threads = 4096;

// A figure written by one worker only: a plain add (no lock prefix), readable anywhere.
void bump(std::atomic<std::uint64_t>& figure, std::uint64_t by = 1) noexcept {
  figure.store(figure.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}

// The worker did something else than run its next task (polled, parked): the next slice's
// begin must take its own time in the trace, not the time of the slice before the gap.
void note_gap() noexcept {
  if (trace::detail::on()) [[unlikely]]
    trace::detail::loop_gap();
}

// Eager starts nest on the worker's stack; counted so the depth stays bounded.
thread_local int t_eager_depth = 0;

}  // namespace

struct RuntimeCore::Worker {
  Worker(RuntimeCore& runtime_, unsigned index_, LoopOptions options)
      : runtime(runtime_), index(index_), loop(std::move(options)), rng(0x9e3779b97f4a7c15ull * (index_ + 1)) {}

  RuntimeCore& runtime;
  const unsigned index;
  Loop loop;
  RunQueue queue;
  // Owner only.
  Runnable* lifo = nullptr;
  unsigned lifo_polls = 0;
  std::uint32_t tick = 0;
  std::uint64_t rng;
  bool searching = false;
  bool parked = false;  // under m_idle_mutex
  // Figures, each written by this worker only (bump), read by stats() and counters().
  std::atomic<std::uint64_t> spawned{0}, started{0}, completed{0}, failed{0}, cancelled{0};
  std::atomic<std::uint64_t> steals{0}, stolen{0}, parks{0};
  // The blocking monitor's view. slice_seq: written by this worker only, odd while a run
  // slice is in progress (each slice adds 2). blocked_seq: the slice the monitor found
  // blocking, written by the monitor only; the worker marks the trace when that slice
  // ends. blocking: slices reported, written by the monitor only. Memory ordering: all
  // relaxed; they are numbers compared for equality, carrying no other data.
  std::atomic<std::uint64_t> slice_seq{0}, blocked_seq{0}, blocking{0};
  std::thread thread;

  unsigned random_below(unsigned n) noexcept {  // xorshift64: victim choice only
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return static_cast<unsigned>(rng % n);
  }
};

namespace {
thread_local RuntimeCore::Worker* t_worker = nullptr;
}

bool on_runtime_worker() noexcept { return t_worker != nullptr; }

RuntimeCore::RuntimeCore(RuntimeOptions options) : m_options(std::move(options)) {
  unsigned threads = m_options.threads;
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  if (threads > k_max_threads) throw std::invalid_argument("gearbox: RuntimeOptions::threads above 4096");
  m_workers.reserve(threads);
  for (unsigned i = 0; i < threads; ++i) {
    LoopOptions loop_options;
    loop_options.on_unhandled_exception = m_options.on_unhandled_exception;
    loop_options.io_backend = m_options.io_backend;  // a ring per worker, with io_uring
    loop_options.socket_io = m_options.socket_io;
    m_workers.push_back(std::make_unique<Worker>(*this, i, std::move(loop_options)));
    LoopAccess::attach(m_workers.back()->loop, this, i);
  }
  for (unsigned i = 0; i <= threads; ++i) m_live.push_back(std::make_unique<LiveShard>());
  m_idle.reserve(threads);
  const SignalsBlocked blocked;  // workers inherit a mask blocking signals (as the pools')
  try {
    for (auto& worker : m_workers) worker->thread = std::thread([this, w = worker.get()] { worker_main(*w); });
    if (threads > 1 || m_options.blocking_threshold.count() > 0) m_monitor = std::thread([this] { monitor_main(); });
  } catch (...) {
    m_stopping.store(true, std::memory_order_release);
    stop_monitor();
    for (auto& worker : m_workers) {
      LoopAccess::wake_up(worker->loop);
      if (worker->thread.joinable()) worker->thread.join();
    }
    throw;
  }
}

RuntimeCore::~RuntimeCore() {
  if (local_worker()) {
    std::fprintf(stderr, "gearbox: a Runtime destroyed by one of its own workers\n");
    std::terminate();
  }
  // Cancel what is alive, and wait for it to end (its destructors run on the workers).
  // A task may spawn others while it unwinds: cancel again until none is left, and trust
  // an empty scan only if no spawn or end happened during it (runtime_core.hpp).
  m_draining.store(true, std::memory_order_seq_cst);
  for (;;) {
    const std::uint32_t generation = m_ended_generation.load(std::memory_order_seq_cst);
    const std::size_t live = cancel_all();
    if (m_ended_generation.load(std::memory_order_seq_cst) != generation) continue;
    if (live == 0) break;
    wait_on(m_ended_generation, generation, std::chrono::steady_clock::now() + std::chrono::milliseconds(100));
  }
  m_stopping.store(true, std::memory_order_release);
  stop_monitor();
  for (auto& worker : m_workers) LoopAccess::wake_up(worker->loop);
  for (auto& worker : m_workers) worker->thread.join();
}

void RuntimeCore::stop_monitor() noexcept {
  {
    std::lock_guard lock(m_monitor_mutex);
    m_monitor_stop = true;
  }
  m_monitor_wake.notify_one();
  if (m_monitor.joinable()) m_monitor.join();
}

void RuntimeCore::monitor_main() {
  pthread_setname_np(pthread_self(), "gearbox-rtmon");
  using std::chrono::steady_clock;
  const steady_clock::duration threshold = m_options.blocking_threshold;  // zero: no reports
  // A look every millisecond, and at least four per threshold: a slice first seen in
  // progress at t0 (at most one look after it began) is reported at the first look a
  // threshold after t0, so never when shorter than the threshold and always by 1.5x it.
  steady_clock::duration period = std::chrono::milliseconds(1);
  if (threshold.count() > 0) period = std::min(period, threshold / 4);
  struct Seen {
    std::uint64_t seq = 0;         // the slice number at the last look
    steady_clock::time_point since;  // when that slice was first seen in progress
    std::uint64_t reported = 0;
    StrandWatch strand;
  };
  std::vector<Seen> seen(m_workers.size());
  std::unique_lock lock(m_monitor_mutex);
  bool look_now = false;  // just woken from a sleep: look at once, not a period later
  while (look_now || !m_monitor_wake.wait_for(lock, period, [this] { return m_monitor_stop; })) {
    look_now = false;
    if (idle_of(m_counts.load(std::memory_order_relaxed)) == threads()) {
      // Nothing runs and nothing is queued (a worker parks only with an empty queue, and
      // only it fills its queue): sleep until a worker wakes, then look at once, so that
      // a slice it starts is reported as if the monitor had been looking all along.
      monitor_sleep_while_all_parked(lock);
      if (m_monitor_stop) break;
      for (Seen& s : seen) s.strand = StrandWatch{};
      look_now = true;
      continue;
    }
    bump(m_monitor_looks);
    // The look runs without m_monitor_mutex (it guards only the stop flag and the sleep):
    // share_stranded_work takes m_idle_mutex, and a worker leaving the idle set takes
    // m_monitor_mutex to wake us; one lock is never held while taking the other.
    lock.unlock();
    const steady_clock::time_point now = steady_clock::now();
    for (std::size_t i = 0; i < m_workers.size(); ++i) {
      Worker& worker = *m_workers[i];
      Seen& s = seen[i];
      share_stranded_work(worker, s.strand);
      if (threshold.count() == 0) continue;
      const std::uint64_t seq = worker.slice_seq.load(std::memory_order_relaxed);
      if (seq % 2 == 0 || seq != s.seq) {  // between slices, or another slice since
        s.seq = seq;
        s.since = now;
        continue;
      }
      if (now - s.since >= threshold && s.reported != seq) {
        s.reported = seq;
        worker.blocked_seq.store(seq, std::memory_order_relaxed);
        bump(worker.blocking);
      }
    }
    lock.lock();
  }
}

void RuntimeCore::monitor_sleep_while_all_parked(std::unique_lock<std::mutex>& lock) {
  m_monitor_asleep.store(true, std::memory_order_seq_cst);
  // Memory ordering: seq_cst, after the store above (runtime_core.hpp): a worker that left
  // the idle set after this load sees m_monitor_asleep and wakes us.
  if (idle_of(m_counts.load(std::memory_order_seq_cst)) != threads()) {
    m_monitor_asleep.store(false, std::memory_order_relaxed);
    return;
  }
  m_monitor_wake.wait(lock, [this] { return m_monitor_stop || !m_monitor_asleep.load(std::memory_order_relaxed); });
  m_monitor_asleep.store(false, std::memory_order_relaxed);
}

void RuntimeCore::wake_monitor_if_asleep() noexcept {
  // Memory ordering: seq_cst, after the caller's seq_cst RMW of m_counts (runtime_core.hpp).
  if (!m_monitor_asleep.load(std::memory_order_seq_cst)) [[likely]]
    return;
  {
    std::lock_guard lock(m_monitor_mutex);
    m_monitor_asleep.store(false, std::memory_order_relaxed);
  }
  m_monitor_wake.notify_one();
}

void RuntimeCore::share_stranded_work(Worker& worker, StrandWatch& watch) noexcept {
  // Tasks a worker's own loop made ready wake no parked worker (schedule_woken), so behind
  // long slices they would wait while another worker sleeps. A queue that held tasks at
  // two looks in a row and gave out fewer between them than it holds now (at that rate it
  // would not drain by the next look: its worker is stuck in a slice, or its slices are
  // long, and no thief came) is offered to a parked worker, as Go's sysmon hands a busy
  // P's work to an idle one. A queue that drains quickly is left alone: waking a parked
  // worker for short tasks cost http_server a third of its rate. notify_parked does
  // nothing when no worker is parked or one is already searching.
  const std::size_t queued = worker.queue.size_hint();
  const std::uint64_t taken = worker.queue.taken();
  if (queued > 0 && watch.queued && taken - watch.taken < queued) notify_parked();
  watch.queued = queued > 0;
  watch.taken = taken;
}

Loop& RuntimeCore::next_descriptor_home() noexcept {
  return m_workers[m_next_home.fetch_add(1, std::memory_order_relaxed) % threads()]->loop;
}

RuntimeCore::Worker* RuntimeCore::local_worker() const noexcept {
  return t_worker && &t_worker->runtime == this ? t_worker : nullptr;
}

Loop* RuntimeCore::current_worker_loop() const noexcept {
  Worker* worker = local_worker();
  return worker ? &worker->loop : nullptr;
}

Loop& RuntimeCore::worker_loop(unsigned index) noexcept { return m_workers[index]->loop; }

// ---- tasks in and out ---------------------------------------------------------------

void RuntimeCore::adopt(TaskCore* core, Start start) noexcept {
  Worker* worker = local_worker();
  const unsigned shard = worker ? worker->index : threads();
  core->m_live_shard = static_cast<std::uint16_t>(shard);
  {
    std::lock_guard lock(m_live[shard]->mutex);
    m_live[shard]->tasks.push_back(core->live_node());
    ++m_live[shard]->count;
  }
  note_draining_change();
  if (worker)
    bump(worker->spawned);
  else
    m_spawned_outside.fetch_add(1, std::memory_order_relaxed);
  if (trace::detail::on()) [[unlikely]]
    trace::detail::task_spawned(*core);
  if (!worker) {
    push_inject(core, core, 1);
    notify_parked();
    return;
  }
  if (start == Start::eager && t_eager_depth < k_max_eager_depth) {
    ++t_eager_depth;
    TaskCore::run_scheduled(core);
    --t_eager_depth;
    return;
  }
  push_local(*worker, core);
}

void RuntimeCore::forget(TaskCore* core) noexcept {
  // Counted before it leaves the live list: whoever sees it gone (live_tasks() takes the
  // same mutex) sees it counted.
  if (Worker* worker = local_worker()) {
    const std::exception_ptr error = core->exception();
    bump(!error ? worker->completed : is_cancellation(error) ? worker->cancelled : worker->failed);
  }
  {
    LiveShard& shard = *m_live[core->m_live_shard];
    std::lock_guard lock(shard.mutex);
    core->live_node()->unlink();
    --shard.count;
  }
  note_draining_change();
}

void RuntimeCore::note_draining_change() noexcept {
  // Memory ordering: seq_cst load (a plain load on x86-64; the flag is written once), so
  // a change the destructor's scan may have missed is announced (runtime_core.hpp).
  if (m_draining.load(std::memory_order_seq_cst)) [[unlikely]] {
    m_ended_generation.fetch_add(1, std::memory_order_seq_cst);
    wake_all(m_ended_generation);
  }
}

std::size_t RuntimeCore::live_tasks() const noexcept {
  std::size_t live = 0;
  for (const auto& shard : m_live) {
    std::lock_guard lock(shard->mutex);
    live += shard->count;
  }
  return live;
}

void RuntimeCore::note_started(unsigned worker) noexcept { bump(m_workers[worker]->started); }

void RuntimeCore::schedule_woken(TaskCore* core) noexcept {
  Worker* worker = local_worker();
  if (!worker) {
    push_inject(core, core, 1);
    notify_parked();
  } else if (current_core() != nullptr) {
    // Woken by the task running here: it runs next, while what it reads is still in this
    // core's cache (a message just sent, a lock just released).
    if (Runnable* previous = std::exchange(worker->lifo, core)) push_local(*worker, previous);
  } else {
    // A timer, I/O or a post of this worker's own loop, between tasks: this worker will
    // run it (it is awake), and wakes nobody for it. Waking a parked worker to steal
    // readiness that is not its own cost one eventfd write and one epoll_wait return per
    // batch, and the stolen connection's next readiness comes back here anyway: http_server
    // on 2 workers ran 0.8x nginx so, 1.1-1.3x without (docs/architecture.md). Awake workers
    // still steal it when they run dry; readiness stranded behind a long slice is handed to
    // a parked worker by the monitor (share_stranded_work).
    push_local(*worker, core, WakeParked::no);
  }
}

void RuntimeCore::schedule_again(TaskCore* core) noexcept {
  if (Worker* worker = local_worker()) {
    push_local(*worker, core);
  } else {
    push_inject(core, core, 1);
    notify_parked();
  }
}

void RuntimeCore::push_local(Worker& worker, Runnable* task, WakeParked wake) noexcept {
  if (worker.queue.push_back(task)) {
    // One task the worker will get to itself; more are worth sharing.
    if (wake == WakeParked::if_shared && worker.queue.size_hint() > 1) notify_parked();
    return;
  }
  // Full: half of it, then the task, go to the injection queue (oldest first).
  Runnable* first = worker.queue.pop();
  Runnable* last = first;
  std::size_t count = 1;
  for (std::uint64_t i = 1; i < RunQueue::k_capacity / 2; ++i) {
    Runnable* next = worker.queue.pop();
    if (!next) break;
    last->m_next = next;
    last = next;
    ++count;
  }
  if (first) {
    last->m_next = task;
    push_inject(first, task, count + 1);
  } else {
    push_inject(task, task, 1);  // thieves emptied it meanwhile
  }
  notify_parked();
}

void RuntimeCore::push_inject(Runnable* first, Runnable* last, std::size_t count) noexcept {
  last->m_next = nullptr;
  std::lock_guard lock(m_inject_mutex);
  *m_inject_tail = first;
  m_inject_tail = &last->m_next;
  m_inject_size.store(m_inject_size.load(std::memory_order_relaxed) + count, std::memory_order_seq_cst);
}

Runnable* RuntimeCore::pop_inject() noexcept {
  // Memory ordering: a relaxed hint; the mutex orders the tasks themselves.
  if (m_inject_size.load(std::memory_order_relaxed) == 0) return nullptr;
  Worker* worker = local_worker();
  std::size_t moved = 0;
  Runnable* first;
  {
    std::lock_guard lock(m_inject_mutex);
    std::size_t size = m_inject_size.load(std::memory_order_relaxed);
    if (size == 0) return nullptr;
    // Take a fair share into the local queue (one lock for many tasks, as Tokio does).
    std::size_t share = std::min<std::size_t>(size / threads() + 1, RunQueue::k_capacity / 2);
    first = m_inject_head;
    m_inject_head = first->m_next;
    --size;
    for (; worker && share > 1 && m_inject_head; --share) {
      Runnable* next = m_inject_head;
      if (!worker->queue.push_back(next)) break;
      m_inject_head = next->m_next;
      --size;
      ++moved;
    }
    if (!m_inject_head) m_inject_tail = &m_inject_head;
    m_inject_size.store(size, std::memory_order_relaxed);
  }
  if (moved > 0) notify_parked();
  return first;
}

// ---- the workers --------------------------------------------------------------------

void RuntimeCore::worker_main(Worker& worker) {
  // The trace names each row after its thread: one row per worker.
  const std::string name = "gearbox-rt" + std::to_string(worker.index);
  pthread_setname_np(pthread_self(), name.c_str());
  t_worker = &worker;
  LoopAccess::enter(&worker.loop);
  while (!m_stopping.load(std::memory_order_acquire)) {
    try {
      if (Runnable* task = next_task(worker)) {
        if (worker.searching) end_searching(worker);
        run_task(worker, task);
        continue;
      }
      if (LoopAccess::drive(worker.loop, false) > 0) {
        note_gap();
        continue;
      }
      if (Runnable* task = steal(worker)) {
        if (worker.searching) end_searching(worker);  // (one worker never searches)
        run_task(worker, task);
        continue;
      }
      park(worker);
      note_gap();
    } catch (...) {
      // The reactor failed (epoll_wait, say): report it and go on; tasks are unaffected.
      LoopAccess::report_unhandled(worker.loop, std::current_exception());
    }
  }
  LoopAccess::enter(nullptr);
  t_worker = nullptr;
}

Runnable* RuntimeCore::next_task(Worker& worker) {
  if (++worker.tick % k_global_interval == 0) {
    // Busy for a while: let timers, I/O and posts in, and be fair to the global queue.
    if (LoopAccess::drive(worker.loop, false) > 0) note_gap();
    if (Runnable* task = pop_inject()) {
      worker.lifo_polls = 0;
      return task;
    }
  }
  if (worker.lifo) {
    if (worker.lifo_polls < k_max_lifo_polls) {
      ++worker.lifo_polls;
      return std::exchange(worker.lifo, nullptr);
    }
    push_local(worker, std::exchange(worker.lifo, nullptr));  // its turn comes at the back
  }
  worker.lifo_polls = 0;
  if (Runnable* task = worker.queue.pop()) return task;
  return pop_inject();
}

void RuntimeCore::run_task(Worker& worker, Runnable* task) noexcept {
  // Odd while the slice runs, for the blocking monitor (see Worker).
  const std::uint64_t seq = worker.slice_seq.load(std::memory_order_relaxed) + 1;
  worker.slice_seq.store(seq, std::memory_order_relaxed);
  task->m_run(task);
  worker.slice_seq.store(seq + 1, std::memory_order_relaxed);
  if (worker.blocked_seq.load(std::memory_order_relaxed) == seq) [[unlikely]] {
    if (trace::detail::on()) trace::detail::blocked(m_options.blocking_threshold.count());
  }
}

Runnable* RuntimeCore::steal(Worker& worker) {
  const unsigned n = threads();
  if (n > 1) {
    if (!worker.searching) {
      // At most half of the workers search at once (more only burn the victims' caches).
      const std::uint32_t counts = m_counts.load(std::memory_order_acquire);
      if (2 * searching_of(counts) >= n) return nullptr;
      m_counts.fetch_add(1, std::memory_order_seq_cst);
      worker.searching = true;
    }
    const unsigned start = worker.random_below(n);
    for (unsigned i = 0; i < n; ++i) {
      const unsigned victim = (start + i) % n;
      if (victim == worker.index) continue;
      std::uint64_t moved = 0;
      if (Runnable* task = m_workers[victim]->queue.steal_into(worker.queue, &moved)) {
        bump(worker.steals);
        bump(worker.stolen, moved);
        if (trace::detail::on()) [[unlikely]]
          trace::detail::steal(victim, moved);
        return task;
      }
    }
  }
  return pop_inject();
}

void RuntimeCore::end_searching(Worker& worker) noexcept {
  worker.searching = false;
  // Memory ordering: seq_cst RMW (see the header). The last searcher to find work wakes
  // another worker: where there was one task there may be more.
  const std::uint32_t before = m_counts.fetch_sub(1, std::memory_order_seq_cst);
  if (searching_of(before) == 1) notify_parked();
}

bool RuntimeCore::work_available() const noexcept {
  // Memory ordering: seq_cst loads after park's seq_cst RMW (runtime_core.hpp).
  if (m_inject_size.load(std::memory_order_seq_cst) > 0) return true;
  for (const auto& worker : m_workers)
    if (worker->queue.size_hint() > 0) return true;
  return false;
}

void RuntimeCore::park(Worker& worker) {
  {
    std::lock_guard lock(m_idle_mutex);
    m_idle.push_back(worker.index);
    worker.parked = true;
    // Memory ordering: a seq_cst RMW, then work_available()'s seq_cst loads (the header).
    const bool was_searching = std::exchange(worker.searching, false);
    m_counts.fetch_add(k_idle_one - (was_searching ? 1u : 0u), std::memory_order_seq_cst);
  }
  if (!work_available() && !m_stopping.load(std::memory_order_acquire)) {
    bump(worker.parks);
    LoopAccess::drive(worker.loop, true);  // until a timer, I/O, a post or notify_parked
  }
  unpark_self(worker);
}

void RuntimeCore::unpark_self(Worker& worker) noexcept {
  {
    std::lock_guard lock(m_idle_mutex);
    if (!worker.parked) {  // notify_parked took us out, counted us searching, woke the monitor
      worker.searching = true;
      return;
    }
    // Nobody woke us: a timer, I/O or a post of our own did. Leave the idle set ourselves;
    // as a searcher only if that gave us nothing to run (Tokio's transition_from_parked): a
    // worker busy with its own readiness is no searcher, so finding it is no reason to wake
    // another worker (end_searching's chain would wake the other at every batch).
    worker.parked = false;
    m_idle.erase(std::find(m_idle.begin(), m_idle.end(), worker.index));
    const bool has_tasks = worker.lifo != nullptr || worker.queue.size_hint() > 0;
    worker.searching = !has_tasks;
    m_counts.fetch_add((has_tasks ? 0u : 1u) - k_idle_one, std::memory_order_seq_cst);
  }
  wake_monitor_if_asleep();  // after m_idle_mutex: no lock is ever held across the other
}

void RuntimeCore::notify_parked() noexcept {
  // Memory ordering: a seq_cst load after the caller's seq_cst publishing store (header).
  const std::uint32_t counts = m_counts.load(std::memory_order_seq_cst);
  if (searching_of(counts) != 0 || idle_of(counts) == 0) return;
  Worker* target;
  {
    std::lock_guard lock(m_idle_mutex);
    if (m_idle.empty()) return;
    target = m_workers[m_idle.back()].get();
    m_idle.pop_back();
    target->parked = false;
    m_counts.fetch_add(1u - k_idle_one, std::memory_order_seq_cst);  // idle - 1, searching + 1
  }
  LoopAccess::wake_up(target->loop);
  wake_monitor_if_asleep();
}

std::size_t RuntimeCore::cancel_all() noexcept {
  std::size_t live = 0;
  for (auto& shard : m_live) {
    std::lock_guard lock(shard->mutex);
    // request_cancel off the workers only claims a task and posts to its worker: no task
    // ends (and unlinks itself) during the walk.
    shard->tasks.for_each([](ListNode* node) { TaskCore::from_live_node(node)->request_cancel(); });
    live += shard->count;
  }
  return live;
}

// ---- figures ------------------------------------------------------------------------

EngineStats RuntimeCore::stats() const noexcept {
  std::uint64_t submitted = m_spawned_outside.load(std::memory_order_relaxed);
  std::uint64_t started = 0;
  EngineStats stats;
  for (const auto& worker : m_workers) {
    submitted += worker->spawned.load(std::memory_order_relaxed);
    started += worker->started.load(std::memory_order_relaxed);
    stats.completed += worker->completed.load(std::memory_order_relaxed);
    stats.failed += worker->failed.load(std::memory_order_relaxed);
    stats.cancelled += worker->cancelled.load(std::memory_order_relaxed);
  }
  const std::uint64_t ended = stats.completed + stats.failed + stats.cancelled;
  stats.submitted = submitted;
  stats.queued = submitted > started ? submitted - started : 0;
  stats.running = started > ended ? started - ended : 0;
  return stats;
}

RuntimeCounters RuntimeCore::counters() const noexcept {
  RuntimeCounters counters;
  for (const auto& worker : m_workers) {
    counters.steals += worker->steals.load(std::memory_order_relaxed);
    counters.stolen_tasks += worker->stolen.load(std::memory_order_relaxed);
    counters.parks += worker->parks.load(std::memory_order_relaxed);
    counters.blocking_slices += worker->blocking.load(std::memory_order_relaxed);
  }
  counters.monitor_looks = m_monitor_looks.load(std::memory_order_relaxed);
  return counters;
}

}  // namespace detail

// ---- Runtime ------------------------------------------------------------------------

Runtime::Runtime(RuntimeOptions options) : m_core(std::make_unique<detail::RuntimeCore>(std::move(options))) {}

Runtime::~Runtime() = default;

unsigned Runtime::threads() const noexcept { return m_core->threads(); }
std::size_t Runtime::live_tasks() const noexcept { return m_core->live_tasks(); }
EngineStats Runtime::stats() const noexcept { return m_core->stats(); }
RuntimeCounters Runtime::counters() const noexcept { return m_core->counters(); }

Loop& Runtime::spawn_loop() noexcept {
  if (Loop* loop = m_core->current_worker_loop()) return *loop;
  return m_core->worker_loop(0);  // the task's first run sets its real worker
}

IoBackend Runtime::io_backend() const noexcept { return m_core->worker_loop(0).io_backend(); }
SocketIo Runtime::socket_io() const noexcept { return m_core->worker_loop(0).socket_io(); }

void Runtime::check_can_run() const {
  if (m_core->current_worker_loop())
    throw std::logic_error("gearbox: Runtime::run on one of its own workers would block it (co_await a JoinHandle instead)");
}

void Runtime::wait_for(detail::TaskCore& core) {
  struct Waiter : detail::CompletionListener {
    Waiter() : CompletionListener(&Waiter::on_complete) {}
    static void on_complete(CompletionListener* self) noexcept {
      auto* waiter = static_cast<Waiter*>(self);
      // Notified under the mutex: once we let go of it, the waiter may return and die.
      std::lock_guard lock(waiter->mutex);
      waiter->done = true;
      waiter->ended.notify_all();
    }
    std::mutex mutex;
    std::condition_variable ended;
    bool done = false;
  } waiter;
  switch (core.try_listen(&waiter)) {
    case detail::TaskCore::Listen::done: return;
    case detail::TaskCore::Listen::busy: throw std::logic_error("gearbox: a task is already being awaited");
    case detail::TaskCore::Listen::set: break;
  }
  std::unique_lock lock(waiter.mutex);
  waiter.ended.wait(lock, [&] { return waiter.done; });
}

}  // namespace gearbox
