#include "http/curl_transfer.hpp"

#include <charconv>
#include <mutex>
#include <stdexcept>

namespace gearbox::http::detail {
namespace {

template <class T>
void set(CURL* easy, CURLoption option, T value) {
  if (const CURLcode code = curl_easy_setopt(easy, option, value); code != CURLE_OK)
    throw std::invalid_argument(std::string("gearbox::http: libcurl refused an option: ") + curl_easy_strerror(code));
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r' || text.back() == '\n'))
    text.remove_suffix(1);
  return text;
}

}  // namespace

void init_curl() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) throw std::runtime_error("gearbox::http: curl_global_init failed");
  });
}

CurlTransfer::CurlTransfer(const std::string& url, FetchOptions options, const ClientOptions& client, CURL* easy)
    : m_options(std::move(options)) {
  init_curl();
  if (easy) {
    curl_easy_reset(easy);
    m_easy = easy;
  } else {
    m_easy = curl_easy_init();
    if (!m_easy) throw std::runtime_error("gearbox::http: curl_easy_init failed");
  }
  set(m_easy, CURLOPT_URL, url.c_str());
  set(m_easy, CURLOPT_ERRORBUFFER, m_error);
  set(m_easy, CURLOPT_NOSIGNAL, 1L);  // no SIGALRM for DNS timeouts: threads and loops share the process
  set(m_easy, CURLOPT_PROTOCOLS_STR, "http,https");
  set(m_easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  set(m_easy, CURLOPT_USERAGENT, client.user_agent.c_str());
  set(m_easy, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(client.connect_timeout.count()));
  set(m_easy, CURLOPT_TIMEOUT_MS, static_cast<long>(m_options.timeout.count()));
  set(m_easy, CURLOPT_FOLLOWLOCATION, m_options.follow_redirects ? 1L : 0L);
  set(m_easy, CURLOPT_MAXREDIRS, m_options.max_redirects);
  // A Range request (not CURLOPT_RESUME_FROM, which fails the transfer when the server
  // ignores the range): the caller sees 206 or 200 and decides.
  const std::string range = std::to_string(m_options.resume_from) + "-";
  if (m_options.resume_from > 0) set(m_easy, CURLOPT_RANGE, range.c_str());  // libcurl copies it

  const std::string& method = m_options.method;
  if (method == "HEAD") {
    set(m_easy, CURLOPT_NOBODY, 1L);
  } else if (method != "GET" || !m_options.body.empty()) {
    if (!m_options.body.empty() || method == "POST" || method == "PUT") {
      set(m_easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(m_options.body.size()));
      set(m_easy, CURLOPT_POSTFIELDS, m_options.body.data());  // kept alive by m_options
    }
    if (method != "POST") set(m_easy, CURLOPT_CUSTOMREQUEST, method.c_str());
  }
  for (const auto& [name, value] : m_options.headers.fields()) {
    curl_slist* more = curl_slist_append(m_request_headers, (name + ": " + value).c_str());
    if (!more) throw std::bad_alloc();
    m_request_headers = more;
  }
  if (m_request_headers) set(m_easy, CURLOPT_HTTPHEADER, m_request_headers);

  set(m_easy, CURLOPT_WRITEFUNCTION, &CurlTransfer::on_write);
  set(m_easy, CURLOPT_WRITEDATA, static_cast<void*>(this));
  set(m_easy, CURLOPT_HEADERFUNCTION, &CurlTransfer::on_header);
  set(m_easy, CURLOPT_HEADERDATA, static_cast<void*>(this));
  if (m_options.on_progress) {
    set(m_easy, CURLOPT_XFERINFOFUNCTION, &CurlTransfer::on_progress);
    set(m_easy, CURLOPT_XFERINFODATA, static_cast<void*>(this));
    set(m_easy, CURLOPT_NOPROGRESS, 0L);
  }
}

CurlTransfer::~CurlTransfer() {
  if (m_easy) curl_easy_cleanup(m_easy);
  curl_slist_free_all(m_request_headers);
}

CURL* CurlTransfer::release_easy() noexcept {
  CURL* easy = m_easy;
  m_easy = nullptr;
  return easy;
}

std::size_t CurlTransfer::on_write(char* data, std::size_t size, std::size_t count, void* self) noexcept {
  auto& t = *static_cast<CurlTransfer*>(self);
  const std::size_t bytes = size * count;
  if (t.m_callback_error) return 0;
  if (!t.m_body_started) {
    t.m_body_started = true;
    if (t.m_options.on_body_start) {
      long status = 0;
      curl_easy_getinfo(t.m_easy, CURLINFO_RESPONSE_CODE, &status);
      try {
        t.m_options.on_body_start(static_cast<int>(status), Headers(t.m_fields));
      } catch (...) {
        t.m_callback_error = std::current_exception();
        return 0;
      }
    }
  }
  if (t.m_options.on_data) {
    try {
      t.m_options.on_data(std::string_view(data, bytes));
    } catch (...) {
      t.m_callback_error = std::current_exception();
      return 0;  // anything but `bytes` aborts the transfer (CURLE_WRITE_ERROR)
    }
    return bytes;
  }
  if (t.m_options.max_body_bytes != 0 && t.m_response.body.size() + bytes > t.m_options.max_body_bytes) {
    t.m_body_too_large = true;
    return 0;
  }
  try {
    t.m_response.body.append(data, bytes);
  } catch (...) {
    t.m_callback_error = std::current_exception();
    return 0;
  }
  return bytes;
}

std::size_t CurlTransfer::on_header(char* data, std::size_t size, std::size_t count, void* self) noexcept {
  auto& t = *static_cast<CurlTransfer*>(self);
  const std::size_t bytes = size * count;
  const std::string_view line(data, bytes);
  try {
    if (line.starts_with("HTTP/")) {  // a new response: an interim one, or the next hop of a redirect
      t.m_fields.clear();
    } else if (const std::size_t colon = line.find(':'); colon != std::string_view::npos) {
      t.m_fields.emplace_back(std::string(trim(line.substr(0, colon))), std::string(trim(line.substr(colon + 1))));
    }
  } catch (...) {
    t.m_callback_error = std::current_exception();
    return 0;
  }
  return bytes;
}

int CurlTransfer::on_progress(void* self, curl_off_t dl_total, curl_off_t dl_now, curl_off_t ul_total,
                              curl_off_t ul_now) noexcept {
  auto& t = *static_cast<CurlTransfer*>(self);
  try {
    t.m_options.on_progress(Progress{static_cast<std::uint64_t>(dl_now), static_cast<std::uint64_t>(dl_total),
                                     static_cast<std::uint64_t>(ul_now), static_cast<std::uint64_t>(ul_total)});
  } catch (...) {
    t.m_callback_error = std::current_exception();
    return 1;  // aborts the transfer (CURLE_ABORTED_BY_CALLBACK)
  }
  return 0;
}

FetchResponse CurlTransfer::finish(CURLcode code) {
  if (m_callback_error) std::rethrow_exception(m_callback_error);
  if (m_body_too_large)
    throw FetchError(CURLE_WRITE_ERROR, "gearbox::http: the response body is larger than max_body_bytes (" +
                                            std::to_string(m_options.max_body_bytes) + ")");
  if (code == CURLE_OPERATION_TIMEDOUT) throw TimeoutError{};
  if (code != CURLE_OK)
    throw FetchError(code, std::string("gearbox::http: ") + curl_easy_strerror(code) +
                               (m_error[0] != '\0' ? std::string(": ") + m_error : std::string()));
  long status = 0;
  curl_easy_getinfo(m_easy, CURLINFO_RESPONSE_CODE, &status);
  char* url = nullptr;
  curl_easy_getinfo(m_easy, CURLINFO_EFFECTIVE_URL, &url);
  long redirects = 0;
  curl_easy_getinfo(m_easy, CURLINFO_REDIRECT_COUNT, &redirects);
  m_response.status = static_cast<int>(status);
  m_response.url = url ? url : "";
  m_response.redirects = redirects;
  m_response.headers = Headers(std::move(m_fields));
  m_fields.clear();
  return std::move(m_response);
}

}  // namespace gearbox::http::detail
