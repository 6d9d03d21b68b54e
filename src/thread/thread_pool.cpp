// The workers of ThreadPool: where a job is looked for, how idle workers park, shutdown.
#include <gearbox/thread_pool.hpp>

#include <pthread.h>

#include <chrono>
#include <random>
#include <string>
#include <thread>

#include <gearbox/detail/blocking_wait.hpp>

#include "trace/recorder.hpp"
#include "thread/work_stealing_deque.hpp"
#include "thread/signals_blocked.hpp"

namespace gearbox {
namespace {

enum class PoolState : std::uint32_t { running, draining, cancelling };

// Tells the CPU we are spinning (frees the core's resources for its sibling thread).
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// What a pool counts for EngineStats. Each set has one writer at a time (a worker, or
// posters under m_inject_mutex, or the thread that drains after shutdown); the counters are
// atomics only so that stats() may read them from any thread (relaxed: each figure is a
// monotonic count, and stats() promises no instant across figures).
struct JobCounters {
  std::atomic<std::uint64_t> submitted{0};
  std::atomic<std::uint64_t> started{0};
  std::atomic<std::uint64_t> completed{0};
  std::atomic<std::uint64_t> failed{0};
  std::atomic<std::uint64_t> cancelled{0};

  static void bump(std::atomic<std::uint64_t>& counter, std::uint64_t by = 1) noexcept {
    counter.store(counter.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
  }
  // Runs `job` (which frees itself) and counts how it ended.
  void run(detail::Job* job) noexcept {
    bump(started);
    detail::t_job_outcome = detail::JobOutcome::completed;
    trace::detail::run_job(job, "job");
    switch (detail::t_job_outcome) {
      case detail::JobOutcome::completed: bump(completed); break;
      case detail::JobOutcome::failed: bump(failed); break;
      case detail::JobOutcome::cancelled: bump(cancelled); break;
    }
  }
  void add_to(EngineStats& stats) const noexcept {
    stats.submitted += submitted.load(std::memory_order_relaxed);
    stats.running += started.load(std::memory_order_relaxed);  // minus the ended, below
    stats.completed += completed.load(std::memory_order_relaxed);
    stats.failed += failed.load(std::memory_order_relaxed);
    stats.cancelled += cancelled.load(std::memory_order_relaxed);
  }
};

}  // namespace

struct ThreadPool::Impl {
  struct Worker {
    Worker(std::size_t capacity, unsigned seed) : deque(capacity), random(seed) {}
    detail::WorkStealingDeque deque;  // pushed and popped by this worker only
    std::minstd_rand random;          // where to start stealing; this worker only
    int lifo_pops = 0;                // consecutive newest-first pops; this worker only
    JobCounters counters;             // written by this worker only (submitted: its own posts)
    // True while this worker looks for or runs a job. Written by this worker only
    // (release); read by workers deciding whether they may exit during shutdown (acquire),
    // so that a job still running keeps helpers around for the children it may wait for.
    // A stale read only delays an exit by one nap (park() re-checks every millisecond).
    alignas(64) std::atomic<bool> busy{false};
    std::thread thread;
  };

  ThreadPool* m_pool;
  std::vector<std::unique_ptr<Worker>> m_workers;

  // The global injection queue: work submitted from outside the pool, and overflow.
  std::mutex m_inject_mutex;
  detail::Job* m_inject_head = nullptr;           // written under m_inject_mutex
  detail::Job** m_inject_tail = &m_inject_head;   // written under m_inject_mutex
  // Jobs in the injection queue. Written under m_inject_mutex; read without it as a hint
  // (relaxed: a stale value only sends a worker to take the mutex, or to park and re-check).
  std::atomic<std::size_t> m_inject_count{0};
  // Jobs posted from outside the pool (submitted: under m_inject_mutex), and jobs run by
  // the thread that drains the injection queue after the workers have left.
  JobCounters m_outside;

  // Parking. m_sleepers: workers parked or about to park (incremented before their final
  // check for work). m_epoch: the futex word they sleep on, bumped to wake them.
  // Memory ordering: a poster stores its job, then issues a seq_cst fence, then reads
  // m_sleepers; a parker increments m_sleepers (seq_cst), issues a seq_cst fence, then
  // reads the queues. Of the two fences, whichever comes second in the total order sees
  // the other side's write: either the poster sees the sleeper and wakes it, or the
  // parker sees the job and does not sleep. No wake-up is lost.
  std::atomic<std::uint32_t> m_sleepers{0};
  std::atomic<std::uint32_t> m_epoch{0};
  // Workers searching for work: spinning after finding none, or woken from park and not
  // yet past their first find. Relaxed: only notify()'s hint; correctness rests on the
  // fences and on stop_searching passing the wake-up on.
  std::atomic<std::uint32_t> m_searching{0};

