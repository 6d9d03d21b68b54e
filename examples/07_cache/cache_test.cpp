// gearbox-cache: the protocol layer on fixed bytes, then both clients and every engine
// against a real redis-server (started per test on a free port): correct results, a
// missing key, an error reply, a server that is down, dies mid-run, is slow or sends
// garbage, and a query cancelled while it waits. Nothing here depends on how fast
// anything ran; every wait is bounded by a client timeout.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include <gearbox/error.hpp>
#include <gearbox/loop.hpp>
#include <gearbox/net/tcp.hpp>
#include <gearbox/spawn.hpp>
#include <gearbox/time.hpp>

#include "async_client.hpp"
#include "blocking_client.hpp"
#include "cache_run.hpp"
#include "redis_reply.hpp"
#include "redis_server.hpp"

namespace gb = gearbox;
using namespace std::chrono_literals;
using namespace std::string_literals;
using cache::Reply;

namespace {

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

Reply reply(Reply::Kind kind, std::string text = {}) {
  Reply out;
  out.kind = kind;
  out.text = std::move(text);
  return out;
}

cache::EngineOptions engine_options(int concurrency, int batch, int workers) {
  cache::EngineOptions options;
  options.concurrency = concurrency;
  options.batch = batch;
  options.workers = workers;
  return options;
}

// The message of the RedisError `f` throws, or "(no error)".
template <class F>
std::string redis_error_of(F&& f) {
  try {
    f();
  } catch (const cache::RedisError& e) {
    return e.what();
  }
  return "(no error)";
}

// Runs `task` on a fresh loop; the message of the RedisError it throws, or "(no error)".
template <class T>
std::string async_redis_error_of(gb::Task<T> task) {
  gb::Loop loop;
  return redis_error_of([&] { loop.run(std::move(task)); });
}

// A port nothing listens on: bound, then closed.
std::uint16_t closed_port() {
  auto listener = gb::net::TcpListener::bind(gb::net::SocketAddress::loopback(0));
  return listener.local_address().port();
}

gb::Task<std::optional<std::string>> async_get(std::string host, int port, std::string key, cache::ClientOptions options = {}) {
  cache::AsyncClient client = co_await cache::AsyncClient::connect(host, static_cast<std::uint16_t>(port), options);
  co_return co_await client.get(key);
}

}  // namespace

// ---- the protocol, on fixed bytes ----

