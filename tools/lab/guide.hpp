// gearbox-lab guide: when to use which concurrency model, as a decision table, with the
// figures this machine produced in earlier lab runs (results_cache.hpp: the
// demonstration, compare, scale and switch), and where C++ differs from Python.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include <gearbox/io_backend.hpp>

namespace gearbox::lab {

// One row of the decision table: the kind of work, the model to use, and why.
struct GuideRow {
  const char* work;
  const char* use;
  const char* why;
};
inline constexpr GuideRow k_guide_rows[] = {
    {"waits: network, timers, pipes", "async tasks on a Loop",
     "a waiting task costs a few hundred bytes, not a thread and its stack"},
    {"waits in a blocking library", "to_thread, or a ThreadPool", "the call blocks a thread of the pool, not the loop"},
    {"computes", "a ThreadPool, one thread per core", "only more cores make computing faster; async adds none"},
    {"computes, and may crash or leak", "a ProcessPool", "a crash fails one task, not the program"},
    {"waits, then computes", "async, with the computing offloaded",
     "waits overlap on the loop while the pool's cores compute"},
};

// The guide as text (80 columns): the decision table, then render_guide_figures.
// `results` is load_results(); missing figures are named with the command that measures
// them. Pure: no I/O.
std::string render_guide(const nlohmann::json& results, unsigned cores);
// The rest of the guide: this machine's figures and where C++ differs from Python.
std::string render_guide_figures(const nlohmann::json& results, unsigned cores);

// How this machine's loops do I/O: the back end `automatic` picks (io_backend.hpp) and,
// when io_uring is refused, why (wrapped to 80 columns). Pure.
std::string render_io_backend(IoBackend chosen, const IoUringSupport& support);

}  // namespace gearbox::lab
