#include "http/request_parser.hpp"

#include <algorithm>
#include <climits>
#include <utility>

namespace gearbox::http::detail {
namespace {

// A chunk line (size and extensions) longer than this is refused: its extensions are
// not counted in the body's size, so without a bound they could go on for ever.
constexpr std::size_t k_max_chunk_line = 4096;

RequestParser& self(http_parser* parser) { return *static_cast<RequestParser*>(parser->data); }

const http_parser_settings& settings_for_requests(http_cb begin, http_data_cb url, http_data_cb field,
                                                  http_data_cb value, http_cb head, http_data_cb body,
                                                  http_cb complete) {
  static const http_parser_settings settings = [&] {
    http_parser_settings s;
    http_parser_settings_init(&s);
    s.on_message_begin = begin;
    s.on_url = url;
    s.on_header_field = field;
    s.on_header_value = value;
    s.on_headers_complete = head;
    s.on_body = body;
    s.on_message_complete = complete;
    return s;
  }();
  return settings;
}

// RFC 9110 section 5.6.2: tchar, the characters of a token (method, field name, coding).
bool is_tchar(char c) noexcept {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '.': case '^': case '_': case '`': case '|': case '~':
      return true;
    default:
      return false;
  }
}

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

int hex_digit(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool is_obs_text(char c) noexcept { return static_cast<unsigned char>(c) >= 0x80; }
bool is_vchar(char c) noexcept { return c > ' ' && c < 0x7f; }
bool is_ows(char c) noexcept { return c == ' ' || c == '\t'; }

std::string_view trim_ows(std::string_view text) noexcept {
  while (!text.empty() && is_ows(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_ows(text.back())) text.remove_suffix(1);
  return text;
}

// RFC 3986: unreserved and sub-delims, the characters of a reg-name besides %XX.
bool is_reg_name_char(char c) noexcept {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c)) return true;
  switch (c) {
    case '-': case '.': case '_': case '~':                                       // unreserved
    case '!': case '$': case '&': case '\'': case '(': case ')': case '*': case '+':
    case ',': case ';': case '=':                                                  // sub-delims
      return true;
    default:
      return false;
  }
}

// RFC 9110 section 7.2: Host = uri-host [ ":" port ], where uri-host is an IP-literal
// ("[::1]"), an IPv4 address or a reg-name (which holds the IPv4 case). An empty value is
// allowed (a target URI without authority); an empty host before a port is not.
bool valid_host(std::string_view value) noexcept {
  if (value.empty()) return true;
  std::size_t at = 0;
  if (value[0] == '[') {
    const std::size_t close = value.find(']');
    if (close == std::string_view::npos || close == 1) return false;
    for (const char c : value.substr(1, close - 1))
      if (hex_digit(c) < 0 && c != ':' && c != '.' && c != 'v' && c != 'V' && !is_reg_name_char(c)) return false;
    at = close + 1;
  } else {
    while (at < value.size() && value[at] != ':') {
      if (value[at] == '%') {
        if (at + 2 >= value.size() || hex_digit(value[at + 1]) < 0 || hex_digit(value[at + 2]) < 0) return false;
        at += 3;
      } else if (is_reg_name_char(value[at])) {
        ++at;
      } else {
        return false;
      }
    }
    if (at == 0) return false;
  }
  if (at == value.size()) return true;
  if (value[at] != ':') return false;
  for (const char c : value.substr(at + 1))
    if (!is_digit(c)) return false;
  return true;
}

// Splits a request target ("/a/b?x=1", or "http://host/a?x" in absolute form) into path
// and query. false if http-parser's URL grammar rejects it.
bool split_target(const std::string& target, std::string& path, std::string& query) {
  if (target == "*") {  // OPTIONS * HTTP/1.1
    path = target;
    return true;
  }
  http_parser_url url;
  http_parser_url_init(&url);
  if (http_parser_parse_url(target.data(), target.size(), 0, &url) != 0) return false;
  auto field = [&](int which) -> std::string {
    if (!(url.field_set & (1u << which))) return {};
    return target.substr(url.field_data[which].off, url.field_data[which].len);
  };
  path = field(UF_PATH);
  if (path.empty()) path.assign(1, '/');  // (not = "/": g++ 12 warns of a false -Wrestrict)
  query = field(UF_QUERY);
  return true;
}

}  // namespace

