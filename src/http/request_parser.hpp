// RequestParser: turns the bytes of one connection into Requests, one at a time, with
// http-parser (Debian's libhttp-parser) doing the HTTP/1.x grammar and this class the
// limits. Private to the library; the server and the fuzz target use it.
//
//   RequestParser parser({.max_head_bytes = 8192, .max_body_bytes = 1 << 20});
//   while (parser.state() != RequestParser::State::complete) {
//     std::size_t used = parser.feed(bytes);          // may stop before the end of bytes:
//     bytes.remove_prefix(used);                      // what follows is the next request
//     if (parser.state() == RequestParser::State::failed) reply(parser.error()); ...
//   }
//   Request request = parser.take();                 // and the parser is ready for the next
//
// A request is complete when its whole body has arrived; feed() stops right after it, so
// pipelined requests are taken one by one. Errors carry the status to answer with:
//   400 malformed (bad request line, header syntax, chunk framing, both Content-Length
//       and Transfer-Encoding...), 413 body over max_body_bytes (known from Content-Length
//       before any body byte is read, or counted as chunks arrive), 417 an Expect other
//       than 100-continue, 431 request line and headers over max_head_bytes, 501 an
//       Upgrade or CONNECT request (not supported).
// After an error the parser stays failed: the connection must be closed.
//
// Not thread-safe: one parser per connection.
#pragma once

#include <http_parser.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <gearbox/http/message.hpp>

namespace gearbox::http::detail {

struct ParseLimits {
  std::size_t max_head_bytes = 8 * 1024;         // request line + header fields
  std::size_t max_body_bytes = 1024 * 1024;      // after de-chunking
};

struct ParseError {
  int status = 0;  // 400, 413, 417, 431 or 501
  std::string reason;
};

class RequestParser {
public:
  enum class State {
    idle,          // nothing of the next request yet
    head,          // in the request line or the headers
    body,          // the head is complete (head_complete()); the body is arriving
    complete,      // a whole request: take() it
    failed,        // error(); close the connection
  };

  explicit RequestParser(ParseLimits limits = {});
  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  // Parses from `bytes` up to the end of the current request; returns how many bytes it
  // used. Feeding a complete or failed parser uses nothing.
  std::size_t feed(std::string_view bytes);
  // The peer closed the connection: a request cut short fails (400), a body delimited by
  // the end of the stream is not allowed in requests, so this only ever fails or is a no-op.
  void finish();

  State state() const noexcept { return m_state; }
  // The head has arrived: method, target and headers are in request() (state body or
  // complete).
  bool head_complete() const noexcept { return m_state == State::body || m_state == State::complete; }
  // The current request so far (its head once head_complete()).
  const Request& request() const noexcept { return m_request; }
  // The client sent "Expect: 100-continue" and waits for a go-ahead before the body.
  bool expects_continue() const noexcept { return m_expects_continue; }
  // Whether the connection may carry another request after this one (HTTP/1.1 unless
  // "Connection: close", HTTP/1.0 only with "Connection: keep-alive"). Valid once
  // head_complete().
  bool keep_alive() const noexcept { return m_keep_alive; }
  const ParseError& error() const noexcept { return m_error; }

  // Takes the complete request and makes ready for the next. Precondition: state() ==
  // complete.
  Request take();

private:
  static int on_message_begin(http_parser* parser);
  static int on_url(http_parser* parser, const char* at, std::size_t length);
  static int on_header_field(http_parser* parser, const char* at, std::size_t length);
  static int on_header_value(http_parser* parser, const char* at, std::size_t length);
  static int on_headers_complete(http_parser* parser);
  static int on_body(http_parser* parser, const char* at, std::size_t length);
  static int on_message_complete(http_parser* parser);

  // Records the first error and tells http-parser to stop (its callbacks' non-zero return).
  int fail(int status, std::string reason);
  // Whether the head, up to `at + length` in the current feed, is over max_head_bytes.
  bool head_too_large(const char* at, std::size_t length) const noexcept;
  void start_parser();

  ParseLimits m_limits;
  http_parser m_parser;
  State m_state = State::idle;
  Request m_request;
  std::vector<Headers::Field> m_fields;  // the head's fields while they arrive
  const char* m_feed_begin = nullptr;    // the bytes of the current feed()
  std::size_t m_head_base = 0;           // bytes of this request's head in earlier feeds
  bool m_in_value = false;               // the last header callback was a value (a new field starts next)
  bool m_expects_continue = false;
  bool m_keep_alive = true;
  ParseError m_error;
};

}  // namespace gearbox::http::detail
