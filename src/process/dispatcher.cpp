// ProcessPool: the dispatcher thread's loop (one epoll set for every worker's socket and
// pidfd, the wake-up eventfd and the call deadlines), reading result frames and
// completing futures. See pool_impl.hpp for the locking rules.
#include "process/pool_impl.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <span>
#include <stdexcept>
#include <string_view>
#include <utility>
#include <vector>

namespace gearbox {

using namespace detail::pool;

ProcessPool::Impl::Impl(ProcessPoolOptions opts) : options(std::move(opts)) {
  worker_count = options.workers ? options.workers : std::max(1u, std::thread::hardware_concurrency());
  epoll = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll < 0) throw IoError(errno, "epoll_create1");
  wake = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake < 0) {
    ::close(epoll);
    throw IoError(errno, "eventfd");
  }
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.u64 = k_wake_key;
  ::epoll_ctl(epoll, EPOLL_CTL_ADD, wake, &event);
}

ProcessPool::Impl::~Impl() {
  ::close(wake);
  ::close(epoll);
}

void ProcessPool::Impl::run(std::promise<void>& started) {
  {
    std::lock_guard lock{mutex};
    try {
      for (std::size_t i = 0; i < worker_count; ++i) spawn_worker();
      started.set_value();
    } catch (...) {
      started.set_exception(std::current_exception());
      stop(false);
    }
  }
  epoll_event events[64];
  for (;;) {
    const int timeout = next_timeout();
    const int n = ::epoll_wait(epoll, events, 64, timeout);
    for (int i = 0; i < n; ++i) {
      const std::uint64_t data = events[i].data.u64;
      if (data == k_wake_key) {
        std::uint64_t count;
        (void)!::read(wake, &count, sizeof count);
        continue;
      }
      const std::uint64_t key = data / 4;
      if (data % 4 == k_socket_event) {
        if (events[i].events & EPOLLOUT) {
          std::lock_guard lock{mutex};
          if (Worker* w = find(key)) w->send_blocked = false;
        }
        read_frames(key);
      } else {
        reap(key);
      }
    }
    {
      std::lock_guard lock{mutex};
      if (stop_requested.exchange(false, std::memory_order_relaxed)) drop_stopped();
      check_deadlines();
      if (phase == Phase::draining && queue.empty()) {
        bool idle = true;
        for (auto& w : workers) idle = idle && w->in_flight.empty();
        if (idle)
          for (auto& w : workers) close_write(*w);
      }
      pump(false);
    }
    deliver_outcomes();
    std::lock_guard lock{mutex};
    if (phase != Phase::running && workers.empty()) return;
  }
}

