#include <gearbox/http/message.hpp>

#include <http_parser.h>

#include <algorithm>
#include <stdexcept>

namespace gearbox::http {
namespace {

char lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  c = lower(c);
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// A field that could end the header block early (response splitting) or is not a token.
void check_field(std::string_view name, std::string_view value) {
  if (name.empty()) throw std::invalid_argument("gearbox::http: an empty header name");
  for (const char c : name)
    if (c <= ' ' || c == ':' || c == 0x7f) throw std::invalid_argument("gearbox::http: a header name with a space, a colon or a control character");
  for (const char c : value)
    if (c == '\r' || c == '\n' || c == '\0') throw std::invalid_argument("gearbox::http: a header value with CR, LF or NUL");
}

}  // namespace

bool equals_ignoring_case(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == lower(y); });
}

std::optional<std::string_view> Headers::get(std::string_view name) const noexcept {
  for (const Field& field : m_fields)
    if (equals_ignoring_case(field.first, name)) return std::string_view(field.second);
  return std::nullopt;
}

void Headers::add(std::string name, std::string value) {
  check_field(name, value);
  m_fields.emplace_back(std::move(name), std::move(value));
}

void Headers::set(std::string_view name, std::string value) {
  check_field(name, value);
  remove(name);
  m_fields.emplace_back(std::string(name), std::move(value));
}

std::size_t Headers::remove(std::string_view name) noexcept {
  const auto end = std::remove_if(m_fields.begin(), m_fields.end(),
                                  [&](const Field& field) { return equals_ignoring_case(field.first, name); });
  const auto removed = static_cast<std::size_t>(m_fields.end() - end);
  m_fields.erase(end, m_fields.end());
  return removed;
}

std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) return std::nullopt;  // needs two hex digits after it
      const int high = hex_value(text[i + 1]);
      const int low = hex_value(text[i + 2]);
      if (high < 0 || low < 0) return std::nullopt;
      out.push_back(static_cast<char>(high * 16 + low));
      i += 2;
    } else {
      out.push_back(plus_is_space && c == '+' ? ' ' : c);
    }
  }
  return out;
}

std::optional<std::string> Request::query_param(std::string_view key) const {
  std::string_view rest = query;
  while (!rest.empty()) {
    const std::size_t amp = rest.find('&');
    const std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
    const std::size_t eq = pair.find('=');
    const auto name = percent_decode(pair.substr(0, eq), true);
    if (!name || *name != key) continue;
    if (eq == std::string_view::npos) return std::string{};
    return percent_decode(pair.substr(eq + 1), true);
  }
  return std::nullopt;
}

namespace {

Response typed(std::string body, int status, const char* content_type) {
  Response response;
  response.status = status;
  response.headers.add("Content-Type", content_type);
  response.body = std::move(body);
  return response;
}

}  // namespace

Response Response::text(std::string body, int status) { return typed(std::move(body), status, "text/plain; charset=utf-8"); }

Response Response::json(std::string body, int status) { return typed(std::move(body), status, "application/json"); }

Response Response::error(int status) { return text(std::string(reason_phrase(status)) + "\n", status); }

std::string_view reason_phrase(int status) noexcept {
  // http-parser's table of registered codes ("<unknown>" for the rest).
  const std::string_view phrase = http_status_str(static_cast<http_status>(status));
  return phrase == "<unknown>" ? std::string_view("Unknown") : phrase;
}

}  // namespace gearbox::http
