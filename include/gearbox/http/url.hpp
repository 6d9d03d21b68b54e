// URLs as a crawler needs them: parsed into parts, and references in a page resolved
// against the page's URL (RFC 3986), with libcurl's URL parser doing the work.
//
//   std::optional<Url> page = Url::parse("http://example.com/a/b.html");
//   std::optional<std::string> next = join_url(page->text, "../c.html#top");  // "http://example.com/c.html"
//
// Plain functions: thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace gearbox::http {

struct Url {
  std::string text;    // normalised: scheme and host in lower case, no fragment, "/" for an empty path
  std::string scheme;  // "http" or "https"
  std::string host;    // lower case
  int port = 0;        // the explicit port, or the scheme's (80, 443)
  std::string path;    // "/a/b.html"
  std::string query;   // without '?' ("" if none)

  // nullopt unless `text` is an absolute http or https URL with a host.
  static std::optional<Url> parse(std::string_view text);
  // Scheme, host and port equal: the same site.
  bool same_origin(const Url& other) const noexcept { return scheme == other.scheme && host == other.host && port == other.port; }
};

// `reference` (absolute, or relative such as "../c.html", "?q=1", "//host/x") resolved
// against the absolute URL `base`, normalised as Url::text; nullopt if it is not an http or
// https URL (mailto:, javascript:, ftp:...) or cannot be parsed.
std::optional<std::string> join_url(std::string_view base, std::string_view reference);

}  // namespace gearbox::http
