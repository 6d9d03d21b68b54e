#include "download.hpp"

#include <charconv>

#include <algorithm>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>

#include <gearbox/combinators.hpp>
#include <gearbox/error.hpp>
#include <gearbox/http/client.hpp>
#include <gearbox/loop.hpp>
#include <gearbox/thread_pool.hpp>
#include <gearbox/time.hpp>

namespace gearbox::downloader {
namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

std::filesystem::path part_path(const fs::path& path) { return fs::path(path.string() + ".part"); }

// The reports of every file and when they were last shown; shared by the engines'
// workers (threads: under the mutex).
class Board {
public:
  Board(const std::vector<std::string>& urls, const DownloadOptions& options) : m_options(options) {
    for (const std::string& url : urls) {
      FileReport report;
      report.url = url;
      report.path = target_path(options.out_dir, url);
      m_files.push_back(std::move(report));
    }
  }
  // Runs `change` on file `i`'s report, then shows progress if it is time.
  template <class Change>
  void update(std::size_t i, Change change, bool force = false) {
    std::lock_guard lock(m_mutex);
    change(m_files[i]);
    if (!m_options.on_progress) return;
    const auto now = Clock::now();
    if (!force && now - m_shown < std::chrono::milliseconds(50)) return;
    m_shown = now;
    m_options.on_progress(m_files);
  }
  std::vector<FileReport> take() {
    std::lock_guard lock(m_mutex);
    if (m_options.on_progress) m_options.on_progress(m_files);
    return std::move(m_files);
  }

private:
  const DownloadOptions& m_options;
  std::mutex m_mutex;
  std::vector<FileReport> m_files;  // written under m_mutex
  Clock::time_point m_shown{};      // written under m_mutex
};

// One URL's attempts: where its bytes go and what an outcome means. The engines differ
// only in how they run an attempt and how they wait before the next.
class FileJob {
public:
  enum class Next { done, retry, give_up };

  FileJob(Board& board, std::size_t index, std::string url, fs::path path, const DownloadOptions& options)
      : m_board(board), m_index(index), m_url(std::move(url)), m_path(std::move(path)), m_options(options) {}

  const std::string& url() const noexcept { return m_url; }
  int retries_left() const noexcept { return m_options.retries - m_attempts + 1; }
  std::chrono::milliseconds delay_before_retry() const noexcept { return m_options.retry_delay * (1 << std::min(m_attempts - 1, 10)); }

  // The options of the next attempt: resume from what the .part holds.
  http::FetchOptions start_attempt() {
    ++m_attempts;
    std::error_code ignored;
    const auto part_size = fs::exists(part_path(m_path)) ? fs::file_size(part_path(m_path), ignored) : 0;
    m_offset = ignored ? 0 : part_size;
    m_board.update(m_index, [&](FileReport& r) {
      r.attempts = m_attempts;
      if (m_attempts == 1) r.resumed_from = m_offset;
    });
    http::FetchOptions options;
    options.timeout = m_options.timeout;
    options.resume_from = m_offset;
    options.on_body_start = [this](int status, const http::Headers& headers) { open_part(status, headers); };
    options.on_data = [this](std::string_view chunk) { write(chunk); };
    return options;
  }

  // What the attempt's response means.
  Next finish(const http::FetchResponse& response) {
    const bool wrote = m_out.is_open();
    close_part();
    m_board.update(m_index, [&](FileReport& r) { r.status = response.status; });
    if (response.status == 200 || response.status == 206) {
      if (!wrote && response.status == 206) return fail("206 without a body");
      if (!wrote) std::ofstream(part_path(m_path), std::ios::binary | std::ios::trunc);  // an empty file
      std::error_code error;
      fs::rename(part_path(m_path), m_path, error);
      if (error) return fail("cannot rename " + part_path(m_path).string() + ": " + error.message());
      const auto size = fs::file_size(m_path, error);
      m_board.update(m_index, [&](FileReport& r) {
        r.ok = true;
        r.size = error ? 0 : size;
        r.have = r.size;
        r.error.clear();
      }, true);
      return Next::done;
    }
    if (response.status == 416 && m_offset > 0) {  // the .part does not fit the file any more
      std::error_code ignored;
      fs::remove(part_path(m_path), ignored);
      return retry("416 Range Not Satisfiable: starting over");
    }
    const std::string why = "HTTP " + std::to_string(response.status) + " " + std::string(http::reason_phrase(response.status));
    if (response.status >= 500) return retry(why);
    return fail(why);
  }

  // What an attempt that ended in an exception means.
  Next failed(const std::exception& error) {
    close_part();
    if (m_write_failed) return fail(error.what());  // the disk, not the network: retrying will not help
    return retry(error.what());
  }

private:
  void open_part(int status, const http::Headers& headers) {
    if (status != 200 && status != 206) return;  // an error page: not part of the file
    // 206 continues the .part; 200 means the whole file is coming (the server ignored the
    // range, or there was no .part): start over.
    const bool append = status == 206 && m_offset > 0;
    if (!append) m_offset = 0;
    std::uint64_t length = 0;  // of this body; the file is what we have plus it
    const std::optional<std::string_view> field = headers.get("Content-Length");
    const bool known = field && std::from_chars(field->data(), field->data() + field->size(), length).ec == std::errc{};
    m_board.update(m_index, [&](FileReport& r) {
      r.have = m_offset;
      r.expected = known ? m_offset + length : 0;
    });
    fs::create_directories(m_path.parent_path());
    m_out.open(part_path(m_path), std::ios::binary | (append ? std::ios::app : std::ios::trunc));
    if (!m_out) {
      m_write_failed = true;
      throw std::runtime_error("cannot write " + part_path(m_path).string());
    }
  }