// ---- RequestSyntax ----

// Where the scan is. The chunk line states, chunk_size_start to chunk_line_lf, are
// contiguous: step() tells a chunk line by that range.
enum class RequestSyntax::Where : std::uint8_t {
  line_start,          // before the request line: a method's first character, or an empty line's CR
  empty_line_lf,       // an empty line's CR was read
  method,
  target_start,        // the SP after the method was read
  target,
  version,             // the SP after the target was read; m_index counts "HTTP/x.y"
  request_line_lf,     // the request line's CR was read
  first_field_start,   // a field line or the empty line, right after the request line
  field_start,         // a field line or the empty line, after a field line
  field_name,
  field_value,
  field_lf,            // a field line's CR was read
  fields_end_lf,       // the CR of the empty line that ends the head (or trailers) was read
  body,                // after the head: not checked (Content-Length, or start_body() not yet called)
  chunk_size_start,
  chunk_size,
  chunk_ext_bws,       // whitespace after the size or an extension: ';' next
  chunk_ext_name_start,
  chunk_ext_name,
  chunk_ext_after_name,   // whitespace after an extension's name: '=' or ';' next
  chunk_ext_value_start,
  chunk_ext_token,
  chunk_ext_quoted,
  chunk_ext_quoted_pair,
  chunk_ext_value_end,    // after a quoted value: whitespace, ';' or CR
  chunk_line_lf,       // a chunk line's CR was read
  chunk_data,          // m_chunk_left bytes of data still to come
  chunk_data_cr,       // the chunk's data ended: CR next
  chunk_data_lf,
  trailers_start,      // the last chunk's line ended: a trailer field line or the empty line
  done,                // message_end: nothing more until reset()
};

void RequestSyntax::reset() noexcept {
  m_where = Where::line_start;
  m_in_trailers = false;
  m_line_bytes = 0;
  m_index = 0;
  m_major = 0;
  m_chunk_left = 0;
}

void RequestSyntax::start_body(bool chunked) noexcept {
  m_where = chunked ? Where::chunk_size_start : Where::body;
  m_line_bytes = 0;
}

bool RequestSyntax::invalid(int status, std::string reason) {
  m_error = {status, std::move(reason)};
  return false;
}

RequestSyntax::Scan RequestSyntax::scan(std::string_view bytes) {
  std::size_t at = 0;
  while (at < bytes.size()) {
    if (m_where == Where::body) return {bytes.size(), Event::none};
    if (m_where == Where::done) return {at, Event::none};
    if (m_where == Where::chunk_data) {
      const std::size_t skip = static_cast<std::size_t>(std::min<std::uint64_t>(m_chunk_left, bytes.size() - at));
      at += skip;
      m_chunk_left -= skip;
      if (m_chunk_left == 0) m_where = Where::chunk_data_cr;
      continue;
    }
    const bool ending_fields = m_where == Where::fields_end_lf;
    if (!step(bytes[at])) return {at, Event::invalid};
    ++at;
    if (ending_fields && m_where == Where::body) return {at, Event::head_end};
    if (ending_fields && m_where == Where::done) return {at, Event::message_end};
  }
  return {at, Event::none};
}

