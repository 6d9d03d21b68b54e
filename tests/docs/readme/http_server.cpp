// README's HTTP server sample, compiled.
#include <gearbox/gearbox.hpp>

namespace gb = gearbox;

// README sample begin
#include <gearbox/http/server.hpp>
namespace http = gearbox::http;

gb::Task<void> serve_hello() {
  http::Router router;
  router.get("/hello", [](http::Request& request) -> gb::Task<http::Response> {
    co_return http::Response::text("hello " + request.query_param("name").value_or("world") + "\n");
  });
  http::Server server(std::move(router), {.max_body_bytes = 64 * 1024});
  auto listener = gb::net::TcpListener::bind(gb::net::SocketAddress::loopback(8080));
  co_await server.serve(listener);                 // until server.stop()
}
// README sample end
