#include "net/recv_stream.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <gearbox/error.hpp>

#include "loop/provided_buffers.hpp"

namespace gearbox::detail {

RecvStream* RecvStream::make(Loop& loop, Ring& ring, int fd) noexcept {
  int type = 0;
  socklen_t size = sizeof type;
  // Datagrams are not a stream: each receive is one message, and a read must not join two.
  if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &size) != 0 || type != SOCK_STREAM) return nullptr;
  ProvidedBuffers* buffers = ring.provided_buffers();
  if (!buffers) return nullptr;
  return new (std::nothrow) RecvStream(loop, ring, *buffers);
}

RecvStream::RecvStream(Loop& loop, Ring& ring, ProvidedBuffers& buffers) noexcept
    : RingOp(&RecvStream::on_complete), RingResident(&RecvStream::on_ring_exit), m_loop(&loop), m_ring(&ring),
      m_buffers(&buffers) {
  ring.adopt(this);
}

RecvStream::~RecvStream() { RingResident::unlink(); }

bool RecvStream::rebind(Loop& loop, Ring& ring) noexcept {
  ProvidedBuffers* buffers = ring.provided_buffers();
  if (!buffers) return false;
  m_loop = &loop;
  m_ring = &ring;
  m_buffers = buffers;
  ring.adopt(this);
  return true;
}

std::size_t RecvStream::take(void* data, std::size_t size) noexcept {
  auto* out = static_cast<std::byte*>(data);
  std::size_t copied = 0;
  if (m_leftover_at < m_leftover.size()) {
    copied = std::min(size, m_leftover.size() - m_leftover_at);
    std::memcpy(out, m_leftover.data() + m_leftover_at, copied);
    m_leftover_at += copied;
    if (m_leftover_at == m_leftover.size()) {
      m_leftover = {};
      m_leftover_at = 0;
    }
  }
  while (copied < size && !m_queue.empty()) {
    Chunk& chunk = m_queue.front();
    const std::size_t n = std::min<std::size_t>(size - copied, chunk.size - chunk.offset);
    std::memcpy(out + copied, m_buffers->data(chunk.id, chunk.size).data() + chunk.offset, n);
    chunk.offset += static_cast<std::uint32_t>(n);
    copied += n;
    if (chunk.offset == chunk.size) {
      m_buffers->give_back(chunk.id);
      m_queue.pop_front();
    }
  }
  return copied;
}

bool RecvStream::arm(int fd) {
  if (m_starved) {
    m_starved = false;
    return false;
  }
  io_uring_sqe* sqe = m_ring->prepare(this);
  io_uring_prep_recv_multishot(sqe, fd, nullptr, 0, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = ProvidedBuffers::k_group;
  m_armed = true;
  return true;
}

void RecvStream::on_complete(RingOp* op, int result, std::uint32_t flags) noexcept {
  auto* self = static_cast<RecvStream*>(op);
  if (result > 0 && (flags & IORING_CQE_F_BUFFER)) {
    const auto id = static_cast<std::uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT);
    self->m_buffers->note_taken();
    if (self->m_attached)
      self->m_queue.push_back({id, static_cast<std::uint32_t>(result), 0});
    else
      self->m_buffers->give_back(id);
  } else if (result == 0) {
    self->m_ended = true;  // the end of the stream
  } else if (result == -ENOBUFS) {
    self->m_starved = true;
    self->m_buffers->note_ran_out();
  } else if (result < 0 && result != -ECANCELED) {  // ECANCELED: its disarm, or the close
    self->m_ended = true;
    self->m_error = -result;
  }
  if (!(flags & IORING_CQE_F_MORE)) {
    self->m_armed = false;
    self->m_disarming = false;
    if (!self->m_attached) {
      delete self;
      return;
    }
  } else if (self->m_attached && self->m_queue.size() >= k_max_queued && !self->m_disarming) {
    self->m_disarming = true;
    self->m_ring->cancel(self);
  }
  self->wake_reader();
}

void RecvStream::on_ring_exit(RingResident* resident) noexcept {
  auto* self = static_cast<RecvStream*>(resident);
  if (!self->m_attached) {
    delete self;
    return;
  }
  // Kept for a later loop: what was received and not read is the socket's, not the ring's.
  std::string kept = self->m_leftover.substr(self->m_leftover_at);
  try {
    for (const Chunk& chunk : self->m_queue) {
      const auto bytes = self->m_buffers->data(chunk.id, chunk.size).subspan(chunk.offset);
      kept.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    }
  } catch (const std::bad_alloc&) {
    self->m_ended = true;  // what could not be kept is lost: the stream ends in an error
    self->m_error = ENOMEM;
  }
  self->m_leftover = std::move(kept);
  self->m_leftover_at = 0;
  self->m_queue.clear();
  self->m_loop = nullptr;
  self->m_ring = nullptr;
  self->m_buffers = nullptr;
  self->m_armed = self->m_disarming = self->m_starved = false;
  self->RingResident::unlink();
  if (self->m_reader) std::exchange(self->m_reader, nullptr)->m_stream = nullptr;
}

void RecvStream::give_back_all() noexcept {
  for (const Chunk& chunk : m_queue) m_buffers->give_back(chunk.id);
  m_queue.clear();
  m_leftover = {};
  m_leftover_at = 0;
}

void RecvStream::wake_reader() noexcept {
  if (Next* reader = std::exchange(m_reader, nullptr)) reader->wake();
}

void RecvStream::detach() noexcept {
  m_attached = false;
  wake_reader();  // it finds the socket closed
  if (!m_ring) {  // its ring is gone: it is no longer listed
    delete this;
    return;
  }
  give_back_all();
  if (!m_armed) {
    delete this;
    return;
  }
  if (!m_disarming) {
    m_disarming = true;
    m_ring->cancel(this);
  }
  // Submitted and run now, not at the loop's next poll: the receive holds the socket
  // (its file) open, and a close must close it even if the loop does not poll again. Its
  // last completion frees the stream.
  if (m_ring->may_submit_here()) {
    try {
      m_ring->submit_and_wait(0);
    } catch (const IoError&) {
      // The cancel waits in the queue for the loop's next poll.
    }
  }
}

bool RecvStream::Next::await_suspend(std::coroutine_handle<> awaiter) {
  m_core = &current_core_or_throw();
  if (m_core->cancel_requested()) {
    m_cancelled = true;
    return false;
  }
  m_stream->m_reader = this;
  m_core->suspend(awaiter, this, WaitOn::io);
  return true;
}

void RecvStream::Next::await_resume() const {
  if (m_cancelled) throw Cancelled{};
}

void RecvStream::Next::wake() noexcept {
  m_stream = nullptr;  // it may be freed before this read resumes
  m_core->wake();
}

void RecvStream::Next::on_cancel(CancelSlot* slot) noexcept {
  auto* self = static_cast<Next*>(slot);
  if (self->m_stream && self->m_stream->m_reader == self) self->m_stream->m_reader = nullptr;
  self->m_stream = nullptr;
  self->m_cancelled = true;  // the receive stays armed: what arrives waits for the next read
  self->m_core->wake();
}

}  // namespace gearbox::detail