  // PoolState. Written by shutdown(); read by posters and workers (acquire/release: a
  // worker that sees draining also sees every job queued before it).
  std::atomic<std::uint32_t> m_state{static_cast<std::uint32_t>(PoolState::running)};
  std::mutex m_shutdown_mutex;  // serialises shutdown() callers (joins happen once)
  bool m_joined = false;        // written under m_shutdown_mutex

  PoolState state() const noexcept { return static_cast<PoolState>(m_state.load(std::memory_order_acquire)); }

  // Appends the chain first..last (linked through m_next) of `count` jobs. `external`: a
  // post from outside the pool, refused (ShutdownError) once shutdown has begun. The check
  // is made under m_inject_mutex, which shutdown() also takes to change the state, so a
  // post is either refused or queued before the state changes (and then run or cancelled
  // before shutdown() returns).
  void inject(detail::Job* first, detail::Job* last, std::size_t count, bool external = false) {
    {
      std::lock_guard lock(m_inject_mutex);
      if (external && state() != PoolState::running) throw ShutdownError("gearbox: submit to a ThreadPool that was shut down");
      if (external) JobCounters::bump(m_outside.submitted, count);
      last->m_next = nullptr;
      *m_inject_tail = first;
      m_inject_tail = &last->m_next;
      m_inject_count.fetch_add(count, std::memory_order_relaxed);
    }
    notify();
  }
  void inject(detail::Job* job, bool external = false) { inject(job, job, 1, external); }

  // A worker whose deque is full moves the older half of it, with `job`, to the injection
  // queue in one batch (one lock for many jobs, as Tokio does), so that a task that submits
  // a great many children stays cheap and its children stay reachable by every worker.
  void overflow(Worker& self, detail::Job* job) {
    detail::Job* first = job;
    detail::Job* last = job;
    std::size_t count = 1;
    const std::size_t half = self.deque.capacity() / 2;
    for (std::size_t i = 0; i < half; ++i) {
      detail::Job* older = self.deque.steal();
      if (!older) break;
      last->m_next = older;
      last = older;
      ++count;
    }
    inject(first, last, count);
  }

  // Takes a batch from the injection queue: returns one job to run and moves up to a fair
  // share of the rest into `self`'s deque (others may steal them from there).
  detail::Job* take_injected(Worker* self) {
    if (m_inject_count.load(std::memory_order_relaxed) == 0) return nullptr;
    detail::Job* job;
    detail::Job* rest = nullptr;
    {
      // A worker never waits for this lock: if a poster (or another worker) holds it, the
      // worker looks elsewhere and comes back, so posters from outside are not held up by a
      // crowd of idle workers polling the queue. The final drain (no worker) does wait.
      std::unique_lock lock(m_inject_mutex, std::defer_lock);
      if (self) {
        if (!lock.try_lock()) return nullptr;
      } else {
        lock.lock();
      }
      job = m_inject_head;
      if (!job) return nullptr;
      std::size_t taken = 1;
      const std::size_t available = m_inject_count.load(std::memory_order_relaxed);
      std::size_t share = self ? std::min(available / m_workers.size(), self->deque.capacity() / 2) : 0;
      detail::Job* tail = job;
      while (share > 0 && tail->m_next) {
        tail = tail->m_next;
        ++taken;
        --share;
      }
      m_inject_head = tail->m_next;
      if (!m_inject_head) m_inject_tail = &m_inject_head;
      rest = tail == job ? nullptr : job->m_next;
      tail->m_next = nullptr;
      m_inject_count.fetch_sub(taken, std::memory_order_relaxed);
    }
    const bool moved = rest != nullptr;
    while (rest) {
      detail::Job* next = rest->m_next;
      if (!self->deque.push(rest)) {  // cannot happen: the share fits in half the deque
        inject(rest);
      }
      rest = next;
    }
    if (moved) notify(/*leave_to_searchers=*/false);  // others may steal what we moved into our deque
    return job;
  }

  // Wakes one parked worker, if any (see m_sleepers). Always with the fence: a job may
  // block on something other than a Future (a latch, a mutex) while its child waits in its
  // deque, so a missed wake-up could be a deadlock, not just lost parallelism.
  //
  // While some worker is searching (spinning, or just woken), the wake-up is left to it: it
  // will find the job (in its spin, or in park()'s final check, which the fence protocol
  // guarantees to see it), and the last searcher to find work wakes another worker if work
  // is left (see stop_searching). So a busy poster makes no system call per job.
  void notify(bool leave_to_searchers = true) noexcept {
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (m_sleepers.load(std::memory_order_relaxed) == 0) return;
    if (leave_to_searchers && m_searching.load(std::memory_order_relaxed) > 0) return;
    m_epoch.fetch_add(1, std::memory_order_release);
    detail::wake_one(m_epoch);
  }

