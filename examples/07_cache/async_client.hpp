// AsyncClient: one connection to Redis for tasks, on a gb::Loop or a gb::Runtime alike.
// The bytes go through gearbox's TcpStream; the protocol is hiredis' (its formatter and
// reader, redis_reply.hpp). A task awaiting a reply suspends; its loop runs the others.
//
//   auto redis = co_await cache::AsyncClient::connect("127.0.0.1", 6379, {.timeout = 2s});
//   co_await redis.set("user:1", "Ada");
//   std::optional<std::string> name = co_await redis.get("user:1");
//   std::vector<cache::Reply> replies = co_await redis.pipeline(commands);  // one round trip
//
// Why not hiredis' own async API: its context reads and writes the socket itself and
// asks an event-loop adapter (libev, libuv...) to call it back; a coroutine awaiting a
// socket of ours needs no adapter, and gets cancellation and timeouts from gearbox.
//
// Errors are RedisError as BlockingClient's (the timeout covers each exchange: the connect,
// and a command's or a pipeline's replies). A task cancelled while it awaits a reply
// throws gb::Cancelled; that reply would arrive out of step with the next command, so
// the connection is then closed, and like any failed exchange leaves the client broken:
// every later call throws RedisError at once.
//
// Thread-safety: one task at a time (a second task's exchange while one is under way is
// std::logic_error). On a Runtime that task may move between workers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <gearbox/net/tcp.hpp>
#include <gearbox/task.hpp>

#include "blocking_client.hpp"  // ClientOptions
#include "redis_reply.hpp"

namespace cache {

class AsyncClient {
public:
  [[nodiscard]] static gearbox::Task<AsyncClient> connect(std::string host, std::uint16_t port,
                                                          ClientOptions options = {});

  [[nodiscard]] gearbox::Task<Reply> command(Command command);
  // Sends every command in one write, then reads every reply: one round trip.
  [[nodiscard]] gearbox::Task<std::vector<Reply>> pipeline(std::vector<Command> commands);

  [[nodiscard]] gearbox::Task<std::optional<std::string>> get(std::string key);
  [[nodiscard]] gearbox::Task<void> set(std::string key, std::string value);

private:
  AsyncClient(gearbox::net::TcpStream stream, ClientOptions options);
  gearbox::Task<std::vector<Reply>> exchange(std::string request, std::size_t replies);
  gearbox::Task<std::vector<Reply>> exchange_within_timeout(std::string request, std::size_t replies,
                                                            std::string doing);

  gearbox::net::TcpStream m_stream;
  ReplyReader m_reader;
  ClientOptions m_options;
  bool m_busy = false;    // an exchange is under way
  bool m_broken = false;  // an exchange failed or was cancelled
};

}  // namespace cache
