// RecvStream: one stream socket's multishot receive (IORING_RECV_MULTISHOT into the ring's
// ProvidedBuffers; the lifetime and waiting of loop/multishot.hpp). It completes for every
// arrival, so a socket that is read again and again costs no submission per read. What
// arrives is queued here until a read copies it out into the caller's buffer, and each
// buffer goes back to the kernel as soon as it is copied out.
//
// A read (AsyncFd::ring_read) takes what is queued; when nothing is, it arms the receive
// if it is not armed, and waits for the next completion (next()).
//
// The receive is disarmed (and armed again by the next read that finds nothing queued):
//   - when the socket holds k_max_queued buffers unread (a reader slower than its peer):
//     so that one socket cannot take the whole pool, and TCP's flow control holds the
//     peer back as with a plain receive;
//   - when the pool ran out (ENOBUFS): then the next read receives into the caller's
//     buffer with a plain receive (arm() says no once), and the one after arms again.
// It ends for good at the end of the stream (0) or an error, which the reads then report,
// after what came before. When its ring goes, what was received and not read is kept in
// memory (leftover) for the next loop that reads the socket.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>

#include "loop/multishot.hpp"

namespace gearbox::detail {

class ProvidedBuffers;

class RecvStream final : public Multishot {
public:
  // The most buffers a socket holds unread before its receive is disarmed.
  static constexpr unsigned k_max_queued = 16;

  // A stream for the stream socket `fd` on `loop`'s `ring`, or null where multishot
  // receives cannot be used (not a stream socket; no provided buffer rings).
  static RecvStream* make(Loop& loop, Ring& ring, int fd) noexcept;

  // Binds an attached stream whose ring is gone to `loop`'s ring. False where that ring
  // has no provided buffers.
  bool rebind(Loop& loop, Ring& ring) noexcept;

  // Copies up to `size` queued bytes to `data` (the leftover first); returns how many.
  std::size_t take(void* data, std::size_t size) noexcept;
  // Arms the receive on the socket `fd` (open for the call: the caller's use). False, and
  // nothing armed, when the pool ran out at the last try: the caller then receives once by
  // itself. Throws IoError when no submission entry is left.
  bool arm(int fd);

private:
  RecvStream(Loop& loop, Ring& ring, ProvidedBuffers& buffers) noexcept;

  struct Chunk {
    std::uint16_t id;
    std::uint32_t size;
    std::uint32_t offset;  // bytes already taken
  };

  void on_result(int result, std::uint32_t flags) noexcept override;
  bool has_queued() const noexcept override { return !m_queue.empty() || m_leftover_at < m_leftover.size(); }
  void drop_queued() noexcept override;
  void keep_queued() noexcept override;

  ProvidedBuffers* m_buffers;
  // The received buffers not yet read, oldest first (k_max_queued and more: the kernel
  // completes what it had under way when the disarm comes).
  std::deque<Chunk> m_queue;
  std::string m_leftover;  // received but not read when the ring went
  std::size_t m_leftover_at = 0;
  bool m_starved = false;  // the last receive ended for want of buffers
};

}  // namespace gearbox::detail
