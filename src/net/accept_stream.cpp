#include "net/accept_stream.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <new>

namespace gearbox::detail {

AcceptStream* AcceptStream::make(Loop& loop, Ring& ring) noexcept { return new (std::nothrow) AcceptStream(loop, ring); }

AcceptStream::~AcceptStream() { drop_queued(); }

int AcceptStream::take() noexcept {
  if (m_queue.empty()) return -1;
  const int fd = m_queue.front();
  m_queue.pop_front();
  return fd;
}

void AcceptStream::arm(int fd) {
  io_uring_sqe* sqe = prepare_arm();
  io_uring_prep_multishot_accept(sqe, fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

void AcceptStream::on_result(int result, std::uint32_t) noexcept {
  if (result >= 0) {
    if (!attached()) {
      ::close(result);  // the listener was closed: nobody will take it
      return;
    }
    try {
      m_queue.push_back(result);
    } catch (const std::bad_alloc&) {
      ::close(result);  // the client sees its connection end, as when a backlog overflows
      return;
    }
    if (m_queue.size() >= k_max_queued) disarm();
  } else if (result != -ECANCELED) {  // ECANCELED: its disarm, or the close
    m_failure = -result;
  }
}

void AcceptStream::drop_queued() noexcept {
  for (const int fd : m_queue) ::close(fd);
  m_queue.clear();
}

}  // namespace gearbox::detail
