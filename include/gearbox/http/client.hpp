// HTTP client: libcurl's multi-socket interface driven by the gearbox loop, so thousands
// of requests wait on one thread (no thread per request), and a blocking counterpart on
// libcurl's easy interface for code that runs on a ThreadPool.
//
//   gb::Task<void> crawl() {
//     gb::http::Client client({.max_connections = 8});
//     gb::http::FetchResponse page = co_await client.get("http://127.0.0.1:8080/");
//     if (page.status == 200) parse(page.body);
//     gb::http::FetchOptions to_file{.on_data = [&](std::string_view chunk) { file.write(chunk); }};
//     co_await client.fetch(url, std::move(to_file));
//   }
//
//   gb::http::FetchResponse r = gb::http::fetch_blocking("http://127.0.0.1:8080/");  // any thread
//
// (Make the FetchOptions in a statement of their own, as above: g++ 12 mishandles a braced
// temporary inside a co_await expression and destroys it twice.)
//
// A response with any status (404, 500) is a FetchResponse, not an exception. Failures to
// get one throw: FetchError (refused, reset, DNS, too many redirects, a body over
// max_body_bytes...; what() has libcurl's reason), TimeoutError when `timeout` passed, and
// whatever a callback (on_body_start, on_data, on_progress) threw (the transfer is then
// aborted).
// Redirects are followed unless told not to. Only http and https URLs are accepted, also
// as redirect targets.
//
// Thread-safety: on a Loop, a Client belongs to the loop of its first fetch(): use it from
// that loop's tasks only, and destroy it on that thread while the loop still exists (make
// it inside the task that uses it), after every fetch has ended. On a Runtime, tasks on
// any worker may fetch at once: the Client then drives libcurl on a thread of its own
// (made at the first fetch, joined by ~Client, which must come after every fetch has
// ended; a fetch that cannot make it, out of descriptors, throws IoError and the next one
// tries again), so on_body_start, on_data and on_progress run on that thread while their
// task waits in fetch(). active() may be called from any thread. fetch_blocking may be called
// from any thread; each thread keeps one connection cache of its own.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include <gearbox/error.hpp>
#include <gearbox/http/message.hpp>
#include <gearbox/task.hpp>

namespace gearbox::http {

// The transfer failed before a whole response arrived.
class FetchError : public Error {
public:
  FetchError(int curl_code, const std::string& what) : Error(what), m_code(curl_code) {}
  int curl_code() const noexcept { return m_code; }  // a CURLcode

private:
  int m_code;
};

struct ClientOptions {
  long max_connections = 0;       // open connections at most (more requests wait for one); 0: no limit
  long max_host_connections = 0;  // the same, per host
  std::chrono::milliseconds connect_timeout{10'000};
  std::string user_agent = "gearbox";
};

struct Progress {
  std::uint64_t downloaded = 0;
  std::uint64_t download_total = 0;  // 0 while unknown
  std::uint64_t uploaded = 0;
  std::uint64_t upload_total = 0;
};

struct FetchOptions {
  std::string method = "GET";  // GET, HEAD, POST, PUT, DELETE...
  Headers headers = {};        // sent as given
  std::string body = {};       // sent if not empty (or if the method is POST or PUT)
  std::chrono::milliseconds timeout{0};  // the whole transfer; 0: none (connect_timeout still holds)
  bool follow_redirects = true;
  long max_redirects = 10;
  // Bodies kept in FetchResponse::body are limited (FetchError beyond); 0: no limit.
  std::size_t max_body_bytes = 64 * 1024 * 1024;
  // Set: called once the final response's body begins (after redirects), before the
  // first chunk reaches on_data, with its status and headers: where to put the body may
  // depend on them (a 206 continues a file, a 200 starts it over). Not called for a
  // response without a body.
  std::function<void(int status, const Headers& headers)> on_body_start = {};
  // Set: the body is handed over chunk by chunk as it arrives and not kept (no limit).
  std::function<void(std::string_view chunk)> on_data = {};
  // Set: called as bytes move (often; keep it cheap).
  std::function<void(const Progress&)> on_progress = {};
  // Asks for the body from this byte on (a Range request; a server may ignore it: then
  // the status is 200, not 206).
  std::uint64_t resume_from = 0;
};

struct FetchResponse {
  int status = 0;
  Headers headers;      // of the final response (after redirects)
  std::string body;     // empty when FetchOptions::on_data took it
  std::string url;      // the final URL, after redirects
  long redirects = 0;   // how many were followed
};

class Client {
public:
  explicit Client(ClientOptions options = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Performs one request; the awaiting task waits, the loop goes on. Cancellable: a
  // cancelled fetch is aborted at once and throws Cancelled.
  [[nodiscard]] Task<FetchResponse> fetch(std::string url, FetchOptions options = {});
  [[nodiscard]] Task<FetchResponse> get(std::string url) { return fetch(std::move(url)); }

  // Transfers in progress now.
  std::size_t active() const noexcept;

private:
  class Impl;
  class Driver;
  Driver& driver();
  Task<FetchResponse> fetch_on_driver(std::string url, FetchOptions options);

  ClientOptions m_options;
  std::unique_ptr<Impl> m_impl;  // made at the first fetch on a Loop, on that loop
  mutable std::mutex m_driver_mutex;
  std::unique_ptr<Driver> m_driver;  // made at the first fetch on a Runtime (under the mutex)
};

// One request on the calling thread, blocking it (libcurl's easy interface). For thread
// pools and plain threads; never call it on a loop's thread (the whole loop would wait).
FetchResponse fetch_blocking(const std::string& url, const FetchOptions& options = {},
                             const ClientOptions& client_options = {});

}  // namespace gearbox::http
