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
// runs (reserve a vector up front, or allocate them individually). Loop thread only.
#pragma once

#include <coroutine>
#include <cstddef>
#include <optional>
#include <vector>

#include <gearbox/detail/intrusive_list.hpp>
#include <gearbox/detail/task_core.hpp>
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

  // `track_order`: keep the indices in the order the children end (for ended()).
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
  // detached (so the caller may free it). The children run on, unwatched.
  template <class Fn>
  void detach_all(Fn&& fn) noexcept {
    m_running.for_each([&](ListNode* node) {
      auto* listener = static_cast<Listener*>(node);
      listener->m_core->set_listener(nullptr);
      node->unlink();
      --m_running_count;
      fn(*listener);
    });
  }

  // Starts watching `core` (already spawned) as child number `index`.
  void watch(Listener& listener, TaskCore& core, std::size_t index) {
    require_single_thread("gather, when_any, as_completed and TaskGroup");
    listener.m_set = this;
    listener.m_core = &core;
    listener.m_index = index;
    if (core.done()) {  // ended before we looked: count it now
      record_end(listener);
      return;
    }
    m_running.push_back(&listener);
    ++m_running_count;
    core.set_listener(&listener);
    if (m_cancelling) core.request_cancel();
  }

  void cancel_all() noexcept {
    m_cancelling = true;
    m_running.for_each([](ListNode* node) { static_cast<Listener*>(node)->m_core->request_cancel(); });
  }

  std::size_t running() const noexcept { return m_running_count; }
  bool cancelling() const noexcept { return m_cancelling; }
  std::optional<std::size_t> first_failure() const noexcept { return m_first_failure; }
  std::size_t ended_count() const noexcept { return m_ended_count; }
  // With track_order: the indices of the children that have ended, in the order they ended.
  const std::vector<std::size_t>& ended() const noexcept { return m_ended; }
  void reserve(std::size_t children) { if (m_track_order) m_ended.reserve(children); }

  // Called (if set) for each child as it ends, after the set has recorded it; `context` is
  // the caller's, returned by context().
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
      m_set->m_parent = &current_core_or_throw();
      if (m_set->m_parent->cancel_requested()) m_set->cancel_all();
      if (m_set->m_running_count == 0) return false;
      m_set->m_waiting_for_all = true;
      m_set->m_parent->suspend(awaiter, m_set->m_parent->cancel_requested() ? nullptr : static_cast<CancelSlot*>(m_set), WaitOn::children);
      return true;
    }
    bool await_resume() const noexcept {
      m_set->m_waiting_for_all = false;
      return m_set->m_parent->cancel_requested();
    }

  private:
    ChildSet* m_set;
  };

  class NextEnded {
  public:
    explicit NextEnded(ChildSet& set, std::size_t seen) noexcept : m_set(&set), m_seen(seen) {}
    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> awaiter) {
      m_set->m_parent = &current_core_or_throw();
      if (m_set->m_parent->cancel_requested()) return false;
      if (m_set->m_ended_count > m_seen || m_set->m_running_count == 0) return false;
      m_set->m_waiting_for = m_seen + 1;
      m_set->m_parent->suspend(awaiter, m_set, WaitOn::children);
      return true;
    }
    void await_resume() const {
      m_set->m_waiting_for = 0;
      if (m_set->m_parent->cancel_requested()) throw Cancelled{};
    }

  private:
    ChildSet* m_set;
    std::size_t m_seen;
  };

  [[nodiscard]] AllEnded all_ended() noexcept { return AllEnded{*this}; }
  [[nodiscard]] NextEnded next_ended(std::size_t seen) noexcept { return NextEnded{*this, seen}; }

private:
  static void on_child_complete(CompletionListener* base) noexcept {
    auto* listener = static_cast<Listener*>(base);
    ChildSet* set = listener->m_set;
    listener->unlink();
    --set->m_running_count;
    set->record_end(*listener);
  }

  void record_end(Listener& listener) noexcept {
    ++m_ended_count;
    if (m_track_order) m_ended.push_back(listener.m_index);
    const bool failed = listener.m_core->exception() != nullptr;
    if (failed && !m_first_failure) m_first_failure = listener.m_index;
    if ((m_policy == CancelOn::failure && failed) || (m_policy == CancelOn::completion && !m_cancelling)) cancel_all();
    const bool wake = m_parent && ((m_waiting_for_all && m_running_count == 0) ||
                                   (m_waiting_for != 0 && m_ended_count >= m_waiting_for));
    if (m_on_end) m_on_end(*this, listener);  // may free the listener
    if (wake) m_parent->wake();
  }

  // The parent was cancelled while waiting: forward to the children (all_ended keeps
  // waiting) or abandon the wait (next_ended).
  static void on_parent_cancel(CancelSlot* slot) noexcept {
    auto* set = static_cast<ChildSet*>(slot);
    if (set->m_waiting_for_all) {
      set->cancel_all();
    } else {
      set->m_waiting_for = 0;
      set->m_parent->wake();
    }
  }

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
