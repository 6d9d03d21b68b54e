// ChildSet: the structured-concurrency engine shared by gather, when_any, as_completed and
// TaskGroup. It watches a set of child tasks for one parent task: counts the ones still
// running, remembers the order in which they ended and the first that failed, cancels the
// others on a failure (or on the first completion, for when_any), and wakes the parent.
//
// The parent waits in one of two ways:
//   co_await set.all_ended()   until every child has ended. The parent's cancellation is
//                              forwarded to the children and the wait goes on, so when it
//                              returns no child is left running. Returns true if the
//                              parent was cancelled.
//   co_await set.next_ended()  until one more child has ended than the parent has seen.
//                              The parent's cancellation abandons the wait (Cancelled).
//
// Per-child Listener objects are owned by the caller and must not move while their child
// runs (reserve a vector up front, or allocate them individually).
//
// Thread-safety: on a Runtime, children end on any worker, and each tells the set from
// there (TaskCore's completion listener); the parent may run on yet another. A WaitLock
// guards the set's state. Under it a child's end is recorded, the children are
// cancelled (request_cancel only marks, wakes or posts: no task ends inside it, so no
// completion re-enters the lock), and the parent's wait is decided; the parent is woken
// after the lock is released, by exactly one party (a child's end or the parent's own
// cancel clears the wait it ends), because once woken it may return and end the set's
// life. detach_all takes each listener back from its child with a CAS; a child whose end
// is already telling the set is waited for, so no callback outlives the set.
// On a thread running a single-thread Loop the lock is elided (wait_lock.hpp).
#pragma once

#include <coroutine>
#include <cstddef>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <gearbox/detail/intrusive_list.hpp>
#include <gearbox/detail/task_core.hpp>
#include <gearbox/detail/wait_lock.hpp>
#include <gearbox/error.hpp>

namespace gearbox::detail {

class ChildSet : private CancelSlot {
public:
  enum class CancelOn : unsigned char { nothing, failure, completion };

  struct Listener : CompletionListener, ListNode {
    Listener() noexcept : CompletionListener(&ChildSet::on_child_complete) {}
    ChildSet* m_set = nullptr;
    TaskCore* m_core = nullptr;
    std::size_t m_index = 0;
  };

  // `track_order`: keep the indices in the order the children end (for ended_at()).
  explicit ChildSet(CancelOn policy, bool track_order = false) noexcept
      : CancelSlot(&ChildSet::on_parent_cancel), m_policy(policy), m_track_order(track_order) {}
  ChildSet(const ChildSet&) = delete;
  ChildSet& operator=(const ChildSet&) = delete;
  // The owner must have waited for all_ended() (or cancelled and let the children end)
  // before the set dies; a child still running is detached from it here.
  ~ChildSet() {
    detach_all([](Listener&) noexcept {});
  }

  // Stops watching every child still running, calling fn(listener) for each after it is
  // detached (so the caller may free it). The children run on, unwatched. A child whose
  // end is being told to the set meanwhile is waited for (its callback records it).
  template <class Fn>
  void detach_all(Fn&& fn) noexcept {
    for (;;) {
      {
        std::lock_guard guard{m_lock};
        m_running.for_each([&](ListNode* node) {
          auto* listener = static_cast<Listener*>(node);
          if (!listener->m_core->try_unlisten(listener)) return;  // ending now: its callback comes
          node->unlink();
          --m_running_count;
          fn(*listener);
        });
        if (m_running.empty()) return;
      }
      std::this_thread::yield();  // a child on another worker is inside its callback
    }
  }

  // Starts watching `core` (already spawned) as child number `index`.
  void watch(Listener& listener, TaskCore& core, std::size_t index) {
    listener.m_set = this;
    listener.m_core = &core;
    listener.m_index = index;
    TaskCore* wake = nullptr;
    {
      std::lock_guard guard{m_lock};
      if (core.try_listen(&listener) == TaskCore::Listen::done) {
        wake = record_end(listener);  // ended before we looked: count it now
      } else {
        m_running.push_back(&listener);
        ++m_running_count;
        if (m_cancelling) core.request_cancel();
      }
    }
    if (wake) wake->wake();
  }

  void cancel_all() noexcept {
    std::lock_guard guard{m_lock};
    cancel_all_locked();
  }

  std::size_t running() const noexcept {
    std::lock_guard guard{m_lock};
    return m_running_count;
  }
  bool cancelling() const noexcept {
    std::lock_guard guard{m_lock};
    return m_cancelling;
  }
  std::optional<std::size_t> first_failure() const noexcept {
    std::lock_guard guard{m_lock};
    return m_first_failure;
  }
  // first_failure(), from the on_end callback (which already holds the lock).
  std::optional<std::size_t> first_failure_in_callback() const noexcept { return m_first_failure; }
  std::size_t ended_count() const noexcept {
    std::lock_guard guard{m_lock};
    return m_ended_count;
  }
  // With track_order: the index of the `n`th child to end (n < ended_count()).
  std::size_t ended_at(std::size_t n) const noexcept {
    std::lock_guard guard{m_lock};
    return m_ended[n];
  }
  void reserve(std::size_t children) { if (m_track_order) m_ended.reserve(children); }

