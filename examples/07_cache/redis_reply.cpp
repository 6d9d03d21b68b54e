#include "redis_reply.hpp"

#include <hiredis/hiredis.h>

namespace cache {

Reply Reply::from(const redisReply& reply) {
  Reply out;
  switch (reply.type) {
  case REDIS_REPLY_STRING: out.kind = Kind::string; break;
  case REDIS_REPLY_STATUS: out.kind = Kind::status; break;
  case REDIS_REPLY_ERROR: out.kind = Kind::error; break;
  case REDIS_REPLY_INTEGER: out.kind = Kind::integer; break;
  case REDIS_REPLY_ARRAY: out.kind = Kind::array; break;
  default: out.kind = Kind::nil; break;
  }
  if (reply.str != nullptr) out.text.assign(reply.str, reply.len);
  out.integer = reply.integer;
  for (std::size_t i = 0; i < reply.elements; ++i) out.elements.push_back(from(*reply.element[i]));
  return out;
}

void append_formatted(const Command& command, std::string& out) {
  std::vector<const char*> words;
  std::vector<std::size_t> sizes;
  words.reserve(command.size());
  sizes.reserve(command.size());
  for (const std::string& word : command) {
    words.push_back(word.data());
    sizes.push_back(word.size());
  }
  char* formatted = nullptr;
  const int size = redisFormatCommandArgv(&formatted, static_cast<int>(words.size()), words.data(), sizes.data());
  if (size < 0) throw RedisError("cannot format the command (out of memory)");
  out.append(formatted, static_cast<std::size_t>(size));
  redisFreeCommand(formatted);
}

std::string format(const Command& command) {
  std::string out;
  append_formatted(command, out);
  return out;
}

void ReplyReader::Free::operator()(redisReader* reader) const noexcept { redisReaderFree(reader); }

ReplyReader::ReplyReader() : m_reader(redisReaderCreate()) {
  if (!m_reader) throw RedisError("cannot create a reply reader (out of memory)");
}
ReplyReader::~ReplyReader() = default;
ReplyReader::ReplyReader(ReplyReader&&) noexcept = default;
ReplyReader& ReplyReader::operator=(ReplyReader&&) noexcept = default;

void ReplyReader::feed(std::string_view bytes) {
  if (redisReaderFeed(m_reader.get(), bytes.data(), bytes.size()) != REDIS_OK)
    throw RedisError(std::string("protocol error: ") + m_reader->errstr);
}

std::optional<Reply> ReplyReader::next() {
  void* raw = nullptr;
  if (redisReaderGetReply(m_reader.get(), &raw) != REDIS_OK)
    throw RedisError(std::string("protocol error: ") + m_reader->errstr);
  if (raw == nullptr) return std::nullopt;
  const std::unique_ptr<redisReply, decltype(&freeReplyObject)> owned(static_cast<redisReply*>(raw), &freeReplyObject);
  return Reply::from(*owned);
}

namespace {

[[noreturn]] void unexpected(const char* command, std::string_view key, const Reply& reply) {
  const std::string what = std::string(command) + " " + std::string(key) + ": ";
  if (reply.kind == Reply::Kind::error) throw RedisError(what + reply.text);
  throw RedisError(what + "unexpected reply");
}

}  // namespace

std::optional<std::string> value_of_get(const Reply& reply, std::string_view key) {
  if (reply.kind == Reply::Kind::nil) return std::nullopt;
  if (reply.kind != Reply::Kind::string) unexpected("GET", key, reply);
  return reply.text;
}

void check_set(const Reply& reply, std::string_view key) {
  if (reply.kind != Reply::Kind::status || reply.text != "OK") unexpected("SET", key, reply);
}

}  // namespace cache
