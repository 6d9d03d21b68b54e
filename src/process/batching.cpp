// ProcessPool: the batching policy, which decides which worker gets which queued calls,
// how many at a time, and sends them. See pool_impl.hpp for the locking rules.
#include "process/pool_impl.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <vector>

namespace gearbox {

using namespace detail::pool;

// How many calls like `call` a worker may hold: about k_backlog_us of work, 2 while the
// task's cost is unknown. At least 2 unless a call takes longer than k_prefetch_us: a
// worker that finishes a call then has the next one at hand, instead of idling through
// two wake-ups (its answer, our send), which on a busy machine cost milliseconds each.
// The price is at most one call of imbalance between workers at the end of a burst.
std::size_t ProcessPool::Impl::window(const ProcessCall& call) noexcept {
  const double us = *call.m_run_time_us;
  if (us < 0) return 2;
  const std::size_t floor = us < k_prefetch_us ? 2 : 1;
  return std::clamp<std::size_t>(static_cast<std::size_t>(k_backlog_us / std::max(us, 1.0)), floor, k_max_window);
}

// Sends queued calls. Idle workers come first, sharing the queue with the workers still
// starting (they get their share when they are ready), so that one worker does not take
// a burst while another idles: 5 long calls on 5 new workers run 1 each. Then, only from
// the dispatcher and once every worker is up, busy workers get their calls ahead (see
// window()); a submitter only ever sends to idle workers.
void ProcessPool::Impl::pump(bool from_submitter) {
  if (phase == Phase::stopping || queue.empty() || workers.empty()) return;
  std::size_t starting = 0;
  for (auto& w : workers) starting += w->state == Worker::State::starting ? 1 : 0;
  share_out(/*idle_only=*/true, starting);
  if (!from_submitter && starting == 0) share_out(/*idle_only=*/false, 0);
  ++round_robin;
}

// Shares the queue among the workers that can take calls now and `later` more.
void ProcessPool::Impl::share_out(bool idle_only, std::size_t later) {
  const auto now = SteadyTime::now();
  const std::size_t n = workers.size();
  auto takes = [&](const Worker& w) {
    return w.state == Worker::State::ready && !w.send_blocked && !w.exclusive && (!idle_only || w.in_flight.empty());
  };
  std::size_t takers = 0;
  for (auto& w : workers) takers += takes(*w) ? 1 : 0;
  std::size_t sharers = takers + later;
  for (std::size_t k = 0; k < n && !queue.empty() && takers > 0; ++k) {
    Worker& w = *workers[(round_robin + k) % n];
    if (!takes(w)) continue;
    send_batch(w, now, (queue.size() + sharers - 1) / sharers);
    --takers;
    --sharers;
  }
}

void ProcessPool::Impl::send_batch(Worker& w, SteadyTime::time_point now, std::size_t share) {
  const std::size_t limit = window(*queue.front());
  if (w.in_flight.size() >= limit) return;
  std::size_t room = std::min(limit - w.in_flight.size(), share);
  if (options.max_calls_per_child) room = std::min(room, options.max_calls_per_child - w.tasks_sent);
  calls_frame.reset(wire::Kind::calls);
  std::vector<ProcessCall*> batch;
  while (!queue.empty() && batch.size() < room) {
    ProcessCall* call = queue.front();
    // Withdrawn (Future::cancel) or stopped (its stop_token): never sent. A withdrawn
    // call's fail() only disposes of it.
    if (!call->claim() || call->stop_token.stop_requested()) {
      queue.pop_front();
      fail(call, std::make_exception_ptr(Cancelled{}));
      continue;
    }
    const bool timed = call->timeout.count() > 0;
    if (timed && !(batch.empty() && w.in_flight.empty())) break;
    if (!batch.empty() && (calls_frame.size() + call->args.size() + call->name.size() + sizeof(wire::CallRecord) >
                               wire::k_frame_budget ||
                           calls_frame.fd_count() + call->fds.size() > wire::k_max_fds))
      break;
    queue.pop_front();
    const bool spilled = call->spill.valid();
    std::vector<int> fds = call->fds;
    if (spilled) fds.push_back(call->spill.fd());
    calls_frame.add_call(call->m_id, call->name, call->args, call->spill.size(), fds,
                   static_cast<std::uint16_t>((call->chunk ? wire::k_chunk : 0) | (spilled ? wire::k_spilled : 0)));
    batch.push_back(call);
    if (timed) {
      call->m_deadline = now + call->timeout;
      w.exclusive = true;
      break;
    }
  }
  if (batch.empty()) return;
  if (const int error = calls_frame.send(w.socket); error != 0) {
    for (auto it = batch.rbegin(); it != batch.rend(); ++it) queue.push_front(*it);
    w.exclusive = false;
    w.send_blocked = true;  // EAGAIN: until EPOLLOUT
    // Anything else: the worker is dying, or its socket is unusable; replace it (its
    // death, seen through the pidfd, counts as a crash).
    if (error != EAGAIN && error != EWOULDBLOCK) kill_by_pidfd(w.pidfd);
    return;
  }
  w.in_flight.insert(w.in_flight.end(), batch.begin(), batch.end());
  w.tasks_sent += batch.size();
  if (w.exclusive) poke();  // a new deadline: the dispatcher may be asleep with none
  if (options.max_calls_per_child && w.tasks_sent >= options.max_calls_per_child) w.state = Worker::State::retiring;
}

// Fails every queued call whose stop was requested.
void ProcessPool::Impl::drop_stopped() {
  std::erase_if(queue, [&](ProcessCall* call) {
    if (!call->stop_token.stop_requested()) return false;
    fail(call, std::make_exception_ptr(Cancelled{}));
    return true;
  });
}

}  // namespace gearbox
