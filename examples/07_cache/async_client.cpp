#include "async_client.hpp"

#include <array>
#include <stdexcept>
#include <utility>

#include <gearbox/error.hpp>
#include <gearbox/time.hpp>

namespace gb = gearbox;

namespace cache {
namespace {

std::string describe(const Command& command) { return command.empty() ? std::string("(empty command)") : command[0]; }

}  // namespace

gb::Task<AsyncClient> AsyncClient::connect(std::string host, std::uint16_t port, ClientOptions options) {
  const std::string where = host + ":" + std::to_string(port);
  try {
    const gb::net::ConnectOptions connect_options{.timeout = options.timeout};  // named: see get()
    gb::net::TcpStream stream = co_await gb::net::TcpStream::connect(std::move(host), port, connect_options);
    co_return AsyncClient(std::move(stream), options);
  } catch (const gb::TimeoutError&) {
    throw RedisError("cannot connect to " + where + ": no answer within " + std::to_string(options.timeout.count()) +
                     " ms");
  } catch (const gb::IoError& e) {
    throw RedisError("cannot connect to " + where + ": " + std::system_category().message(e.error_number()));
  }
}

AsyncClient::AsyncClient(gb::net::TcpStream stream, ClientOptions options)
    : m_stream(std::move(stream)), m_options(options) {}

gb::Task<std::vector<Reply>> AsyncClient::exchange(std::string request, std::size_t replies) {
  co_await m_stream.write_all(request);
  std::vector<Reply> out;
  out.reserve(replies);
  std::array<char, 16384> buffer;
  while (out.size() < replies) {
    if (std::optional<Reply> reply = m_reader.next()) {
      out.push_back(std::move(*reply));
      continue;
    }
    const std::size_t got = co_await m_stream.read(std::span(buffer));
    if (got == 0) throw RedisError("the server closed the connection");
    m_reader.feed(std::string_view(buffer.data(), got));
  }
  co_return out;
}

gb::Task<std::vector<Reply>> AsyncClient::exchange_within_timeout(std::string request, std::size_t replies,
                                                                  std::string doing) {
  if (m_broken) throw RedisError("the connection is broken by an earlier error: make a new client");
  if (m_busy) throw std::logic_error("cache::AsyncClient: one exchange at a time (another task is using it)");
  m_busy = true;
  m_broken = true;  // until every reply is in: an error or a cancellation leaves it so
  std::string failure;
  try {
    std::vector<Reply> out = co_await gb::timeout(m_options.timeout, exchange(std::move(request), replies));
    m_busy = false;
    m_broken = false;
    co_return out;
  } catch (const gb::TimeoutError&) {
    failure = doing + ": no reply within " + std::to_string(m_options.timeout.count()) + " ms";
  } catch (const gb::IoError& e) {
    failure = doing + ": " + e.what();
  } catch (const RedisError& e) {
    failure = doing + ": " + e.what();
  } catch (...) {  // Cancelled, or out of memory: the replies are out of step
    m_busy = false;
    m_stream.close();
    throw;
  }
  m_busy = false;
  m_stream.close();
  throw RedisError(failure);
}

gb::Task<Reply> AsyncClient::command(Command command) {
  std::string doing = describe(command);
  std::vector<Reply> replies = co_await exchange_within_timeout(format(command), 1, std::move(doing));
  co_return std::move(replies.front());
}

gb::Task<std::vector<Reply>> AsyncClient::pipeline(std::vector<Command> commands) {
  if (commands.empty()) co_return std::vector<Reply>{};
  std::string request;
  for (const Command& command : commands) append_formatted(command, request);
  std::string doing = commands.size() == 1 ? describe(commands[0]) : "a pipeline of " + std::to_string(commands.size());
  co_return co_await exchange_within_timeout(std::move(request), commands.size(), std::move(doing));
}

// Commands are named before the co_await: g++ 12 destroys a braced temporary made inside a
// co_await expression twice.
gb::Task<std::optional<std::string>> AsyncClient::get(std::string key) {
  Command get{"GET", key};
  const Reply reply = co_await command(std::move(get));
  co_return value_of_get(reply, key);
}

gb::Task<void> AsyncClient::set(std::string key, std::string value) {
  Command set{"SET", key, std::move(value)};
  const Reply reply = co_await command(std::move(set));
  check_set(reply, key);
}

}  // namespace cache
