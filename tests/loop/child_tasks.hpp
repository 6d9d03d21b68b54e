// Shared by the tests of the combinators (gather_test, when_any_test, as_completed_test)
// and of TaskGroup (task_group_test): child tasks that sleep, fail or refuse to be
// cancelled cleanly, and log what they do in their Env ("<name> <event> @<ms since
// start>"). Each holds a Tracked local, so that a test can prove that every child's frame
// was destroyed exactly once. Then the parents that several tests run on both flavors:
// one that reports what a combinator threw, one that cancels a task after a while. Free
// functions: a coroutine lambda with captures must not outlive its closure.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include <gearbox/error.hpp>
#include <gearbox/join_handle.hpp>
#include <gearbox/spawn.hpp>
#include <gearbox/task.hpp>
#include <gearbox/time.hpp>

#include "support/env.hpp"
#include "support/lifetimes.hpp"

namespace gearbox_test {

namespace gb = gearbox;
using std::chrono::milliseconds;

// The delay of a child that ends only by cancellation, so that on the runtime flavor no
// outcome depends on how late a timer fires.
inline constexpr milliseconds k_never = std::chrono::hours(1);

inline gb::Task<void> noter(Env& env, std::string name) {
  env.note(name);
  co_return;
}

// Sleeps `delay`, then returns `value`; logs its start, its end, or its cancellation.
inline gb::Task<int> sleeper(Env& env, std::string name, milliseconds delay, int value) {
  Tracked alive{env.life};
  env.note(name + " start");
  try {
    co_await gb::sleep_for(delay);
  } catch (const gb::Cancelled&) {
    env.note(name + " cancelled");
    throw;
  }
  env.note(name + " end");
  co_return value;
}

inline gb::Task<void> void_sleeper(Env& env, std::string name, milliseconds delay) {
  Tracked alive{env.life};
  env.note(name + " start");
  try {
    co_await gb::sleep_for(delay);
  } catch (const gb::Cancelled&) {
    env.note(name + " cancelled");
    throw;
  }
  env.note(name + " end");
}

// Sleeps `delay`, then throws Failure{name}.
inline gb::Task<int> failer(Env& env, std::string name, milliseconds delay) {
  Tracked alive{env.life};
  env.note(name + " start");
  try {
    co_await gb::sleep_for(delay);
  } catch (const gb::Cancelled&) {
    env.note(name + " cancelled");
    throw;
  }
  env.note(name + " throws");
  throw Failure{name};
}

// Sleeps `delay`; if cancelled meanwhile, fails with a different error (a clean-up that
// went wrong), which nobody will rethrow.
inline gb::Task<int> stubborn(Env& env, std::string name, milliseconds delay) {
  Tracked alive{env.life};
  env.note(name + " start");
  bool cancelled = false;
  try {
    co_await gb::sleep_for(delay);
  } catch (const gb::Cancelled&) {
    cancelled = true;
  }
  if (cancelled) {
    env.note(name + " fails while cancelled");
    throw Failure{name + " cleanup failed"};
  }
  env.note(name + " end");
  co_return 0;
}

inline gb::Task<std::unique_ptr<int>> boxed(Env& env, milliseconds delay, int value) {
  Tracked alive{env.life};
  co_await gb::sleep_for(delay);
  co_return std::make_unique<int>(value);
}

// Awaits `task`: env.caught() of the Failure it threw, else "no exception".
template <class T>
gb::Task<std::string> outcome_of(Env& env, gb::Task<T> task) {
  std::string outcome = "no exception";
  try {
    (void)co_await std::move(task);
    env.note(outcome);
  } catch (const Failure& failure) {
    outcome = env.caught(failure);
  }
  co_return outcome;
}

// Spawns `parent`, cancels it 10 ms later and awaits it: env.outcome() of "parent ended
// Cancelled", else "parent returned".
inline gb::Task<std::string> cancel_after_a_while(Env& env, gb::Task<void> parent) {
  auto handle = gb::spawn(std::move(parent));
  co_await gb::sleep_for(milliseconds(10));
  env.note("cancel parent");
  handle.cancel();
  std::string outcome = "parent returned";
  try {
    co_await handle;
    env.note(outcome);
  } catch (const gb::Cancelled&) {
    outcome = env.outcome("parent ended Cancelled");
  }
  co_return outcome;
}

}  // namespace gearbox_test