// One byte of a line of the head, of a chunk line or of the trailers: RFC 9112's grammar
// (sections 2.2, 3, 5 and 7.1) with the rules of RFC 9110 section 5 for field syntax.
bool RequestSyntax::step(char c) {
  const char* const bare_cr = "malformed request: a bare CR (a line ends in CRLF)";
  const char* const bare_lf = "malformed request: a bare LF (a line ends in CRLF)";
  const bool in_chunk_line = m_where >= Where::chunk_size_start && m_where <= Where::chunk_line_lf;
  if (in_chunk_line) {
    if (m_line_bytes + 1 > k_max_chunk_line)
      return invalid(400, "malformed request: a chunk line longer than " + std::to_string(k_max_chunk_line) + " bytes");
  } else if (m_where != Where::chunk_data_cr && m_where != Where::chunk_data_lf) {
    // the request line and the fields, or the trailer section
    if (m_line_bytes + 1 > m_max_head_bytes)
      return invalid(431, m_in_trailers ? "the trailer fields are too large" : "the request line and header fields are too large");
  }
  ++m_line_bytes;

  switch (m_where) {
    case Where::line_start:
      if (c == '\r') m_where = Where::empty_line_lf;
      else if (is_tchar(c)) m_where = Where::method;
      else if (c == '\n') return invalid(400, bare_lf);
      else return invalid(400, "malformed request: the method is not a token");
      return true;
    case Where::empty_line_lf:
      if (c != '\n') return invalid(400, bare_cr);
      m_where = Where::line_start;
      return true;
    case Where::method:
      if (c == ' ') m_where = Where::target_start;
      else if (!is_tchar(c)) return invalid(400, "malformed request: the method is not a token followed by one SP");
      return true;
    case Where::target_start:
      if (c == ' ') return invalid(400, "malformed request: more than one SP between the method and the target");
      if (!is_vchar(c) || c == '#') return invalid(400, "malformed request: the request line has no valid target");
      m_where = Where::target;
      return true;
    case Where::target:
      if (c == ' ') {
        m_where = Where::version;
        m_index = 0;
      } else if (c == '#') {
        return invalid(400, "malformed request: a fragment (#) in the request target");
      } else if (c == '\r' || c == '\n') {
        return invalid(400, "malformed request: a request line without an HTTP version");
      } else if (!is_vchar(c)) {
        return invalid(400, "malformed request: whitespace, a control or a non-ASCII character in the request target");
      }
      return true;
    case Where::version: {
      constexpr std::string_view prefix = "HTTP/";
      bool ok = false;
      if (m_index < prefix.size()) ok = c == prefix[m_index];
      else if (m_index == 5) {
        ok = is_digit(c);
        m_major = c;
      }
      else if (m_index == 6) ok = c == '.';
      else if (m_index == 7) ok = is_digit(c);
      else if (m_index == 8 && c == '\r') {
        m_where = Where::request_line_lf;
        return true;
      }
      if (!ok) {
        if (m_index == 0 && c == ' ')
          return invalid(400, "malformed request: more than one SP between the target and the HTTP version");
        if (m_index == 8 && c == '\n') return invalid(400, bare_lf);
        return invalid(400, "malformed request: the HTTP version is not HTTP/DIGIT.DIGIT followed by CRLF");
      }
      ++m_index;
      return true;
    }
    case Where::request_line_lf:
      if (c != '\n') return invalid(400, bare_cr);
      if (m_major != '1') return invalid(505, std::string("HTTP/") + m_major + ".x is not spoken here, only HTTP/1.0 and HTTP/1.1");
      m_where = Where::first_field_start;
      return true;
    case Where::first_field_start:
    case Where::field_start:
    case Where::trailers_start:
      if (c == '\r') {
        m_where = Where::fields_end_lf;
      } else if (c == ' ' || c == '\t') {
        if (m_where == Where::first_field_start)
          return invalid(400, "malformed request: whitespace between the request line and the first field line");
        if (m_where == Where::trailers_start)
          return invalid(400, "malformed request: whitespace at the start of the trailer section");
        return invalid(400, "malformed request: a field line folded onto the next (obs-fold)");
      } else if (c == '\n') {
        return invalid(400, bare_lf);
      } else if (c == ':') {
        return invalid(400, "malformed request: a field line with an empty name");
      } else if (is_tchar(c)) {
        m_where = Where::field_name;
      } else {
        return invalid(400, "malformed request: a field name that is not a token");
      }
      return true;
    case Where::field_name:
      if (c == ':') m_where = Where::field_value;
      else if (c == ' ' || c == '\t') return invalid(400, "malformed request: whitespace between a field name and its colon");
      else if (c == '\r' || c == '\n') return invalid(400, "malformed request: a field line without a colon");
      else if (!is_tchar(c)) return invalid(400, "malformed request: a field name that is not a token");
      return true;
    case Where::field_value:
      if (c == '\r') m_where = Where::field_lf;
      else if (c == '\n') return invalid(400, bare_lf);
      else if (c == '\0') return invalid(400, "malformed request: a NUL in a field value");
      else if (!is_ows(c) && !is_vchar(c) && !is_obs_text(c))
        return invalid(400, "malformed request: a control character in a field value");
      return true;
    case Where::field_lf:
      if (c != '\n') return invalid(400, bare_cr);
      m_where = Where::field_start;
      return true;
    case Where::fields_end_lf:
      if (c != '\n') return invalid(400, bare_cr);
      m_where = m_in_trailers ? Where::done : Where::body;
      return true;

    case Where::chunk_size_start:
      if (hex_digit(c) < 0) return invalid(400, "malformed request: a chunk size that is not hexadecimal");
      m_chunk_left = static_cast<std::uint64_t>(hex_digit(c));
      m_where = Where::chunk_size;
      return true;
    case Where::chunk_size:
      if (const int digit = hex_digit(c); digit >= 0) {
        // http-parser's own bound (it refuses a 16th hex digit after fifteen 'f's), so that
        // every chunk size it would refuse is refused here first, with a clear reason.
        if (m_chunk_left > (UINT64_MAX - 16) / 16) return invalid(400, "malformed request: a chunk size too large");
        m_chunk_left = m_chunk_left << 4 | static_cast<std::uint64_t>(digit);
      } else if (c == ';') {
        m_where = Where::chunk_ext_name_start;
      } else if (is_ows(c)) {
        m_where = Where::chunk_ext_bws;
      } else if (c == '\r') {
        m_where = Where::chunk_line_lf;
      } else if (c == '\n') {
        return invalid(400, bare_lf);
      } else {
        return invalid(400, "malformed request: a chunk size that is not hexadecimal");
      }
      return true;
    // chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ), and the
    // extensions themselves ignored (RFC 9112 section 7.1.1).
    case Where::chunk_ext_bws:
      if (c == ';') m_where = Where::chunk_ext_name_start;
      else if (!is_ows(c)) return invalid(400, "malformed request: a chunk extension that breaks the grammar");
      return true;
    case Where::chunk_ext_name_start:
      if (is_tchar(c)) m_where = Where::chunk_ext_name;
      else if (!is_ows(c)) return invalid(400, "malformed request: a chunk extension that breaks the grammar");
      return true;
    case Where::chunk_ext_name:
    case Where::chunk_ext_after_name:
      if (c == '=') m_where = Where::chunk_ext_value_start;
      else if (c == ';') m_where = Where::chunk_ext_name_start;
      else if (is_ows(c)) m_where = Where::chunk_ext_after_name;
      else if (c == '\r' && m_where == Where::chunk_ext_name) m_where = Where::chunk_line_lf;
      else if (!(is_tchar(c) && m_where == Where::chunk_ext_name))
        return invalid(400, "malformed request: a chunk extension that breaks the grammar");
      return true;
    case Where::chunk_ext_value_start:
      if (c == '"') m_where = Where::chunk_ext_quoted;
      else if (is_tchar(c)) m_where = Where::chunk_ext_token;
      else if (!is_ows(c)) return invalid(400, "malformed request: a chunk extension that breaks the grammar");
      return true;
    case Where::chunk_ext_token:
    case Where::chunk_ext_value_end:
      if (c == ';') m_where = Where::chunk_ext_name_start;
      else if (is_ows(c)) m_where = Where::chunk_ext_bws;
      else if (c == '\r') m_where = Where::chunk_line_lf;
      else if (!(is_tchar(c) && m_where == Where::chunk_ext_token))
        return invalid(400, "malformed request: a chunk extension that breaks the grammar");
      return true;
    case Where::chunk_ext_quoted:  // qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
      if (c == '"') m_where = Where::chunk_ext_value_end;
      else if (c == '\\') m_where = Where::chunk_ext_quoted_pair;
      else if (!is_ows(c) && !is_vchar(c) && !is_obs_text(c))
        return invalid(400, "malformed request: a chunk extension that breaks the grammar");
      return true;
    case Where::chunk_ext_quoted_pair:
      if (!is_ows(c) && !is_vchar(c) && !is_obs_text(c))
        return invalid(400, "malformed request: a chunk extension that breaks the grammar");
      m_where = Where::chunk_ext_quoted;
      return true;
    case Where::chunk_line_lf:
      if (c != '\n') return invalid(400, bare_cr);
      if (m_chunk_left == 0) {  // the last chunk: the trailer section follows
        m_where = Where::trailers_start;
        m_in_trailers = true;
        m_line_bytes = 0;
      } else {
        m_where = Where::chunk_data;
      }
      return true;
    case Where::chunk_data_cr:
      if (c != '\r') return invalid(400, "malformed request: chunk data not followed by CRLF (longer than its size)");
      m_where = Where::chunk_data_lf;
      return true;
    case Where::chunk_data_lf:
      if (c != '\n') return invalid(400, bare_cr);
      m_where = Where::chunk_size_start;
      m_line_bytes = 0;
      return true;
    case Where::body:
    case Where::chunk_data:
    case Where::done:
      break;  // scan() does not step these
  }
  return true;
}

