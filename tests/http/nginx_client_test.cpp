// The HTTP client against a real nginx that the test starts on 127.0.0.1 (nginx-light,
// installed by scripts/setup), serving files the test writes: a large download streamed
// to a file, a resumed download (a real 206 Partial Content), nginx's 404, and many files
// at once over a few connections.
#include <gearbox/http/client.hpp>

#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <gearbox/combinators.hpp>
#include <gearbox/loop.hpp>

extern char** environ;

namespace gb = gearbox;
namespace http = gearbox::http;
namespace fs = std::filesystem;

namespace {

std::string file_content(std::size_t size, unsigned seed) {
  std::string data(size, '\0');
  for (std::size_t i = 0; i < size; ++i) data[i] = static_cast<char>((i * 131 + seed * 7 + i / 977) % 251);
  return data;
}

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof address;
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size);
  ::close(fd);
  return ntohs(address.sin_port);
}

bool accepting(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool connected = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  ::close(fd);
  return connected;
}

std::string nginx_path() {
  for (const char* path : {"/usr/sbin/nginx", "/usr/bin/nginx"})
    if (::access(path, X_OK) == 0) return path;
  return {};
}

// nginx serving `root` on 127.0.0.1:port(), one process, until destroyed.
class Nginx {
public:
  explicit Nginx(const fs::path& work) : m_work(work) {
    fs::create_directories(work / "root");
    m_port = free_port();
    std::ofstream conf(work / "nginx.conf");
    conf << "daemon off; master_process off; worker_processes 1; error_log stderr error; pid " << (work / "nginx.pid").string()
         << ";\nevents { worker_connections 256; }\nhttp {\n  access_log off;\n  log_not_found off;\n  client_body_temp_path "
         << (work / "body").string() << ";\n  proxy_temp_path " << (work / "proxy").string() << ";\n  fastcgi_temp_path "
         << (work / "fastcgi").string() << ";\n  uwsgi_temp_path " << (work / "uwsgi").string() << ";\n  scgi_temp_path "
         << (work / "scgi").string() << ";\n  server {\n    listen 127.0.0.1:" << m_port << ";\n    root "
         << (work / "root").string() << ";\n  }\n}\n";
    conf.close();
    const std::string nginx = nginx_path();
    if (nginx.empty()) return;
    std::vector<std::string> args = {nginx, "-p", work.string(), "-c", (work / "nginx.conf").string(), "-e", "stderr"};
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    if (::posix_spawn(&m_pid, argv[0], nullptr, nullptr, argv.data(), environ) != 0) m_pid = 0;
    for (int i = 0; i < 250 && m_pid > 0 && !accepting(m_port); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ~Nginx() {
    if (m_pid > 0) {
      ::kill(m_pid, SIGTERM);
      ::waitpid(m_pid, nullptr, 0);
    }
    fs::remove_all(m_work);
  }
  bool running() const { return m_pid > 0 && accepting(m_port); }
  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(m_port) + path; }
  void put_file(const std::string& name, const std::string& content) const {
    std::ofstream(m_work / "root" / name, std::ios::binary) << content;
  }

private:
  fs::path m_work;
  int m_port = 0;
  pid_t m_pid = 0;
};

// "file-7", or "/file-7" (not "/" + ...: g++ 12 warns of a false -Wrestrict on it).
std::string name_of(int i, const char* prefix = "") {
  std::string name = prefix;
  name += "file-";
  name += std::to_string(i);
  return name;
}

fs::path work_dir(const char* name) { return fs::path(::testing::TempDir()) / (std::string(name) + "-" + std::to_string(::getpid())); }

}  // namespace

class HttpClientWithNginx : public ::testing::Test {
protected:
  void SetUp() override {
    if (nginx_path().empty()) GTEST_SKIP() << "nginx is not installed (scripts/setup installs nginx-light)";
    m_nginx = std::make_unique<Nginx>(work_dir("nginx"));
    ASSERT_TRUE(m_nginx->running()) << "nginx did not start";
  }
  std::unique_ptr<Nginx> m_nginx;
};

TEST_F(HttpClientWithNginx, a_large_file_streams_to_disk_byte_for_byte) {
  const std::string content = file_content(3 * 1024 * 1024 + 17, 1);
  m_nginx->put_file("big.bin", content);
  const fs::path target = work_dir("download");
  std::uint64_t last_progress = 0;
  http::FetchResponse response;
  gb::Loop loop;
  loop.run([&]() -> gb::Task<void> {
    http::Client client;
    std::ofstream out(target, std::ios::binary);
    http::FetchOptions options;
    options.on_data = [&](std::string_view chunk) { out.write(chunk.data(), static_cast<std::streamsize>(chunk.size())); };
    options.on_progress = [&](const http::Progress& p) { last_progress = p.downloaded; };
    response = co_await client.fetch(m_nginx->url("/big.bin"), std::move(options));
  }());
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.headers.get("Content-Length"), std::to_string(content.size()));
  EXPECT_EQ(last_progress, content.size());
  std::ifstream in(target, std::ios::binary);
  const std::string written((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  fs::remove(target);
  EXPECT_EQ(written.size(), content.size());
  EXPECT_TRUE(written == content);
}

TEST_F(HttpClientWithNginx, resume_from_asks_for_the_rest_and_nginx_answers_206_with_it) {
  const std::string content = file_content(100'000, 2);
  m_nginx->put_file("part.bin", content);
  http::FetchResponse response;
  gb::Loop loop;
  loop.run([&]() -> gb::Task<void> {
    http::Client client;
    http::FetchOptions from{.resume_from = 60'000};
    response = co_await client.fetch(m_nginx->url("/part.bin"), std::move(from));
  }());
  EXPECT_EQ(response.status, 206);
  EXPECT_EQ(response.body.size(), 40'000u);
  EXPECT_TRUE(response.body == content.substr(60'000));
}

TEST_F(HttpClientWithNginx, a_missing_file_is_nginx_404_and_many_files_come_over_few_connections) {
  std::vector<std::string> expected;
  for (int i = 0; i < 40; ++i) {
    expected.push_back(file_content(5000 + static_cast<std::size_t>(i) * 101, static_cast<unsigned>(i)));
    m_nginx->put_file(name_of(i), expected.back());
  }
  int missing = 0;
  std::vector<std::string> bodies;
  gb::Loop loop;
  loop.run([&]() -> gb::Task<void> {
    http::Client client({.max_connections = 3});
    missing = (co_await client.get(m_nginx->url("/no-such-file"))).status;
    std::vector<gb::Task<http::FetchResponse>> fetches;
    for (int i = 0; i < 40; ++i) fetches.push_back(client.get(m_nginx->url(name_of(i, "/"))));
    for (http::FetchResponse& r : co_await gb::gather(std::move(fetches))) bodies.push_back(std::move(r.body));
  }());
  EXPECT_EQ(missing, 404);
  ASSERT_EQ(bodies.size(), 40u);
  for (std::size_t i = 0; i < bodies.size(); ++i) EXPECT_TRUE(bodies[i] == expected[i]) << i;
}