  // Called (if set) for each child as it ends, after the set has recorded it; `context` is
  // the caller's, returned by context(). It runs under the set's lock: it may read the
  // set only through the *_in_callback accessors, and must not take other sets' locks.
  void set_on_end(void (*fn)(ChildSet&, Listener&) noexcept, void* context) noexcept {
    m_on_end = fn;
    m_context = context;
  }
  void* context() const noexcept { return m_context; }

  class AllEnded {
  public:
    explicit AllEnded(ChildSet& set) noexcept : m_set(&set) {}
    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> awaiter) {
      TaskCore& parent = current_core_or_throw();
      std::lock_guard guard{m_set->m_lock};
      m_set->m_parent = &parent;
      if (parent.cancel_requested()) m_set->cancel_all_locked();
      if (m_set->m_running_count == 0) return false;
      m_set->m_waiting_for_all = true;
      parent.suspend(awaiter, parent.cancel_requested() ? nullptr : static_cast<CancelSlot*>(m_set), WaitOn::children);
      return true;
    }
    // Whoever woke the parent cleared m_waiting_for_all.
    bool await_resume() const noexcept { return m_set->m_parent->cancel_requested(); }

  private:
    ChildSet* m_set;
  };

  class NextEnded {
  public:
    explicit NextEnded(ChildSet& set, std::size_t seen) noexcept : m_set(&set), m_seen(seen) {}
    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> awaiter) {
      TaskCore& parent = current_core_or_throw();
      std::lock_guard guard{m_set->m_lock};
      m_set->m_parent = &parent;
      if (parent.cancel_requested()) return false;
      if (m_set->m_ended_count > m_seen || m_set->m_running_count == 0) return false;
      m_set->m_waiting_for = m_seen + 1;
      parent.suspend(awaiter, m_set, WaitOn::children);
      return true;
    }
    // Whoever woke the parent cleared m_waiting_for.
    void await_resume() const {
      if (m_set->m_parent->cancel_requested()) throw Cancelled{};
    }

  private:
    ChildSet* m_set;
    std::size_t m_seen;
  };

  [[nodiscard]] AllEnded all_ended() noexcept { return AllEnded{*this}; }
  [[nodiscard]] NextEnded next_ended(std::size_t seen) noexcept { return NextEnded{*this, seen}; }

private:
  // Runs on the worker where the child ended.
  static void on_child_complete(CompletionListener* base) noexcept {
    auto* listener = static_cast<Listener*>(base);
    ChildSet* set = listener->m_set;
    TaskCore* wake;
    {
      std::lock_guard guard{set->m_lock};
      listener->unlink();
      --set->m_running_count;
      wake = set->record_end(*listener);
    }
    if (wake) wake->wake();  // the set may be gone from here on
  }

  // The caller holds m_lock. Returns the parent if this end ends its wait (the caller
  // wakes it once the lock is released), else null.
  TaskCore* record_end(Listener& listener) noexcept {
    ++m_ended_count;
    if (m_track_order) m_ended.push_back(listener.m_index);
    const bool failed = listener.m_core->exception() != nullptr;
    if (failed && !m_first_failure) m_first_failure = listener.m_index;
    if ((m_policy == CancelOn::failure && failed) || (m_policy == CancelOn::completion && !m_cancelling))
      cancel_all_locked();
    TaskCore* wake = nullptr;
    if (m_waiting_for_all && m_running_count == 0) {
      m_waiting_for_all = false;
      wake = m_parent;
    } else if (m_waiting_for != 0 && m_ended_count >= m_waiting_for) {
      m_waiting_for = 0;
      wake = m_parent;
    }
    if (m_on_end) m_on_end(*this, listener);  // may free the listener
    return wake;
  }

  void cancel_all_locked() noexcept {
    m_cancelling = true;
    m_running.for_each([](ListNode* node) { static_cast<Listener*>(node)->m_core->request_cancel(); });
  }

  // The parent was cancelled while waiting: forward to the children (all_ended keeps
  // waiting) or abandon the wait (next_ended), unless a child's end already ended it.
  static void on_parent_cancel(CancelSlot* slot) noexcept {
    auto* set = static_cast<ChildSet*>(slot);
    TaskCore* wake = nullptr;
    {
      std::lock_guard guard{set->m_lock};
      if (set->m_waiting_for_all) {
        set->cancel_all_locked();
      } else if (set->m_waiting_for != 0) {
        set->m_waiting_for = 0;
        wake = set->m_parent;
      }
    }
    if (wake) wake->wake();
  }

  mutable WaitLock m_lock;  // guards everything below but the constants
  List m_running;
  std::vector<std::size_t> m_ended;
  std::size_t m_running_count = 0;
  std::size_t m_ended_count = 0;
  std::size_t m_waiting_for = 0;  // next_ended: wake when m_ended.size() reaches this
  std::optional<std::size_t> m_first_failure;
  TaskCore* m_parent = nullptr;
  void (*m_on_end)(ChildSet&, Listener&) noexcept = nullptr;
  void* m_context = nullptr;
  CancelOn m_policy;
  bool m_track_order;
  bool m_cancelling = false;
  bool m_waiting_for_all = false;
};

}  // namespace gearbox::detail
