// Channel<T>: a bounded FIFO that passes values between tasks, any number of senders and
// receivers (a Go channel; asyncio.Queue with maxsize and a close; Tokio's mpsc, but
// multi-consumer). To wait on several channels at once, see select.hpp.
//
//   gb::Channel<Job> jobs{64};
//   // producer:                         // consumers:
//   for (auto& job : batch)              while (auto job = co_await jobs.receive())
//     co_await jobs.send(std::move(job));  run(*job);
//   jobs.close();                        // the loop ends once closed and drained
//
// send() waits while `capacity` values are buffered, so a fast producer is slowed to the
// pace of its consumers (backpressure). Capacity 0 makes a rendezvous channel, like an
// unbuffered Go channel: a send completes only by handing its value to a receiver. Both
// sides are fair: waiting senders and waiting receivers are served in FIFO order. A send
// that finds a receiver waiting hands it the value directly; a receive that frees a slot
// moves the first waiting sender's value into the buffer and wakes that sender.
//
// close() ends the stream: receives return the values still buffered, then std::nullopt;
// every later send throws ChannelClosed. Values are moved, never copied, so T may be
// move-only (std::unique_ptr); T must be nothrow move-constructible, so that a hand-off
// cannot fail halfway. The buffer is one ring allocated by the constructor: no allocation
// per message, and the waits allocate nothing either.
//
// Where a value goes when a send does not happen: the awaiter of `co_await ch.send(v)`
// owns v until the send takes place. If it is cancelled, or the channel is closed, the
// send throws (Cancelled, ChannelClosed) and v is destroyed with the awaiter as the
// exception leaves the co_await; it never enters the channel. To keep a value on failure,
// use try_send, which leaves its argument untouched unless it succeeds.
//
// Thread-safety: on a Loop, call every member on the loop's thread (between loops, use a
// thread-safe queue and post()). On a Runtime, tasks on any worker may send, receive and
// close, and try_send, try_receive and close may also be called from any other thread.
// Destruction: no task may be waiting; values still buffered are destroyed with it.
//
// Memory ordering: a receiver sees everything the sender did before send(), and a woken
// sender everything its receiver did before receive() (release by the channel's internal
// lock or the wake-up, acquire by the other side's lock or wake-up). size() and closed()
// are snapshots.
#pragma once

#include <coroutine>
#include <cstddef>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

#include <gearbox/detail/wait_queue.hpp>
#include <gearbox/error.hpp>

namespace gearbox {

template <class T>
class Channel;

namespace detail {

// Both awaiters are also the cases of a select (select.hpp), through select_lock(),
// select_queue(), select_try() and select_result().
template <class T>
class ChannelSendAwaiter : public Waiter {
public:
  using SelectResult = std::monostate;

  ChannelSendAwaiter(Channel<T>& channel, T&& value) noexcept : m_channel(&channel), m_value(std::move(value)) {}
  ChannelSendAwaiter(ChannelSendAwaiter&& other) noexcept
      : Waiter(std::move(other)), m_channel(other.m_channel), m_value(std::move(other.m_value)) {}

  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> awaiter) {
    return suspend_unless_ready(awaiter, select_lock(), select_queue(), [this](WakeList& wakes) { return select_try(wakes); });
  }
  void await_resume() const {
    throw_if_cancelled();
    select_result();
  }

  WaitLock& select_lock() const noexcept;
  WaitQueue& select_queue() const noexcept;
  // Sends now if it can (the caller holds the lock): completed, closed or pending.
  WaitOutcome select_try(WakeList& wakes) noexcept;
  // The outcome, once completed or closed: throws ChannelClosed for a closed channel.
  std::monostate select_result() const {
    if (outcome() == WaitOutcome::closed) throw ChannelClosed{};
    return {};
  }

private:
  friend class Channel<T>;
  Channel<T>* m_channel;
  T m_value;  // moved out by the channel when the send takes place
};

template <class T>
class ChannelReceiveAwaiter : public Waiter {
public:
  using SelectResult = std::optional<T>;

