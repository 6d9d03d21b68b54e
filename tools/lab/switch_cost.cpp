#include "switch_cost.hpp"

#include <fcntl.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <gearbox/gearbox.hpp>

#include "cpu_pinning.hpp"

namespace gearbox::lab {
namespace {

using Clock = std::chrono::steady_clock;

// Round trips between two looks at the clock: rare enough not to show in the figures.
constexpr long k_clock_every = 64;

struct Played {
  long round_trips = 0;
  double seconds = 0;
};

// Whether to play another round trip after `done`: until `wanted`, or `deadline`.
bool keep_playing(long done, long wanted, Clock::time_point deadline) {
  return done < wanted && (done % k_clock_every != 0 || Clock::now() < deadline);
}

// Plays up to `wanted` round trips with `round_trip()`, stopping early at `deadline`.
template <class RoundTrip>
Played play(long wanted, Clock::time_point deadline, RoundTrip round_trip) {
  const auto start = Clock::now();
  long done = 0;
  while (keep_playing(done, wanted, deadline)) {
    round_trip();
    ++done;
  }
  return {done, std::chrono::duration<double>(Clock::now() - start).count()};
}

// ---- a bare coroutine: resumed, it suspends straight back ----

class Bouncer {
public:
  struct promise_type {
    Bouncer get_return_object() noexcept { return Bouncer{std::coroutine_handle<promise_type>::from_promise(*this)}; }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_always final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
  };
  explicit Bouncer(std::coroutine_handle<promise_type> handle) noexcept : m_handle(handle) {}
  Bouncer(const Bouncer&) = delete;
  Bouncer& operator=(const Bouncer&) = delete;
  ~Bouncer() { m_handle.destroy(); }
  void resume() const { m_handle.resume(); }

private:
  std::coroutine_handle<promise_type> m_handle;
};

Bouncer bounce(long& resumes) {
  for (;;) {
    ++resumes;  // observed by the caller, so the compiler must keep every resume
    co_await std::suspend_always{};
  }
}

Played play_coroutine_resume(long wanted, Clock::time_point deadline) {
  long resumes = 0;
  const Bouncer bouncer = bounce(resumes);
  const Played played = play(wanted, deadline, [&] { bouncer.resume(); });
  if (resumes != played.round_trips) throw std::logic_error("gearbox-lab switch: a resume went missing");
  return played;
}

// ---- two gearbox tasks through two rendezvous channels ----

Task<void> echo(Channel<long>& in, Channel<long>& out) {
  while (auto value = co_await in.receive()) co_await out.send(*value);
}

Task<Played> serve_and_return(long wanted, Clock::time_point deadline) {
  Channel<long> there{0};
  Channel<long> back{0};
  JoinHandle<void> partner = spawn(echo(there, back), Start::eager);
  const auto start = Clock::now();
  long done = 0;
  while (keep_playing(done, wanted, deadline)) {
    co_await there.send(done);
    done = *co_await back.receive() + 1;
  }
  const Played played{done, std::chrono::duration<double>(Clock::now() - start).count()};
  there.close();
  co_await partner;
  co_return played;
}

Played play_gearbox_task(long wanted, Clock::time_point deadline) {
  Loop loop;
  return loop.run(serve_and_return(wanted, deadline));
}

// ---- two threads through a futex ----

void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected) {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected, nullptr, nullptr, 0);
}
void futex_wake(std::atomic<std::uint32_t>& word) {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

// The token two threads hand back and forth. A thread waits in FUTEX_WAIT until the word
// leaves its "not my turn" value; the kernel checks the value again under its own lock
// before it sleeps, so a wake between our load and the wait is never lost.
class Baton {
public:
  static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t) &&
                    std::atomic<std::uint32_t>::is_always_lock_free,
                "the futex word must be a plain 32-bit word");
  static constexpr std::uint32_t k_caller = 0;   // the measuring thread holds it
  static constexpr std::uint32_t k_partner = 1;  // the partner holds it
  static constexpr std::uint32_t k_stop = 2;     // the partner must return

  // Hands the token to `holder` and wakes the other thread.
  void pass_to(std::uint32_t holder) {
    m_holder.store(holder);
    futex_wake(m_holder);
  }
  // Blocks while `holder` holds the token; returns the new holder.
  std::uint32_t wait_while(std::uint32_t holder) {
    std::uint32_t now = m_holder.load();
    while (now == holder) {
      futex_wait(m_holder, holder);
      now = m_holder.load();
    }
    return now;
  }

private:
  // k_caller, k_partner or k_stop. Written by the thread that holds the token (k_stop by
  // the caller, when the partner has passed it back). seq_cst: each side's store must be
  // visible before its FUTEX_WAKE, and the last store before FUTEX_WAIT re-checks it.
  std::atomic<std::uint32_t> m_holder{k_caller};
};

// The CPUs of the two parties: one core, or the first two the caller may use.
struct Placement {
  int caller;
  int partner;
};
Placement placement(bool two_cores) {
  const std::vector<int> cpus = allowed_cpus();
  return {cpus[0], two_cores && cpus.size() > 1 ? cpus[1] : cpus[0]};
}

Played play_thread_futex(long wanted, Clock::time_point deadline, Placement where) {
  const PinnedThread pinned(where.caller);
  Baton baton;
  std::thread partner([&] {
    pin_calling_thread(where.partner);
    while (baton.wait_while(Baton::k_caller) == Baton::k_partner) baton.pass_to(Baton::k_caller);
  });
  const Played played = play(wanted, deadline, [&] {
    baton.pass_to(Baton::k_partner);
    baton.wait_while(Baton::k_partner);
  });
  baton.pass_to(Baton::k_stop);
  partner.join();
  return played;
}

// ---- two processes through two pipes ----

