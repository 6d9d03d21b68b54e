#include <gearbox/http/url.hpp>

#include <curl/curl.h>

#include <memory>

#include "http/curl_transfer.hpp"

namespace gearbox::http {
namespace {

struct UrlHandle {
  UrlHandle() : handle(curl_url()) {}
  ~UrlHandle() { curl_url_cleanup(handle); }
  UrlHandle(const UrlHandle&) = delete;
  UrlHandle& operator=(const UrlHandle&) = delete;
  CURLU* handle;
};

std::optional<std::string> part(CURLU* url, CURLUPart which, unsigned flags = 0) {
  char* text = nullptr;
  if (curl_url_get(url, which, &text, flags) != CURLUE_OK) return std::nullopt;
  std::string out(text);
  curl_free(text);
  return out;
}

// The parts of a parsed handle, if it is an http(s) URL with a host.
std::optional<Url> from_handle(CURLU* handle) {
  curl_url_set(handle, CURLUPART_FRAGMENT, nullptr, 0);  // a fragment never reaches the server
  Url url;
  const auto scheme = part(handle, CURLUPART_SCHEME);
  const auto host = part(handle, CURLUPART_HOST);
  if (!scheme || !host || host->empty() || (*scheme != "http" && *scheme != "https")) return std::nullopt;
  url.scheme = *scheme;
  url.host = *host;
  for (char& c : url.host) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  curl_url_set(handle, CURLUPART_HOST, url.host.c_str(), 0);
  const auto port = part(handle, CURLUPART_PORT, CURLU_DEFAULT_PORT);
  url.port = port ? std::stoi(*port) : 0;
  url.path = part(handle, CURLUPART_PATH).value_or(std::string());
  if (url.path.empty()) url.path.assign(1, '/');  // (not = "/": g++ 12 warns of a false -Wrestrict)
  url.query = part(handle, CURLUPART_QUERY).value_or("");
  const auto text = part(handle, CURLUPART_URL, CURLU_NO_DEFAULT_PORT);
  if (!text) return std::nullopt;
  url.text = *text;
  return url;
}

}  // namespace

std::optional<Url> Url::parse(std::string_view text) {
  detail::init_curl();
  UrlHandle url;
  if (!url.handle) return std::nullopt;
  const std::string copy(text);
  if (curl_url_set(url.handle, CURLUPART_URL, copy.c_str(), 0) != CURLUE_OK) return std::nullopt;
  return from_handle(url.handle);
}

std::optional<std::string> join_url(std::string_view base, std::string_view reference) {
  detail::init_curl();
  UrlHandle url;
  if (!url.handle) return std::nullopt;
  const std::string base_copy(base);
  const std::string reference_copy(reference);
  if (curl_url_set(url.handle, CURLUPART_URL, base_copy.c_str(), 0) != CURLUE_OK) return std::nullopt;
  if (reference.empty() || reference.front() == '#') {
    // The base itself (the fragment is dropped below).
  } else if (reference.front() == '?') {
    // A new query on the same path. (libcurl 7.88 resolves "?q" against the directory,
    // which RFC 3986 section 5.2.2 does not.)
    const std::string query = reference_copy.substr(1, reference_copy.find('#') - 1);
    if (curl_url_set(url.handle, CURLUPART_QUERY, query.c_str(), 0) != CURLUE_OK) return std::nullopt;
  } else if (curl_url_set(url.handle, CURLUPART_URL, reference_copy.c_str(), CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK) {
    // Setting a relative URL on a handle that holds an absolute one resolves it (RFC 3986).
    return std::nullopt;
  }
  const std::optional<Url> parsed = from_handle(url.handle);
  if (!parsed) return std::nullopt;
  return parsed->text;
}

}  // namespace gearbox::http