  bool work_visible() const noexcept {
    if (m_inject_count.load(std::memory_order_relaxed) > 0) return true;
    for (const auto& w : m_workers)
      if (w->deque.size_hint() > 0) return true;
    return false;
  }

  // The next job for `self`: its own deque (newest first, but every k_lifo_streak-th pop
  // the oldest), then the injection queue, then the oldest job of another worker.
  detail::Job* find_job(Worker& self) {
    detail::Job* job = nullptr;
    if (++self.lifo_pops >= k_lifo_streak) {
      self.lifo_pops = 0;
      job = self.deque.steal();
      if (!job) job = take_injected(&self);
    }
    if (!job) job = self.deque.pop();
    if (!job) job = take_injected(&self);
    if (!job) job = steal(self);
    return job;
  }

  detail::Job* steal(Worker& self) {
    const std::size_t n = m_workers.size();
    if (n < 2) return nullptr;
    const std::size_t start = self.random() % n;
    // Two rounds: a steal can fail by losing a race even when work is there.
    for (std::size_t round = 0; round < 2; ++round) {
      for (std::size_t i = 0; i < n; ++i) {
        Worker& victim = *m_workers[(start + i) % n];
        if (&victim == &self) continue;
        if (detail::Job* job = victim.deque.steal()) return job;
      }
    }
    return nullptr;
  }

  // A searching worker stops searching. The last searcher to find work wakes a parked
  // worker if work is left, so that wake-ups skipped by notify() are passed along a chain
  // (Tokio's scheduler does the same).
  void stop_searching(bool found) noexcept {
    const bool last = m_searching.fetch_sub(1, std::memory_order_relaxed) == 1;
    if (found && last && work_visible()) notify(/*leave_to_searchers=*/false);
  }

  bool any_busy() const noexcept {
    for (const auto& w : m_workers)
      if (w->busy.load(std::memory_order_acquire)) return true;
    return false;
  }

  void wake_everyone() noexcept {
    m_epoch.fetch_add(1, std::memory_order_release);
    detail::wake_all(m_epoch);
  }

  detail::Job* spin(Worker& self) {
    const auto until = std::chrono::steady_clock::now() + k_spin_time;
    for (int round = 0;; ++round) {
      // First a few rounds of busy-waiting; then yield the core between looks, so that a
      // thread feeding the pool from outside (more threads than cores) is not starved.
      if (round < 8) {
        for (int i = 0; i < 32; ++i) cpu_relax();
      } else {
        std::this_thread::yield();
      }
      if (detail::Job* job = find_job(self)) return job;
      if ((round & 7) == 7 && std::chrono::steady_clock::now() >= until) return nullptr;
    }
  }
  static constexpr std::chrono::microseconds k_spin_time{50};

  void park() {
    m_sleepers.fetch_add(1, std::memory_order_seq_cst);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    const std::uint32_t epoch = m_epoch.load(std::memory_order_acquire);
    // While running, sleep until woken; after shutdown, nap briefly (exit is re-checked).
    if (!work_visible()) {
      if (state() == PoolState::running)
        detail::wait_on(m_epoch, epoch, std::nullopt);
      else
        detail::wait_on(m_epoch, epoch, std::chrono::steady_clock::now() + std::chrono::milliseconds(1));
    }
    m_sleepers.fetch_sub(1, std::memory_order_relaxed);
  }

  void run_worker(Worker& self);

