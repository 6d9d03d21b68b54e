// RecvStream: one stream socket's multishot receive (IORING_RECV_MULTISHOT into the ring's
// ProvidedBuffers): armed once, it completes for every arrival until it ends, so a socket
// that is read again and again costs no submission per read. What arrives is queued here
// until a read copies it out into the caller's buffer; the buffers go back to the kernel
// as soon as they are copied out.
//
// A read (AsyncFd::ring_read) takes what is queued; when nothing is, it arms the receive
// if it is not armed, and waits for the next completion (next()). A read that is cancelled
// while it waits loses nothing: the receive stays armed and what arrives stays queued for
// the next read.
//
// The receive is disarmed (and armed again by the next read that finds nothing queued):
//   - when the socket holds k_max_queued buffers unread (a reader slower than its peer):
//     it is cancelled, so that one socket cannot take the whole pool, and TCP's flow
//     control holds the peer back as with a plain receive;
//   - when the pool ran out (ENOBUFS): then the next read receives into the caller's
//     buffer with a plain receive (starved()), and the one after arms again.
// It ends for good at the end of the stream (0) or an error, which the reads then report.
//
// Lifetime: the AsyncFd owns the stream while it is attached; an armed receive keeps it
// alive until its last completion. detach() (the socket is closed) cancels the receive,
// and the stream is freed at that completion, or at once when it is not armed. The ring
// lists its streams: when it goes (the loop is destroyed), a detached stream is freed, and
// an attached one keeps what was received but not read (leftover) for a later loop.
//
// Only on a standalone Loop (not a Runtime's worker): a worker's ring is driven by its own
// thread alone, and a receive armed there would pin the socket's reads to that worker.
//
// Thread-safety: the loop's thread only, as the AsyncFd on a Loop.
#pragma once

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>

#include <gearbox/detail/task_core.hpp>

#include "loop/ring.hpp"

namespace gearbox {
class Loop;
}

namespace gearbox::detail {

class ProvidedBuffers;

class RecvStream final : private RingOp, private RingResident {
public:
  // The most buffers a socket holds unread before its receive is disarmed.
  static constexpr unsigned k_max_queued = 16;

  // A stream for the stream socket `fd` on `loop`'s `ring`, or null where multishot
  // receives cannot be used (not a stream socket; no provided buffer rings).
  static RecvStream* make(Loop& loop, Ring& ring, int fd) noexcept;

  // The loop whose ring it uses; null once that ring is gone.
  Loop* loop() const noexcept { return m_loop; }
  // Binds an attached stream whose ring is gone to `loop`'s ring. False where that ring
  // has no provided buffers.
  bool rebind(Loop& loop, Ring& ring) noexcept;

  // Copies up to `size` queued bytes to `data` (the leftover first); returns how many.
  std::size_t take(void* data, std::size_t size) noexcept;
  // The stream ended: 0 for its end, or the errno of its error. Meaningful when ended().
  bool ended() const noexcept { return m_ended; }
  int error() const noexcept { return m_error; }
  bool armed() const noexcept { return m_armed; }
  // Arms the receive on the socket `fd` (open for the call; the caller's use). False, and
  // nothing armed, when the pool ran out at the last try (the caller then receives once by
  // itself; the next arm() tries again). Throws IoError when no submission entry is left.
  bool arm(int fd);

  // Waits for the next completion: data, the end, or a disarm. Cancellable (Cancelled),
  // and then nothing is lost.
  class Next;
  Next next() noexcept;

  // The socket is closed, or its AsyncFd goes: see Lifetime above. The caller no longer
  // owns the stream.
  void detach() noexcept;

private:
  RecvStream(Loop& loop, Ring& ring, ProvidedBuffers& buffers) noexcept;
  ~RecvStream();

  struct Chunk {
    std::uint16_t id;
    std::uint32_t size;
    std::uint32_t offset;  // bytes already taken
  };

  static void on_complete(RingOp* op, int result, std::uint32_t flags) noexcept;
  static void on_ring_exit(RingResident* resident) noexcept;
  void give_back_all() noexcept;
  void wake_reader() noexcept;

  Loop* m_loop;
  Ring* m_ring;
  ProvidedBuffers* m_buffers;
  // The received buffers not yet read, oldest first (k_max_queued and more: the kernel may
  // complete a few more while the disarm is on its way).
  std::deque<Chunk> m_queue;
  std::string m_leftover;  // received but not read when the ring went
  std::size_t m_leftover_at = 0;
  Next* m_reader = nullptr;  // the read waiting in next()
  bool m_attached = true;
  bool m_armed = false;
  bool m_disarming = false;  // a cancel of the receive is on its way
  bool m_starved = false;    // the last receive ended for want of buffers
  bool m_ended = false;
  int m_error = 0;
};

class RecvStream::Next : private CancelSlot {
public:
  explicit Next(RecvStream& stream) noexcept : CancelSlot(&Next::on_cancel), m_stream(&stream) {}
  Next(const Next&) = delete;
  Next& operator=(const Next&) = delete;
  ~Next() {
    if (m_core && m_stream && m_stream->m_reader == this) m_stream->m_reader = nullptr;
  }

  bool await_ready() const noexcept { return !m_stream->m_queue.empty() || m_stream->m_leftover_at < m_stream->m_leftover.size() || m_stream->m_ended || !m_stream->m_armed; }
  bool await_suspend(std::coroutine_handle<> awaiter);
  void await_resume() const;

private:
  friend class RecvStream;
  static void on_cancel(CancelSlot* slot) noexcept;
  void wake() noexcept;

  RecvStream* m_stream;
  TaskCore* m_core = nullptr;
  bool m_cancelled = false;
};

inline RecvStream::Next RecvStream::next() noexcept { return Next(*this); }

}  // namespace gearbox::detail
