// IoBackend: how a loop talks to the kernel about I/O.
//
//   gb::Loop loop{{.io_backend = gb::IoBackend::epoll}};   // or io_uring, or automatic
//   std::printf("%s\n", gb::to_string(loop.io_backend()));
//
//   epoll     readiness: sockets and pipes are read and written when epoll says they are
//             ready; files (always "ready" to epoll) run on the blocking pool, a thread
//             per operation in flight (see to_thread).
//   io_uring  completions: the loop owns an io_uring instance (one per worker on a
//             Runtime); file operations are submitted to it, so no thread waits for them.
//             Sockets wait as SocketIo says: by readiness (the default), the loop
//             sleeping in epoll_wait with the ring's own descriptor watched there, so one
//             system call waits for both; or by completion, their receives, sends,
//             accepts and connects submitted to the ring, the loop sleeping in the ring.
//   automatic the GEARBOX_IO_BACKEND environment variable if it is set ("epoll",
//             "io_uring" or "auto"), else io_uring where the kernel allows it, else epoll.
//
// Detection: a kernel without io_uring (or older than 5.17), a seccomp profile or
// container that refuses it (ENOSYS, EPERM), or kernel.io_uring_disabled make io_uring
// unavailable; `automatic` then uses epoll, and io_uring_support() says why (the lab's
// guide prints it). Asking for io_uring explicitly where it is unavailable is an error
// (std::runtime_error naming the reason), never a silent change.
#pragma once

#include <string>

namespace gearbox {

enum class IoBackend : unsigned char { automatic, epoll, io_uring };

// How stream sockets (TCP, Unix) wait under the io_uring back end (epoll: always readiness).
//   readiness   try the system call; on EAGAIN wait for epoll's edge, then try again.
//   completion  a receive is submitted to the ring and completes with the data (no retry);
//               a send, accept or connect that would block is submitted likewise.
//   automatic   GEARBOX_SOCKET_IO ("readiness" or "completion") if set, else readiness.
//               Measured on the 2-core VM (tcp_echo, alternating runs): at 1,000
//               connections on one loop completion reached 1.07x epoll's requests/s but
//               with a p99 2-4x longer; on 2 workers 0.93x; at 100 connections within
//               noise. Not the 1.1x that would make it the default (liburing used
//               directly, with multishot receives, did no better here: 1.06x).
// A loop with completion waits in the ring (io_uring_enter, DEFER_TASKRUN), so it must be
// driven by one thread for its life (a Runtime's workers are).
// Datagrams, pipes and the other descriptors always wait by readiness. Asking for
// completion where io_uring_support().socket_completion is false is a std::runtime_error.
enum class SocketIo : unsigned char { automatic, readiness, completion };

const char* to_string(IoBackend backend) noexcept;
const char* to_string(SocketIo mode) noexcept;

struct IoUringSupport {
  bool available = false;
  std::string why_not;  // empty when available, else the reason ("io_uring_setup: EPERM ...")
  // SocketIo::completion needs cancellation by descriptor (Linux 5.19).
  bool socket_completion = false;
};

// Probed once per process (a ring is made and closed); thread-safe.
const IoUringSupport& io_uring_support();

// What `automatic` means in this process (GEARBOX_IO_BACKEND, then detection). Throws
// std::invalid_argument for an unknown GEARBOX_IO_BACKEND value, and std::runtime_error
// when it asks for io_uring where it is unavailable.
IoBackend default_io_backend();
// What SocketIo::automatic means in this process (GEARBOX_SOCKET_IO, then readiness).
// Throws std::invalid_argument for an unknown value.
SocketIo default_socket_io();

}  // namespace gearbox
