// select: waits on several channel operations at once and performs exactly one (Go's
// select statement; Tokio's select! over channel futures).
//
//   auto got = co_await gb::select(jobs.receive(), control.receive(), results.send(r));
//   switch (got.index()) {
//     case 0: if (auto& job = std::get<0>(got)) run(*job); break;   // std::optional<Job>
//     case 1: handle(std::get<1>(got)); break;                       // std::optional<Cmd>
//     case 2: break;                                                  // r was sent
//   }
//
// Each argument is a case: `channel.receive()` or `channel.send(value)`. The result is a
// std::variant whose index says which case happened: a receive case holds the value
// received (std::nullopt if its channel is closed and drained, as for receive()), a send
// case holds std::monostate. Exactly one case takes place; the others take nothing and
// give nothing. That is what when_any over several receives cannot promise (two receives
// may both take a value, and the loser's is dropped): here no value is ever lost, and a
// send case that did not happen leaves its value unsent (it is destroyed with the select).
//
// When several cases are ready at once, one of them is chosen at random (as Go does), so
// that a busy channel cannot starve the others. Otherwise the task waits until one becomes
// ready, and the first to be served wins: a sender or receiver that finds the select
// waiting completes it directly, the same hand-off a plain send or receive gets.
//
// Errors: a send case on a closed channel, when chosen, throws ChannelClosed (a receive
// case on a closed channel is ready and yields std::nullopt). Throws Cancelled if the task
// is cancelled before or while it waits; no case then takes place. A case that already
// took place is delivered even if a cancel arrives before the task resumes (the task
// throws at its next suspension point). Must be awaited from a task on a Loop or a
// Runtime (std::logic_error otherwise).
//
// How it works: the select locks each of its channels (in address order, so that two
// selects cannot deadlock), tries the cases from a random start, and if none is ready
// queues one waiter per case, all sharing one SelectGroup, before it releases the locks.
// A waker claims the group with one atomic compare-exchange; the waiters of the cases that
// lost are dead, and wakers pass over them (wait_queue.hpp). When the task resumes it
// unlinks whatever is left.
//
// Thread-safety: the channels may be used by tasks on other workers (and other selects)
// meanwhile, as channel.hpp allows. Allocates nothing.
// Memory ordering: as for the channel operation that took place (channel.hpp).
#pragma once

#include <algorithm>
#include <array>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>

#include <gearbox/detail/wait_queue.hpp>
#include <gearbox/error.hpp>
#include <gearbox/sync/channel.hpp>

namespace gearbox {

namespace detail {

// A start index in [0, n) for a select's scan, from a per-thread xorshift generator:
// cheap, and independent between workers.
inline std::size_t select_start(std::size_t n) noexcept {
  static thread_local std::uint32_t state = 0x9e3779b9u;
  state ^= state << 13;
  state ^= state >> 17;
  state ^= state << 5;
  return state % n;
}

template <class... Cases>
class SelectAwaiter : private SelectGroup {
  static_assert(sizeof...(Cases) >= 1, "gearbox::select needs at least one case");
  static_assert(sizeof...(Cases) <= 64, "gearbox::select takes at most 64 cases");
  static constexpr std::size_t k_cases = sizeof...(Cases);

public:
  using Result = std::variant<typename Cases::SelectResult...>;

  explicit SelectAwaiter(Cases&&... cases) noexcept
      : SelectGroup(&SelectAwaiter::on_cancel), m_cases(std::move(cases)...) {}
  SelectAwaiter(SelectAwaiter&& other) noexcept
      : SelectGroup(&SelectAwaiter::on_cancel), m_cases(std::move(other.m_cases)) {}
  SelectAwaiter& operator=(SelectAwaiter&&) = delete;

  bool await_ready() const noexcept { return false; }

