// gearbox-lab share: the cases (declared in share.hpp).
#include "share.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <latch>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <gearbox/combinators.hpp>
#include <gearbox/loop.hpp>
#include <gearbox/process/shared_buffer.hpp>
#include <gearbox/task.hpp>
#include <gearbox/time.hpp>

namespace gearbox::lab {

const char* to_string(ShareCase c) noexcept {
  switch (c) {
  case ShareCase::threads_read_then_write: return "threads_read_then_write";
  case ShareCase::threads_mutex: return "threads_mutex";
  case ShareCase::threads_atomic_add: return "threads_atomic_add";
  case ShareCase::async_read_then_write: return "async_read_then_write";
  case ShareCase::async_await_between: return "async_await_between";
  case ShareCase::processes_own_memory: return "processes_own_memory";
  case ShareCase::processes_shared_atomic: return "processes_shared_atomic";
  case ShareCase::processes_shared_read_then_write: return "processes_shared_read_then_write";
  }
  return "?";
}

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

[[noreturn]] void fail(const char* what, int error = errno) {
  throw std::system_error(error, std::generic_category(), std::string("gearbox-lab share: ") + what);
}

// x = x + 1 as two steps. Relaxed: the lesson is the lost update between the load and the
// store, which no ordering prevents; atomics only keep the race free of undefined behaviour.
template <class Counter>
void add_by_load_and_store(Counter& counter, long increments) {
  for (long i = 0; i < increments; ++i) {
    const long seen = counter.load(std::memory_order_relaxed);
    counter.store(seen + 1, std::memory_order_relaxed);
  }
}

// Relaxed: only the total matters, and the joins (or waitpid) order every add before the
// parent's read.
template <class Counter>
void add_atomically(Counter& counter, long increments) {
  for (long i = 0; i < increments; ++i) counter.fetch_add(1, std::memory_order_relaxed);
}

// ---- threads ----

template <class Add>
double run_threads(int units, Add add) {
  std::latch start(1);
  std::vector<std::jthread> threads;
  threads.reserve(static_cast<std::size_t>(units));
  try {
    for (int i = 0; i < units; ++i)
      threads.emplace_back([&] {
        start.wait();
        add();
      });
  } catch (const std::system_error& e) {
    start.count_down();  // the threads started run and are joined before the error leaves
    threads.clear();
    throw std::system_error(e.code(), "gearbox-lab share: starting a thread");
  }
  const auto began = Clock::now();
  start.count_down();
  threads.clear();  // joins
  return seconds_since(began);
}

// ---- tasks on one loop ----

Task<void> add_on_the_loop(std::atomic<long>* counter, long increments, bool await_between) {
  for (long i = 0; i < increments; ++i) {
    const long seen = counter->load(std::memory_order_relaxed);  // one thread: relaxed is enough
    if (await_between) co_await yield_now();
    counter->store(seen + 1, std::memory_order_relaxed);
  }
}

Task<void> add_with_tasks(std::atomic<long>* counter, int units, long increments, bool await_between) {
  std::vector<Task<void>> tasks;
  for (int i = 0; i < units; ++i) tasks.push_back(add_on_the_loop(counter, increments, await_between));
  co_await gather(std::move(tasks));
}

// ---- forked children ----

// Runs in a forked child: only async-signal-safe calls (the atomics are lock-free), no
// gearbox code, no atexit handlers. Waits at the gate until the parent closes its end.
template <class Add>
[[noreturn]] void child_adds(int gate, Add& add) {
  char byte = 0;
  while (::read(gate, &byte, 1) < 0 && errno == EINTR) {
  }
  add();
  ::_exit(0);
}

// Forks `units` children that each call add() once the gate opens; returns the seconds
// from opening it until every child has been reaped.
template <class Add>
double run_processes(int units, Add add) {
  int gate[2];
  if (::pipe2(gate, O_CLOEXEC) != 0) fail("pipe2");
  std::vector<pid_t> children;
  int fork_error = 0;
  for (int i = 0; i < units; ++i) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::close(gate[1]);
      child_adds(gate[0], add);
    }
    if (pid < 0) {
      fork_error = errno;
      break;
    }
    children.push_back(pid);
  }
  const auto began = Clock::now();
  ::close(gate[1]);  // opens the gate: every child reads end-of-file and starts
  ::close(gate[0]);
  bool all_clean = true;
  for (const pid_t pid : children) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    all_clean = all_clean && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }
  const double wall_s = seconds_since(began);
  if (fork_error != 0) fail("fork", fork_error);
  if (!all_clean) throw std::runtime_error("gearbox-lab share: a child process did not exit cleanly");
  return wall_s;
}

