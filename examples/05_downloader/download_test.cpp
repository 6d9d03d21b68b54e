// gearbox-download's rules on both engines: every file byte for byte from a real nginx, a
// 404 failing alone and at once, a partial file resumed (nginx answers 206), a server
// that ignores the range (the file is started over), 503s retried until they pass, a
// refused port given up after the retries, and two URLs for one file name.
#include "download.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <future>
#include <thread>

#include <gearbox/http/server.hpp>
#include <gearbox/loop.hpp>

#include "support/nginx.hpp"

namespace gb = gearbox;
namespace http = gearbox::http;
namespace dl = gearbox::downloader;
namespace fs = std::filesystem;

namespace {

std::string content_of(std::size_t size, unsigned seed) {
  std::string data(size, '\0');
  for (std::size_t i = 0; i < size; ++i) data[i] = static_cast<char>((i * 31 + seed * 17 + i / 1013) % 256);
  return data;
}

std::string read_all(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

fs::path scratch(const std::string& name) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("download-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  return dir;
}

dl::DownloadOptions quick(const fs::path& out, dl::Engine engine) {
  dl::DownloadOptions options;
  options.out_dir = out;
  options.engine = engine;
  options.concurrency = 3;
  options.retries = 2;
  options.retry_delay = std::chrono::milliseconds(10);
  options.timeout = std::chrono::milliseconds(20'000);
  return options;
}

// A gearbox HTTP server on a loop of its own thread, for behaviour nginx will not show.
class ServerThread {
public:
  explicit ServerThread(http::Router router) : m_server(std::move(router)) {
    std::promise<gb::Loop*> started;
    auto loop_ready = started.get_future();
    m_thread = std::thread([this, &started] {
      gb::Loop loop;
      started.set_value(&loop);
      loop.run(m_server.serve(m_listener));
    });
    m_loop = loop_ready.get();
  }
  ~ServerThread() {
    m_loop->post([this] { m_server.stop(); });
    m_thread.join();
  }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(m_listener.local_address().port()) + path;
  }

private:
  gb::net::TcpListener m_listener = gb::net::TcpListener::bind(gb::net::SocketAddress::loopback(0));
  http::Server m_server;
  gb::Loop* m_loop = nullptr;
  std::thread m_thread;
};

class DownloadEngines : public ::testing::TestWithParam<dl::Engine> {};

}  // namespace

TEST(TargetPath, is_the_last_path_segment_or_index_html) {
  EXPECT_EQ(dl::target_path("out", "http://h/a/b/file.iso"), fs::path("out/file.iso"));
  EXPECT_EQ(dl::target_path("out", "http://h/a/b/file.iso?x=1#top"), fs::path("out/file.iso"));
  EXPECT_EQ(dl::target_path("out", "http://h/dir/"), fs::path("out/index.html"));
  EXPECT_EQ(dl::target_path("out", "http://h"), fs::path("out/index.html"));
  EXPECT_EQ(dl::target_path("out", "http://h/.."), fs::path("out/index.html"));
}

TEST_P(DownloadEngines, every_file_arrives_whole_and_a_missing_one_fails_alone_without_retries) {
  if (!gearbox_test::Nginx::installed()) GTEST_SKIP() << "nginx is not installed (scripts/setup installs nginx-light)";
  gearbox_test::Nginx nginx(scratch("nginx"));
  ASSERT_TRUE(nginx.running());
  std::vector<std::string> urls;
  std::vector<std::string> contents;
  for (int i = 0; i < 6; ++i) {
    contents.push_back(content_of(10'000 + static_cast<std::size_t>(i) * 150'001, static_cast<unsigned>(i)));
    nginx.put_file("file" + std::to_string(i) + ".bin", contents.back());
    urls.push_back(nginx.url("/file" + std::to_string(i) + ".bin"));
  }
  urls.insert(urls.begin() + 3, nginx.url("/missing.bin"));
  const fs::path out = scratch("out");
  int progress_calls = 0;
  dl::DownloadOptions options = quick(out, GetParam());
  options.on_progress = [&](const std::vector<dl::FileReport>& files) {
    ++progress_calls;
    EXPECT_EQ(files.size(), 7u);
  };
  const dl::DownloadReport report = dl::download_all(urls, options);
  ASSERT_EQ(report.files.size(), 7u);
  EXPECT_EQ(report.failed(), 1u);
  EXPECT_GE(progress_calls, 1);
  const dl::FileReport& missing = report.files[3];
  EXPECT_FALSE(missing.ok);
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.attempts, 1) << "a 4xx is not retried";
  EXPECT_EQ(missing.error, "HTTP 404 Not Found");
  EXPECT_FALSE(fs::exists(out / "missing.bin"));
  for (std::size_t i = 0, c = 0; i < report.files.size(); ++i) {
    if (i == 3) continue;
    const dl::FileReport& f = report.files[i];
    EXPECT_TRUE(f.ok) << f.url << ": " << f.error;
    EXPECT_EQ(f.size, contents[c].size());
    EXPECT_EQ(f.expected, contents[c].size()) << "from Content-Length";
    EXPECT_EQ(f.have, f.size);
    EXPECT_TRUE(read_all(f.path) == contents[c]) << f.path;
    EXPECT_FALSE(fs::exists(f.path.string() + ".part"));
    ++c;
  }
  fs::remove_all(out);
}

