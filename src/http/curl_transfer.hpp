// CurlTransfer: one request as a libcurl easy handle, with the callbacks that collect the
// response; shared by the loop's Client (multi interface) and fetch_blocking (easy
// interface). Private to the library.
//
//   CurlTransfer transfer(url, options, client_options);   // configures the handle
//   CURLcode code = curl_easy_perform(transfer.easy());    // or run by a multi handle
//   FetchResponse response = transfer.finish(code);        // or throws what failed
//
// Not thread-safe: one transfer, one thread at a time.
#pragma once

#include <curl/curl.h>

#include <exception>
#include <string>

#include <gearbox/http/client.hpp>

namespace gearbox::http::detail {

// curl_global_init, once per process (thread-safe).
void init_curl();

class CurlTransfer {
public:
  // Configures `easy` (a new handle if null; otherwise a cached one, reset here) for the
  // request. std::invalid_argument for an option libcurl refuses.
  CurlTransfer(const std::string& url, FetchOptions options, const ClientOptions& client, CURL* easy = nullptr);
  ~CurlTransfer();  // cleans up the handle unless release_easy() took it
  CurlTransfer(const CurlTransfer&) = delete;
  CurlTransfer& operator=(const CurlTransfer&) = delete;

  CURL* easy() const noexcept { return m_easy; }
  // Hands the handle back (for reuse: it keeps its connection cache) instead of cleaning it up.
  CURL* release_easy() noexcept;

  // The response, or throws why there is none: what a callback threw, TimeoutError,
  // FetchError.
  FetchResponse finish(CURLcode code);

private:
  static std::size_t on_write(char* data, std::size_t size, std::size_t count, void* self) noexcept;
  static std::size_t on_header(char* data, std::size_t size, std::size_t count, void* self) noexcept;
  static int on_progress(void* self, curl_off_t dl_total, curl_off_t dl_now, curl_off_t ul_total, curl_off_t ul_now) noexcept;

  CURL* m_easy = nullptr;
  FetchOptions m_options;
  FetchResponse m_response;
  std::vector<Headers::Field> m_fields;  // of the response being received
  curl_slist* m_request_headers = nullptr;
  std::exception_ptr m_callback_error;   // what a callback of the options threw
  bool m_body_too_large = false;
  bool m_body_started = false;           // on_body_start was called
  char m_error[CURL_ERROR_SIZE] = {};
};

}  // namespace gearbox::http::detail
