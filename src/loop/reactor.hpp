// Reactor: the loop's interface to the kernel's readiness notification. The loop knows
// only this interface, so an io_uring back end can replace epoll without touching it.
// The loop's thread only, except remove() (epoll_ctl is thread-safe, and so is the count).
#pragma once

#include <cstdint>
#include <memory>

#include <gearbox/detail/io_watcher.hpp>

namespace gearbox::detail {

class Reactor {
public:
  virtual ~Reactor() = default;

  // Starts watching `fd` for `events` (io_events), edge-triggered. Throws IoError.
  virtual void add(int fd, IoWatcher* watcher, std::uint32_t events) = 0;
  // Changes the events or watcher of a watched fd. Throws IoError.
  virtual void modify(int fd, IoWatcher* watcher, std::uint32_t events) = 0;
  // Stops watching `fd`. No effect if it is not watched. Any thread. A poll already under
  // way may still report the fd once.
  virtual void remove(int fd) noexcept = 0;
  // How many descriptors are watched.
  virtual std::size_t watched() const noexcept = 0;

  // Waits up to `timeout_ms` (-1: no limit, 0: do not block) for readiness and tells each
  // ready watcher. Returns how many were told. EINTR counts as a wake with none ready.
  virtual int poll(int timeout_ms) = 0;
};

std::unique_ptr<Reactor> make_epoll_reactor();

}  // namespace gearbox::detail