  bool await_suspend(std::coroutine_handle<> awaiter) {
    TaskCore& core = current_core_or_throw();
    m_core = &core;
    if (core.cancel_requested()) {
      claim(k_cancelled);
      return false;
    }
    std::array<WaitLock*, k_cases> locks = all_locks(std::index_sequence_for<Cases...>{});
    std::sort(locks.begin(), locks.end());
    const auto distinct = static_cast<std::size_t>(std::unique(locks.begin(), locks.end()) - locks.begin());
    {
      WakeList wakes;  // wakes once every lock is released
      for (std::size_t i = 0; i < distinct; ++i) locks[i]->lock();
      const bool done = try_cases(wakes, select_start(k_cases));
      if (!done) {
        // Nobody can claim the group before the locks are released: every waker needs one.
        queue_cases(core, std::index_sequence_for<Cases...>{});
        core.suspend(awaiter, this, WaitOn::channel);
        m_queued = true;
      }
      for (std::size_t i = distinct; i > 0; --i) locks[i - 1]->unlock();
      if (!done) return true;
    }
    if (core.take_budget()) return false;
    core.yield(awaiter);  // fairness: the case is done, the task just resumes later
    return true;
  }

  Result await_resume() {
    if (m_queued) leave_all(std::index_sequence_for<Cases...>{});
    const int winner = SelectGroup::winner();
    if (winner == k_cancelled) throw Cancelled{};
    return result_of(static_cast<std::size_t>(winner), std::index_sequence_for<Cases...>{});
  }

private:
  template <std::size_t... I>
  std::array<WaitLock*, k_cases> all_locks(std::index_sequence<I...>) const noexcept {
    return {&std::get<I>(m_cases).select_lock()...};
  }

  // Under every lock: performs the first ready case from `start` on, round the cases.
  bool try_cases(WakeList& wakes, std::size_t start) noexcept {
    for (std::size_t k = 0; k < k_cases; ++k) {
      const std::size_t index = (start + k) % k_cases;
      if (try_case(index, wakes, std::index_sequence_for<Cases...>{})) return true;
    }
    return false;
  }

  template <std::size_t... I>
  bool try_case(std::size_t index, WakeList& wakes, std::index_sequence<I...>) noexcept {
    bool done = false;
    ((I == index ? (done = try_one<I>(wakes), 0) : 0), ...);
    return done;
  }

  template <std::size_t I>
  bool try_one(WakeList& wakes) noexcept {
    auto& the_case = std::get<I>(m_cases);
    const WaitOutcome outcome = the_case.select_try(wakes);
    if (outcome == WaitOutcome::pending) return false;
    the_case.set_outcome(outcome);
    claim(static_cast<int>(I));  // uncontended: no case is queued yet
    return true;
  }

  template <std::size_t... I>
  void queue_cases(TaskCore& core, std::index_sequence<I...>) noexcept {
    (queue_one<I>(core), ...);
  }

  template <std::size_t I>
  void queue_one(TaskCore& core) noexcept {
    auto& the_case = std::get<I>(m_cases);
    the_case.join_select(*this, static_cast<int>(I));
    the_case.enqueue(the_case.select_queue(), the_case.select_lock(), core);
  }

  template <std::size_t... I>
  void leave_all(std::index_sequence<I...>) noexcept {
    (std::get<I>(m_cases).leave(), ...);
  }

  template <std::size_t... I>
  Result result_of(std::size_t winner, std::index_sequence<I...>) {
    Result result;
    ((I == winner ? (result.template emplace<I>(std::get<I>(m_cases).select_result()), 0) : 0), ...);
    return result;
  }

  // The task was cancelled while it waited: claim the group for the cancel, unless a case
  // won first (then the case is delivered, and the next await throws).
  static void on_cancel(CancelSlot* slot) noexcept {
    auto* self = static_cast<SelectAwaiter*>(static_cast<SelectGroup*>(slot));
    if (self->claim(k_cancelled)) self->m_core->wake();
  }

  std::tuple<Cases...> m_cases;
  TaskCore* m_core = nullptr;
  bool m_queued = false;  // its cases were queued (and must be unlinked when it resumes)
};

}  // namespace detail

// co_await gb::select(case...): see the header comment. Each case is a channel's
// receive() or send(value) awaiter, which the select takes over.
template <class... Cases>
[[nodiscard]] detail::SelectAwaiter<std::remove_cvref_t<Cases>...> select(Cases&&... cases) noexcept {
  static_assert((!std::is_lvalue_reference_v<Cases> && ...),
                "gearbox::select takes its cases as temporaries: select(a.receive(), b.send(v))");
  return detail::SelectAwaiter<std::remove_cvref_t<Cases>...>{std::move(cases)...};
}

}  // namespace gearbox
