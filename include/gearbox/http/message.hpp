// HTTP/1.1 messages as the server hands them to handlers and takes them back: Headers,
// Request and Response. Plain values: no I/O, no loop, safe to copy and move anywhere.
//
//   gb::Task<gb::http::Response> hello(const gb::http::Request& request) {
//     if (auto name = request.query_param("name")) co_return gb::http::Response::text("hello " + *name + "\n");
//     co_return gb::http::Response::text("hello\n");
//   }
//
// Header names compare without regard to case, as RFC 9110 says; their spelling is kept.
// The server adds Content-Length, Date and Connection to every response itself: a handler
// that sets them has them replaced.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gearbox::http {

// True if `a` and `b` are equal ignoring ASCII case (header names, tokens).
bool equals_ignoring_case(std::string_view a, std::string_view b) noexcept;

// An ordered list of header fields; a name may repeat (Set-Cookie).
class Headers {
public:
  using Field = std::pair<std::string, std::string>;

  Headers() = default;
  // Takes fields as they are, unchecked (the request parser's, which the grammar checked).
  explicit Headers(std::vector<Field> fields) noexcept : m_fields(std::move(fields)) {}

  // The value of the first field named `name`, or nullopt.
  std::optional<std::string_view> get(std::string_view name) const noexcept;
  bool contains(std::string_view name) const noexcept { return get(name).has_value(); }
  // Appends a field (another field of the same name stays). std::invalid_argument if the
  // name is empty or holds a space, a colon or a control character, or the value holds
  // CR, LF or NUL (which would let the value end the header block: response splitting).
  void add(std::string name, std::string value);
  // Replaces every field named `name` by one; checked as add().
  void set(std::string_view name, std::string value);
  // Removes every field named `name`; how many there were.
  std::size_t remove(std::string_view name) noexcept;

  const std::vector<Field>& fields() const noexcept { return m_fields; }
  std::size_t size() const noexcept { return m_fields.size(); }
  bool empty() const noexcept { return m_fields.empty(); }
  void clear() noexcept { m_fields.clear(); }

private:
  std::vector<Field> m_fields;
};

struct Request {
  std::string method;  // "GET", "POST"... as sent (http-parser accepts only known methods)
  std::string target;  // the request target as sent: "/search?q=x"
  std::string path;    // the target's path, percent-decoding left to the handler: "/search"
  std::string query;   // after '?', without it: "q=x" ("" if none)
  int version_minor = 1;  // HTTP/1.x
  Headers headers;
  std::string body;  // de-chunked

  // The first value of `key` in the query ("a=1&b=2"), with '+' and %XX decoded; nullopt
  // if the key is absent or its value has a malformed escape, "" for "?key" or "?key=".
  std::optional<std::string> query_param(std::string_view key) const;
};

struct Response {
  int status = 200;
  Headers headers = {};
  std::string body = {};

  // Convenience constructors; they set Content-Type.
  static Response text(std::string body, int status = 200);  // text/plain; charset=utf-8
  static Response json(std::string body, int status = 200);  // application/json
  // The status's reason phrase as the body ("Not Found\n"), text/plain.
  static Response error(int status);
};

// "OK", "Not Found"...; "Unknown" for a code with no registered phrase.
std::string_view reason_phrase(int status) noexcept;

// Decodes %XX escapes (and '+' as a space when `plus_is_space`); nullopt if an escape is
// malformed ("%G1", a trailing "%4").
std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space = false);

}  // namespace gearbox::http
