#include "api.hpp"

#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include <gearbox/error.hpp>
#include <gearbox/to_thread.hpp>

namespace gearbox::api_example {
namespace {

using Json = nlohmann::json;

http::Response json(const Json& value, int status = 200) { return http::Response::json(value.dump() + "\n", status); }
http::Response bad_request(const std::string& why) { return json({{"error", why}}, 400); }

// The parameter `key` of the query as a whole number in [low, high]; nullopt, with `why`
// set, if it is missing, not a number or out of range.
std::optional<std::uint64_t> number_param(const http::Request& request, const char* key, std::uint64_t low,
                                          std::uint64_t high, std::string& why) {
  const std::optional<std::string> text = request.query_param(key);
  std::uint64_t value = 0;
  if (!text) {
    why = std::string("missing parameter ") + key;
    return std::nullopt;
  }
  const auto [end, error] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (error != std::errc{} || end != text->data() + text->size() || value < low || value > high) {
    why = std::string(key) + " must be a whole number from " + std::to_string(low) + " to " + std::to_string(high);
    return std::nullopt;
  }
  return value;
}

int crash_worker() { std::abort(); }  // what a segfaulting C library would do to the process

}  // namespace

std::uint64_t count_primes(std::uint64_t n) {
  std::uint64_t count = 0;
  for (std::uint64_t candidate = 2; candidate < n; ++candidate) {
    bool prime = true;
    for (std::uint64_t divisor = 2; divisor * divisor <= candidate; ++divisor) {
      if (candidate % divisor == 0) {
        prime = false;
        break;
      }
    }
    count += prime ? 1 : 0;
  }
  return count;
}

std::string legacy_lookup(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return "answered by thread " + std::to_string(::gettid()) + " after " + std::to_string(ms) + " ms";
}

GEARBOX_REMOTE(count_primes);

namespace {
const std::function<std::string(int)> legacy_lookup_function = legacy_lookup;
}  // namespace

namespace {
GEARBOX_REMOTE(crash_worker);
}  // namespace

http::Router make_router(ProcessPool& pool, ApiOptions options) {
  http::Router router;
  router.get("/health", [](http::Request&) -> Task<http::Response> { co_return http::Response::text("ok\n"); });

  router.get("/compute", [&pool, options](http::Request& request) -> Task<http::Response> {
    std::string why;
    const auto n = number_param(request, "n", 0, options.max_compute_n, why);
    if (!n) co_return bad_request(why);
    const auto start = std::chrono::steady_clock::now();
    try {
      const std::uint64_t primes = co_await pool.submit(remote<count_primes>, *n);
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
      co_return json({{"n", *n}, {"primes", primes}, {"ms", ms}});
    } catch (const WorkerCrashed& e) {
      co_return json({{"error", e.what()}}, 502);
    }
  });

  router.get("/legacy", [options](http::Request& request) -> Task<http::Response> {
    std::string why;
    const auto ms = number_param(request, "ms", 0, static_cast<std::uint64_t>(options.max_legacy_ms), why);
    if (!ms) co_return bad_request(why);
    const auto& call = options.legacy_call ? options.legacy_call : legacy_lookup_function;
    const std::string answer = co_await to_thread(call, static_cast<int>(*ms));
    co_return json({{"answer", answer}});
  });

  if (options.allow_crash) {
    router.get("/crash", [&pool](http::Request&) -> Task<http::Response> {
      try {
        co_await pool.submit(remote<crash_worker>);
        co_return json({{"error", "the worker did not crash"}}, 500);
      } catch (const WorkerCrashed& e) {
        co_return json({{"error", e.what()}}, 502);
      }
    });
  }
  return router;
}

}  // namespace gearbox::api_example
