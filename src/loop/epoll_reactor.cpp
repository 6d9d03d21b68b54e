// The epoll back end of Reactor: edge-triggered, one epoll_event array reused per poll.
#include <sys/epoll.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>

#include <gearbox/error.hpp>

#include "loop/reactor.hpp"

namespace gearbox::detail {
namespace {

std::uint32_t to_epoll(std::uint32_t events) noexcept {
  std::uint32_t e = EPOLLET | EPOLLRDHUP;
  if (events & io_events::readable) e |= EPOLLIN;
  if (events & io_events::writable) e |= EPOLLOUT;
  return e;
}

std::uint32_t from_epoll(std::uint32_t e) noexcept {
  std::uint32_t events = 0;
  if (e & (EPOLLIN | EPOLLPRI)) events |= io_events::readable;
  if (e & EPOLLOUT) events |= io_events::writable;
  if (e & (EPOLLHUP | EPOLLRDHUP)) events |= io_events::hangup;
  if (e & EPOLLERR) events |= io_events::error;
  return events;
}

class EpollReactor final : public Reactor {
public:
  EpollReactor() : m_epoll(::epoll_create1(EPOLL_CLOEXEC)) {
    if (m_epoll < 0) throw IoError(errno, "epoll_create1");
  }
  ~EpollReactor() override { ::close(m_epoll); }

  void add(int fd, IoWatcher* watcher, std::uint32_t events) override {
    control(EPOLL_CTL_ADD, fd, watcher, events);
    m_watched.fetch_add(1, std::memory_order_relaxed);
  }
  void modify(int fd, IoWatcher* watcher, std::uint32_t events) override { control(EPOLL_CTL_MOD, fd, watcher, events); }
  void remove(int fd) noexcept override {
    if (::epoll_ctl(m_epoll, EPOLL_CTL_DEL, fd, nullptr) == 0) m_watched.fetch_sub(1, std::memory_order_relaxed);
  }
  std::size_t watched() const noexcept override { return m_watched.load(std::memory_order_relaxed); }
  int descriptor() const noexcept override { return m_epoll; }
  IoBackend backend() const noexcept override { return IoBackend::epoll; }

  int poll(int timeout_ms) override {
    const int n = ::epoll_wait(m_epoll, m_events.data(), static_cast<int>(m_events.size()), timeout_ms);
    if (n < 0) {
      if (errno == EINTR) return 0;
      throw IoError(errno, "epoll_wait");
    }
    for (int i = 0; i < n; ++i) {
      auto* watcher = static_cast<IoWatcher*>(m_events[static_cast<std::size_t>(i)].data.ptr);
      watcher->m_on_ready(watcher, from_epoll(m_events[static_cast<std::size_t>(i)].events));
    }
    return n;
  }

private:
  void control(int op, int fd, IoWatcher* watcher, std::uint32_t events) {
    epoll_event ev{};
    ev.events = to_epoll(events);
    ev.data.ptr = watcher;
    if (::epoll_ctl(m_epoll, op, fd, &ev) != 0) throw IoError(errno, op == EPOLL_CTL_ADD ? "epoll_ctl(ADD)" : "epoll_ctl(MOD)");
  }

  int m_epoll;
  // Memory ordering: relaxed; a count the loop reads as a hint (may it block?), and remove()
  // may run on another thread (a Runtime's FdWatch closed on another worker).
  std::atomic<std::size_t> m_watched{0};
  std::array<epoll_event, k_max_reports> m_events{};
};

}  // namespace

std::unique_ptr<Reactor> make_epoll_reactor() { return std::make_unique<EpollReactor>(); }

}  // namespace gearbox::detail
