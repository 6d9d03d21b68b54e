// Downloads a list of URLs into a directory, on either engine, with the same rules:
//
//   engine async    one loop, http::Client (libcurl's multi interface): `concurrency`
//                   transfers at once, all waiting on one thread
//   engine threads  a ThreadPool of `concurrency` threads, each running fetch_blocking
//
// Each URL goes to out_dir/<the URL's last path segment> (or "index.html"); bytes arrive
// into "<name>.part", which is renamed when complete, so a file with the final name is
// always whole. A ".part" left by an earlier run is resumed (a Range request; a server
// that ignores it sends everything and the part is started over). A transfer error or a
// 5xx answer is retried up to `retries` times, after a pause that doubles from
// retry_delay; a 4xx answer fails that URL at once; a URL whose file name an earlier URL
// already has is refused. One URL failing never stops the others.
//
//   DownloadOptions options{.out_dir = "downloads", .engine = Engine::async, .concurrency = 8};
//   DownloadReport report = download_all(urls, options);
//   for (const FileReport& f : report.files) if (!f.ok) std::puts(f.error.c_str());
//
// Progress: options.on_progress (if set) is called, on the calling thread for async and
// on the pool's threads for threads (serialised by a mutex), with every file's state.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace gearbox::downloader {

enum class Engine { async, threads };
const char* to_string(Engine engine) noexcept;

struct FileReport {
  std::string url;
  std::filesystem::path path;  // where it went (or would have)
  bool ok = false;
  int status = 0;              // the last HTTP status (0: none arrived)
  std::uint64_t bytes = 0;     // bytes received in this run
  std::uint64_t size = 0;      // the file's size when done (resumed bytes included)
  std::uint64_t resumed_from = 0;  // bytes kept from an earlier run's .part
  std::uint64_t have = 0;      // bytes of the file written so far (a resumed .part's included)
  std::uint64_t expected = 0;  // the whole file's size, once a response said it (0: not known)
  int attempts = 0;
  std::string error;           // why it failed
};

struct DownloadReport {
  Engine engine = Engine::async;
  double seconds = 0;
  std::vector<FileReport> files;  // in the order of the URLs
  std::size_t failed() const noexcept;
  std::uint64_t bytes() const noexcept;
};

struct DownloadOptions {
  std::filesystem::path out_dir = ".";
  Engine engine = Engine::async;
  int concurrency = 4;
  int retries = 2;
  std::chrono::milliseconds retry_delay{200};
  std::chrono::milliseconds timeout{60'000};  // per attempt
  // Called with every file's state as bytes arrive (throttled to one call per 50 ms per
  // engine, and once at the end).
  std::function<void(const std::vector<FileReport>&)> on_progress = {};
};

// Downloads every URL; throws only for a bad out_dir or concurrency < 1.
DownloadReport download_all(const std::vector<std::string>& urls, const DownloadOptions& options);

// out_dir/<last path segment of url>, "index.html" when it has none.
std::filesystem::path target_path(const std::filesystem::path& out_dir, const std::string& url);

}  // namespace gearbox::downloader
