// to_thread(fn, args...): runs a blocking call on a thread of the blocking pool and hands
// back a Future of its result (asyncio.to_thread; Tokio's spawn_blocking):
//
//   std::string text = co_await gb::to_thread(read_whole_file, path);   // the loop runs on
//
// The blocking pool is separate from any ThreadPool: it is for calls that wait (a blocking
// library, a DNS lookup, a disk read), not for CPU work. It starts a thread when a call
// arrives and none is idle, up to a cap (512 by default; beyond it, calls queue), and a
// thread idle for 10 s exits, so an idle program holds no threads. The pool lives for the
// whole process; threads still blocked at exit do not delay it.
//
// Thread-safety: callable from any thread. Cancelling the task that awaits the future
// abandons the wait, and withdraws the call if it is still queued (Future::cancel does the
// same); a call that has started runs to its end (a blocking call cannot be stopped).
#pragma once

#include <chrono>
#include <cstddef>
#include <utility>

#include <gearbox/detail/job.hpp>
#include <gearbox/engine_stats.hpp>
#include <gearbox/future.hpp>
#include <gearbox/thread_pool.hpp>  // submit_to

namespace gearbox {

// The engine's figures (calls submitted, queued, running, ended; engine_stats.hpp) and
// the pool's threads.
struct BlockingPoolStats : EngineStats {
  std::size_t threads = 0;  // threads alive now
  std::size_t idle = 0;     // of which waiting for work
  std::size_t max_threads = 0;
};

namespace detail {
// Queues a job on the process-wide blocking pool. Never blocks.
void post_blocking(Job* job);
}  // namespace detail

// Sets the most threads the blocking pool may run at once (at least 1).
void set_blocking_pool_limit(std::size_t max_threads);
BlockingPoolStats blocking_pool_stats();

template <class F, class... A>
Future<detail::submit_result_t<F, A...>> to_thread(F&& fn, A&&... args) {
  return detail::submit_to(nullptr, [](detail::Job* job) { detail::post_blocking(job); }, std::forward<F>(fn),
                           std::forward<A>(args)...);
}

}  // namespace gearbox