  void write(std::string_view chunk) {
    if (!m_out.is_open()) return;  // the body of an error response
    m_out.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    if (!m_out) {
      m_write_failed = true;
      throw std::runtime_error("cannot write " + part_path(m_path).string() + " (disk full?)");
    }
    m_board.update(m_index, [&](FileReport& r) {
      r.bytes += chunk.size();
      r.have += chunk.size();
    });
  }

  void close_part() {
    if (m_out.is_open()) m_out.close();
    m_out.clear();
  }

  Next retry(const std::string& why) {
    m_board.update(m_index, [&](FileReport& r) { r.error = why; }, true);
    return retries_left() > 0 ? Next::retry : Next::give_up;
  }
  Next fail(const std::string& why) {
    m_board.update(m_index, [&](FileReport& r) { r.error = why; }, true);
    return Next::give_up;
  }

  Board& m_board;
  std::size_t m_index;
  std::string m_url;
  fs::path m_path;
  const DownloadOptions& m_options;
  int m_attempts = 0;
  std::uint64_t m_offset = 0;
  std::ofstream m_out;
  bool m_write_failed = false;
};

Task<void> download_async(http::Client& client, FileJob& job) {
  for (;;) {
    FileJob::Next next;
    try {
      // Named, not temporaries in the co_await expression (see http/client.hpp on g++ 12).
      http::FetchOptions attempt = job.start_attempt();
      std::string url = job.url();
      next = job.finish(co_await client.fetch(std::move(url), std::move(attempt)));
    } catch (const Cancelled&) {
      throw;
    } catch (const std::exception& e) {
      next = job.failed(e);
    }
    if (next != FileJob::Next::retry) co_return;
    co_await sleep_for(job.delay_before_retry());
  }
}

void download_blocking(FileJob& job) {
  for (;;) {
    FileJob::Next next;
    try {
      next = job.finish(http::fetch_blocking(job.url(), job.start_attempt()));
    } catch (const std::exception& e) {
      next = job.failed(e);
    }
    if (next != FileJob::Next::retry) return;
    std::this_thread::sleep_for(job.delay_before_retry());
  }
}

}  // namespace

const char* to_string(Engine engine) noexcept { return engine == Engine::async ? "async" : "threads"; }

std::size_t DownloadReport::failed() const noexcept {
  return static_cast<std::size_t>(std::count_if(files.begin(), files.end(), [](const FileReport& f) { return !f.ok; }));
}

std::uint64_t DownloadReport::bytes() const noexcept {
  std::uint64_t total = 0;
  for (const FileReport& f : files) total += f.bytes;
  return total;
}

fs::path target_path(const fs::path& out_dir, const std::string& url) {
  std::string path = url;
  if (const auto scheme = path.find("://"); scheme != std::string::npos) path = path.substr(scheme + 3);
  path = path.substr(0, path.find_first_of("?#"));
  const auto slash = path.find('/');
  std::string name = slash == std::string::npos ? "" : path.substr(path.rfind('/') + 1);
  if (name.empty() || name == "." || name == "..") name = "index.html";
  return out_dir / name;
}

DownloadReport download_all(const std::vector<std::string>& urls, const DownloadOptions& options) {
  if (options.concurrency < 1) throw std::invalid_argument("download_all: concurrency must be at least 1");
  fs::create_directories(options.out_dir);
  Board board(urls, options);
  std::vector<std::unique_ptr<FileJob>> jobs;
  std::map<fs::path, std::size_t> taken;  // target path -> the URL that has it
  for (std::size_t i = 0; i < urls.size(); ++i) {
    const fs::path path = target_path(options.out_dir, urls[i]);
    if (const auto [at, fresh] = taken.emplace(path, i); !fresh) {
      // Two URLs for one file would write one .part at once: the later one is refused.
      board.update(i, [&](FileReport& r) { r.error = "the same file name as URL " + std::to_string(at->second + 1) + ": " + path.string(); });
      continue;
    }
    jobs.push_back(std::make_unique<FileJob>(board, i, urls[i], path, options));
  }

  DownloadReport report;
  report.engine = options.engine;
  const auto start = Clock::now();
  if (options.engine == Engine::async) {
    Loop loop;
    loop.run([&]() -> Task<void> {
      http::Client client({.max_connections = options.concurrency});
      std::vector<Task<void>> all;
      for (auto& job : jobs) all.push_back(download_async(client, *job));
      co_await gather(std::move(all));
    }());
  } else {
    ThreadPool pool({.workers = static_cast<std::size_t>(options.concurrency)});
    std::vector<Future<void>> all;
    for (auto& job : jobs) all.push_back(pool.submit([&job] { download_blocking(*job); }));
    for (Future<void>& f : all) f.get();
  }
  report.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  report.files = board.take();
  return report;
}

}  // namespace gearbox::downloader