  explicit ChannelReceiveAwaiter(Channel<T>& channel) noexcept : m_channel(&channel) {}
  ChannelReceiveAwaiter(ChannelReceiveAwaiter&& other) noexcept : Waiter(std::move(other)), m_channel(other.m_channel) {}

  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> awaiter) {
    return suspend_unless_ready(awaiter, select_lock(), select_queue(), [this](WakeList& wakes) { return select_try(wakes); });
  }
  std::optional<T> await_resume() {
    throw_if_cancelled();
    return select_result();
  }

  WaitLock& select_lock() const noexcept;
  WaitQueue& select_queue() const noexcept;
  // Receives now if it can (the caller holds the lock): completed, closed or pending.
  WaitOutcome select_try(WakeList& wakes) noexcept;
  // The value received, or std::nullopt for a closed channel.
  std::optional<T> select_result() { return std::move(m_result); }

private:
  friend class Channel<T>;
  Channel<T>* m_channel;
  std::optional<T> m_result;  // filled by the channel; stays empty for "closed"
};

}  // namespace detail

template <class T>
class Channel {
  static_assert(std::is_object_v<T> && !std::is_const_v<T>, "gearbox::Channel<T>: T must be a non-const object type");
  static_assert(std::is_nothrow_move_constructible_v<T>, "gearbox::Channel<T>: T must be nothrow move-constructible");

public:
  // A channel that buffers up to `capacity` values (0: rendezvous). Allocates the buffer.
  explicit Channel(std::size_t capacity)
      : m_slots(capacity > 0 ? std::allocator<T>{}.allocate(capacity) : nullptr), m_capacity(capacity) {}
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;
  ~Channel() {
    while (m_size > 0) pop_front();
    if (m_slots) std::allocator<T>{}.deallocate(m_slots, m_capacity);
  }

  // co_await ch.send(value): passes `value` on, to a waiting receiver or into the buffer,
  // waiting while the buffer is full (or, at capacity 0, until a receiver takes it).
  // Throws ChannelClosed if the channel is or becomes closed
  // before the value is taken, and Cancelled if the task is cancelled before or while it
  // waits; either way the value is destroyed with the awaiter and was not sent. A send that
  // already took place is not undone by a later cancel (the task throws at its next
  // suspension point). Must be awaited from a task on a Loop or a Runtime
  // (std::logic_error otherwise).
  [[nodiscard]] detail::ChannelSendAwaiter<T> send(T value) noexcept {
    return detail::ChannelSendAwaiter<T>{*this, std::move(value)};
  }

  // co_await ch.receive(): the next value, waiting while there is none; std::nullopt once
  // the channel is closed and drained. Throws Cancelled if the task is cancelled before or
  // while it waits (no value is taken). A value already handed to this receive is
  // delivered even if a cancel arrives before the task resumes. Must be awaited from a
  // task on a Loop or a Runtime (std::logic_error otherwise).
  [[nodiscard]] detail::ChannelReceiveAwaiter<T> receive() noexcept { return detail::ChannelReceiveAwaiter<T>{*this}; }

  // Sends without waiting: true if the value was taken (moved from), false if the channel
  // is full (`value` untouched). Throws ChannelClosed, `value` untouched, if closed.
  bool try_send(T&& value) {
    detail::WakeList wakes;  // wakes once the lock is released
    std::lock_guard guard{m_lock};
    if (m_closed) throw ChannelClosed{};
    return offer(value, wakes);
  }

  // Receives without waiting: the next value, or std::nullopt if none is ready (check
  // closed() to tell "empty for now" from "closed and drained").
  [[nodiscard]] std::optional<T> try_receive() noexcept {
    std::optional<T> result;
    detail::WakeList wakes;  // wakes once the lock is released
    std::lock_guard guard{m_lock};
    take(result, wakes);
    return result;
  }

  // Closes the channel: waiting receivers get std::nullopt (there are none while values
  // are buffered), waiting senders throw ChannelClosed, values already buffered stay for
  // later receives, and every later send throws. Idempotent. Woken tasks resume in a later
  // turn.
  void close() noexcept {
    detail::WakeList wakes;  // wakes once the lock is released
    std::lock_guard guard{m_lock};
    if (m_closed) return;
    m_closed = true;
    m_receivers.complete_all(detail::WaitOutcome::closed, wakes);
    m_senders.complete_all(detail::WaitOutcome::closed, wakes);
  }

