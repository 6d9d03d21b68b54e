// The lab's results file: what `gearbox-lab` measured on this machine, kept so that
// `gearbox-lab guide` can quote real figures without measuring again.
//
//   lab::save_result("switch", json);           // after a run
//   nlohmann::json all = lab::load_results();   // {"switch": {...}, "demo.io": {...}}
//
// The file is $GEARBOX_LAB_RESULTS, else $XDG_CACHE_HOME/gearbox-lab/results.json, else
// ~/.cache/gearbox-lab/results.json. Each key holds the latest run's JSON plus "measured_at"
// (ISO 8601, UTC). Saving is best effort: a read-only home prints one warning to stderr
// and the command still succeeds. Not thread-safe; not safe against two labs writing at
// once (the last writer wins, the file is replaced atomically so it is never torn).
#pragma once

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

namespace gearbox::lab {

std::filesystem::path results_path();

// Everything saved so far, or an empty object when there is no file or it is unreadable.
nlohmann::json load_results();

// Stores `result` under `key`, adding "measured_at". Best effort (see above).
void save_result(const std::string& key, nlohmann::json result);

}  // namespace gearbox::lab
