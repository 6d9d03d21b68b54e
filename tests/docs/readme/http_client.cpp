// README's HTTP client sample, compiled.
#include <string>
#include <vector>

#include <gearbox/gearbox.hpp>
#include <gearbox/http/client.hpp>

namespace gb = gearbox;
namespace http = gearbox::http;

// README sample begin
gb::Task<void> fetch_all(std::vector<std::string> urls) {
  http::Client client({.max_connections = 8});
  http::FetchResponse page = co_await client.get("http://127.0.0.1:8080/hello");  // any status
  std::vector<gb::Task<http::FetchResponse>> many;
  for (auto& url : urls) many.push_back(client.get(url));
  auto pages = co_await gb::gather(std::move(many));      // at most 8 connections
}
// README sample end
