// A program that uses an installed gearbox through find_package, as a user's would: a
// gb::run of a gather, then an HTTP round trip between gearbox::http's server and client
// on one loop. Exits 0 only if both gave the expected answers.
#include <gearbox/gearbox.hpp>
#include <gearbox/http.hpp>

#include <cstdio>
#include <string>

namespace gb = gearbox;
using namespace std::chrono_literals;

gb::Task<int> seven() { co_return 7; }

gb::Task<int> gather_app() {
  auto [slept, value] = co_await gb::gather(gb::sleep_for(10ms), seven());
  (void)slept;
  co_return value;
}

gb::Task<std::string> http_app() {
  gb::http::Router router;
  router.get("/hello", [](gb::http::Request&) -> gb::Task<gb::http::Response> {
    co_return gb::http::Response::text("hello from gearbox\n");
  });
  gb::http::Server server{std::move(router)};
  auto listener = gb::net::TcpListener::bind(gb::net::SocketAddress::loopback(0));
  const std::string url = "http://127.0.0.1:" + std::to_string(listener.local_address().port()) + "/hello";
  auto serving = gb::spawn(server.serve(listener));
  gb::http::Client client;
  gb::http::FetchResponse response = co_await client.get(url);
  server.stop();
  co_await serving;
  co_return std::to_string(response.status) + " " + response.body;
}

int main() {
  const int value = gb::run(gather_app());
  const std::string answer = gb::run(http_app());
  std::printf("gather: %d; http: %s", value, answer.c_str());
  return value == 7 && answer == "200 hello from gearbox\n" ? 0 : 1;
}