// ---- RequestParser ----

RequestParser::RequestParser(ParseLimits limits) : m_limits(limits), m_syntax(limits.max_head_bytes) {
  start_parser();
}

void RequestParser::start_parser() {
  http_parser_init(&m_parser, HTTP_REQUEST);
  m_parser.data = this;
  m_syntax.reset();
}

std::size_t RequestParser::feed(std::string_view bytes) {
  // The syntax check goes first and http-parser gets only what it accepted, up to each
  // point where the check needs http-parser's answer (the end of the head: is the body
  // chunked?). So http-parser never acts on bytes the check refuses, and each error is
  // found at the same byte whatever pieces the input comes in.
  std::size_t used = 0;
  while (used < bytes.size() && m_state != State::complete && m_state != State::failed) {
    const std::string_view rest = bytes.substr(used);
    const RequestSyntax::Scan scan = m_syntax.scan(rest);
    const std::size_t parsed = scan.valid == 0 ? 0 : execute(rest.substr(0, scan.valid));
    used += parsed;
    if (m_state == State::complete || m_state == State::failed) break;
    if (scan.event == RequestSyntax::Event::invalid) {
      fail(m_syntax.error().status, m_syntax.error().reason);
      break;
    }
    if (parsed < scan.valid || scan.event == RequestSyntax::Event::none) break;
    if (scan.event == RequestSyntax::Event::message_end || m_state != State::body) {
      // The check saw the end of the head or of the chunked body where http-parser did not:
      // the two disagree about the framing, and neither can be trusted with the rest.
      fail(400, "malformed request: the message framing is ambiguous");
      break;
    }
    m_syntax.start_body((m_parser.flags & F_CHUNKED) != 0);
  }
  return used;
}

