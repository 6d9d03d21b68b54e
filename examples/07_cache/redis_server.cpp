#include "redis_server.hpp"

#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "blocking_client.hpp"
#include "redis_reply.hpp"

extern char** environ;

namespace cache {
namespace {

// A port the kernel just had free on 127.0.0.1 (another program may take it before the
// server binds it: start_on_a_free_port then fails and the constructor tries another).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw RedisError(std::string("cannot find a free port: ") + std::strerror(errno));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof address;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) == 0;
  ::close(fd);
  if (!ok) throw RedisError("cannot find a free port on 127.0.0.1");
  return ntohs(address.sin_port);
}

bool answers_ping(const std::string& host, int port) {
  try {
    BlockingClient client(host, port, {.timeout = std::chrono::milliseconds(500)});
    const Reply reply = client.command({"PING"});
    return reply.kind == Reply::Kind::status && reply.text == "PONG";
  } catch (const RedisError&) {
    return false;
  }
}

}  // namespace

std::string RedisServer::program() {
  if (const char* chosen = std::getenv("GEARBOX_REDIS_SERVER"); chosen != nullptr)
    return ::access(chosen, X_OK) == 0 ? std::string(chosen) : std::string();
  for (const char* path : {"/usr/bin/redis-server", "/usr/local/bin/redis-server"})
    if (::access(path, X_OK) == 0) return path;
  return {};
}

RedisServer::RedisServer() {
  if (program().empty())
    throw RedisError("redis-server is not installed: run scripts/setup, or apt install redis-server");
  // mkdtemp replaces the Xs with a unique name.
  std::string scratch = (std::filesystem::temp_directory_path() / "gearbox-cache-XXXXXX").string();
  if (::mkdtemp(scratch.data()) == nullptr)
    throw RedisError("cannot make a scratch directory: " + std::string(std::strerror(errno)));
  m_scratch = scratch;
  std::string failure;
  try {
    for (int attempt = 0; attempt < 3; ++attempt)
      if (start_on_a_free_port()) return;
    failure = "redis-server did not start; its log ends:\n" + log_tail();
  } catch (const std::exception& e) {  // no free port, or posix_spawn failed
    failure = e.what();
  }
  // The destructor will not run: end the server and remove the scratch directory here.
  kill();
  std::error_code ignored;
  std::filesystem::remove_all(m_scratch, ignored);
  throw RedisError(failure);
}

RedisServer::~RedisServer() {
  if (m_pid > 0) {
    ::kill(m_pid, SIGTERM);
    while (::waitpid(m_pid, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  std::error_code ignored;
  std::filesystem::remove_all(m_scratch, ignored);
}

void RedisServer::kill() noexcept {
  if (m_pid <= 0) return;
  ::kill(m_pid, SIGKILL);
  while (::waitpid(m_pid, nullptr, 0) < 0 && errno == EINTR) {
  }
  m_pid = -1;
}

bool RedisServer::start_on_a_free_port() {
  m_port = free_port();
  std::vector<std::string> args = {program(),
                                   "--port", std::to_string(m_port),
                                   "--bind", m_host,
                                   "--dir", m_scratch.string(),
                                   "--logfile", (m_scratch / "redis.log").string(),
                                   "--save", "",
                                   "--appendonly", "no",
                                   "--daemonize", "no",
                                   "--enable-debug-command", "local"};
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  if (const int error = ::posix_spawn(&m_pid, argv[0], nullptr, nullptr, argv.data(), environ); error != 0) {
    m_pid = -1;
    throw RedisError("cannot start " + program() + ": " + std::strerror(error));
  }
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < give_up) {
    if (answers_ping(m_host, m_port)) return true;
    int status = 0;
    if (::waitpid(m_pid, &status, WNOHANG) == m_pid) {  // it exited: the port was taken, say
      m_pid = -1;
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill();
  return false;
}

std::string RedisServer::log_tail() const {
  std::ifstream log(m_scratch / "redis.log");
  std::vector<std::string> lines;
  for (std::string line; std::getline(log, line);) lines.push_back(line);
  std::string tail;
  for (std::size_t i = lines.size() > 5 ? lines.size() - 5 : 0; i < lines.size(); ++i) tail += lines[i] + "\n";
  return tail.empty() ? "(no log)\n" : tail;
}

}  // namespace cache
