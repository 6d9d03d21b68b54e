// AcceptStream: a listener's multishot accept (IORING_OP_ACCEPT with
// IORING_ACCEPT_MULTISHOT; the lifetime and waiting of loop/multishot.hpp). Armed once, it
// completes with every connection that comes, so a listener that accepts again and again
// costs no system call per connection. The accepted descriptors (non-blocking,
// close-on-exec) are queued here until accept() takes them.
//
// Disarmed when k_max_queued connections wait to be taken (a program that does not accept
// leaves them in the kernel's backlog, as with a plain accept), and ended by the kernel at
// an error (EMFILE...), which the next accept() handles as accept4's (take_failure). The
// next accept() that finds nothing queued arms it again. Detached (the listener is closed),
// it closes the connections nobody took. When its ring goes, the queued descriptors stay
// queued for the next loop that accepts.
#pragma once

#include <deque>
#include <utility>

#include "loop/multishot.hpp"

namespace gearbox::detail {

class AcceptStream final : public Multishot {
public:
  static constexpr unsigned k_max_queued = 16;

  // Null when there is no memory for it (accept() then accepts by itself).
  static AcceptStream* make(Loop& loop, Ring& ring) noexcept;
  void rebind(Loop& loop, Ring& ring) noexcept { rebind_to(loop, ring); }

  // The oldest connection accepted and not taken, or -1.
  int take() noexcept;
  // The errno that ended the last accept (0 if none), once.
  int take_failure() noexcept { return std::exchange(m_failure, 0); }
  // Arms the accept on the listener `fd` (open for the call: the caller's use). Throws
  // IoError when no submission entry is left.
  void arm(int fd);

private:
  using Multishot::Multishot;
  ~AcceptStream() override;

  void on_result(int result, std::uint32_t flags) noexcept override;
  bool has_queued() const noexcept override { return !m_queue.empty() || m_failure != 0; }
  void drop_queued() noexcept override;
  void keep_queued() noexcept override {}  // descriptors outlive the ring

  std::deque<int> m_queue;
  int m_failure = 0;
};

}  // namespace gearbox::detail