std::size_t RequestParser::execute(std::string_view bytes) {
  const http_parser_settings& settings = settings_for_requests(
      on_message_begin, on_url, on_header_field, on_header_value, on_headers_complete, on_body, on_message_complete);
  const std::size_t used = http_parser_execute(&m_parser, &settings, bytes.data(), bytes.size());
  const auto error = HTTP_PARSER_ERRNO(&m_parser);
  if (m_state == State::failed) return used;  // a limit or a rule, set by a callback
  if (m_parser.upgrade) {
    // http-parser hands the rest of the stream to the new protocol, which this server
    // does not speak. (on_headers_complete refuses upgrades first; this is the backstop.)
    fail(501, "protocol upgrades are not supported");
    return used;
  }
  if (error == HPE_PAUSED) return used;  // on_message_complete: one whole request
  if (error != HPE_OK) {
    if (error == HPE_HEADER_OVERFLOW) fail(431, "the request line and header fields are too large");
    else fail(400, std::string("malformed request: ") + http_errno_description(error));
  }
  return used;
}

void RequestParser::finish() {
  if (m_state == State::head || m_state == State::body) fail(400, "the connection closed in the middle of a request");
}

Request RequestParser::take() {
  Request request = std::move(m_request);
  m_request = Request{};
  m_state = State::idle;
  m_fields.clear();
  m_in_value = false;
  m_expects_continue = false;
  m_keep_alive = true;
  m_syntax.reset();
  http_parser_pause(&m_parser, 0);  // paused by on_message_complete
  return request;
}

int RequestParser::fail(int status, std::string reason) {
  if (m_state != State::failed) {
    m_state = State::failed;
    m_error = {status, std::move(reason)};
  }
  // Non-zero stops http_parser_execute with a callback error. Not 1 or 2: from
  // on_headers_complete those mean "no body" and "upgrade".
  return -1;
}

