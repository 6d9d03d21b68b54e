// gearbox-lab guide: when to use which concurrency model, as a decision table, with the
// figures this machine produced in earlier lab runs (results_cache.hpp: the
// demonstration, compare, scale and switch), and where C++ differs from Python.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace gearbox::lab {

// The guide as text (80 columns). `results` is load_results(); missing figures are named
// with the command that measures them. Pure: no I/O.
std::string render_guide(const nlohmann::json& results, unsigned cores);

}  // namespace gearbox::lab
