// The API server's routes, served in-process on 127.0.0.1 with a real ProcessPool: the
// answers, the bad parameters, a crashing worker that fails its request only, and
// /health answered while CPU work and blocking calls are in flight.
#include "api.hpp"

#include <unistd.h>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <gearbox/gearbox.hpp>
#include <gearbox/http/server.hpp>
#include <gearbox/process/init.hpp>

namespace gb = gearbox;
namespace http = gearbox::http;
namespace net = gearbox::net;
using Json = nlohmann::json;

namespace {

struct Reply {
  int status = 0;
  std::string body;
};

// One request on a connection of its own ("Connection: close"), read to the end.
gb::Task<Reply> get(std::uint16_t port, std::string path) {
  net::TcpStream stream = co_await net::TcpStream::connect(net::SocketAddress::loopback(port));
  co_await stream.write_all("GET " + path + " HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
  std::string all;
  char buffer[4096];
  for (;;) {
    const std::size_t n = co_await stream.read(std::span<char>(buffer));
    if (n == 0) break;
    all.append(buffer, n);
  }
  Reply reply;
  reply.status = std::stoi(all.substr(9, 3));  // "HTTP/1.1 200 OK"
  reply.body = all.substr(all.find("\r\n\r\n") + 4);
  co_return reply;
}

// Runs in a worker: returns once the file `path` exists (the test's gate).
// Runs in a worker: says which worker holds it (a file "<path>.held.<pid>"), then waits
// until `path` exists.
int hold_until_file_exists(std::string path) {
  { std::ofstream{path + ".held." + std::to_string(::getpid())}; }
  while (!std::filesystem::exists(path)) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return 1;
}
GEARBOX_REMOTE(hold_until_file_exists);

// How many workers hold a hold_until_file_exists(path) call now.
int workers_holding(const std::string& path) {
  const std::filesystem::path gate{path};
  const std::string prefix = gate.filename().string() + ".held.";
  int holding = 0;
  for (const auto& entry : std::filesystem::directory_iterator(gate.parent_path()))
    if (entry.path().filename().string().starts_with(prefix)) ++holding;
  return holding;
}

void remove_gate(const std::string& path) {
  const std::filesystem::path gate{path};
  const std::string prefix = gate.filename().string() + ".held.";
  std::filesystem::remove(gate);
  for (const auto& entry : std::filesystem::directory_iterator(gate.parent_path()))
    if (entry.path().filename().string().starts_with(prefix)) std::filesystem::remove(entry.path());
}

// A path no other test run uses, that does not exist yet.
std::string gearbox_test_gate_path() {
  return (std::filesystem::temp_directory_path() / ("gearbox-api-gate-" + std::to_string(::getpid()))).string();
}

// Serves the API on 127.0.0.1 while `client(port)` runs, then stops the server.
template <class Client>
void with_api(gb::ProcessPool& pool, const gb::api_example::ApiOptions& options, Client client) {
  http::Server server(gearbox::api_example::make_router(pool, options));
  net::TcpListener listener = net::TcpListener::bind(net::SocketAddress::loopback(0));
  const std::uint16_t port = listener.local_address().port();
  gb::run([&]() -> gb::Task<void> {
    gb::JoinHandle<void> serving = gb::spawn(server.serve(listener), gb::Start::eager);
    co_await client(port);
    server.stop();
    co_await serving;
  }());
}

template <class Client>
void with_api(gb::ProcessPool& pool, Client client) {
  with_api(pool, {.max_compute_n = 10'000'000, .allow_crash = true}, std::move(client));
}

}  // namespace

TEST(ApiServer, compute_counts_primes_in_a_worker_and_refuses_bad_parameters) {
  gb::ProcessPool pool{{.workers = 2}};
  std::vector<Reply> replies;
  with_api(pool, [&](std::uint16_t port) -> gb::Task<void> {
    for (const char* path : {"/compute?n=10000", "/compute?n=2", "/compute?n=abc", "/compute", "/compute?n=10000001",
                             "/compute?n=-5"})
      replies.push_back(co_await get(port, path));
  });
  ASSERT_EQ(replies.size(), 6u);
  EXPECT_EQ(replies[0].status, 200);
  EXPECT_EQ(Json::parse(replies[0].body).at("primes"), 1229);
  EXPECT_EQ(Json::parse(replies[1].body).at("primes"), 0);
  for (std::size_t i = 2; i < replies.size(); ++i) {
    EXPECT_EQ(replies[i].status, 400) << i;
    EXPECT_TRUE(Json::parse(replies[i].body).contains("error")) << replies[i].body;
  }
}

TEST(ApiServer, legacy_runs_the_blocking_call_on_another_thread) {
  gb::ProcessPool pool{{.workers = 1}};
  Reply reply;
  with_api(pool, [&](std::uint16_t port) -> gb::Task<void> { reply = co_await get(port, "/legacy?ms=5"); });
  ASSERT_EQ(reply.status, 200);
  const std::string answer = Json::parse(reply.body).at("answer");
  EXPECT_EQ(answer.find("answered by thread " + std::to_string(::gettid()) + " "), std::string::npos) << answer;
  EXPECT_NE(answer.find("after 5 ms"), std::string::npos) << answer;
}

TEST(ApiServer, a_crashing_worker_fails_its_request_with_502_and_the_next_compute_works) {
  gb::ProcessPool pool{{.workers = 1}};
  std::vector<Reply> replies;
  with_api(pool, [&](std::uint16_t port) -> gb::Task<void> {
    replies.push_back(co_await get(port, "/crash"));
    replies.push_back(co_await get(port, "/compute?n=100"));
    replies.push_back(co_await get(port, "/health"));
  });
  ASSERT_EQ(replies.size(), 3u);
  EXPECT_EQ(replies[0].status, 502);
  EXPECT_NE(Json::parse(replies[0].body).at("error").get<std::string>().find("signal"), std::string::npos) << replies[0].body;
  EXPECT_EQ(replies[1].status, 200);
  EXPECT_EQ(Json::parse(replies[1].body).at("primes"), 25);
  EXPECT_EQ(replies[2].body, "ok\n");
}

TEST(ApiServer, health_is_answered_while_cpu_work_and_blocking_calls_are_in_flight) {
  // Both workers and two blocking-pool threads are held by the test until every health
  // check has been answered: one gate call holds each worker (each says so with a file),
  // so the two computes wait in the pool's queue, and the two legacy calls block in a
  // gated call. The order of completion holds by construction: the slow requests cannot
  // end before the gate opens.
  const std::string gate = gearbox_test_gate_path();
  std::atomic<int> legacy_blocked{0};
  gb::ProcessPool pool{{.workers = 2}};
  // A call with a timeout goes only to an idle worker, and nothing is sent ahead to the
  // worker that runs it: the two gates hold one worker each, and the computes stay queued.
  const gb::CallOptions exclusive{.timeout = std::chrono::minutes(10)};
  std::vector<gb::Future<int>> held;
  for (int i = 0; i < 2; ++i) held.push_back(pool.submit(exclusive, gb::remote<hold_until_file_exists>, gate));
  const gb::api_example::ApiOptions options{
      .max_compute_n = 10'000'000,
      .allow_crash = true,
      .legacy_call = [&](int ms) {
        legacy_blocked.fetch_add(1);  // seq_cst: a test counter, read by the loop below
        while (!std::filesystem::exists(gate)) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        return gb::api_example::legacy_lookup(ms);
      }};
  std::vector<std::string> finished;
  with_api(pool, options, [&](std::uint16_t port) -> gb::Task<void> {
    auto record = [&](std::string name, std::string path) -> gb::Task<void> {
      const Reply reply = co_await get(port, path);
      finished.push_back(name + " " + std::to_string(reply.status));
    };
    gb::TaskGroup group;
    group.spawn(record("compute", "/compute?n=1000"));
    group.spawn(record("compute", "/compute?n=1000"));
    group.spawn(record("legacy", "/legacy?ms=1"));
    group.spawn(record("legacy", "/legacy?ms=1"));
    // Until all four are in flight: both workers held, both computes queued, both legacy
    // calls blocked.
    while (workers_holding(gate) < 2 || pool.stats().queued < 2 || legacy_blocked.load() < 2)
      co_await gb::sleep_for(std::chrono::milliseconds(1));
    for (int i = 0; i < 3; ++i) co_await record("health", "/health");
    { std::ofstream{gate}; }
    co_await group.join();
  });
  for (auto& h : held) EXPECT_EQ(h.get(), 1);
  remove_gate(gate);
  ASSERT_EQ(finished.size(), 7u);
  EXPECT_EQ(finished[0], "health 200");
  EXPECT_EQ(finished[1], "health 200");
  EXPECT_EQ(finished[2], "health 200");
  for (std::size_t i = 3; i < finished.size(); ++i) EXPECT_NE(finished[i].find(" 200"), std::string::npos) << finished[i];
}

int main(int argc, char** argv) {
  gb::init(argc, argv);  // a worker never returns from here
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
