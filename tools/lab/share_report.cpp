// The table, the verdicts and the JSON of `gearbox-lab share` (declared in share.hpp).
#include <cmath>

#include "lab_format.hpp"
#include "share.hpp"

namespace gearbox::lab {

const char* label(ShareCase c) noexcept {
  switch (c) {
  case ShareCase::threads_read_then_write: return "threads, load then store";
  case ShareCase::threads_mutex: return "threads, one mutex";
  case ShareCase::threads_atomic_add: return "threads, atomic add";
  case ShareCase::async_read_then_write: return "async tasks, load then store";
  case ShareCase::async_await_between: return "async tasks, co_await between";
  case ShareCase::processes_own_memory: return "processes, parent's counter";
  case ShareCase::processes_shared_atomic: return "processes, shared, atomic add";
  case ShareCase::processes_shared_read_then_write: return "processes, shared, load+store";
  }
  return "?";
}

// Why the row came out as it did, for the row as measured.
std::string share_reason(const ShareRun& run) {
  const bool lost = run.lost() > 0;
  switch (run.which) {
  case ShareCase::threads_read_then_write:
    return lost ? "a thread switched out, or running on another core, between its load and its store wrote back a "
                  "stale value over the others' updates."
                : "no update was lost this time: the race needs a switch or another core between the load and the "
                  "store, which a short run may not hit. It is still a race: run again, or with more --increments.";
  case ShareCase::threads_mutex: return "the lock makes the load and the store one step: nothing is lost, at a cost.";
  case ShareCase::threads_atomic_add:
    return "one indivisible instruction (lock xadd) does the load, the add and the store: exact, without a lock.";
  case ShareCase::async_read_then_write:
    return "a task is switched only where it awaits, and there is no co_await between the load and the store.";
  case ShareCase::async_await_between:
    return "the co_await between the load and the store lets every other task load the same value first: the "
           "switch points are visible in the code.";
  case ShareCase::processes_own_memory:
    return run.final_count == 0 ? "fork copies the memory: each child added to its own copy, and the parent's "
                                  "counter stayed at 0. Processes need a queue or shared memory to share a result."
                                : "the parent's counter changed: unexpected, since each child has its own copy.";
  case ShareCase::processes_shared_atomic:
    return "a shared mapping (SharedBuffer, a MAP_SHARED memfd) is one copy for every process; atomic adds keep it "
           "exact.";
  case ShareCase::processes_shared_read_then_write:
    return lost ? "shared memory brings the threads' race back: processes racing on it lose updates the same way."
                : "no update was lost this time, but processes racing on shared memory can, exactly as threads do.";
  }
  return "";
}

std::string share_lost_cell(const ShareRun& run) {
  if (run.which == ShareCase::processes_own_memory) return run.final_count == 0 ? "(own copies)" : "?";
  if (run.lost() <= 0) return "none";
  const double percent = 100.0 * static_cast<double>(run.lost()) / static_cast<double>(run.expected);
  return with_commas(run.lost()) + printf_string(" %2.0f%%", percent);
}

namespace {

std::string milliseconds(double seconds) {
  const double ms = seconds * 1e3;
  return ms < 10 ? printf_string("%.2f ms", ms) : with_commas(std::llround(ms)) + " ms";
}

const ShareRun* find(const std::vector<ShareRun>& runs, ShareCase c) {
  for (const ShareRun& run : runs)
    if (run.which == c) return &run;
  return nullptr;
}

}  // namespace

std::string share_lessons(const std::vector<ShareRun>& runs) {
  std::string text;
  const ShareRun* racy = find(runs, ShareCase::threads_read_then_write);
  const ShareRun* locked = find(runs, ShareCase::threads_mutex);
  const ShareRun* atomic = find(runs, ShareCase::threads_atomic_add);
  if (racy && locked && atomic && racy->wall_s > 0)
    text += "Threads share one counter and race on it: x = x + 1 is a load and a store, and " +
            (racy->lost() > 0 ? with_commas(racy->lost()) + " updates fell between them" : std::string("none was lost this run")) +
            ". A mutex keeps every update (" + printf_string("%.0f", locked->wall_s / racy->wall_s) +
            "× the time here), an atomic add too (" + printf_string("%.0f", atomic->wall_s / racy->wall_s) + "×). ";
  const ShareRun* between = find(runs, ShareCase::async_await_between);
  if (between)
    text += "Async tasks on one loop need no lock between two awaits: they lost nothing until a co_await "
            "separated the load from the store, and then " +
            with_commas(between->lost()) + ". ";
  const ShareRun* own = find(runs, ShareCase::processes_own_memory);
  if (own)
    text += "Processes share nothing unless asked: the parent's counter read " + with_commas(own->final_count) +
            " after its children's " + with_commas(own->expected) +
            " adds. A shared mapping makes one counter again, and with it the threads' race.";
  return text;
}

std::string render_share(const std::vector<ShareRun>& runs, const ShareSpec& spec) {
  const long expected = static_cast<long>(spec.units) * spec.increments;
  std::string out = "\n" + wrap(std::to_string(spec.units) + " units each add 1 to one counter " +
                                    with_commas(spec.increments) + " times: " + with_commas(expected) + " expected.",
                                78, 2);
  out += "\n" + printf_string("  %-31s %13s %17s %10s\n", "who adds", "final count", "lost updates", "time");
  for (const ShareRun& run : runs)
    out += printf_string("  %-31s %13s %17s %10s\n", label(run.which), with_commas(run.final_count).c_str(),
                         share_lost_cell(run).c_str(), milliseconds(run.wall_s).c_str());
  out += "\n";
  for (const ShareRun& run : runs) out += wrap(std::string(label(run.which)) + ": " + share_reason(run), 78, 2);
  out += "\n" + wrap(share_lessons(runs), 78, 2);
  return out;
}

nlohmann::json to_json(const std::vector<ShareRun>& runs, const ShareSpec& spec) {
  nlohmann::json cases = nlohmann::json::array();
  for (const ShareRun& run : runs)
    cases.push_back({{"case", to_string(run.which)},
                     {"expected", run.expected},
                     {"final_count", run.final_count},
                     {"lost", run.lost()},
                     {"wall_s", run.wall_s}});
  return {{"units", spec.units}, {"increments", spec.increments}, {"cases", cases}};
}

}  // namespace gearbox::lab