int ProcessPool::Impl::next_timeout() {
  std::lock_guard lock{mutex};
  std::optional<SteadyTime::time_point> earliest;
  for (auto& w : workers)
    if (w->exclusive && !w->in_flight.empty() && !w->in_flight.front()->m_timed_out) {
      const auto deadline = w->in_flight.front()->m_deadline;
      if (!earliest || deadline < *earliest) earliest = deadline;
    }
  if (!earliest) return -1;
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(*earliest - SteadyTime::now()).count();
  return static_cast<int>(std::clamp<long long>(left, 0, 60'000));
}

// Reads every frame the worker has sent (until EAGAIN or the end of the stream).
void ProcessPool::Impl::read_frames(std::uint64_t key) {
  int socket;
  pid_t pid;
  {
    std::lock_guard lock{mutex};
    Worker* w = find(key);
    if (!w) return;
    socket = w->socket;
    pid = w->pid;
  }
  for (;;) {
    std::size_t size = 0;
    const int got = wire::receive(socket, frame, size);
    if (got == -EAGAIN || got == 0) return;
    std::optional<std::vector<wire::Record>> records;
    if (got == 1) {
      if (frame.header.kind == static_cast<std::uint16_t>(wire::Kind::hello) && frame.header.count == 0)
        records.emplace();
      else
        records = wire::parse(frame, size, wire::Kind::results);
    }
    std::vector<std::pair<ProcessCall*, wire::Record*>> done;
    {
      std::lock_guard lock{mutex};
      Worker* w = find(key);
      if (!w) return;
      bool good = records.has_value();
      if (good && frame.header.kind == static_cast<std::uint16_t>(wire::Kind::hello)) {
        good = w->state == Worker::State::starting;
        if (good) w->state = Worker::State::ready;
      } else if (good) {
        good = w->state != Worker::State::starting;
        for (auto& record : *records) {
          if (!good || w->in_flight.empty() || w->in_flight.front()->m_id != record.id) {
            good = false;
            break;
          }
          done.emplace_back(w->in_flight.front(), &record);
          w->in_flight.pop_front();
          (record.status == static_cast<std::uint16_t>(wire::Status::ok) ? counters.completed : counters.failed) +=
              done.back().first->units;
          double& us = *done.back().first->m_run_time_us;
          us = us < 0 ? record.run_us : 0.9 * us + 0.1 * record.run_us;
        }
        if (w->in_flight.empty()) w->exclusive = false;
      }
      if (!good) {
        // Calls already matched keep their results; the rest fail as a crash when it is reaped.
        w->malformed = true;
        kill_by_pidfd(w->pidfd);
      } else if (w->state == Worker::State::retiring && w->in_flight.empty()) {
        close_write(*w);
      }
      pump(false);
    }
    for (auto& [call, record] : done) finish(call, record, nullptr, pid);
    if (got < 0 || !records) return;
  }
}

void ProcessPool::Impl::deliver_outcomes() {
  std::vector<Outcome> ready;
  {
    std::lock_guard lock{mutex};
    ready.swap(outcomes);
    for (const Outcome& outcome : ready)
      (detail::is_cancellation(outcome.error) ? counters.cancelled : counters.failed) += outcome.call->units;
  }
  for (auto& [call, error] : ready) finish(call, nullptr, std::move(error));  // keep no reference
}

// Completes a call with a result record (or fails it with `error`).
void ProcessPool::Impl::finish(ProcessCall* call, wire::Record* record, std::exception_ptr error, int pid) {
  call->m_stop_callback.reset();  // before the pool may go: the callback points to it
  call->args.clear();
  call->fds.clear();
  call->owners.clear();
  call->spill = {};
  if (!record) {
    call->fail(std::move(error));
    return;
  }
  std::span<int> fds = record->fds;
  std::string_view bytes = record->bytes;
  SharedBuffer spilled;
  try {
    if (record->flags & wire::k_spilled) {
      spilled = SharedBuffer::adopt_sealed(std::exchange(fds.back(), -1));
      fds = fds.first(fds.size() - 1);
      if (spilled.size() != record->spilled_size) throw std::runtime_error("gearbox: a spilled result has the wrong size");
      bytes = std::string_view(reinterpret_cast<const char*>(spilled.bytes().data()), spilled.size());
    }
  } catch (...) {
    detail::DecodeScope close_them{fds};
    call->fail(std::current_exception());
    return;
  }
  detail::DecodeScope scope{fds};
  switch (static_cast<wire::Status>(record->status)) {
    case wire::Status::ok:
      call->complete(bytes);
      return;
    case wire::Status::unregistered:
      try {
        call->fail(std::make_exception_ptr(RemoteError(
            "gearbox::UnregisteredFunction", detail::decode<std::string>(bytes), pid)));
      } catch (...) {
        call->fail(std::current_exception());
      }
      return;
    default:
      try {
        auto [type, message] = detail::decode<std::pair<std::string, std::string>>(bytes);
        call->fail(std::make_exception_ptr(RemoteError(std::move(type), std::move(message), pid)));
      } catch (...) {
        call->fail(std::current_exception());
      }
      return;
  }
}

}  // namespace gearbox