int RequestParser::on_message_begin(http_parser* parser) {
  self(parser).m_state = State::head;
  return 0;
}

int RequestParser::on_url(http_parser* parser, const char* at, std::size_t length) {
  self(parser).m_request.target.append(at, length);  // its size is bounded by the syntax check
  return 0;
}

int RequestParser::on_header_field(http_parser* parser, const char* at, std::size_t length) {
  RequestParser& p = self(parser);
  if (p.head_complete()) return 0;  // a trailer field: checked, then dropped
  if (p.m_fields.empty() || p.m_in_value) {
    p.m_fields.emplace_back();
    p.m_in_value = false;
  }
  p.m_fields.back().first.append(at, length);
  return 0;
}

int RequestParser::on_header_value(http_parser* parser, const char* at, std::size_t length) {
  RequestParser& p = self(parser);
  if (p.head_complete()) return 0;
  if (p.m_fields.empty()) p.m_fields.emplace_back();  // http-parser sends a name first; be safe
  p.m_fields.back().second.append(at, length);
  p.m_in_value = true;
  return 0;
}

int RequestParser::on_headers_complete(http_parser* parser) {
  RequestParser& p = self(parser);
  Request& request = p.m_request;
  // RFC 9112 section 5.1: the whitespace around a field value is not part of it
  // (http-parser drops the leading whitespace only).
  for (Headers::Field& field : p.m_fields)
    while (!field.second.empty() && is_ows(field.second.back())) field.second.pop_back();
  const auto method = static_cast<http_method>(parser->method);
  if (method == HTTP_CONNECT) return p.fail(501, "CONNECT is not supported");
  if (parser->upgrade) return p.fail(501, "protocol upgrades are not supported");
  request.method = http_method_str(method);
  request.version_minor = parser->http_minor;
  if (parser->http_major != 1) return p.fail(505, "only HTTP/1.0 and HTTP/1.1 are spoken here");
  if (const int failed = p.check_head(*parser)) return failed;
  request.headers = Headers(std::move(p.m_fields));
  p.m_fields.clear();
  const bool chunked = (parser->flags & F_CHUNKED) != 0;
  if (!chunked && parser->content_length != ULLONG_MAX && parser->content_length > p.m_limits.max_body_bytes)
    return p.fail(413, "the request body is larger than " + std::to_string(p.m_limits.max_body_bytes) + " bytes");
  if (auto expect = request.headers.get("Expect")) {
    if (!equals_ignoring_case(*expect, "100-continue")) return p.fail(417, "only \"Expect: 100-continue\" is understood");
    p.m_expects_continue = request.version_minor >= 1;
  }
  p.m_keep_alive = http_should_keep_alive(parser) != 0;
  p.m_state = State::body;
  return 0;
}

