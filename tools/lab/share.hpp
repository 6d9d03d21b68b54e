// gearbox-lab share: who shares memory, and where a switch can happen.
//
//   lab::ShareSpec spec{.units = 4, .increments = 1'000'000};
//   std::vector<lab::ShareRun> runs = lab::run_share(spec);
//   std::puts(lab::render_share(runs, spec).c_str());
//
// Two lessons of the seeds, shown rather than told: "threads share memory, processes each
// have their own", and "a thread can be switched out in the middle of x = x + 1, while an
// async task is switched only where it awaits". In every case `units` units each add 1 to
// one counter `increments` times, so the expected count is units × increments:
//   threads_read_then_write   x = x + 1 as a load, then a store (relaxed atomics: the race
//                             is real and the program has no undefined behaviour): a thread
//                             switched out, or running on another core, between the two
//                             loses the others' updates in between;
//   threads_mutex             the same under one std::mutex: nothing is lost;
//   threads_atomic_add        one fetch_add (lock xadd): nothing is lost, no lock;
//   async_read_then_write     tasks on one Loop, load then store with no co_await between:
//                             a task switches only at co_await, so nothing is lost;
//   async_await_between       the same with co_await yield_now() between the load and the
//                             store: every task reads the same value before any writes;
//   processes_own_memory      forked children add to the parent's counter: each changes
//                             its own copy (fork copies memory), the parent's stays at 0;
//   processes_shared_atomic   the counter in a SharedBuffer (a MAP_SHARED memfd) that the
//                             children inherit, added to by fetch_add: one copy, exact;
//   processes_shared_read_then_write  the same counter, load then store: shared memory
//                             brings the threads' race back.
// The units start together (a latch, a gate pipe) so that they overlap.
//
// Thread-safety: blocks the calling thread; starts and joins its threads, forks and reaps
// its children (they run no gearbox code and leave by _exit) before returning.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace gearbox::lab {

enum class ShareCase {
  threads_read_then_write,
  threads_mutex,
  threads_atomic_add,
  async_read_then_write,
  async_await_between,
  processes_own_memory,
  processes_shared_atomic,
  processes_shared_read_then_write,
};
// Every case, in the order the table lists them.
inline constexpr ShareCase k_share_cases[] = {
    ShareCase::threads_read_then_write,  ShareCase::threads_mutex,
    ShareCase::threads_atomic_add,       ShareCase::async_read_then_write,
    ShareCase::async_await_between,      ShareCase::processes_own_memory,
    ShareCase::processes_shared_atomic,  ShareCase::processes_shared_read_then_write};
const char* to_string(ShareCase c) noexcept;  // the key in the JSON: "threads_mutex"
const char* label(ShareCase c) noexcept;      // the row in the table: "threads, one mutex"

struct ShareSpec {
  int units = 4;                 // threads, tasks or processes: 1 to k_max_share_units
  long increments = 1'000'000;   // per unit: at least 1
};
inline constexpr int k_max_share_units = 64;

struct ShareRun {
  ShareCase which = ShareCase::threads_read_then_write;
  long expected = 0;     // units × increments
  long final_count = 0;  // the counter the parent reads afterwards
  double wall_s = 0;     // from the start signal until every unit has ended
  long lost() const noexcept { return expected - final_count; }
};

// One case. std::invalid_argument for a spec out of range; std::system_error when a
// thread, a fork or the shared mapping fails, or a child does not exit cleanly.
ShareRun run_share_case(ShareCase which, const ShareSpec& spec);
// Every case, in the order of k_share_cases.
std::vector<ShareRun> run_share(const ShareSpec& spec);

// Parts of the report, for the lab's HTML page too: why a row came out as it did, its
// "lost updates" cell ("2,954,854 74%", "none", "(own copies)"), and the lessons of all.
std::string share_reason(const ShareRun& run);
std::string share_lost_cell(const ShareRun& run);
std::string share_lessons(const std::vector<ShareRun>& runs);

// The table (final count, lost updates, time), a verdict for each row, and the lessons.
std::string render_share(const std::vector<ShareRun>& runs, const ShareSpec& spec);
nlohmann::json to_json(const std::vector<ShareRun>& runs, const ShareSpec& spec);

}  // namespace gearbox::lab