  static thread_local Worker* t_worker;
  static thread_local Impl* t_pool;
};

// The worker (and its pool) that the calling thread is; null on other threads.
thread_local ThreadPool::Impl::Worker* ThreadPool::Impl::t_worker = nullptr;
thread_local ThreadPool::Impl* ThreadPool::Impl::t_pool = nullptr;

void ThreadPool::Impl::run_worker(Worker& self) {
  t_worker = &self;
  t_pool = this;
  bool searching = false;
  for (;;) {
    // `busy` covers looking as well as running, so that no worker leaves while another
    // holds a job it has found but not yet started.
    self.busy.store(true, std::memory_order_release);
    detail::Job* job = find_job(self);
    // Nothing found: look again for a short while (work often arrives within microseconds,
    // and a futex sleep and wake-up costs several), counted as searching.
    if (!job) {
      if (!searching) {
        m_searching.fetch_add(1, std::memory_order_relaxed);
        searching = true;
      }
      job = spin(self);
    }
    if (searching) {
      searching = false;
      stop_searching(job != nullptr);
    }
    if (job) {
      self.counters.run(job);
      if (state() != PoolState::running) wake_everyone();  // idle workers re-check whether to exit
      continue;
    }
    self.busy.store(false, std::memory_order_release);
    // Once shut down, leave when no job runs anywhere: a running job may still submit
    // children, or wait for one by other means than a Future.
    if (state() != PoolState::running && !work_visible() && !any_busy()) break;
    park();
    m_searching.fetch_add(1, std::memory_order_relaxed);  // woken: search, and pass it on
    searching = true;
  }
  self.busy.store(false, std::memory_order_release);
  t_worker = nullptr;
  t_pool = nullptr;
}

ThreadPool::ThreadPool(ThreadPoolOptions options) : m_impl(std::make_unique<Impl>()) {
  m_impl->m_pool = this;
  std::size_t threads = options.workers ? options.workers : std::thread::hardware_concurrency();
  if (threads == 0) threads = 1;
  std::random_device seed_source;
  for (std::size_t i = 0; i < threads; ++i)
    m_impl->m_workers.push_back(std::make_unique<Impl::Worker>(options.local_queue_capacity, seed_source()));
  try {
    const detail::SignalsBlocked blocked;  // workers inherit a mask blocking signals
    for (std::size_t i = 0; i < threads; ++i) {
      Impl::Worker& worker = *m_impl->m_workers[i];
      worker.thread = std::thread([impl = m_impl.get(), &worker, i] {
        const std::string name = "gearbox-w" + std::to_string(i);
        pthread_setname_np(pthread_self(), name.c_str());
        impl->run_worker(worker);
      });
    }
  } catch (...) {
    shutdown(ShutdownMode::cancel_pending);
    throw;
  }
}

ThreadPool::~ThreadPool() { shutdown(ShutdownMode::wait); }

std::size_t ThreadPool::size() const noexcept { return m_impl->m_workers.size(); }

ThreadPool* ThreadPool::current() noexcept { return Impl::t_pool ? Impl::t_pool->m_pool : nullptr; }

bool ThreadPool::cancelling() const noexcept { return m_impl->state() == PoolState::cancelling; }

void ThreadPool::post(detail::Job* job) {
  Impl& impl = *m_impl;
  // After shutdown only the pool's own jobs may add work (fork-join in flight finishes);
  // inject() refuses the others.
  const bool from_worker = Impl::t_pool == &impl;
  if (from_worker) {
    JobCounters::bump(Impl::t_worker->counters.submitted);
    if (Impl::t_worker->deque.push(job))
      impl.notify();
    else
      impl.overflow(*Impl::t_worker, job);
    return;
  }
  impl.inject(job, /*external=*/true);
}

void ThreadPool::shutdown(ShutdownMode mode) {
  Impl& impl = *m_impl;
  const auto target = static_cast<std::uint32_t>(mode == ShutdownMode::wait ? PoolState::draining : PoolState::cancelling);
  // Memory ordering: release pairs with the acquire loads in state(). A cancel may follow
  // a wait (it only gets stricter), never the reverse.
  {
    std::lock_guard lock(impl.m_inject_mutex);  // see inject(): no outside post slips past this
    if (impl.m_state.load(std::memory_order_relaxed) < target) impl.m_state.store(target, std::memory_order_release);
  }
  impl.wake_everyone();
  if (Impl::t_pool == &impl) return;  // a job of this pool cannot join its own worker
  std::lock_guard lock(impl.m_shutdown_mutex);
  if (impl.m_joined) return;
  for (auto& worker : impl.m_workers)
    if (worker->thread.joinable()) worker->thread.join();
  impl.m_joined = true;
  // Jobs injected after every worker left (by the last jobs, into a full queue): run them
  // here so that no future is left without a result.
  while (detail::Job* job = impl.take_injected(nullptr)) impl.m_outside.run(job);
}

EngineStats ThreadPool::stats() const noexcept {
  EngineStats stats;
  m_impl->m_outside.add_to(stats);
  for (const auto& worker : m_impl->m_workers) worker->counters.add_to(stats);
  const std::uint64_t ended = stats.completed + stats.failed + stats.cancelled;
  const std::uint64_t started = stats.running;
  // Read one by one, a later figure may count a job an earlier one did not: clamp.
  stats.running = started > ended ? started - ended : 0;
  stats.queued = stats.submitted > started ? stats.submitted - started : 0;
  return stats;
}

bool ThreadPool::help_once() noexcept {
  if (!Impl::t_worker) return false;
  if (detail::Job* job = Impl::t_pool->find_job(*Impl::t_worker)) {
    Impl::t_worker->counters.run(job);
    return true;
  }
  return false;
}

namespace detail {
bool help_pool_once() noexcept { return PoolAccess::help_once(); }
bool on_pool_worker() noexcept { return ThreadPool::current() != nullptr; }
}  // namespace detail
}  // namespace gearbox
