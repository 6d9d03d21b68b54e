#include "results_cache.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <system_error>

namespace gearbox::lab {
namespace {

std::string utc_now() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

}  // namespace

std::filesystem::path results_path() {
  if (const char* explicit_path = std::getenv("GEARBOX_LAB_RESULTS"); explicit_path && *explicit_path)
    return explicit_path;
  std::filesystem::path base;
  if (const char* cache = std::getenv("XDG_CACHE_HOME"); cache && *cache)
    base = cache;
  else if (const char* home = std::getenv("HOME"); home && *home)
    base = std::filesystem::path(home) / ".cache";
  else
    base = std::filesystem::temp_directory_path();
  return base / "gearbox-lab" / "results.json";
}

nlohmann::json load_results() {
  std::ifstream in(results_path());
  if (!in) return nlohmann::json::object();
  nlohmann::json all = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  return all.is_object() ? all : nlohmann::json::object();
}

void save_result(const std::string& key, nlohmann::json result) {
  const std::filesystem::path path = results_path();
  nlohmann::json all = load_results();
  result["measured_at"] = utc_now();
  all[key] = std::move(result);
  std::error_code error;
  std::filesystem::create_directories(path.parent_path(), error);
  // Written beside the file and renamed over it: a reader never sees half a file.
  const std::filesystem::path partial = path.string() + "." + std::to_string(::getpid()) + ".tmp";
  {
    std::ofstream out(partial, std::ios::trunc);
    out << all.dump(2) << '\n';
    if (!out) {
      std::fprintf(stderr, "gearbox-lab: warning: cannot save results to %s\n", path.c_str());
      std::filesystem::remove(partial, error);
      return;
    }
  }
  std::filesystem::rename(partial, path, error);
  if (error) {
    std::fprintf(stderr, "gearbox-lab: warning: cannot save results to %s: %s\n", path.c_str(), error.message().c_str());
    std::filesystem::remove(partial, error);
  }
}

}  // namespace gearbox::lab
