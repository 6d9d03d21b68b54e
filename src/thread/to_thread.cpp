// The process-wide blocking pool behind to_thread(): threads started on demand up to a
// cap, each leaving after 10 s without work. A mutex and a condition variable are enough
// here: every call it runs blocks for far longer than they cost.
#include <gearbox/to_thread.hpp>

#include <pthread.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "trace/recorder.hpp"
#include "thread/signals_blocked.hpp"

namespace gearbox {
namespace {

class BlockingPool {
public:
  void post(detail::Job* job) {
    std::unique_lock lock(m_mutex);
    // A thread is started when no idle one is left for this call and the cap allows; if
    // that fails, the call still queues as long as some thread exists to run it.
    if (m_idle <= m_queued && m_threads < m_max_threads) {
      try {
        const detail::SignalsBlocked blocked;  // the thread inherits a mask blocking signals
        std::thread([this] { run(); }).detach();
        ++m_threads;
      } catch (...) {
        if (m_threads == 0) throw;
      }
    }
    job->m_next = nullptr;
    *m_tail = job;
    m_tail = &job->m_next;
    ++m_queued;
    ++m_counts.submitted;
    const bool wake = m_idle > 0;
    lock.unlock();
    // After unlocking (the pool lives for the whole process): notified under the mutex, the
    // woken thread can preempt this one and then block on the mutex it still holds.
    if (wake) m_wake.notify_one();
  }

  void set_limit(std::size_t max_threads) {
    std::lock_guard lock(m_mutex);
    m_max_threads = max_threads < 1 ? 1 : max_threads;
    m_wake.notify_all();  // a raised limit may let idle threads take queued calls
  }

  BlockingPoolStats stats() {
    std::lock_guard lock(m_mutex);
    BlockingPoolStats stats;
    static_cast<EngineStats&>(stats) = m_counts;
    stats.queued = m_queued;
    stats.running = m_running;
    stats.threads = m_threads;
    stats.idle = m_idle;
    stats.max_threads = m_max_threads;
    return stats;
  }

private:
  // A thread runs queued calls while fewer than m_max_threads calls run (so a lowered
  // limit also holds for threads that already exist), and leaves after 10 s idle.
  void run() {
    pthread_setname_np(pthread_self(), "gearbox-block");
    std::unique_lock lock(m_mutex);
    for (;;) {
      if (m_head && m_running < m_max_threads) {
        detail::Job* job = m_head;
        m_head = job->m_next;
        if (!m_head) m_tail = &m_head;
        --m_queued;
        ++m_running;
        lock.unlock();
        detail::t_job_outcome = detail::JobOutcome::completed;
        trace::detail::run_job(job, "blocking call");
        const detail::JobOutcome outcome = detail::t_job_outcome;
        lock.lock();
        --m_running;
        ++(outcome == detail::JobOutcome::completed ? m_counts.completed
           : outcome == detail::JobOutcome::failed  ? m_counts.failed
                                                    : m_counts.cancelled);
        if (m_head && m_idle > 0) m_wake.notify_one();  // a slot under the limit opened
        continue;
      }
      ++m_idle;
      const bool woke = m_wake.wait_for(lock, k_idle_timeout, [this] { return m_head && m_running < m_max_threads; });
      --m_idle;
      if (!woke) break;
    }
    --m_threads;
  }

  static constexpr std::chrono::seconds k_idle_timeout{10};

  std::mutex m_mutex;
  std::condition_variable m_wake;
  detail::Job* m_head = nullptr;          // written under m_mutex
  detail::Job** m_tail = &m_head;         // written under m_mutex
  std::size_t m_queued = 0;               // written under m_mutex
  std::size_t m_threads = 0;              // written under m_mutex
  std::size_t m_idle = 0;                 // written under m_mutex
  std::size_t m_running = 0;              // calls running now; written under m_mutex
  std::size_t m_max_threads = 512;        // written under m_mutex
  EngineStats m_counts;                   // submitted and ended; written under m_mutex
};

// Never destroyed: detached threads may still use it while the process exits.
BlockingPool& blocking_pool() {
  static BlockingPool* pool = new BlockingPool;
  return *pool;
}

}  // namespace

namespace detail {
void post_blocking(Job* job) { blocking_pool().post(job); }
}  // namespace detail

void set_blocking_pool_limit(std::size_t max_threads) { blocking_pool().set_limit(max_threads); }
BlockingPoolStats blocking_pool_stats() { return blocking_pool().stats(); }

}  // namespace gearbox
