// BlockingClient: one connection to Redis that blocks the calling thread for each reply
// (hiredis' synchronous API). What the threads engine gives each thread, and what the
// sequential engine uses alone.
//
//   cache::BlockingClient redis("127.0.0.1", 6379, {.timeout = 2s});
//   redis.set("user:1", "Ada");
//   std::optional<std::string> name = redis.get("user:1");        // nullopt: no such key
//   std::vector<cache::Reply> replies = redis.pipeline(commands);  // one round trip
//
// Errors are RedisError naming what failed: a refused or timed-out connect, a reply that
// does not come within the timeout, a server that closes the connection. After a failed
// exchange the connection is broken (its replies would be out of step) and every later
// call throws at once; make a new client to go on.
//
// Thread-safety: one thread at a time.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "redis_reply.hpp"

struct redisContext;

namespace cache {

struct ClientOptions {
  // For the connect, and for each reply (each batch's, when pipelined). At least 1 ms.
  std::chrono::milliseconds timeout{2000};
};

class BlockingClient {
public:
  BlockingClient(const std::string& host, int port, ClientOptions options = {});
  ~BlockingClient();
  BlockingClient(BlockingClient&&) noexcept;
  BlockingClient& operator=(BlockingClient&&) noexcept;

  Reply command(const Command& command);
  // Sends every command, then reads every reply: one round trip for the lot.
  std::vector<Reply> pipeline(std::span<const Command> commands);

  std::optional<std::string> get(std::string_view key);
  void set(std::string_view key, std::string_view value);

private:
  struct Free {
    void operator()(redisContext* context) const noexcept;
  };
  [[noreturn]] void fail(std::string_view doing);
  Reply read_reply(std::string_view doing);

  std::unique_ptr<redisContext, Free> m_context;
  ClientOptions m_options;
  bool m_broken = false;
};

}  // namespace cache
