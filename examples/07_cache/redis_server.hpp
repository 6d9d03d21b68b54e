// RedisServer: a real redis-server (Debian's, installed by scripts/setup) on 127.0.0.1 and
// a free port, with a scratch directory of its own and no persistence, started by the
// example and its tests and stopped when destroyed.
//
//   cache::RedisServer server;                    // throws RedisError if it cannot start
//   cache::BlockingClient redis(server.host(), server.port());
//   server.kill();                                // a server that dies mid-run
//
// The constructor returns once the server answers PING (within 10 s). DEBUG is enabled
// for local connections, so tests can make the server slow (DEBUG SLEEP).
//
// Thread-safety: one thread owns it; host() and port() may be read from any thread.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>

namespace cache {

class RedisServer {
public:
  // The path of redis-server, or "" when it is not installed: $GEARBOX_REDIS_SERVER when
  // set (a path to use instead; one that is not an executable counts as not installed),
  // else Debian's /usr/bin/redis-server or /usr/local/bin/redis-server.
  static std::string program();

  // RedisError when redis-server is not installed (naming how to install it), or exits or
  // does not answer in time (with the end of its log).
  RedisServer();
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  const std::string& host() const noexcept { return m_host; }
  int port() const noexcept { return m_port; }
  // Ends the server at once (SIGKILL), as a crash would. Idempotent.
  void kill() noexcept;

private:
  bool start_on_a_free_port();
  std::string log_tail() const;

  std::filesystem::path m_scratch;
  std::string m_host = "127.0.0.1";
  int m_port = 0;
  pid_t m_pid = -1;
};

}  // namespace cache