// Runs in the forked child: only async-signal-safe calls, no gearbox code, no atexit
// handlers. Echoes each byte until the parent closes its end (or dies).
[[noreturn]] void echo_bytes(int in, int out) {
  char byte = 0;
  for (;;) {
    const ssize_t got = ::read(in, &byte, 1);
    if (got == 0 || (got < 0 && errno != EINTR)) ::_exit(0);
    if (got == 1 && ::write(out, &byte, 1) != 1) ::_exit(1);
  }
}

// A forked child that echoes bytes; the destructor closes the pipes and reaps it.
class EchoChild {
public:
  explicit EchoChild(int cpu) {
    if (::pipe2(m_there, O_CLOEXEC) != 0 || ::pipe2(m_back, O_CLOEXEC) != 0) fail("pipe2");
    m_pid = ::fork();
    if (m_pid < 0) fail("fork");
    if (m_pid == 0) {
      pin_calling_thread(cpu);
      ::close(m_there[1]);
      ::close(m_back[0]);
      echo_bytes(m_there[0], m_back[1]);
    }
    close_fd(m_there[0]);
    close_fd(m_back[1]);
  }
  EchoChild(const EchoChild&) = delete;
  EchoChild& operator=(const EchoChild&) = delete;
  ~EchoChild() { release(); }

  void round_trip() {
    char byte = 1;
    if (::write(m_there[1], &byte, 1) != 1 || ::read(m_back[0], &byte, 1) != 1)
      throw std::system_error(errno, std::generic_category(), "gearbox-lab switch: pipe to the child");
  }

private:
  static void close_fd(int& fd) {
    if (fd >= 0) ::close(std::exchange(fd, -1));
  }
  void release() noexcept {
    for (int* fd : {&m_there[0], &m_there[1], &m_back[0], &m_back[1]}) close_fd(*fd);  // the child reads end-of-file
    if (m_pid > 0) {
      while (::waitpid(m_pid, nullptr, 0) < 0 && errno == EINTR) {
      }
      m_pid = -1;
    }
  }
  [[noreturn]] void fail(const char* call) {
    const int error = errno;
    release();
    throw std::system_error(error, std::generic_category(), std::string("gearbox-lab switch: ") + call);
  }

  int m_there[2] = {-1, -1};  // parent writes [1], child reads [0]
  int m_back[2] = {-1, -1};   // child writes [1], parent reads [0]
  pid_t m_pid = -1;
};

Played play_process_pipe(long wanted, Clock::time_point deadline, Placement where) {
  const PinnedThread pinned(where.caller);
  EchoChild child(where.partner);
  return play(wanted, deadline, [&] { child.round_trip(); });
}

Played play_once(SwitchKind kind, long wanted, Clock::time_point deadline) {
  switch (kind) {
  case SwitchKind::coroutine_resume: return play_coroutine_resume(wanted, deadline);
  case SwitchKind::gearbox_task: return play_gearbox_task(wanted, deadline);
  case SwitchKind::thread_one_core: return play_thread_futex(wanted, deadline, placement(false));
  case SwitchKind::thread_two_cores: return play_thread_futex(wanted, deadline, placement(true));
  case SwitchKind::process_one_core: return play_process_pipe(wanted, deadline, placement(false));
  case SwitchKind::process_two_cores: return play_process_pipe(wanted, deadline, placement(true));
  }
  return {};
}

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const std::size_t middle = values.size() / 2;
  return values.size() % 2 == 1 ? values[middle] : (values[middle - 1] + values[middle]) / 2;
}

}  // namespace

const char* to_string(SwitchKind kind) noexcept {
  switch (kind) {
  case SwitchKind::coroutine_resume: return "coroutine_resume";
  case SwitchKind::gearbox_task: return "gearbox_task";
  case SwitchKind::thread_one_core: return "thread_one_core";
  case SwitchKind::thread_two_cores: return "thread_two_cores";
  case SwitchKind::process_one_core: return "process_one_core";
  case SwitchKind::process_two_cores: return "process_two_cores";
  }
  return "?";
}

SwitchCost measure_switch(SwitchKind kind, long round_trips, const SwitchLimits& limits) {
  SwitchCost cost;
  cost.kind = kind;
  const long wanted = std::max(1L, round_trips);
  cost.round_trips = wanted;
  const int repetitions = std::max(1, limits.repetitions);
  const auto cap = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(limits.time_cap_s));
  const auto share = cap / (repetitions + 1);  // the warm-up gets a share too
  for (int run = 0; run <= repetitions; ++run) {
    const Played played = play_once(kind, wanted, Clock::now() + share);
    if (run == 0) continue;  // the warm-up is not kept
    cost.capped = cost.capped || played.round_trips < wanted;
    cost.round_trips = std::min(cost.round_trips, played.round_trips);
    if (played.round_trips > 0)
      cost.repetitions.push_back(played.seconds * 1e9 / (2.0 * static_cast<double>(played.round_trips)));
  }
  cost.ns_per_switch = median(cost.repetitions);
  return cost;
}

std::vector<SwitchCost> measure_switch_costs(long round_trips, const SwitchLimits& limits) {
  const bool two_cores = allowed_cpus().size() > 1;
  std::vector<SwitchCost> costs;
  for (const SwitchKind kind : {SwitchKind::coroutine_resume, SwitchKind::gearbox_task, SwitchKind::thread_one_core,
                                SwitchKind::thread_two_cores, SwitchKind::process_one_core,
                                SwitchKind::process_two_cores}) {
    if (two_cores || (kind != SwitchKind::thread_two_cores && kind != SwitchKind::process_two_cores))
      costs.push_back(measure_switch(kind, round_trips, limits));
  }
  return costs;
}

}  // namespace gearbox::lab