int RequestParser::check_head(const http_parser& parser) {
  // The request target's form (RFC 9112 section 3.2): origin-form "/path?query",
  // absolute-form "http://host/path", asterisk-form "*" for OPTIONS only; authority-form
  // is CONNECT's, refused before this.
  const auto method = static_cast<http_method>(parser.method);
  const std::string& target = m_request.target;
  bool absolute_form = false;
  std::string authority;  // an absolute-form target's host[:port]
  if (target == "*") {
    if (method != HTTP_OPTIONS) return fail(400, "malformed request: the target \"*\" is only for OPTIONS");
  } else if (target.empty() || target.front() != '/') {
    absolute_form = true;
    http_parser_url url;
    http_parser_url_init(&url);
    if (http_parser_parse_url(target.data(), target.size(), 0, &url) != 0 || !(url.field_set & (1u << UF_SCHEMA)) ||
        !(url.field_set & (1u << UF_HOST)))
      return fail(400, "malformed request: a target that is neither a path nor an absolute URI");
    const std::string_view scheme =
        std::string_view(target).substr(url.field_data[UF_SCHEMA].off, url.field_data[UF_SCHEMA].len);
    if (!equals_ignoring_case(scheme, "http") && !equals_ignoring_case(scheme, "https"))
      return fail(400, "malformed request: an absolute target whose scheme is not http or https");
    // RFC 9110 section 4.2.4: userinfo in an http URI is deprecated; a recipient treats it as an error.
    if (url.field_set & (1u << UF_USERINFO)) return fail(400, "malformed request: user information (user@) in the target");
    const std::size_t begin = url.field_data[UF_SCHEMA].len + 3;  // after "scheme://"
    authority = target.substr(begin, target.find_first_of("/?#", begin) - begin);
  }
  if (!split_target(target, m_request.path, m_request.query)) return fail(400, "malformed request target");

  std::size_t hosts = 0;
  std::size_t content_lengths = 0;
  Headers::Field* host = nullptr;
  std::string transfer_codings;  // the values of every Transfer-Encoding field, as one list
  bool has_transfer_encoding = false;
  for (Headers::Field& field : m_fields) {
    if (equals_ignoring_case(field.first, "Host")) {
      ++hosts;
      host = &field;
    } else if (equals_ignoring_case(field.first, "Content-Length")) {
      ++content_lengths;
      bool digits = !field.second.empty();
      for (const char c : field.second) digits = digits && is_digit(c);
      if (!digits) return fail(400, "malformed request: a Content-Length that is not a decimal number");
    } else if (equals_ignoring_case(field.first, "Transfer-Encoding")) {
      has_transfer_encoding = true;
      transfer_codings += field.second;
      transfer_codings += ',';
    }
  }

  // Host (RFC 9112 section 3.2): one, valid; required from HTTP/1.1 on. For an
  // absolute-form target the target's authority replaces it (section 3.2.2).
  if (hosts > 1) return fail(400, "malformed request: more than one Host field");
  if (hosts == 0 && m_request.version_minor >= 1) return fail(400, "malformed request: an HTTP/1.1 request without Host");
  if (host != nullptr && !valid_host(host->second)) return fail(400, "malformed request: an invalid Host value");
  if (absolute_form) {
    if (host != nullptr) host->second = authority;
    else m_fields.emplace_back("Host", authority);
  }

  // Framing (RFC 9112 section 6). Content-Length: one field, all digits. RFC 9110
  // section 8.6 lets a recipient accept repeats of one value ("5, 5", or two fields of
  // 5); this parser does not (nor does http-parser, nor nginx).
  if (content_lengths > 1) return fail(400, "malformed request: more than one Content-Length field");
  if (has_transfer_encoding) {
    if (m_request.version_minor == 0)
      return fail(400, "malformed request: Transfer-Encoding in an HTTP/1.0 request (faulty framing)");
    if (content_lengths > 0) return fail(400, "malformed request: both Transfer-Encoding and Content-Length");
    std::vector<std::string_view> codings;  // empty list elements are ignored (RFC 9110 section 5.6.1)
    std::string_view list = transfer_codings;
    while (!list.empty()) {
      const std::size_t comma = list.find(',');
      const std::string_view coding = trim_ows(list.substr(0, comma));
      if (!coding.empty()) codings.push_back(coding);
      list.remove_prefix(comma == std::string_view::npos ? list.size() : comma + 1);
    }
    if (codings.empty() || !equals_ignoring_case(codings.back(), "chunked"))
      return fail(400, "malformed request: a Transfer-Encoding whose final coding is not chunked (the body length is unknown)");
    for (std::size_t i = 0; i + 1 < codings.size(); ++i)
      if (equals_ignoring_case(codings[i], "chunked")) return fail(400, "malformed request: chunked applied more than once");
    if (codings.size() > 1) return fail(501, "transfer codings other than chunked are not supported");
    if (!(parser.flags & F_CHUNKED)) return fail(400, "malformed request: the message framing is ambiguous");
  }
  return 0;
}

int RequestParser::on_body(http_parser* parser, const char* at, std::size_t length) {
  RequestParser& p = self(parser);
  if (p.m_request.body.size() + length > p.m_limits.max_body_bytes)
    return p.fail(413, "the request body is larger than " + std::to_string(p.m_limits.max_body_bytes) + " bytes");
  p.m_request.body.append(at, length);
  return 0;
}

int RequestParser::on_message_complete(http_parser* parser) {
  RequestParser& p = self(parser);
  p.m_state = State::complete;
  http_parser_pause(parser, 1);  // http_parser_execute returns right after this request
  return 0;
}

}  // namespace gearbox::http::detail