TEST(RedisReply, a_command_is_formatted_as_an_array_of_bulk_strings_of_any_bytes) {
  EXPECT_EQ(cache::format({"GET", "k"}), "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
  EXPECT_EQ(cache::format({"SET", "k", std::string("a\r\n\0b", 5)}), "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\na\r\n\0b\r\n"s);
}

TEST(RedisReply, every_kind_of_reply_is_read_even_one_byte_at_a_time) {
  const std::string bytes = "$5\r\nhello\r\n$-1\r\n:42\r\n+OK\r\n-ERR no such thing\r\n*2\r\n$1\r\na\r\n:7\r\n";
  cache::ReplyReader reader;
  std::vector<Reply> replies;
  for (const char c : bytes) {
    reader.feed(std::string_view(&c, 1));
    while (std::optional<Reply> reply = reader.next()) replies.push_back(std::move(*reply));
  }
  ASSERT_EQ(replies.size(), 6u);
  EXPECT_EQ(replies[0], reply(Reply::Kind::string, "hello"));
  EXPECT_EQ(replies[1].kind, Reply::Kind::nil);
  EXPECT_EQ(replies[2].kind, Reply::Kind::integer);
  EXPECT_EQ(replies[2].integer, 42);
  EXPECT_EQ(replies[3], reply(Reply::Kind::status, "OK"));
  EXPECT_EQ(replies[4], reply(Reply::Kind::error, "ERR no such thing"));
  ASSERT_EQ(replies[5].elements.size(), 2u);
  EXPECT_EQ(replies[5].elements[0].text, "a");
  EXPECT_EQ(replies[5].elements[1].integer, 7);
}

TEST(RedisReply, bytes_that_are_not_resp_are_a_protocol_error) {
  cache::ReplyReader reader;
  reader.feed("hello\r\n");
  EXPECT_TRUE(contains(redis_error_of([&] { (void)reader.next(); }), "protocol error")) ;
}

TEST(RedisReply, a_get_means_a_value_or_a_missing_key_and_an_error_reply_names_the_key) {
  EXPECT_EQ(cache::value_of_get(reply(Reply::Kind::string, "v"), "k"), "v");
  EXPECT_EQ(cache::value_of_get(reply(Reply::Kind::nil), "k"), std::nullopt);
  EXPECT_EQ(redis_error_of([] { (void)cache::value_of_get(reply(Reply::Kind::error, "WRONGTYPE no"), "k"); }),
            "GET k: WRONGTYPE no");
  EXPECT_EQ(redis_error_of([] { cache::check_set(reply(Reply::Kind::integer), "k"); }), "SET k: unexpected reply");
}

TEST(CacheWorkload, the_expected_tally_has_hits_misses_and_sets_that_add_up) {
  const cache::Workload work{.operations = 10'000, .keys = 100};
  const cache::Tally tally = cache::expected_tally(work);
  EXPECT_EQ(tally.gets + tally.sets, 10'000);
  EXPECT_EQ(tally.hits + tally.misses, tally.gets);
  EXPECT_GT(tally.misses, 0);
  EXPECT_GT(tally.hits, tally.misses);
  EXPECT_GT(tally.sets, 1'000);  // 20 % of 10,000, give or take
  EXPECT_LT(tally.sets, 3'000);
}

// ---- against a real server ----

class RedisTest : public testing::Test {
protected:
  void SetUp() override {
    ASSERT_FALSE(cache::RedisServer::program().empty()) << "redis-server is not installed: run scripts/setup";
    server = std::make_unique<cache::RedisServer>();
  }
  std::unique_ptr<cache::RedisServer> server;
};

TEST_F(RedisTest, a_blocking_client_sets_gets_and_finds_a_key_missing) {
  cache::BlockingClient redis(server->host(), server->port());
  redis.set("user:1", "Ada");
  EXPECT_EQ(redis.get("user:1"), "Ada");
  EXPECT_EQ(redis.get("user:2"), std::nullopt);
  const std::vector<Reply> replies = redis.pipeline(std::vector<cache::Command>{{"INCR", "n"}, {"INCR", "n"}, {"GET", "n"}});
  ASSERT_EQ(replies.size(), 3u);
  EXPECT_EQ(replies[1].integer, 2);
  EXPECT_EQ(replies[2].text, "2");
}

TEST_F(RedisTest, an_async_client_sets_gets_and_finds_a_key_missing) {
  auto body = [](std::string host, int port) -> gb::Task<void> {
    cache::AsyncClient redis = co_await cache::AsyncClient::connect(host, static_cast<std::uint16_t>(port));
    co_await redis.set("user:1", "Ada");
    EXPECT_EQ(co_await redis.get("user:1"), "Ada");
    EXPECT_EQ(co_await redis.get("user:2"), std::nullopt);
    std::vector<cache::Command> commands{{"INCR", "n"}, {"INCR", "n"}, {"GET", "n"}};
    const std::vector<Reply> replies = co_await redis.pipeline(std::move(commands));
    EXPECT_EQ(replies.size(), 3u);
    EXPECT_EQ(replies.back().text, "2");
  };
  gb::Loop loop;
  loop.run(body(server->host(), server->port()));
}

TEST_F(RedisTest, an_error_reply_is_a_redis_error_naming_the_command_and_the_key_and_the_connection_goes_on) {
  cache::BlockingClient redis(server->host(), server->port());
  (void)redis.command({"LPUSH", "list", "x"});
  EXPECT_TRUE(contains(redis_error_of([&] { (void)redis.get("list"); }), "GET list: WRONGTYPE"));
  EXPECT_EQ(redis.get("list:none"), std::nullopt);  // an error reply is in step: the connection is fine
  auto body = [](std::string host, int port) -> gb::Task<void> {
    cache::AsyncClient redis = co_await cache::AsyncClient::connect(host, static_cast<std::uint16_t>(port));
    co_await redis.get("list");
  };
  EXPECT_TRUE(contains(async_redis_error_of(body(server->host(), server->port())), "GET list: WRONGTYPE"));
}

TEST(Redis, a_server_that_is_down_is_a_refused_connection_for_both_clients) {
  const std::uint16_t port = closed_port();
  const std::string expected = "cannot connect to 127.0.0.1:" + std::to_string(port) + ": Connection refused";
  EXPECT_EQ(redis_error_of([&] { cache::BlockingClient("127.0.0.1", port); }), expected);
  EXPECT_EQ(async_redis_error_of(async_get("127.0.0.1", port, "k")), expected);
}

TEST(Redis, every_engine_reports_a_server_that_is_down_as_its_error) {
  const std::uint16_t port = closed_port();
  for (const cache::Engine engine : cache::k_engines) {
    const cache::EngineRun run = cache::run_engine(engine, "127.0.0.1", port, {.operations = 100}, engine_options(2, 1, 2));
    EXPECT_TRUE(contains(run.error, "Connection refused")) << cache::to_string(engine) << ": " << run.error;
  }
}

TEST_F(RedisTest, a_command_slower_than_the_timeout_is_a_timeout_and_breaks_the_connection) {
  // DEBUG SLEEP 0.5 takes the server half a second to answer; the clients wait 100 ms.
  const cache::ClientOptions options{.timeout = 100ms};
  cache::BlockingClient redis(server->host(), server->port(), options);
  EXPECT_EQ(redis_error_of([&] { (void)redis.command({"DEBUG", "SLEEP", "0.5"}); }), "DEBUG: no reply within 100 ms");
  EXPECT_TRUE(contains(redis_error_of([&] { (void)redis.get("k"); }), "broken"));
  auto body = [](std::string host, int port, cache::ClientOptions options) -> gb::Task<void> {
    cache::AsyncClient redis = co_await cache::AsyncClient::connect(host, static_cast<std::uint16_t>(port), options);
    std::string message;
    try {
      cache::Command sleep{"DEBUG", "SLEEP", "0.5"};
      (void)co_await redis.command(std::move(sleep));
    } catch (const cache::RedisError& e) {
      message = e.what();
    }
    EXPECT_EQ(message, "DEBUG: no reply within 100 ms");
    co_await redis.get("k");  // broken: throws at once
  };
  EXPECT_TRUE(contains(async_redis_error_of(body(server->host(), server->port(), options)), "broken"));
}

TEST_F(RedisTest, a_query_cancelled_while_it_waits_ends_with_cancelled_and_leaves_the_server_serving) {
  auto body = [](std::string host, int port) -> gb::Task<bool> {
    cache::AsyncClient redis = co_await cache::AsyncClient::connect(host, static_cast<std::uint16_t>(port));
    auto query = [](cache::AsyncClient& client) -> gb::Task<void> {
      cache::Command sleep{"DEBUG", "SLEEP", "0.3"};  // named: g++ 12 and braced temporaries in co_await
      (void)co_await client.command(std::move(sleep));
    };
    gb::JoinHandle<void> pending = gb::spawn(query(redis), gb::Start::eager);  // sent; now awaits the reply
    pending.cancel();
    bool cancelled = false;
    try {
      co_await pending;
    } catch (const gb::Cancelled&) {
      cancelled = true;
    }
    std::string after;
    try {
      co_await redis.get("k");
    } catch (const cache::RedisError& e) {
      after = e.what();
    }
    EXPECT_TRUE(contains(after, "broken")) << after;
    co_return cancelled;
  };
  gb::Loop loop;
  EXPECT_TRUE(loop.run(body(server->host(), server->port())));
  cache::BlockingClient fresh(server->host(), server->port());
  EXPECT_EQ(fresh.get("k"), std::nullopt);  // the server serves new connections
}

// A fake server on the loop that answers every connection with `answer`, then closes it.
gb::Task<void> answer_once(gb::net::TcpListener& listener, std::string answer) {
  gb::net::TcpStream peer = co_await listener.accept();
  char request[256];
  (void)co_await peer.read(std::span(request));
  if (!answer.empty()) co_await peer.write_all(answer);
}

gb::Task<std::string> get_from_a_fake_server(std::string answer) {
  auto listener = gb::net::TcpListener::bind(gb::net::SocketAddress::loopback(0));
  const std::uint16_t port = listener.local_address().port();
  gb::JoinHandle<void> fake = gb::spawn(answer_once(listener, std::move(answer)));
  std::string message = "(no error)";
  try {
    (void)co_await async_get("127.0.0.1", port, "k");
  } catch (const cache::RedisError& e) {
    message = e.what();
  }
  co_await fake;
  co_return message;
}

TEST(Redis, a_server_that_sends_garbage_is_a_protocol_error_and_one_that_hangs_up_is_named) {
  gb::Loop loop;
  EXPECT_TRUE(contains(loop.run(get_from_a_fake_server("hello\r\n")), "GET: protocol error")) ;
  EXPECT_EQ(loop.run(get_from_a_fake_server("")), "GET: the server closed the connection");
}

class EveryEngine : public RedisTest, public testing::WithParamInterface<cache::Engine> {};

TEST_P(EveryEngine, gets_the_results_the_workload_implies) {
  const cache::Workload work{.operations = 600, .keys = 50};
  cache::preload(server->host(), server->port(), work);
  const cache::EngineRun run =
      cache::run_engine(GetParam(), server->host(), server->port(), work, engine_options(3, 7, 2));
  EXPECT_EQ(run.error, "");
  EXPECT_EQ(run.tally, cache::expected_tally(work));
}

TEST_P(EveryEngine, reports_a_server_that_dies_mid_run_and_does_not_hang) {
  // Far more operations than run before the kill; the server is killed once it has
  // served some, and every unit then meets a closed or refused connection.
  const cache::Workload work{.operations = 100'000'000, .keys = 10};
  cache::preload(server->host(), server->port(), work);
  cache::BlockingClient observer(server->host(), server->port());
  auto processed = [&] {
    const Reply info = observer.command({"INFO", "stats"});
    const auto at = info.text.find("total_commands_processed:");
    return at == std::string::npos ? 0L : std::stol(info.text.substr(at + 25));
  };
  const long before = processed();
  long engine_commands = 0;
  std::jthread killer([&] {
    for (int polls = 1; polls <= 2000 && engine_commands < 500; ++polls) {  // at most 20 s
      std::this_thread::sleep_for(10ms);
      engine_commands = processed() - before - polls;  // each poll is a command too
    }
    server->kill();
  });
  const cache::EngineRun run =
      cache::run_engine(GetParam(), server->host(), server->port(), work, engine_options(3, 7, 2));
  killer.join();
  EXPECT_GE(engine_commands, 500);  // it was killed mid-run, not before
  EXPECT_NE(run.error, "");
  EXPECT_LT(run.tally.gets + run.tally.sets, work.operations);
}

INSTANTIATE_TEST_SUITE_P(Cache, EveryEngine, testing::ValuesIn(cache::k_engines),
                         [](const testing::TestParamInfo<cache::Engine>& info) { return cache::to_string(info.param); });
