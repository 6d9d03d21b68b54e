// gearbox-lab switch: what one switch from one waiting unit to another costs, for each
// concurrency model, in nanoseconds per one-way switch.
//
//   std::vector<lab::SwitchCost> costs = lab::measure_switch_costs(10'000);
//   std::puts(lab::render_switch(costs).c_str());
//
// Each measurement plays `round_trips` round trips between two parties (two one-way
// switches each), a few times, and keeps the median:
//   coroutine_resume   std::coroutine_handle::resume() of a trivial suspended coroutine,
//                      which suspends straight back: the floor, no scheduler at all;
//   gearbox_task       two gearbox tasks on one Loop passing a counter through two
//                      rendezvous Channels: suspension, the ready queue, the loop's turn;
//   thread_*           two threads handing a token through a futex word; each blocks in
//                      FUTEX_WAIT (never spins) until the other wakes it: the kernel's
//                      sleep and wake-up, the scheduler, and the context switch;
//   process_*          two processes sending one byte each way through a pair of pipes
//                      (the child runs no gearbox code and leaves by _exit).
// The threads and the processes are pinned: `_one_core` puts both parties on one CPU
// (each switch is a context switch there), `_two_cores` on two (each switch also wakes
// the other CPU, which has gone idle meanwhile: on a virtual machine that can cost ten
// times more). Unpinned, the scheduler picks either from run to run.
// Setting up (spawning, creating the thread, forking) is not timed. A repetition that
// reaches the time cap stops early and is measured over the round trips it made.
//
// Thread-safety: blocks the calling thread; starts one thread and forks one child at a
// time and ends them before returning, even when a measurement throws. Pins the calling
// thread for the pinned kinds and restores its CPUs afterwards.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace gearbox::lab {

enum class SwitchKind {
  coroutine_resume,
  gearbox_task,
  thread_one_core,
  thread_two_cores,
  process_one_core,
  process_two_cores,
};
// Every kind, in the order the switch table lists them.
inline constexpr SwitchKind k_switch_kinds[] = {SwitchKind::coroutine_resume, SwitchKind::gearbox_task,
                                                SwitchKind::thread_one_core,  SwitchKind::thread_two_cores,
                                                SwitchKind::process_one_core, SwitchKind::process_two_cores};
const char* to_string(SwitchKind kind) noexcept;  // the key in the saved JSON: "thread_one_core"
const char* label(SwitchKind kind) noexcept;      // the name in the table: "thread to thread, one core (futex)"

struct SwitchLimits {
  int repetitions = 5;       // timed ones; one untimed warm-up runs before them
  double time_cap_s = 1.0;   // per kind, shared by its warm-up and repetitions
};

struct SwitchCost {
  SwitchKind kind = SwitchKind::coroutine_resume;
  double ns_per_switch = 0;         // median of the repetitions
  std::vector<double> repetitions;  // ns per one-way switch, in the order run
  long round_trips = 0;             // fewest made by a repetition
  bool capped = false;              // a repetition stopped at the time cap
};

// One kind, `round_trips` per repetition (at least 1).
SwitchCost measure_switch(SwitchKind kind, long round_trips, const SwitchLimits& limits = {});

// Every kind, in the order of SwitchKind; the `_two_cores` kinds only where the calling
// thread may run on two CPUs or more.
std::vector<SwitchCost> measure_switch_costs(long round_trips, const SwitchLimits& limits = {});

// The table (ns per switch and the multiple of a bare coroutine resume) and a conclusion.
std::string render_switch(const std::vector<SwitchCost>& costs);
nlohmann::json to_json(const std::vector<SwitchCost>& costs);

}  // namespace gearbox::lab
