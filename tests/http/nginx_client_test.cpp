// The HTTP client against a real nginx that the test starts on 127.0.0.1 (nginx-light,
// installed by scripts/setup), serving files the test writes: a large download streamed
// to a file, a resumed download (a real 206 Partial Content), nginx's 404, and many files
// at once over a few connections.
#include <gearbox/http/client.hpp>

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

#include "support/nginx.hpp"

namespace gb = gearbox;
namespace http = gearbox::http;
namespace fs = std::filesystem;
using gearbox_test::Nginx;

namespace {

std::string file_content(std::size_t size, unsigned seed) {
  std::string data(size, '\0');
  for (std::size_t i = 0; i < size; ++i) data[i] = static_cast<char>((i * 131 + seed * 7 + i / 977) % 251);
  return data;
}

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
    if (!Nginx::installed()) GTEST_SKIP() << "nginx is not installed (scripts/setup installs nginx-light)";
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
