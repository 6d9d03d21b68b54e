// gearbox-download: downloads URLs into a directory, with async tasks on one loop or with
// threads, resuming partial files and retrying failures. See README.md.
//
//   gearbox-download --out downloads http://127.0.0.1:8080/a.iso http://127.0.0.1:8080/b.iso
//   gearbox-download --list urls.txt --engine threads --concurrency 8
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include <CLI/CLI.hpp>

#include "download.hpp"

namespace dl = gearbox::downloader;

namespace {

std::string megabytes(std::uint64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f MB", static_cast<double>(bytes) / 1e6);
  return text;
}

// "[##########..........]  50 %" for `have` of `expected` bytes; blank when the size is
// not known (no Content-Length).
std::string bar(std::uint64_t have, std::uint64_t expected) {
  if (expected == 0) return std::string(27, ' ');
  constexpr int k_width = 20;
  const double fraction = std::min(1.0, static_cast<double>(have) / static_cast<double>(expected));
  const int filled = static_cast<int>(fraction * k_width);
  char text[40];
  std::snprintf(text, sizeof text, "[%s%s] %3d %%", std::string(static_cast<std::size_t>(filled), '#').c_str(),
                std::string(static_cast<std::size_t>(k_width - filled), '.').c_str(), static_cast<int>(fraction * 100));
  return text;
}

// Progress on a terminal: one bar per file and a total, redrawn in place.
class Bars {
public:
  void draw(const std::vector<dl::FileReport>& files) {
    if (m_lines > 0) std::printf("\x1b[%dA", m_lines);  // back to the first bar
    std::uint64_t total = 0, total_have = 0, total_expected = 0;
    bool all_known = true;
    for (const dl::FileReport& f : files) {
      total += f.bytes;
      const char* state = f.ok ? "done" : !f.error.empty() ? "retrying" : f.attempts > 0 ? "" : "waiting";
      if (!f.ok && !f.error.empty() && f.attempts > 0 && f.status >= 400 && f.status < 500) state = "failed";
      const std::uint64_t expected = f.ok ? std::max<std::uint64_t>(f.size, 1) : f.expected;
      const std::uint64_t have = f.ok ? expected : f.have;
      total_have += have;
      total_expected += expected;
      all_known = all_known && expected > 0;
      std::printf("\x1b[2K  %-24.24s %s %10s  %s\n", f.path.filename().c_str(), bar(have, expected).c_str(),
                  megabytes(f.bytes).c_str(), state);
    }
    std::printf("\x1b[2K  %-24s %s %10s\n", "total", bar(total_have, all_known ? total_expected : 0).c_str(),
                megabytes(total).c_str());
    std::fflush(stdout);
    m_lines = static_cast<int>(files.size()) + 1;
  }

private:
  int m_lines = 0;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"gearbox-download: download URLs with async tasks or threads, resuming and retrying"};
  std::vector<std::string> urls;
  std::string list;
  std::string out = ".";
  std::string engine = "async";
  int concurrency = 4;
  int retries = 2;
  app.add_option("urls", urls, "URLs to download");
  app.add_option("--list", list, "a file of URLs, one per line")->check(CLI::ExistingFile);
  app.add_option("--out", out, "directory to write to (default .)");
  app.add_option("--engine", engine, "async (one loop) or threads (default async)")->check(CLI::IsMember({"async", "threads"}));
  app.add_option("--concurrency", concurrency, "transfers at once (default 4)")->check(CLI::Range(1, 1000));
  app.add_option("--retries", retries, "retries after a failure (default 2)")->check(CLI::Range(0, 100));
  CLI11_PARSE(app, argc, argv);

  if (!list.empty()) {
    std::ifstream in(list);
    for (std::string line; std::getline(in, line);)
      if (!line.empty() && line[0] != '#') urls.push_back(line);
  }
  if (urls.empty()) {
    std::fprintf(stderr, "gearbox-download: no URLs (give them as arguments or with --list)\n");
    return 2;
  }

  dl::DownloadOptions options;
  options.out_dir = out;
  options.engine = engine == "threads" ? dl::Engine::threads : dl::Engine::async;
  options.concurrency = concurrency;
  options.retries = retries;
  Bars bars;
  if (::isatty(STDOUT_FILENO)) options.on_progress = [&](const std::vector<dl::FileReport>& files) { bars.draw(files); };

  try {
    const dl::DownloadReport report = dl::download_all(urls, options);
    for (const dl::FileReport& f : report.files) {
      if (f.ok)
        std::printf("ok      %s  %s%s\n", f.path.c_str(), megabytes(f.size).c_str(),
                    f.resumed_from > 0 ? (" (resumed from " + megabytes(f.resumed_from) + ")").c_str() : "");
      else
        std::printf("FAILED  %s  after %d attempt(s): %s\n", f.url.c_str(), f.attempts, f.error.c_str());
    }
    std::printf("%zu of %zu downloaded, %s in %.2f s with %s (%d at once)\n", report.files.size() - report.failed(),
                report.files.size(), megabytes(report.bytes()).c_str(), report.seconds, dl::to_string(report.engine),
                concurrency);
    return report.failed() == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gearbox-download: %s\n", e.what());
    return 2;
  }
}
