#include "http/request_parser.hpp"

#include <climits>
#include <utility>

namespace gearbox::http::detail {
namespace {

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

RequestParser::RequestParser(ParseLimits limits) : m_limits(limits) { start_parser(); }

void RequestParser::start_parser() {
  http_parser_init(&m_parser, HTTP_REQUEST);
  m_parser.data = this;
}

std::size_t RequestParser::feed(std::string_view bytes) {
  if (m_state == State::complete || m_state == State::failed || bytes.empty()) return 0;
  const http_parser_settings& settings = settings_for_requests(
      on_message_begin, on_url, on_header_field, on_header_value, on_headers_complete, on_body, on_message_complete);
  m_feed_begin = bytes.data();
  const std::size_t used = http_parser_execute(&m_parser, &settings, bytes.data(), bytes.size());
  const auto error = HTTP_PARSER_ERRNO(&m_parser);
  if (m_state == State::failed) return used;  // a limit, set by a callback
  if (m_parser.upgrade) {
    // http-parser hands the rest of the stream to the new protocol, which this server
    // does not speak.
    fail(501, "protocol upgrades are not supported");
    return used;
  }
  if (error == HPE_PAUSED) return used;  // on_message_complete: one whole request
  if (error != HPE_OK) {
    if (error == HPE_HEADER_OVERFLOW) fail(431, "the request line and header fields are too large");
    else fail(400, std::string("malformed request: ") + http_errno_description(error));
    return used;
  }
  if (!head_complete()) {
    m_head_base += used;
    if (m_head_base > m_limits.max_head_bytes) fail(431, "the request line and header fields are too large");
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
  m_head_base = 0;
  m_fields.clear();
  m_in_value = false;
  m_expects_continue = false;
  m_keep_alive = true;
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

bool RequestParser::head_too_large(const char* at, std::size_t length) const noexcept {
  // Offsets count from the start of this feed: a request always starts a feed (feed stops
  // after each complete request), and m_head_base holds the head's bytes of earlier feeds.
  return m_head_base + static_cast<std::size_t>(at - m_feed_begin) + length > m_limits.max_head_bytes;
}

int RequestParser::on_message_begin(http_parser* parser) {
  self(parser).m_state = State::head;
  return 0;
}

int RequestParser::on_url(http_parser* parser, const char* at, std::size_t length) {
  RequestParser& p = self(parser);
  if (p.head_too_large(at, length)) return p.fail(431, "the request line and header fields are too large");
  p.m_request.target.append(at, length);
  return 0;
}

int RequestParser::on_header_field(http_parser* parser, const char* at, std::size_t length) {
  RequestParser& p = self(parser);
  if (p.head_too_large(at, length)) return p.fail(431, "the request line and header fields are too large");
  if (p.m_fields.empty() || p.m_in_value) {
    p.m_fields.emplace_back();
    p.m_in_value = false;
  }
  p.m_fields.back().first.append(at, length);
  return 0;
}

int RequestParser::on_header_value(http_parser* parser, const char* at, std::size_t length) {
  RequestParser& p = self(parser);
  if (p.head_too_large(at, length)) return p.fail(431, "the request line and header fields are too large");
  if (p.m_fields.empty()) p.m_fields.emplace_back();  // http-parser sends a name first; be safe
  p.m_fields.back().second.append(at, length);
  p.m_in_value = true;
  return 0;
}

int RequestParser::on_headers_complete(http_parser* parser) {
  RequestParser& p = self(parser);
  Request& request = p.m_request;
  request.headers = Headers(std::move(p.m_fields));
  p.m_fields.clear();
  const auto method = static_cast<http_method>(parser->method);
  if (method == HTTP_CONNECT) return p.fail(501, "CONNECT is not supported");
  request.method = http_method_str(method);
  request.version_minor = parser->http_minor;
  if (parser->http_major != 1) return p.fail(400, "only HTTP/1.0 and HTTP/1.1 are spoken here");
  if (!split_target(request.target, request.path, request.query))
    return p.fail(400, "malformed request target");
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
