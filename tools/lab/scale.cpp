#include "scale.hpp"

#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <mutex>
#include <new>
#include <system_error>
#include <thread>
#include <utility>

#include <gearbox/gearbox.hpp>

#include "scale_guards.hpp"

namespace gearbox::lab {
namespace {

using Clock = std::chrono::steady_clock;

// How often (in units created) each model checks the time and memory budgets: rarely
// enough that the checks do not show in the creation time.
constexpr std::size_t k_coroutine_check_every = 4096;
constexpr std::size_t k_thread_check_every = 64;
constexpr std::size_t k_process_check_every = 8;

std::size_t grown_by(std::size_t before, std::size_t after) { return after > before ? after - before : 0; }

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// A step's figures: `created` units alive, created in `create_s` seconds, and the growth
// of memory and address space they caused.
ScaleStep measured(std::size_t asked, std::size_t created, double create_s, std::size_t bytes, std::size_t reserved) {
  ScaleStep step;
  step.asked = asked;
  step.created = created;
  if (created == 0) return step;
  const auto units = static_cast<double>(created);
  step.create_us_per_unit = create_s * 1e6 / units;
  step.bytes_per_unit = static_cast<double>(bytes) / units;
  step.reserved_bytes_per_unit = static_cast<double>(reserved) / units;
  return step;
}

// Runs one model: each step from nothing, under one set of guards, until the steps end or
// a guard stops it. `run_step(asked, guards)` returns the step's figures, having released
// everything it created.
template <class RunStep>
ScaleRun run_model(ScaleModel model, const std::vector<std::size_t>& steps, const ScaleLimits& limits, RunStep run_step) {
  ScaleRun run;
  run.model = model;
  ScaleGuards guards(model, limits);
  for (const std::size_t asked : steps) {
    if (!guards.admit_step(asked, run.steps)) break;
    ::malloc_trim(0);  // return the last step's freed memory, so this step's growth shows in RSS
    const ScaleStep step = run_step(asked, guards);
    if (step.created > 0) run.steps.push_back(step);
    if (guards.stopped()) break;
  }
  run.stop = guards.stop();
  run.stop_reason = guards.reason();
  run.seconds = guards.elapsed_s();
  return run;
}

// ---- coroutines: gearbox tasks suspended on one Event ----

Task<void> wait_for(Event& release) { co_await release.wait(); }

Task<ScaleStep> coroutine_step(std::size_t asked, ScaleGuards& guards) {
  Event release;
  std::vector<JoinHandle<void>> waiting;
  const std::size_t rss_before = read_rss();
  try {
    waiting.reserve(asked);  // touched only as it fills: 8 bytes per task, counted
  } catch (const std::bad_alloc&) {
  }
  const auto start = Clock::now();
  const std::size_t created = grow_units(
      asked, guards, "spawning a task", k_coroutine_check_every,
      [&]() -> int {
        try {
          waiting.push_back(spawn(wait_for(release), Start::eager));  // runs until it waits
          return 0;
        } catch (const std::bad_alloc&) {
          return ENOMEM;
        }
      },
      [&] { return grown_by(rss_before, read_rss()); });
  const double create_s = seconds_since(start);
  const ScaleStep step = measured(asked, created, create_s, grown_by(rss_before, read_rss()), 0);
  release.set();
  for (JoinHandle<void>& task : waiting) co_await task;
  co_return step;
}

// ---- threads: std::threads blocked on one condition variable ----

// The address space reserved for the calling thread's stack, guard page included.
std::size_t own_stack_reservation() {
  pthread_attr_t attributes;
  if (::pthread_getattr_np(::pthread_self(), &attributes) != 0) return 0;
  std::size_t stack = 0;
  std::size_t guard = 0;
  ::pthread_attr_getstacksize(&attributes, &stack);
  ::pthread_attr_getguardsize(&attributes, &guard);
  ::pthread_attr_destroy(&attributes);
  return stack + guard;
}

// Where the threads wait. Every field is written under m_mutex.
class Gate {
public:
  // Counts the caller in (with the stack it reserved), then blocks until open().
  void arrive_and_wait(std::size_t stack_reserved) {
    std::unique_lock lock(m_mutex);
    ++m_arrived;
    m_stacks_reserved += stack_reserved;
    m_arrivals.notify_one();
    m_opened.wait(lock, [this] { return m_open; });
  }
  // Blocks until `count` threads have arrived; returns the stack space they reserved.
  std::size_t wait_for_arrivals(std::size_t count) {
    std::unique_lock lock(m_mutex);
    m_arrivals.wait(lock, [&] { return m_arrived >= count; });
    return m_stacks_reserved;
  }
  void open() {
    {
      std::lock_guard lock(m_mutex);
      m_open = true;
    }
    m_opened.notify_all();
  }

private:
  std::mutex m_mutex;
  std::condition_variable m_arrivals;
  std::condition_variable m_opened;
  std::size_t m_arrived = 0;
  std::size_t m_stacks_reserved = 0;  // bytes
  bool m_open = false;
};

// Threads blocked at one gate; the destructor opens it and joins them all.
class BlockedThreads {
public:
  explicit BlockedThreads(std::size_t expected) { m_threads.reserve(expected); }
  BlockedThreads(const BlockedThreads&) = delete;
  BlockedThreads& operator=(const BlockedThreads&) = delete;
  ~BlockedThreads() {
    m_gate.open();
    for (std::thread& thread : m_threads) thread.join();
  }

