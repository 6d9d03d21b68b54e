// TaskGroup: a scope that owns a dynamic set of child tasks (asyncio.TaskGroup, a Trio
// nursery). Children are spawned into it; join() waits for all of them.
//
//   gb::TaskGroup group;
//   for (auto& url : urls) group.spawn(download(url));
//   co_await group.join();   // all done; or the first failure, rethrown
//
// If a child fails, the group cancels its siblings, and join() rethrows the first failure
// once every child has ended. Later failures (other than Cancelled) are reported to the
// loop's unhandled-exception handler, and so is the first one if join() never gets to
// rethrow it (the parent was cancelled, or threw before reaching join). A child that ends
// with Cancelled counts as a failure, as in asyncio; so group.cancel() makes join() throw
// Cancelled. Cancelling the task inside join() cancels every
// child, waits for them, and throws Cancelled. A failure does not interrupt the parent's
// own code before it reaches join(); it shows there.
//
// Contract: co_await join() before the group is destroyed. A group destroyed with children
// still running cancels them (they end on their own, unowned). spawn() after join() has
// returned throws std::logic_error. Use a group from the task that made it (on a Runtime
// its children run on any worker).
#pragma once

#include <cstddef>
#include <exception>
#include <memory>
#include <stdexcept>

#include <gearbox/detail/awaitable_traits.hpp>
#include <gearbox/detail/child_set.hpp>
#include <gearbox/error.hpp>
#include <gearbox/loop.hpp>
#include <gearbox/task.hpp>

namespace gearbox {

class TaskGroup {
public:
  TaskGroup() : m_set(std::make_unique<detail::ChildSet>(detail::ChildSet::CancelOn::failure)) {
    m_set->set_on_end(&TaskGroup::on_child_end, this);
  }
  TaskGroup(const TaskGroup&) = delete;
  TaskGroup& operator=(const TaskGroup&) = delete;
  ~TaskGroup() {
    // Children still running are cancelled and left to end on their own, unowned.
    m_set->cancel_all();
    m_set->detach_all([](detail::ChildSet::Listener& listener) noexcept {
      auto* entry = static_cast<Entry*>(&listener);
      entry->m_core->release();
      delete entry;
    });
    // A first failure that join() never rethrew (the parent was cancelled, or threw before
    // reaching join) must not vanish. Read once no child can record one any more.
    report_unrethrown_failure();
  }

  // Starts `task` (or any awaitable) as a child of the group, eagerly (it runs until its
  // first suspension before spawn returns). If the group is already cancelling (a child
  // failed), the new child is scheduled already cancelled: it runs up to its first
  // suspension point and throws Cancelled there.
  template <class A>
  void spawn(A&& awaitable) {
    if (m_joined) throw std::logic_error("gearbox: TaskGroup::spawn after join()");
    Loop& loop = Loop::current_or_throw();
    m_loop = &loop;
    auto child = loop.spawn(detail::to_task(std::forward<A>(awaitable)), m_set->cancelling() ? Start::scheduled : Start::eager);
    auto* entry = new Entry;
    entry->m_core = child.core();
    entry->m_core->add_ref();
    m_set->watch(*entry, *entry->m_core, m_spawned++);
    child.detach();  // the entry holds the reference now
  }

  // Cancels every child still running.
  void cancel() noexcept { m_set->cancel_all(); }

  std::size_t running() const noexcept { return m_set->running(); }

  // Waits for every child to end. Rethrows the first failure, or Cancelled if the calling
  // task was cancelled while waiting.
  [[nodiscard]] Task<void> join() {
    const bool cancelled = co_await m_set->all_ended();
    m_joined = true;
    if (cancelled) {
      report_unrethrown_failure();
      throw Cancelled{};
    }
    if (m_first_error) std::rethrow_exception(std::exchange(m_first_error, nullptr));
  }

private:
  void report_unrethrown_failure() noexcept {
    std::exception_ptr error = std::exchange(m_first_error, nullptr);
    if (error && m_loop && !detail::is_cancellation(error)) detail::LoopAccess::report_unhandled(*m_loop, error);
  }

  struct Entry : detail::ChildSet::Listener {
    detail::TaskCore* m_core = nullptr;  // one reference, released when the child ends
  };

  static void on_child_end(detail::ChildSet& set, detail::ChildSet::Listener& listener) noexcept {
    auto* entry = static_cast<Entry*>(&listener);
    auto* group = static_cast<TaskGroup*>(set.context());
    if (std::exception_ptr error = entry->m_core->exception()) {
      if (!group->m_first_error && set.first_failure_in_callback() == entry->m_index) {
        group->m_first_error = error;
        entry->m_core->mark_observed();  // rethrown by join(), so not reported
      }
    }
    entry->m_core->release();  // the last release reports any other failure
    delete entry;
  }

  std::unique_ptr<detail::ChildSet> m_set;
  std::exception_ptr m_first_error;  // the first failure, until join() rethrows it
  Loop* m_loop = nullptr;
  std::size_t m_spawned = 0;
  bool m_joined = false;
};

}  // namespace gearbox
