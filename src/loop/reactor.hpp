// Reactor: the loop's interface to the kernel's I/O notification. The loop knows only this
// interface: the epoll back end (readiness) and the io_uring back end (a Ring for
// completions, with an epoll reactor inside it for readiness) both implement it.
// The loop's thread only, except remove() (epoll_ctl is thread-safe, and so is the count).
#pragma once

#include <cstdint>
#include <memory>

#include <gearbox/detail/io_watcher.hpp>
#include <gearbox/io_backend.hpp>

namespace gearbox::detail {

class Ring;

class Reactor {
public:
  // The most readiness reports one poll() hands out; more wait for the next poll.
  static constexpr int k_max_reports = 256;

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

  // A descriptor that is readable while poll(0) would find something; -1 if none.
  virtual int descriptor() const noexcept { return -1; }
  // The ring operations are submitted to (io_uring back end), or null.
  virtual Ring* ring() noexcept { return nullptr; }
  // Work is waiting to be handed to the kernel at the next poll (a busy loop polls early).
  virtual bool has_unsubmitted() const noexcept { return false; }
  virtual IoBackend backend() const noexcept = 0;
  // Stream sockets complete on ring() (SocketIo::completion), not by readiness.
  virtual bool socket_completion() const noexcept { return false; }
};

std::unique_ptr<Reactor> make_epoll_reactor();
// Throws IoError when the kernel refuses io_uring. `socket_completion`: the loop waits in
// the ring, made for sockets by completion (see io_uring_reactor.cpp).
std::unique_ptr<Reactor> make_io_uring_reactor(bool socket_completion);
// The reactor for `backend` and `socket_io` (automatic: default_io_backend(),
// default_socket_io()). Throws std::runtime_error when they ask what the kernel lacks.
std::unique_ptr<Reactor> make_reactor(IoBackend backend, SocketIo socket_io);

}  // namespace gearbox::detail
