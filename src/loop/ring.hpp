// Ring: a loop's io_uring instance, the completion side of the io_uring back end.
//
// An operation is a RingOp (its address is the submission's user_data): prepare() hands
// out a submission queue entry to fill, which is submitted with the others just before the
// loop's next wait (or at once, when the submission queue is full). Each completion calls
// the op's handler on the loop's thread, from the loop's poll.
//
// Thread-safety: the owning loop's thread only (a Runtime's worker owns its ring, and an
// operation is submitted to the ring of the worker its task runs on, which is where its
// cancellation is delivered too, see TaskCore::deliver_cancel).
#pragma once

#include <liburing.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <thread>

#include <gearbox/detail/intrusive_list.hpp>

namespace gearbox::detail {

struct RingOp {
  // Called once per completion: `result` is the operation's (a count, a descriptor, or
  // -errno); `flags` the completion's (IORING_CQE_F_MORE: a multishot op goes on).
  using Fn = void (*)(RingOp*, int result, std::uint32_t flags) noexcept;
  explicit RingOp(Fn on_complete) noexcept : m_on_complete(on_complete) {}
  Fn m_on_complete;
};

// An operation that lives across awaits (a socket's multishot receive, RecvStream): the
// ring lists it and tells it once when the ring goes, after which no completion comes.
struct RingResident : ListNode {
  using Fn = void (*)(RingResident*) noexcept;
  explicit RingResident(Fn on_ring_exit) noexcept : m_on_ring_exit(on_ring_exit) {}
  Fn m_on_ring_exit;
};

class ProvidedBuffers;

struct RingCounters {
  std::uint64_t submitted = 0;    // operations prepared (cancel requests not counted)
  std::uint64_t completed = 0;    // completions handed to operations
  std::uint64_t full_flushes = 0; // submissions forced early by a full submission queue
};

class Ring {
public:
  static constexpr unsigned k_entries = 256;
  // The most one read, write, send or receive moves (the entry's length is 32 bits).
  static constexpr std::size_t k_max_transfer = std::size_t{1} << 30;

  // How the loop waits: in epoll (the ring's descriptor watched there), or in the ring
  // itself (io_uring_enter), which then runs the completions' task work only when the loop
  // asks for it (DEFER_TASKRUN, Linux 6.1; SINGLE_ISSUER: one thread drives the ring for
  // its life, the one that polls it first).
  enum class Wait : unsigned char { in_epoll, in_ring };

  // Throws IoError (io_uring_queue_init's errno).
  explicit Ring(Wait wait = Wait::in_epoll, unsigned entries = k_entries);
  ~Ring();
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;

  int fd() const noexcept { return m_ring.ring_fd; }

  // An entry for `op` to fill; its user_data is set, nothing else. Never null: when the
  // submission queue is full, what is in it is submitted first. Throws IoError when even
  // that fails.
  io_uring_sqe* prepare(RingOp* op);
  // Asks the kernel to cancel `op`, which must be in flight. Its handler is still called
  // once more: with -ECANCELED, or with its result if it had finished.
  void cancel(RingOp* op);
  // Cancels every operation of this ring on the file `fd` refers to (Linux 5.19), and
  // submits at once, so `fd` may be closed when this returns. Throws IoError.
  void cancel_all_on(int fd);

  // Hands what was prepared to the kernel (no wait). Throws IoError.
  void submit();
  // Wait::in_ring: submits what was prepared, and waits up to `timeout_ms` (-1: no limit,
  // 0: no wait, but the pending task work is run) for a completion. Interrupted, timed out
  // or not, it returns; complete_ready() then takes what came. Throws IoError.
  void submit_and_wait(int timeout_ms);
  // Calls the handler of every completion there is (no wait); returns how many.
  int complete_ready();

  // Whether this thread may submit: any thread for Wait::in_epoll; for Wait::in_ring the
  // one that enabled it (the loop's), or any before that.
  bool may_submit_here() const noexcept {
    return !m_single_issuer || m_disabled || m_issuer == std::this_thread::get_id();
  }

  // The pool of receive buffers multishot receives pick from, made at the first call; null
  // where the kernel has no provided buffer rings (before 5.19), and then ever after.
  ProvidedBuffers* provided_buffers() noexcept;
  // Lists `resident` until it unlinks itself (ListNode::unlink) or the ring goes.
  void adopt(RingResident* resident) noexcept { m_residents.push_back(resident); }

  bool has_unsubmitted() const noexcept { return io_uring_sq_ready(&m_ring) > 0; }
  bool has_completions() const noexcept { return io_uring_cq_ready(&m_ring) > 0; }
  // Operations submitted or prepared whose last completion has not come yet.
  std::size_t in_flight() const noexcept { return m_in_flight; }
  const RingCounters& counters() const noexcept { return m_counters; }

private:
  // A free entry; submits what is queued first when there is none. Throws IoError.
  io_uring_sqe* next_entry();

  // Wait::in_ring rings start disabled and are enabled by their first poll, so that the
  // thread that drives them is the loop's, not the one that made the loop.
  void enable_here();

  mutable io_uring m_ring{};
  bool m_disabled = false;
  bool m_single_issuer = false;
  std::thread::id m_issuer;  // set when enabled
  std::size_t m_in_flight = 0;
  RingCounters m_counters;
  List m_residents;
  std::unique_ptr<ProvidedBuffers> m_buffers;  // freed after the ring's exit (~Ring)
  bool m_buffers_refused = false;
};

}  // namespace gearbox::detail
