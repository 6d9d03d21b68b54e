// ProcessPool's façade: the public member functions. The pool's inside is in
// pool_impl.hpp, which says which file holds which part and the locking rules.
#include "process/pool_impl.hpp"

#include <future>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace gearbox {

using namespace detail::pool;
using detail::ProcessCall;

ProcessPool::ProcessPool(ProcessPoolOptions options) {
  if (!initialized())
    throw std::logic_error("gearbox: call gb::init(argc, argv) first in main before starting a ProcessPool");
  m_impl = std::make_unique<Impl>(std::move(options));
  std::promise<void> started;
  std::future<void> spawned = started.get_future();
  m_impl->dispatcher = std::thread([impl = m_impl.get(), &started] { impl->run(started); });
  try {
    spawned.get();
  } catch (...) {
    terminate();
    throw;
  }
}

ProcessPool::~ProcessPool() { shutdown(ShutdownMode::wait); }

std::size_t ProcessPool::size() const noexcept { return m_impl->worker_count; }

void ProcessPool::check_open() const {
  std::lock_guard lock{m_impl->mutex};
  if (m_impl->phase != Impl::Phase::running) std::rethrow_exception(m_impl->closed_error());
}

void ProcessPool::prepare(detail::ProcessCall& call, const CallOptions& options) const {
  const auto& defaults = m_impl->options;
  call.timeout = options.timeout.count() > 0 ? options.timeout : defaults.call_timeout;
  call.retries = options.retries >= 0 ? options.retries : defaults.retries;
  call.stop_token = options.stop_token;
  if (call.fds.size() + 1 > wire::k_max_fds)
    throw std::invalid_argument("gearbox: a call can carry at most " + std::to_string(wire::k_max_fds - 1) +
                                " SharedBuffers");
  if (call.args.size() > wire::k_inline_max) {
    call.spill = SharedBuffer::copy_of(std::as_bytes(std::span(call.args.data(), call.args.size())));
    call.args.clear();
    call.args.shrink_to_fit();
  }
}

void ProcessPool::enqueue(detail::ProcessCall* call) {
  std::vector<detail::ProcessCall*> calls{call};
  enqueue(calls);
}

void ProcessPool::enqueue(std::vector<detail::ProcessCall*>& calls) {
  Impl& impl = *m_impl;
  {
    std::lock_guard lock{impl.mutex};
    for (detail::ProcessCall* call : calls) {
      if (!call) continue;  // failed while it was encoded
      if (call->name.empty()) {
        impl.fail(call, std::make_exception_ptr(RemoteError(
                            "gearbox::UnregisteredFunction", "this function was never registered (GEARBOX_REMOTE)", 0)));
      } else if (impl.phase != Impl::Phase::running) {
        impl.fail(call, impl.closed_error());
      } else {
        impl.counters.submitted += call->units;
        call->m_id = impl.next_id++;
        call->m_run_time_us = &impl.run_time_us.try_emplace(call->name, -1.0).first->second;  // nodes are stable
        if (call->stop_token.stop_possible())
          call->m_stop_callback.emplace(call->stop_token, detail::StopPoke{&Impl::on_stop, &impl});
        impl.queue.push_back(call);
      }
    }
    impl.pump(true);
  }
  impl.deliver_outcomes();
}

std::size_t ProcessPool::cancel_pending() {
  std::size_t count = 0;
  {
    std::lock_guard lock{m_impl->mutex};
    count = m_impl->queue.size();
    for (auto* call : m_impl->queue) m_impl->fail(call, std::make_exception_ptr(Cancelled{}));
    m_impl->queue.clear();
  }
  m_impl->deliver_outcomes();
  return count;
}

void ProcessPool::shutdown(ShutdownMode mode) {
  {
    std::lock_guard lock{m_impl->mutex};
    if (m_impl->phase == Impl::Phase::running) m_impl->phase = Impl::Phase::draining;
    if (mode == ShutdownMode::cancel_pending && m_impl->phase == Impl::Phase::draining) {
      for (auto* call : m_impl->queue) m_impl->fail(call, std::make_exception_ptr(Cancelled{}));
      m_impl->queue.clear();
    }
  }
  join_dispatcher();
}

void ProcessPool::terminate() {
  {
    std::lock_guard lock{m_impl->mutex};
    m_impl->stop(true);
  }
  join_dispatcher();
}

void ProcessPool::join_dispatcher() {
  m_impl->poke();
  m_impl->deliver_outcomes();
  std::lock_guard join{m_impl->join_mutex};
  if (m_impl->dispatcher.joinable()) m_impl->dispatcher.join();
}

std::vector<int> ProcessPool::worker_pids() const {
  std::lock_guard lock{m_impl->mutex};
  std::vector<int> pids;
  for (auto& w : m_impl->workers) pids.push_back(w->pid);
  return pids;
}

ProcessPool::Stats ProcessPool::stats() const {
  std::lock_guard lock{m_impl->mutex};
  Stats stats = m_impl->counters;
  for (const ProcessCall* call : m_impl->queue) stats.queued += call->units;
  for (const auto& w : m_impl->workers)
    for (const ProcessCall* call : w->in_flight) stats.running += call->units;
  // Failures decided but not delivered yet are ended already.
  for (const Outcome& outcome : m_impl->outcomes)
    (detail::is_cancellation(outcome.error) ? stats.cancelled : stats.failed) += outcome.call->units;
  return stats;
}

}  // namespace gearbox

