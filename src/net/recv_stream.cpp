#include "net/recv_stream.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>

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
    : Multishot(loop, ring), m_buffers(&buffers) {}

bool RecvStream::rebind(Loop& loop, Ring& ring) noexcept {
  ProvidedBuffers* buffers = ring.provided_buffers();
  if (!buffers) return false;
  m_buffers = buffers;
  rebind_to(loop, ring);
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
  io_uring_sqe* sqe = prepare_arm();
  io_uring_prep_recv_multishot(sqe, fd, nullptr, 0, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = ProvidedBuffers::k_group;
  return true;
}

void RecvStream::on_result(int result, std::uint32_t flags) noexcept {
  if (result > 0 && (flags & IORING_CQE_F_BUFFER)) {
    const auto id = static_cast<std::uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT);
    m_buffers->note_taken();
    if (!attached()) {
      m_buffers->give_back(id);
      return;
    }
    m_queue.push_back({id, static_cast<std::uint32_t>(result), 0});
    if (m_queue.size() >= k_max_queued) disarm();
  } else if (result == 0) {
    end(0);  // the end of the stream
  } else if (result == -ENOBUFS) {
    m_starved = true;
    m_buffers->note_ran_out();
  } else if (result < 0 && result != -ECANCELED) {  // ECANCELED: its disarm, or the close
    end(-result);
  }
}

void RecvStream::drop_queued() noexcept {
  for (const Chunk& chunk : m_queue) m_buffers->give_back(chunk.id);
  m_queue.clear();
  m_leftover = {};
  m_leftover_at = 0;
}

void RecvStream::keep_queued() noexcept {
  // What was received and not read is the socket's, not the ring's: kept in memory.
  try {
    std::string kept = m_leftover.substr(m_leftover_at);
    for (const Chunk& chunk : m_queue) {
      const auto bytes = m_buffers->data(chunk.id, chunk.size).subspan(chunk.offset);
      kept.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    }
    m_leftover = std::move(kept);
  } catch (const std::bad_alloc&) {
    m_leftover = {};
    end(ENOMEM);  // what could not be kept is lost: the stream ends in an error
  }
  m_leftover_at = 0;
  m_queue.clear();
  m_buffers = nullptr;
  m_starved = false;
}

}  // namespace gearbox::detail