  // Starts one more thread; 0, or the errno value of a failed pthread_create.
  int add() {
    try {
      m_threads.emplace_back([this] { m_gate.arrive_and_wait(own_stack_reservation()); });
      return 0;
    } catch (const std::system_error& e) {
      return e.code().value();
    }
  }
  // Blocks until every thread started is blocked; returns the stack space they reserved.
  std::size_t wait_until_all_blocked() { return m_gate.wait_for_arrivals(m_threads.size()); }

private:
  Gate m_gate;  // declared first: destroyed after the threads are joined
  std::vector<std::thread> m_threads;
};

// The reserved figure is what each thread's stack mapping spans, as the threads report
// it, rather than the growth of the virtual size: glibc reuses the stacks of threads
// joined in the last step, which would hide their reservation.
ScaleStep thread_step(std::size_t asked, ScaleGuards& guards) {
  BlockedThreads threads(asked);
  const std::size_t rss_before = read_rss();
  const auto start = Clock::now();
  const std::size_t created = grow_units(asked, guards, "pthread_create", k_thread_check_every,
                                         [&] { return threads.add(); },
                                         [&] { return grown_by(rss_before, read_rss()); });
  const std::size_t stacks = threads.wait_until_all_blocked();
  const double create_s = seconds_since(start);
  return measured(asked, created, create_s, grown_by(rss_before, read_rss()), stacks);
}

// ---- processes: forked children blocked reading one pipe ----

// Runs in the forked child: only async-signal-safe calls, no gearbox code, no atexit
// handlers. Says it is ready, then blocks until the parent closes the release pipe or
// kills it (or dies: that closes the pipe too, so no child outlives a crashed lab).
[[noreturn]] void blocked_child(int release_read, int release_write, int ready_read, int ready_write) {
  ::close(release_write);
  ::close(ready_read);
  char byte = 1;
  while (::write(ready_write, &byte, 1) < 0 && errno == EINTR) {
  }
  ::close(ready_write);
  while (::read(release_read, &byte, 1) < 0 && errno == EINTR) {
  }
  ::_exit(0);
}

// Children blocked on one pipe; the destructor kills and reaps every one.
class BlockedChildren {
public:
  BlockedChildren() {
    if (::pipe2(m_release, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe2");
    if (::pipe2(m_ready, O_CLOEXEC) != 0) {
      const int error = errno;
      close_fds();
      throw std::system_error(error, std::generic_category(), "pipe2");
    }
  }
  BlockedChildren(const BlockedChildren&) = delete;
  BlockedChildren& operator=(const BlockedChildren&) = delete;
  ~BlockedChildren() {
    close_fds();  // releases them: the read returns end-of-file
    for (const pid_t pid : m_pids) ::kill(pid, SIGKILL);
    for (const pid_t pid : m_pids) {
      while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
      }
    }
  }

  // Forks one more child; 0, or the errno value of a failed fork.
  int add() {
    m_pids.reserve(m_pids.size() + 1);  // cannot fail once the child exists
    const pid_t pid = ::fork();
    if (pid < 0) return errno;
    if (pid == 0) blocked_child(m_release[0], m_release[1], m_ready[0], m_ready[1]);
    m_pids.push_back(pid);
    return 0;
  }

  // Waits until every child said it is ready (or died: the pipe then ends early).
  void wait_until_all_blocked() {
    close_fd(m_ready[1]);  // the children hold the only write ends left
    char bytes[256];
    for (std::size_t ready = 0; ready < m_pids.size();) {
      const ssize_t n = ::read(m_ready[0], bytes, std::min(sizeof bytes, m_pids.size() - ready));
      if (n == 0 || (n < 0 && errno != EINTR)) break;
      if (n > 0) ready += static_cast<std::size_t>(n);
    }
  }

  // The pages the children own alone: what forking them added (until a child writes to a
  // page, it shares the parent's copy).
  std::size_t children_private() const {
    std::size_t total = 0;
    for (const pid_t pid : m_pids) total += read_private(pid);
    return total;
  }

private:
  static void close_fd(int& fd) {
    if (fd >= 0) ::close(std::exchange(fd, -1));
  }
  void close_fds() {
    for (int* fd : {&m_release[0], &m_release[1], &m_ready[0], &m_ready[1]}) close_fd(*fd);
  }

  int m_release[2] = {-1, -1};  // children block reading [0]; only the parent keeps [1]
  int m_ready[2] = {-1, -1};    // each child writes one byte to [1] once it runs
  std::vector<pid_t> m_pids;
};

ScaleStep process_step(std::size_t asked, ScaleGuards& guards) {
  const std::size_t available_before = read_mem_available();
  BlockedChildren children;
  const auto start = Clock::now();
  const std::size_t created = grow_units(asked, guards, "fork", k_process_check_every, [&] { return children.add(); },
                                         [&] { return grown_by(read_mem_available(), available_before); });
  children.wait_until_all_blocked();
  const double create_s = seconds_since(start);
  return measured(asked, created, create_s, children.children_private(), 0);
}

}  // namespace

const char* to_string(ScaleModel model) noexcept {
  switch (model) {
  case ScaleModel::coroutines: return "coroutines";
  case ScaleModel::threads: return "threads";
  case ScaleModel::processes: return "processes";
  }
  return "?";
}

const char* to_string(ScaleStop stop) noexcept {
  switch (stop) {
  case ScaleStop::none: return "none";
  case ScaleStop::unit_cap: return "unit_cap";
  case ScaleStop::task_ceiling: return "task_ceiling";
  case ScaleStop::create_failed: return "create_failed";
  case ScaleStop::memory_guard: return "memory_guard";
  case ScaleStop::time_guard: return "time_guard";
  }
  return "?";
}

std::size_t ScaleRun::most_created() const noexcept {
  std::size_t most = 0;
  for (const ScaleStep& step : steps) most = std::max(most, step.created);
  return most;
}

std::vector<std::size_t> scale_steps(ScaleModel model, std::size_t max) {
  std::vector<std::size_t> steps;
  for (std::size_t count = model == ScaleModel::coroutines ? 1000 : 10; count < max; count *= 10) {
    steps.push_back(count);
    if (count > max / 10) break;  // the next count would pass max (or overflow)
  }
  if (max > 0) steps.push_back(max);
  return steps;
}

ScaleRun scale_coroutines(const std::vector<std::size_t>& steps, const ScaleLimits& limits) {
  Loop loop;
  return run_model(ScaleModel::coroutines, steps, limits,
                   [&](std::size_t asked, ScaleGuards& guards) { return loop.run(coroutine_step(asked, guards)); });
}

ScaleRun scale_threads(const std::vector<std::size_t>& steps, const ScaleLimits& limits) {
  return run_model(ScaleModel::threads, steps, limits, thread_step);
}

ScaleRun scale_processes(const std::vector<std::size_t>& steps, const ScaleLimits& limits) {
  return run_model(ScaleModel::processes, steps, limits, process_step);
}

ScaleContext read_scale_context() {
  ScaleContext context;
  context.mem_available = read_mem_available();
  context.task_limits = read_task_limits();
  rlimit stack{};
  if (::getrlimit(RLIMIT_STACK, &stack) == 0 && stack.rlim_cur != RLIM_INFINITY) context.stack_rlimit = stack.rlim_cur;
  pthread_attr_t defaults;
  if (::pthread_getattr_default_np(&defaults) == 0) {
    ::pthread_attr_getstacksize(&defaults, &context.default_thread_stack);
    ::pthread_attr_destroy(&defaults);
  }
  return context;
}

}  // namespace gearbox::lab
