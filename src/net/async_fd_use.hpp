// AsyncFd::Use: one use of an AsyncFd's descriptor by a system call (readiness path) or by
// a ring operation from before its submission to its last completion (completion path).
// While a use is counted, close() does not close the descriptor: the last use does. So a
// system call or operation never runs on a descriptor number that another worker closed
// and the process reused meanwhile.
//
// Protocol (seq_cst, on m_uses and m_fd): a use counts itself in, then reads the
// descriptor; close() takes the descriptor (exchange with -1), then reads the count
// (AsyncFd::close_when_idle). In any interleaving one of them sees the other: either
// close() sees the use and leaves the closing to it, or the use sees -1 (EBADF).
#pragma once

#include <cerrno>

#include <gearbox/detail/async_fd.hpp>
#include <gearbox/error.hpp>

namespace gearbox::detail {

inline constexpr std::uint32_t k_fd_closing = 1u << 31;  // close() left the closing to a use
inline constexpr std::uint32_t k_fd_use_mask = k_fd_closing - 1;

class AsyncFd::Use {
public:
  // Throws IoError(EBADF, operation) when the descriptor is closed.
  Use(AsyncFd& owner, const char* operation) : m_owner(owner) {
    owner.m_uses.fetch_add(1, std::memory_order_seq_cst);
    m_fd = owner.m_fd.load(std::memory_order_seq_cst);
    if (m_fd < 0) {
      end();
      throw IoError(EBADF, operation);
    }
  }
  Use(const Use&) = delete;
  Use& operator=(const Use&) = delete;
  ~Use() { end(); }

  // The descriptor, open until this use ends.
  int fd() const noexcept { return m_fd; }

private:
  void end() noexcept {
    // Memory ordering: seq_cst; the last use after close() sees k_fd_closing here, and with
    // it m_deferred_close, written before close() set the flag.
    const std::uint32_t before = m_owner.m_uses.fetch_sub(1, std::memory_order_seq_cst);
    if ((before & k_fd_use_mask) == 1 && (before & k_fd_closing)) m_owner.finish_deferred_close();
  }

  AsyncFd& m_owner;
  int m_fd = -1;
};

}  // namespace gearbox::detail