  bool closed() const noexcept {
    std::lock_guard guard{m_lock};
    return m_closed;
  }
  // Values buffered now (not counting those held by waiting senders).
  std::size_t size() const noexcept {
    std::lock_guard guard{m_lock};
    return m_size;
  }
  std::size_t capacity() const noexcept { return m_capacity; }

private:
  friend class detail::ChannelSendAwaiter<T>;
  friend class detail::ChannelReceiveAwaiter<T>;
  using SendAwaiter = detail::ChannelSendAwaiter<T>;
  using ReceiveAwaiter = detail::ChannelReceiveAwaiter<T>;

  // Invariants, under m_lock (cancellation and dead select cases only remove waiters,
  // which keeps them true):
  //   receivers wait only while the buffer is empty and no sender waits;
  //   senders wait only while the buffer is full and no receiver waits.

  // Passes `value` on without waiting if it can (moving from it); false otherwise. The
  // caller holds m_lock.
  bool offer(T& value, detail::WakeList& wakes) noexcept {
    if (auto* receiver = m_receivers.template claim_front<ReceiveAwaiter>()) {
      receiver->m_result.emplace(std::move(value));
      receiver->complete(detail::WaitOutcome::completed, wakes);
      return true;
    }
    if (m_size == m_capacity) return false;
    push_back(std::move(value));
    return true;
  }

  // Takes the next value into `out` without waiting if there is one; false otherwise. The
  // caller holds m_lock.
  bool take(std::optional<T>& out, detail::WakeList& wakes) noexcept {
    auto* sender = m_senders.template claim_front<SendAwaiter>();
    if (m_size > 0) {
      out.emplace(std::move(m_slots[m_head]));
      pop_front();
      if (sender) push_back(std::move(sender->m_value));  // the freed slot goes to the first sender
    } else if (sender) {
      out.emplace(std::move(sender->m_value));  // rendezvous: straight from the sender
    } else {
      return false;
    }
    if (sender) sender->complete(detail::WaitOutcome::completed, wakes);
    return true;
  }

  void push_back(T&& value) noexcept {
    std::size_t tail = m_head + m_size;
    if (tail >= m_capacity) tail -= m_capacity;
    std::construct_at(m_slots + tail, std::move(value));
    ++m_size;
  }
  void pop_front() noexcept {
    std::destroy_at(m_slots + m_head);
    if (++m_head == m_capacity) m_head = 0;
    --m_size;
  }

  mutable detail::WaitLock m_lock;  // guards everything below but the constants
  T* m_slots;              // ring of m_capacity slots; [m_head, m_head + m_size) are alive
  std::size_t m_capacity;
  std::size_t m_head = 0;
  std::size_t m_size = 0;
  detail::WaitQueue m_senders{detail::WaitOn::channel};
  detail::WaitQueue m_receivers{detail::WaitOn::channel};
  bool m_closed = false;
};

namespace detail {

template <class T>
WaitLock& ChannelSendAwaiter<T>::select_lock() const noexcept {
  return m_channel->m_lock;
}

template <class T>
WaitQueue& ChannelSendAwaiter<T>::select_queue() const noexcept {
  return m_channel->m_senders;
}

template <class T>
WaitOutcome ChannelSendAwaiter<T>::select_try(WakeList& wakes) noexcept {
  if (m_channel->m_closed) return WaitOutcome::closed;
  return m_channel->offer(m_value, wakes) ? WaitOutcome::completed : WaitOutcome::pending;
}

template <class T>
WaitLock& ChannelReceiveAwaiter<T>::select_lock() const noexcept {
  return m_channel->m_lock;
}

template <class T>
WaitQueue& ChannelReceiveAwaiter<T>::select_queue() const noexcept {
  return m_channel->m_receivers;
}

template <class T>
WaitOutcome ChannelReceiveAwaiter<T>::select_try(WakeList& wakes) noexcept {
  if (m_channel->take(m_result, wakes)) return WaitOutcome::completed;
  return m_channel->m_closed ? WaitOutcome::closed : WaitOutcome::pending;
}

}  // namespace detail

}  // namespace gearbox