// The counter in memory the children share with the parent: a SharedBuffer's MAP_SHARED
// memfd mapping, inherited across fork. Page-aligned, so fit for an atomic_ref<long>.
class SharedCounter {
public:
  SharedCounter() : m_buffer(SharedBuffer::create(sizeof(long))) {}
  std::atomic_ref<long> counter() { return std::atomic_ref<long>(*reinterpret_cast<long*>(m_buffer.writable().data())); }

private:
  SharedBuffer m_buffer;
};

void check(const ShareSpec& spec) {
  if (spec.units < 1 || spec.units > k_max_share_units)
    throw std::invalid_argument("gearbox-lab share: units must be 1 to " + std::to_string(k_max_share_units));
  if (spec.increments < 1) throw std::invalid_argument("gearbox-lab share: increments must be at least 1");
  if (spec.increments > std::numeric_limits<long>::max() / spec.units)
    throw std::invalid_argument("gearbox-lab share: units × increments does not fit a long");
}

}  // namespace

ShareRun run_share_case(ShareCase which, const ShareSpec& spec) {
  check(spec);
  ShareRun run;
  run.which = which;
  run.expected = spec.units * spec.increments;
  const long n = spec.increments;
  std::atomic<long> counter{0};
  switch (which) {
  case ShareCase::threads_read_then_write:
    run.wall_s = run_threads(spec.units, [&] { add_by_load_and_store(counter, n); });
    break;
  case ShareCase::threads_mutex: {
    std::mutex mutex;
    run.wall_s = run_threads(spec.units, [&] {
      for (long i = 0; i < n; ++i) {
        const std::lock_guard lock(mutex);
        counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
      }
    });
    break;
  }
  case ShareCase::threads_atomic_add: run.wall_s = run_threads(spec.units, [&] { add_atomically(counter, n); }); break;
  case ShareCase::async_read_then_write:
  case ShareCase::async_await_between: {
    const bool await_between = which == ShareCase::async_await_between;
    const auto began = Clock::now();
    Loop loop;
    loop.run(add_with_tasks(&counter, spec.units, n, await_between));
    run.wall_s = seconds_since(began);
    break;
  }
  case ShareCase::processes_own_memory:
    run.wall_s = run_processes(spec.units, [&] { add_atomically(counter, n); });  // the child's copy
    break;
  case ShareCase::processes_shared_atomic:
  case ShareCase::processes_shared_read_then_write: {
    SharedCounter shared;
    std::atomic_ref<long> in_shared = shared.counter();
    if (which == ShareCase::processes_shared_atomic)
      run.wall_s = run_processes(spec.units, [&] { add_atomically(in_shared, n); });
    else
      run.wall_s = run_processes(spec.units, [&] { add_by_load_and_store(in_shared, n); });
    run.final_count = in_shared.load(std::memory_order_relaxed);  // waitpid ordered the children's adds before
    return run;
  }
  }
  run.final_count = counter.load(std::memory_order_relaxed);  // after the joins, or in this thread
  return run;
}

std::vector<ShareRun> run_share(const ShareSpec& spec) {
  check(spec);
  std::vector<ShareRun> runs;
  for (const ShareCase c : k_share_cases) runs.push_back(run_share_case(c, spec));
  return runs;
}

}  // namespace gearbox::lab
