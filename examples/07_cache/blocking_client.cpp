#include "blocking_client.hpp"

#include <hiredis/hiredis.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace cache {
namespace {

timeval to_timeval(std::chrono::milliseconds timeout) {
  const long ms = std::max<long>(1, static_cast<long>(timeout.count()));
  return timeval{ms / 1000, (ms % 1000) * 1000};
}

void append(redisContext* context, const Command& command) {
  std::vector<const char*> words;
  std::vector<std::size_t> sizes;
  for (const std::string& word : command) {
    words.push_back(word.data());
    sizes.push_back(word.size());
  }
  if (redisAppendCommandArgv(context, static_cast<int>(words.size()), words.data(), sizes.data()) != REDIS_OK)
    throw RedisError("cannot queue the command (out of memory)");
}

std::string name_of(const Command& command) { return command.empty() ? std::string("(empty command)") : command[0]; }

}  // namespace

void BlockingClient::Free::operator()(redisContext* context) const noexcept { redisFree(context); }

BlockingClient::BlockingClient(const std::string& host, int port, ClientOptions options) : m_options(options) {
  m_context.reset(redisConnectWithTimeout(host.c_str(), port, to_timeval(options.timeout)));
  const std::string where = host + ":" + std::to_string(port);
  if (!m_context) throw RedisError("cannot connect to " + where + ": out of memory");
  if (m_context->err != 0) {
    const bool timed_out = m_context->err == REDIS_ERR_IO && (errno == EAGAIN || errno == ETIMEDOUT);
    throw RedisError("cannot connect to " + where + ": " +
                     (timed_out ? "no answer within " + std::to_string(options.timeout.count()) + " ms"
                                : std::string(m_context->errstr)));
  }
  if (redisSetTimeout(m_context.get(), to_timeval(options.timeout)) != REDIS_OK)
    throw RedisError("cannot set the timeout on " + where + ": " + m_context->errstr);
}

BlockingClient::~BlockingClient() = default;
BlockingClient::BlockingClient(BlockingClient&&) noexcept = default;
BlockingClient& BlockingClient::operator=(BlockingClient&&) noexcept = default;

void BlockingClient::fail(std::string_view doing) {
  m_broken = true;
  std::string what = std::string(doing) + ": ";
  if (m_context->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK))
    what += "no reply within " + std::to_string(m_options.timeout.count()) + " ms";
  else if (m_context->err == REDIS_ERR_EOF)
    what += "the server closed the connection";
  else
    what += m_context->errstr;
  throw RedisError(what);
}

Reply BlockingClient::read_reply(std::string_view doing) {
  void* raw = nullptr;
  if (redisGetReply(m_context.get(), &raw) != REDIS_OK || raw == nullptr) fail(doing);
  const std::unique_ptr<redisReply, decltype(&freeReplyObject)> owned(static_cast<redisReply*>(raw), &freeReplyObject);
  return Reply::from(*owned);
}

Reply BlockingClient::command(const Command& command) {
  return std::move(pipeline(std::span(&command, 1)).front());
}

std::vector<Reply> BlockingClient::pipeline(std::span<const Command> commands) {
  if (m_broken) throw RedisError("the connection is broken by an earlier error: make a new client");
  if (commands.empty()) return {};
  const std::string doing = commands.size() == 1 ? name_of(commands[0]) : "a pipeline of " + std::to_string(commands.size());
  for (const Command& command : commands) append(m_context.get(), command);
  std::vector<Reply> replies;
  replies.reserve(commands.size());
  for (std::size_t i = 0; i < commands.size(); ++i) replies.push_back(read_reply(doing));
  return replies;
}

std::optional<std::string> BlockingClient::get(std::string_view key) {
  return value_of_get(command({"GET", std::string(key)}), key);
}

void BlockingClient::set(std::string_view key, std::string_view value) {
  check_set(command({"SET", std::string(key), std::string(value)}), key);
}

}  // namespace cache
