// spawn(task): starts a task concurrently on the current loop (asyncio.create_task).
//
//   auto a = gb::spawn(download("a"));    // both run now, interleaved at co_await
//   auto b = gb::spawn(download("b"));
//   co_await a; co_await b;
//
// The returned JoinHandle owns the task: dropping it cancels the task, detach() lets it
// run on, co_await yields its result. Call from a task on a loop (or use Loop::spawn).
// `start` says whether it first runs at the loop's next turn or at once (see Start).
#pragma once

#include <gearbox/join_handle.hpp>
#include <gearbox/loop.hpp>
#include <gearbox/task.hpp>

namespace gearbox {

template <class T>
JoinHandle<T> spawn(Task<T> task, Start start = Start::scheduled) {
  return Loop::current_or_throw().spawn(std::move(task), start);
}

}  // namespace gearbox
