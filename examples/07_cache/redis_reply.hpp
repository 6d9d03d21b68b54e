// The Redis protocol (RESP) for the cache example's two clients: a command as its words,
// formatted to bytes, and replies parsed from bytes. hiredis does both (its formatter
// and its reader, the code inside every hiredis client); this header turns its C structs
// into values and its error codes into exceptions.
//
//   std::string bytes = cache::format({"SET", "user:1", "Ada"});   // "*3\r\n$3\r\nSET\r\n..."
//   cache::ReplyReader reader;
//   reader.feed(received);
//   while (std::optional<cache::Reply> reply = reader.next()) use(*reply);
//
// Thread-safety: a ReplyReader is one connection's and used by one thread at a time.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

struct redisReader;
struct redisReply;

namespace cache {

// Anything that went wrong talking to Redis, with a message that says what and where:
// "cannot connect to 127.0.0.1:6390: Connection refused", "GET: no reply within 100 ms",
// "GET user:1: WRONGTYPE Operation against a key holding the wrong kind of value".
class RedisError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

// One reply, as the server sent it.
struct Reply {
  enum class Kind { nil, string, integer, status, error, array };
  Kind kind = Kind::nil;
  std::string text;           // string, status ("OK") or error ("ERR unknown command")
  long long integer = 0;      // integer
  std::vector<Reply> elements;  // array

  // From hiredis' reply object (which the caller still owns and frees).
  static Reply from(const redisReply& reply);
  friend bool operator==(const Reply&, const Reply&) = default;
};

// A command is its words: {"GET", "user:1"}. Words may hold any bytes.
using Command = std::vector<std::string>;

// The command in RESP, appended to `out`.
void append_formatted(const Command& command, std::string& out);
std::string format(const Command& command);

// Replies from the bytes of one connection, fed as they arrive in pieces of any size.
class ReplyReader {
public:
  ReplyReader();
  ~ReplyReader();
  ReplyReader(ReplyReader&&) noexcept;
  ReplyReader& operator=(ReplyReader&&) noexcept;

  void feed(std::string_view bytes);
  // The next whole reply, or nullopt until more bytes are fed. RedisError("protocol
  // error: ...") for bytes that are not RESP; the reader is then unusable.
  std::optional<Reply> next();

private:
  struct Free {
    void operator()(redisReader* reader) const noexcept;
  };
  std::unique_ptr<redisReader, Free> m_reader;
};

// What a GET's reply means: the value, nullopt for a missing key; RedisError for
// anything else (an error reply names the command and the key).
std::optional<std::string> value_of_get(const Reply& reply, std::string_view key);
// What a SET's reply means: nothing when "OK"; RedisError otherwise.
void check_set(const Reply& reply, std::string_view key);

}  // namespace cache
