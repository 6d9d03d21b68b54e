// RequestParser: turns the bytes of one connection into Requests, one at a time, with
// http-parser (Debian's libhttp-parser) doing the HTTP/1.x grammar and this class the
// limits and the rules of RFC 9112 that http-parser, built lenient, lets through.
// Private to the library; the server and the fuzz target use it.
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
//   400 malformed: the request line, a field line, the framing (Content-Length,
//       Transfer-Encoding, chunk lines) or Host break RFC 9112 (docs/http_conformance.md
//       lists every rule), 413 body over max_body_bytes (known from Content-Length
//       before any body byte is read, or counted as chunks arrive), 417 an Expect other
//       than 100-continue, 431 request line and headers (or a trailer section) over
//       max_head_bytes, 501 an Upgrade or CONNECT request or a transfer coding other than
//       chunked (not supported), 505 an HTTP major version other than 1.
// After an error the parser stays failed: the connection must be closed.
//
// Every line of the head, and of a chunked body, ends in CRLF: a bare CR or a bare LF is
// 400. Empty lines (CRLF) before a request line are skipped.
//
// Not thread-safe: one parser per connection.
#pragma once

#include <http_parser.h>

#include <cstddef>
#include <cstdint>
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
  int status = 0;  // 400, 413, 417, 431, 501 or 505
  std::string reason;
};

// The byte-level syntax of one request (RFC 9112 sections 2 to 7) where http-parser is
// lenient: the request line (one SP between its parts, a method that is a token, a target
// of visible characters, "HTTP/" DIGIT "." DIGIT), field lines (a token, then the colon
// with no space before it, a value without control characters, no obs-fold, CRLF) and the
// chunked framing (hexadecimal sizes, chunk extensions, CRLF after each chunk, trailer
// fields). RequestParser runs it over the bytes before http-parser sees them and hands
// http-parser only the bytes it accepted, so an error is found at the same byte however
// the input is split. It does not decide where a Content-Length body ends: after the head
// it is told whether the body is chunked, and passes any other body through.
class RequestSyntax {
public:
  enum class Event {
    none,         // every byte scanned conforms; more are needed
    head_end,     // the head ended at the last valid byte: call start_body()
    message_end,  // a chunked body (and its trailers) ended at the last valid byte
    invalid,      // the byte after the valid ones breaks the grammar: error()
  };
  struct Scan {
    std::size_t valid = 0;  // conforming bytes from the start of the input
    Event event = Event::none;
  };

  explicit RequestSyntax(std::size_t max_head_bytes) noexcept : m_max_head_bytes(max_head_bytes) {}

  // Scans `bytes` from where the last scan stopped, up to the end of the head, the end of
  // a chunked body, or the first byte that breaks the grammar. After invalid, reset()
  // before scanning again.
  Scan scan(std::string_view bytes);
  // After head_end: whether the body is chunked (scanned up to message_end) or not (passed
  // through unchecked, for the caller to delimit).
  void start_body(bool chunked) noexcept;
  // Ready for the next request.
  void reset() noexcept;
  const ParseError& error() const noexcept { return m_error; }

private:
  enum class Where : std::uint8_t;
  // Returns false after recording the error.
  bool invalid(int status, std::string reason);
  bool step(char c);  // one byte of the head, a chunk line or the trailers

  std::size_t m_max_head_bytes;
  Where m_where{};
  bool m_in_trailers = false;   // the field lines are a chunked body's trailer section
  std::size_t m_line_bytes = 0; // bytes of the head (or trailer section, or chunk line) so far
  std::size_t m_index = 0;      // position inside "HTTP/x.y"
  char m_major = 0;             // the HTTP-version's major digit
  std::uint64_t m_chunk_left = 0;  // chunk-size while it is read, then data bytes still to come
  ParseError m_error;
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
  // The current request so far (its head once head_complete()). For an absolute-form
  // target ("GET http://host:8080/a"), Host holds the target's authority, whatever the
  // client sent in Host (RFC 9112 section 3.2.2).
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
  // Runs http-parser over `bytes` (which the syntax check accepted); returns how many it used.
  std::size_t execute(std::string_view bytes);
  // The checks on the whole head that need every field (RFC 9112 sections 3.2 and 6):
  // target form, Host, Content-Length, Transfer-Encoding. Returns fail()'s value or 0.
  int check_head(const http_parser& parser);
  void start_parser();

  ParseLimits m_limits;
  http_parser m_parser;
  RequestSyntax m_syntax;
  State m_state = State::idle;
  Request m_request;
  std::vector<Headers::Field> m_fields;  // the head's fields while they arrive
  bool m_in_value = false;               // the last header callback was a value (a new field starts next)
  bool m_expects_continue = false;
  bool m_keep_alive = true;
  ParseError m_error;
};

}  // namespace gearbox::http::detail
