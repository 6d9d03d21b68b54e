// How accept() treats its errors, on either path of AsyncFd (readiness or completion).
#pragma once

#include <cerrno>
#include <chrono>

namespace gearbox::detail {

// accept() could not get a descriptor or memory: the connection waits in the backlog, and
// accept backs off (k_first_backoff, doubling to k_max_backoff) before it tries again.
inline bool out_of_resources(int error) {
  return error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM;
}

// accept() failed for this one connection (it was reset while queued...): try the next.
inline bool transient_accept_error(int error) {
  return error == EINTR || error == ECONNABORTED || error == EPROTO || error == EPERM || error == ENETDOWN ||
         error == ENOPROTOOPT || error == EHOSTDOWN || error == ENONET || error == EHOSTUNREACH ||
         error == EOPNOTSUPP || error == ENETUNREACH;
}

inline constexpr auto k_first_backoff = std::chrono::milliseconds{1};
inline constexpr auto k_max_backoff = std::chrono::milliseconds{256};

}  // namespace gearbox::detail