TEST_P(DownloadEngines, a_partial_file_is_resumed_where_it_stopped) {
  if (!gearbox_test::Nginx::installed()) GTEST_SKIP() << "nginx is not installed (scripts/setup installs nginx-light)";
  gearbox_test::Nginx nginx(scratch("nginx"));
  ASSERT_TRUE(nginx.running());
  const std::string content = content_of(200'000, 7);
  nginx.put_file("big.bin", content);
  const fs::path out = scratch("out");
  fs::create_directories(out);
  std::ofstream(out / "big.bin.part", std::ios::binary) << content.substr(0, 80'000);
  const dl::DownloadReport report = dl::download_all({nginx.url("/big.bin")}, quick(out, GetParam()));
  ASSERT_EQ(report.files.size(), 1u);
  const dl::FileReport& f = report.files[0];
  EXPECT_TRUE(f.ok) << f.error;
  EXPECT_EQ(f.status, 206);
  EXPECT_EQ(f.resumed_from, 80'000u);
  EXPECT_EQ(f.bytes, 120'000u) << "only the rest came over the network";
  EXPECT_EQ(f.expected, 200'000u) << "the part kept plus the 206's Content-Length";
  EXPECT_TRUE(read_all(out / "big.bin") == content);
  fs::remove_all(out);
}

TEST_P(DownloadEngines, a_server_that_ignores_the_range_gets_the_file_started_over) {
  const std::string content = content_of(50'000, 3);
  http::Router router;
  router.get("/whole.bin", [content](http::Request&) -> gb::Task<http::Response> { co_return http::Response::text(content); });
  ServerThread server(std::move(router));
  const fs::path out = scratch("out");
  fs::create_directories(out);
  std::ofstream(out / "whole.bin.part", std::ios::binary) << "stale bytes from somewhere else";
  const dl::DownloadReport report = dl::download_all({server.url("/whole.bin")}, quick(out, GetParam()));
  const dl::FileReport& f = report.files.at(0);
  EXPECT_TRUE(f.ok) << f.error;
  EXPECT_EQ(f.status, 200);
  EXPECT_EQ(f.bytes, content.size());
  EXPECT_TRUE(read_all(out / "whole.bin") == content) << "the stale part was replaced, not extended";
  fs::remove_all(out);
}

TEST_P(DownloadEngines, server_errors_are_retried_and_a_refused_port_is_given_up_after_the_retries) {
  auto calls = std::make_shared<std::atomic<int>>(0);
  http::Router router;
  router.get("/flaky.txt", [calls](http::Request&) -> gb::Task<http::Response> {
    if (++*calls <= 2) co_return http::Response::error(503);
    co_return http::Response::text("finally\n");
  });
  ServerThread server(std::move(router));
  gb::net::TcpListener closed = gb::net::TcpListener::bind(gb::net::SocketAddress::loopback(0));
  const std::string refused = "http://127.0.0.1:" + std::to_string(closed.local_address().port()) + "/gone.txt";
  closed.close();
  const fs::path out = scratch("out");
  const dl::DownloadReport report = dl::download_all({server.url("/flaky.txt"), refused}, quick(out, GetParam()));
  const dl::FileReport& flaky = report.files.at(0);
  EXPECT_TRUE(flaky.ok) << flaky.error;
  EXPECT_EQ(flaky.attempts, 3);
  EXPECT_EQ(read_all(out / "flaky.txt"), "finally\n");
  const dl::FileReport& gone = report.files.at(1);
  EXPECT_FALSE(gone.ok);
  EXPECT_EQ(gone.attempts, 3) << "one try and two retries";
  EXPECT_NE(gone.error.find("connect"), std::string::npos) << gone.error;
  fs::remove_all(out);
}

TEST_P(DownloadEngines, a_second_url_for_the_same_file_name_is_refused) {
  http::Router router;
  router.get("/*", [](http::Request& request) -> gb::Task<http::Response> { co_return http::Response::text(request.path); });
  ServerThread server(std::move(router));
  const fs::path out = scratch("out");
  const dl::DownloadReport report =
      dl::download_all({server.url("/a/same.txt"), server.url("/b/same.txt")}, quick(out, GetParam()));
  EXPECT_TRUE(report.files.at(0).ok);
  EXPECT_FALSE(report.files.at(1).ok);
  EXPECT_EQ(report.files.at(1).attempts, 0);
  EXPECT_NE(report.files.at(1).error.find("same file name"), std::string::npos) << report.files.at(1).error;
  EXPECT_EQ(read_all(out / "same.txt"), "/a/same.txt");
  fs::remove_all(out);
}

namespace {

// A tmux server of the test's own (its own socket), killed when the test ends.
class Tmux {
public:
  explicit Tmux(fs::path socket) : m_socket(std::move(socket)) {}
  ~Tmux() { (void)std::system(("tmux -S " + m_socket.string() + " kill-server 2>/dev/null").c_str()); }
  // Runs `command` in a detached session of a `columns` x `rows` terminal.
  bool start(const std::string& command, int columns, int rows) const {
    const std::string line = "tmux -S " + m_socket.string() + " new-session -d -s test -x " + std::to_string(columns) +
                             " -y " + std::to_string(rows) + " '" + command + "'";
    return std::system(line.c_str()) == 0;
  }
  // What the terminal shows now.
  std::string screen() const {
    const std::string line = "tmux -S " + m_socket.string() + " capture-pane -p -t test 2>/dev/null";
    std::string out;
    if (std::FILE* pipe = ::popen(line.c_str(), "r")) {
      char buffer[4096];
      for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) out.append(buffer, n);
      ::pclose(pipe);
    }
    return out;
  }

private:
  fs::path m_socket;
};

}  // namespace

// The progress bars on a real terminal: tmux runs gearbox-download in a pane while a
// rate-limited nginx sends a 3 MB file at 1 MB/s; the screen, read every 50 ms, shows the
// file's bar advancing, and at the end 100 % and done.
TEST_P(DownloadEngines, on_a_terminal_the_bar_advances_and_ends_at_100_percent) {
  if (!gearbox_test::Nginx::installed()) GTEST_SKIP() << "nginx is not installed (scripts/setup installs nginx-light)";
  ASSERT_EQ(::access("/usr/bin/tmux", X_OK), 0) << "tmux is not installed: run scripts/setup";
  const fs::path dir = scratch(std::string("tmux-") + dl::to_string(GetParam()));
  fs::create_directories(dir);
  gearbox_test::Nginx nginx(dir / "nginx", "limit_rate 1m;");
  ASSERT_TRUE(nginx.running());
  nginx.put_file("big.bin", content_of(3 << 20, 5));
  const Tmux tmux(dir / "tmux.sock");
  const std::string program = std::string(GEARBOX_DOWNLOAD_PROGRAM) + " --engine " + dl::to_string(GetParam()) +
                              " --out " + (dir / "out").string() + " " + nginx.url("/big.bin");
  ASSERT_TRUE(tmux.start(program + "; echo EXITED $?; sleep 60", 100, 12));
  const std::regex bar_line("big\\.bin +\\[[#.]{20}\\] +([0-9]+) %");
  std::vector<int> percents;  // each new value the bar showed, in order
  std::string screen;
  for (int i = 0; i < 600 && screen.find("EXITED") == std::string::npos; ++i) {  // at most 30 s
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    screen = tmux.screen();
    std::smatch match;
    if (std::regex_search(screen, match, bar_line)) {
      const int percent = std::stoi(match[1]);
      if (percents.empty() || percents.back() != percent) percents.push_back(percent);
    }
  }
  EXPECT_NE(screen.find("EXITED 0"), std::string::npos) << screen;
  ASSERT_FALSE(percents.empty()) << screen;
  EXPECT_TRUE(std::is_sorted(percents.begin(), percents.end())) << screen;
  EXPECT_TRUE(std::any_of(percents.begin(), percents.end(), [](int p) { return p > 0 && p < 100; }))
      << "the bar never showed the file part done";
  EXPECT_EQ(percents.back(), 100) << screen;
  EXPECT_TRUE(std::regex_search(screen, std::regex("big\\.bin +\\[#{20}\\] 100 % +3\\.1 MB  done"))) << screen;
  EXPECT_EQ(read_all(dir / "out" / "big.bin"), content_of(3 << 20, 5));
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Engines, DownloadEngines, ::testing::Values(dl::Engine::async, dl::Engine::threads),
                         [](const auto& info) { return std::string(dl::to_string(info.param)); });
