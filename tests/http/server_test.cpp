// The HTTP server over 127.0.0.1: raw clients on the same loop for exact byte-level cases
// (keep-alive, pipelining, every refusal, slow clients, peers that vanish, graceful stop),
// on a manual clock so the timeouts fire without sleeping, and (all but the timeouts) on
// a Runtime of two workers too; and the real curl, on a real clock, for what a real
// client does (keep-alive across URLs, POST bodies, 100-continue).
#include <gearbox/http/server.hpp>

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <gearbox/combinators.hpp>
#include <gearbox/error.hpp>
#include <gearbox/loop.hpp>
#include <gearbox/net/tcp.hpp>
#include <gearbox/os/process.hpp>
#include <gearbox/spawn.hpp>
#include <gearbox/time.hpp>

#include "support/flavors.hpp"
#include "support/test_loop.hpp"

namespace gb = gearbox;
namespace http = gearbox::http;
namespace net = gearbox::net;
using namespace std::chrono_literals;
using gearbox_test::Flavor;
using gearbox_test::run_on_test_loop;

namespace {

http::Router test_router() {
  http::Router router;
  router.get("/hello", [](http::Request& request) -> gb::Task<http::Response> {
    co_return http::Response::text("hello " + request.query_param("name").value_or("world") + "\n");
  });
  router.post("/echo", [](http::Request& request) -> gb::Task<http::Response> {
    http::Response response = http::Response::text(std::move(request.body));
    response.headers.add("X-Method", request.method);
    co_return response;
  });
  router.get("/slow", [](http::Request&) -> gb::Task<http::Response> {
    co_await gb::sleep_for(200ms);
    co_return http::Response::text("slow\n");
  });
  router.get("/throws", [](http::Request&) -> gb::Task<http::Response> {
    throw std::runtime_error("the handler broke");
    co_return http::Response::text("never");
  });
  router.get("/bad-status", [](http::Request&) -> gb::Task<http::Response> {
    http::Response response;
    response.status = 42;
    co_return response;
  });
  router.get("/evil-header", [](http::Request&) -> gb::Task<http::Response> {
    http::Response response = http::Response::text("x");
    response.headers.add("X-Evil", "a\r\nSet-Cookie: stolen=1");  // throws: the handler fails
    co_return response;
  });
  router.get("/empty", [](http::Request&) -> gb::Task<http::Response> {
    http::Response response;
    response.status = 204;
    co_return response;
  });
  router.get("/own-length", [](http::Request&) -> gb::Task<http::Response> {
    http::Response response = http::Response::text("four");
    response.headers.add("Content-Length", "999");  // the server's own replaces it
    co_return response;
  });
  return router;
}

// Reads until the peer closes (or `limit` bytes): everything the server said.
gb::Task<std::string> read_to_end(net::TcpStream& stream, std::size_t limit = 1 << 20) {
  std::string all;
  char buffer[4096];
  while (all.size() < limit) {
    const std::size_t n = co_await stream.read(std::span<char>(buffer));
    if (n == 0) break;
    all.append(buffer, n);
  }
  co_return all;
}

// Reads one response whose body has a Content-Length (or none, for 204): its head and body.
gb::Task<std::string> read_response(net::TcpStream& stream, std::string& carry) {
  char buffer[4096];
  for (;;) {
    const std::size_t head_end = carry.find("\r\n\r\n");
    if (head_end != std::string::npos) {
      std::size_t length = 0;
      const std::size_t at = carry.find("Content-Length: ");
      if (at != std::string::npos && at < head_end) length = std::stoul(carry.substr(at + 16));
      if (carry.size() >= head_end + 4 + length) {
        std::string response = carry.substr(0, head_end + 4 + length);
        carry.erase(0, response.size());
        co_return response;
      }
    }
    const std::size_t n = co_await stream.read(std::span<char>(buffer));
    if (n == 0) throw std::runtime_error("the server closed before a whole response: " + carry);
    carry.append(buffer, n);
  }
}

std::string status_line(const std::string& response) { return response.substr(0, response.find("\r\n")); }
std::string body_of(const std::string& response) { return response.substr(response.find("\r\n\r\n") + 4); }

// A test's server, listening on 127.0.0.1, serving on the current loop until `done`.
struct Fixture {
  explicit Fixture(http::ServerOptions options = {})
      : server(test_router(), [&] {
          options.log = [this](std::string_view line) { log.emplace_back(line); };
          return options;
        }()) {}
  net::TcpListener listener = net::TcpListener::bind(net::SocketAddress::loopback(0));
  std::vector<std::string> log;
  http::Server server;
  std::uint16_t port() const { return listener.local_address().port(); }
};

// Runs `client(fixture)` against a served fixture, then stops the server and waits for it.
template <class Client>
gb::Task<void> with_server(Fixture& fixture, Client client) {
  gb::JoinHandle<void> serving = gb::spawn(fixture.server.serve(fixture.listener), gb::Start::eager);
  co_await client(fixture);
  fixture.server.stop();
  co_await serving;
}

gb::Task<net::TcpStream> connect_to(Fixture& fixture) {
  co_return co_await net::TcpStream::connect(net::SocketAddress::loopback(fixture.port()));
}

// Runs `task` on `flavor`: the Loop on the deterministic manual clock, or a Runtime of
// two workers on the real clock (the server's tasks then spread over both).
template <class T>
T run_flavored(Flavor flavor, gb::Task<T> task) {
  if (flavor == Flavor::loop) return run_on_test_loop(std::move(task));
  return gearbox_test::run_on(flavor, std::move(task));
}

// One connection: sends `request` whole, returns all the server said until it closed.
std::string exchange(Flavor flavor, const std::string& request, http::ServerOptions options = {}) {
  Fixture fixture(options);
  std::string said;
  run_flavored(flavor, with_server(fixture, [&](Fixture& f) -> gb::Task<void> {
    net::TcpStream stream = co_await connect_to(f);
    co_await stream.write_all(request);
    said = co_await read_to_end(stream);
  }));
  return said;
}

std::string exchange(const std::string& request, http::ServerOptions options = {}) {
  return exchange(Flavor::loop, request, options);
}

// The cases that need no manual clock run on both flavors; the timeouts' cases on the
// Loop's manual clock only.
class HttpServerOnEveryFlavor : public testing::TestWithParam<Flavor> {
protected:
  template <class T>
  T run(gb::Task<T> task) {
    return run_flavored(GetParam(), std::move(task));
  }
};

}  // namespace

INSTANTIATE_TEST_SUITE_P(Http, HttpServerOnEveryFlavor, gearbox_test::every_flavor(), gearbox_test::flavor_name);

TEST_P(HttpServerOnEveryFlavor, answers_a_request_and_keeps_the_connection_for_the_next) {
  Fixture fixture;
  std::vector<std::string> responses;
  run(with_server(fixture, [&](Fixture& f) -> gb::Task<void> {
    net::TcpStream stream = co_await connect_to(f);
    std::string carry;
    co_await stream.write_all("GET /hello?name=gear HTTP/1.1\r\nHost: x\r\n\r\n");
    responses.push_back(co_await read_response(stream, carry));
    co_await stream.write_all("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nabcde");
    responses.push_back(co_await read_response(stream, carry));
  }));
  ASSERT_EQ(responses.size(), 2u);
  EXPECT_EQ(status_line(responses[0]), "HTTP/1.1 200 OK");
  EXPECT_EQ(body_of(responses[0]), "hello gear\n");
  EXPECT_NE(responses[0].find("\r\nContent-Length: 11\r\n"), std::string::npos) << responses[0];
  EXPECT_NE(responses[0].find("\r\nDate: "), std::string::npos);
  EXPECT_EQ(responses[0].find("Connection: close"), std::string::npos);
  EXPECT_EQ(body_of(responses[1]), "abcde");
  EXPECT_NE(responses[1].find("X-Method: POST"), std::string::npos);
  EXPECT_EQ(fixture.server.stats().accepted, 1u);
  EXPECT_EQ(fixture.server.stats().requests, 2u);
  EXPECT_EQ(fixture.server.stats().active, 0u);
}

TEST_P(HttpServerOnEveryFlavor, pipelined_requests_are_answered_in_order) {
  const std::string said = exchange(GetParam(), 
      "GET /hello?name=1 HTTP/1.1\r\nHost: x\r\n\r\nGET /hello?name=2 HTTP/1.1\r\nHost: x\r\n\r\nGET /hello?name=3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  const std::size_t one = said.find("hello 1\n");
  const std::size_t two = said.find("hello 2\n");
  const std::size_t three = said.find("hello 3\n");
  ASSERT_NE(three, std::string::npos) << said;
  EXPECT_LT(one, two);
  EXPECT_LT(two, three);
  EXPECT_NE(said.find("Connection: close"), std::string::npos);
}

TEST(HttpServer, http_1_0_closes_unless_asked_to_keep_alive) {
  const std::string closed = exchange("GET /hello HTTP/1.0\r\n\r\n");
  EXPECT_EQ(status_line(closed), "HTTP/1.0 200 OK");
  EXPECT_NE(closed.find("Connection: close"), std::string::npos);
  // Asked to keep alive, it does, and the connection then idles out (the manual clock
  // jumps): the read ends only because the server closed it after idle_timeout.
  Fixture fixture({.idle_timeout = 1s});
  std::string said;
  run_on_test_loop(with_server(fixture, [&](Fixture& f) -> gb::Task<void> {
    net::TcpStream stream = co_await connect_to(f);
    co_await stream.write_all("GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    said = co_await read_to_end(stream);
  }));
  EXPECT_NE(said.find("Connection: keep-alive"), std::string::npos) << said;
  EXPECT_EQ(fixture.server.stats().idle_closed, 1u);
}

TEST_P(HttpServerOnEveryFlavor, unknown_paths_are_404_and_wrong_methods_405_with_allow) {
  const std::string missing = exchange(GetParam(), "GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(status_line(missing), "HTTP/1.1 404 Not Found");
  const std::string wrong = exchange(GetParam(), "DELETE /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(status_line(wrong), "HTTP/1.1 405 Method Not Allowed");
  EXPECT_NE(wrong.find("\r\nAllow: POST\r\n"), std::string::npos) << wrong;
}

TEST_P(HttpServerOnEveryFlavor, head_gets_the_get_handlers_head_without_its_body) {
  const std::string said = exchange(GetParam(), "HEAD /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(status_line(said), "HTTP/1.1 200 OK");
  EXPECT_NE(said.find("Content-Length: 12\r\n"), std::string::npos) << said;  // "hello world\n"
  EXPECT_EQ(body_of(said), "");
}

TEST_P(HttpServerOnEveryFlavor, the_server_sets_content_length_itself_and_204_has_none) {
  const std::string own = exchange(GetParam(), "GET /own-length HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_NE(own.find("Content-Length: 4\r\n"), std::string::npos) << own;
  EXPECT_EQ(own.find("999"), std::string::npos);
  const std::string empty = exchange(GetParam(), "GET /empty HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(status_line(empty), "HTTP/1.1 204 No Content");
  EXPECT_EQ(empty.find("Content-Length"), std::string::npos) << empty;
}

TEST_P(HttpServerOnEveryFlavor, a_handler_that_throws_gets_a_500_the_log_says_why_and_the_connection_goes_on) {
  Fixture fixture;
  std::vector<std::string> responses;
  run(with_server(fixture, [&](Fixture& f) -> gb::Task<void> {
    net::TcpStream stream = co_await connect_to(f);
    std::string carry;
    co_await stream.write_all("GET /throws HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    responses.push_back(co_await read_response(stream, carry));
    responses.push_back(co_await read_response(stream, carry));
  }));
  EXPECT_EQ(status_line(responses.at(0)), "HTTP/1.1 500 Internal Server Error");
  EXPECT_EQ(body_of(responses[0]).find("broke"), std::string::npos) << "the exception stays in the log";
  EXPECT_EQ(status_line(responses.at(1)), "HTTP/1.1 200 OK");
  EXPECT_EQ(fixture.server.stats().handler_errors, 1u);
  ASSERT_EQ(fixture.log.size(), 1u);
  EXPECT_NE(fixture.log[0].find("the handler broke"), std::string::npos);
}

TEST_P(HttpServerOnEveryFlavor, a_handler_answering_a_bad_status_or_an_unsafe_header_gets_a_500) {
  const std::string bad_status = exchange(GetParam(), "GET /bad-status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(status_line(bad_status), "HTTP/1.1 500 Internal Server Error");
  const std::string evil = exchange(GetParam(), "GET /evil-header HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(status_line(evil), "HTTP/1.1 500 Internal Server Error");
  EXPECT_EQ(evil.find("stolen"), std::string::npos) << evil;
}

TEST_P(HttpServerOnEveryFlavor, a_malformed_request_is_answered_400_with_the_reason_and_the_connection_closed) {
  const std::string said = exchange(GetParam(), "GET / HTTP/1.1\r\nHost: x\r\nBroken header line\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(status_line(said), "HTTP/1.1 400 Bad Request");
  EXPECT_NE(said.find("Connection: close"), std::string::npos);
  EXPECT_NE(body_of(said).find("malformed request"), std::string::npos) << said;
  EXPECT_EQ(said.find("hello"), std::string::npos) << "nothing after a malformed request is served";
}

TEST_P(HttpServerOnEveryFlavor, each_request_rfc_9112_says_to_refuse_gets_its_status_then_the_connection_closes_unserved) {
  // Each bad request is followed on its connection by a good one, which must not be
  // served: the server answers the refusal with Connection: close, and closes (read_to_end
  // returns only at the end of the stream). A fresh connection is served as before.
  struct Case {
    const char* name;
    std::string request;
    const char* status_line;
  };
  const char* const bad_request = "HTTP/1.1 400 Bad Request";
  const std::string chunked = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::vector<Case> cases = {
      {"space_before_colon", "GET /hello HTTP/1.1\r\nHost : x\r\n\r\n", bad_request},
      {"obs_fold", "GET /hello HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", bad_request},
      {"whitespace_before_first_field", "GET /hello HTTP/1.1\r\n Host: x\r\n\r\n", bad_request},
      {"two_spaces_in_the_request_line", "GET  /hello HTTP/1.1\r\nHost: x\r\n\r\n", bad_request},
      {"tab_inside_target", "GET /hel\tlo HTTP/1.1\r\nHost: x\r\n\r\n", bad_request},
      {"misspelt_version", "GET /hello HTTX/1.1\r\nHost: x\r\n\r\n", bad_request},
      {"bare_cr_in_field_value", "GET /hello HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", bad_request},
      {"bare_lf_line_ends", "GET /hello HTTP/1.1\nHost: x\n\n", bad_request},
      {"http_1_1_without_host", "GET /hello HTTP/1.1\r\n\r\n", bad_request},
      {"two_host_fields", "GET /hello HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", bad_request},
      {"invalid_host", "GET /hello HTTP/1.1\r\nHost: x/y\r\n\r\n", bad_request},
      {"transfer_encoding_and_content_length",
       "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", bad_request},
      {"content_length_list", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello", bad_request},
      {"final_coding_not_chunked", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nhello", bad_request},
      {"transfer_encoding_in_http_1_0", "POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
       bad_request},
      {"chunk_size_with_0x", chunked + "0x5\r\nhello\r\n0\r\n\r\n", bad_request},
      {"chunk_data_longer_than_its_size", chunked + "5\r\nhelloXX0\r\n\r\n", bad_request},
      {"unsupported_coding_before_chunked",
       "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", "HTTP/1.1 501 Not Implemented"},
      {"http_2_0", "GET /hello HTTP/2.0\r\nHost: x\r\n\r\n", "HTTP/1.1 505 HTTP Version Not Supported"},
  };
  Fixture fixture;
  std::vector<std::string> refused;
  std::vector<std::string> served;
  run(with_server(fixture, [&](Fixture& f) -> gb::Task<void> {
    for (const Case& c : cases) {
      const std::string bytes = c.request + "GET /hello?name=after HTTP/1.1\r\nHost: x\r\n\r\n";
      net::TcpStream bad = co_await connect_to(f);
      co_await bad.write_all(bytes);
      refused.push_back(co_await read_to_end(bad));
      net::TcpStream good = co_await connect_to(f);
      co_await good.write_all("GET /hello?name=next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
      served.push_back(co_await read_to_end(good));
    }
  }));
  ASSERT_EQ(refused.size(), cases.size());
  for (std::size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].name);
    EXPECT_EQ(status_line(refused[i]), cases[i].status_line) << refused[i];
    EXPECT_NE(refused[i].find("\r\nConnection: close\r\n"), std::string::npos) << refused[i];
    EXPECT_EQ(refused[i].find("200 OK"), std::string::npos) << "the request after it was not served: " << refused[i];
    EXPECT_EQ(refused[i].find("hello after"), std::string::npos);
    EXPECT_EQ(status_line(served[i]), "HTTP/1.1 200 OK");
    EXPECT_EQ(body_of(served[i]), "hello next\n");
  }
  EXPECT_EQ(fixture.server.stats().rejected, cases.size());
  EXPECT_EQ(fixture.server.stats().requests, cases.size());
}

TEST_P(HttpServerOnEveryFlavor, empty_lines_before_a_request_and_an_absolute_form_target_are_served) {
  const std::string leading = exchange(GetParam(), "\r\n\r\nGET /hello?name=crlf HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(status_line(leading), "HTTP/1.1 200 OK");
  EXPECT_EQ(body_of(leading), "hello crlf\n");
  const std::string absolute =
      exchange(GetParam(), "GET http://example.com/hello?name=absolute HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(status_line(absolute), "HTTP/1.1 200 OK");
  EXPECT_EQ(body_of(absolute), "hello absolute\n");
}

TEST_P(HttpServerOnEveryFlavor, oversized_headers_are_431_and_an_oversized_body_413) {
  const std::string big_head = exchange(GetParam(), "GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(4000, 'x') + "\r\n\r\n",
                                        {.max_head_bytes = 1024});
  EXPECT_EQ(status_line(big_head), "HTTP/1.1 431 Request Header Fields Too Large");
  const std::string big_body =
      exchange(GetParam(), "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" + std::string(5000, 'b'), {.max_body_bytes = 1000});
  EXPECT_EQ(status_line(big_body), "HTTP/1.1 413 Payload Too Large");
  EXPECT_NE(big_body.find("Connection: close"), std::string::npos);
}

TEST_P(HttpServerOnEveryFlavor, expect_100_continue_gets_the_go_ahead_before_the_body_is_sent) {
  Fixture fixture;
  std::string go_ahead;
  std::string response;
  run(with_server(fixture, [&](Fixture& f) -> gb::Task<void> {
    net::TcpStream stream = co_await connect_to(f);
    co_await stream.write_all("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
    std::string carry;
    go_ahead = co_await read_response(stream, carry);  // the interim response, before any body byte
    co_await stream.write_all("data");
    response = co_await read_response(stream, carry);
  }));
  EXPECT_EQ(go_ahead, "HTTP/1.1 100 Continue\r\n\r\n");
  EXPECT_EQ(body_of(response), "data");
}

TEST(HttpServer, a_client_that_stalls_mid_request_gets_408_after_the_request_timeout) {
  Fixture fixture({.request_timeout = 3s, .idle_timeout = 60s});
  std::string said;
  run_on_test_loop(with_server(fixture, [&](Fixture& f) -> gb::Task<void> {
    net::TcpStream stream = co_await connect_to(f);
    co_await stream.write_all("GET /hello HTTP/1.1\r\nHost: sl");  // and nothing more
    said = co_await read_to_end(stream);
  }));
  EXPECT_EQ(status_line(said), "HTTP/1.1 408 Request Timeout");
  EXPECT_EQ(fixture.server.stats().rejected, 1u);
}

TEST(HttpServer, a_client_that_trickles_its_request_still_gets_408_at_the_deadline) {
  // Each byte arrives before idle_timeout would matter; the deadline is per request.
  Fixture fixture({.request_timeout = 3s, .idle_timeout = 60s});
  std::string said;
  run_on_test_loop(with_server(fixture, [&](Fixture& f) -> gb::Task<void> {
    net::TcpStream stream = co_await connect_to(f);
    const std::string request = "GET /hello HTTP/1.1\r\nHost: a-very-slow-client.example\r\n\r\n";
    try {
      for (char c : request) {
        co_await stream.write_all(std::string_view(&c, 1));
        co_await gb::sleep_for(100ms);
      }
    } catch (const gb::IoError&) {
      // the server closed after its 408: the rest cannot be sent
    }
    said = co_await read_to_end(stream);
  }));
  EXPECT_EQ(status_line(said), "HTTP/1.1 408 Request Timeout");
}

TEST(HttpServer, an_idle_connection_is_closed_silently_after_the_idle_timeout) {
  Fixture fixture({.idle_timeout = 2s});
  std::string said = "unset";
  run_on_test_loop(with_server(fixture, [&](Fixture& f) -> gb::Task<void> {
    net::TcpStream stream = co_await connect_to(f);
    said = co_await read_to_end(stream);
  }));
  EXPECT_EQ(said, "");
  EXPECT_EQ(fixture.server.stats().idle_closed, 1u);
}

TEST_P(HttpServerOnEveryFlavor, a_peer_that_vanishes_mid_request_costs_only_its_connection) {
  Fixture fixture;
  std::string later;
  run(with_server(fixture, [&](Fixture& f) -> gb::Task<void> {
    {
      net::TcpStream gone = co_await connect_to(f);
      co_await gone.write_all("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly part");
    }  // closed here, mid-body
    net::TcpStream stream = co_await connect_to(f);
    co_await stream.write_all("GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    later = co_await read_to_end(stream);
  }));
  EXPECT_EQ(status_line(later), "HTTP/1.1 200 OK");
  EXPECT_EQ(fixture.server.stats().accepted, 2u);
  EXPECT_EQ(fixture.server.stats().requests, 1u);
  EXPECT_EQ(fixture.server.stats().active, 0u);
}

TEST_P(HttpServerOnEveryFlavor, stop_finishes_the_request_in_flight_closes_idle_connections_and_serve_returns) {
  Fixture fixture;
  std::string in_flight;
  std::string idle = "unset";
  run([&]() -> gb::Task<void> {
    gb::JoinHandle<void> serving = gb::spawn(fixture.server.serve(fixture.listener), gb::Start::eager);
    net::TcpStream busy = co_await connect_to(fixture);
    net::TcpStream quiet = co_await connect_to(fixture);
    co_await busy.write_all("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");  // keep-alive asked; the handler sleeps 200 ms
    co_await gb::sleep_for(50ms);
    fixture.server.stop();
    auto [a, b] = co_await gb::gather(read_to_end(busy), read_to_end(quiet));
    in_flight = std::move(a);
    idle = std::move(b);
    co_await serving;
  }());
  EXPECT_EQ(status_line(in_flight), "HTTP/1.1 200 OK");
  EXPECT_EQ(body_of(in_flight), "slow\n");
  EXPECT_NE(in_flight.find("Connection: close"), std::string::npos) << in_flight;
  EXPECT_EQ(idle, "");
  EXPECT_EQ(fixture.server.stats().active, 0u);
  EXPECT_FALSE(fixture.listener.is_open());
}

TEST_P(HttpServerOnEveryFlavor, cancelling_serve_ends_every_connection) {
  Fixture fixture;
  bool cancelled = false;
  run([&]() -> gb::Task<void> {
    gb::JoinHandle<void> serving = gb::spawn(fixture.server.serve(fixture.listener), gb::Start::eager);
    net::TcpStream busy = co_await connect_to(fixture);
    co_await busy.write_all("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
    co_await gb::sleep_for(50ms);
    serving.cancel();
    try {
      co_await serving;
    } catch (const gb::Cancelled&) {
      cancelled = true;
    }
  }());
  EXPECT_TRUE(cancelled);
  EXPECT_EQ(fixture.server.stats().active, 0u);
}

// ---- the real curl, on a real clock ----

namespace {

// Runs curl with `args` against the fixture's server; returns its output.
gb::os::Output curl(Fixture& fixture, std::vector<std::string> args) {
  gb::Loop loop;
  gb::os::Output output;
  loop.run(with_server(fixture, [&](Fixture&) -> gb::Task<void> {
    std::vector<std::string> command = {"curl", "--silent", "--show-error", "--max-time", "20"};
    command.insert(command.end(), args.begin(), args.end());
    gb::os::ProcessOptions options{.args = std::move(command)};
    output = co_await gb::os::run(std::move(options));
  }));
  return output;
}

std::string url(Fixture& fixture, const std::string& path) {
  return "http://127.0.0.1:" + std::to_string(fixture.port()) + path;
}

}  // namespace

TEST(HttpServerWithCurl, curl_fetches_several_urls_over_one_kept_alive_connection) {
  Fixture fixture;
  const gb::os::Output out = curl(fixture, {url(fixture, "/hello?name=a"), url(fixture, "/hello?name=b")});
  ASSERT_TRUE(out.status.success()) << out.err;
  EXPECT_EQ(out.out, "hello a\nhello b\n");
  EXPECT_EQ(fixture.server.stats().accepted, 1u);
  EXPECT_EQ(fixture.server.stats().requests, 2u);
}

TEST(HttpServerWithCurl, curl_posts_a_body_and_gets_it_back_byte_for_byte) {
  Fixture fixture;
  std::string body(200'000, '\0');
  for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>('a' + i % 26);
  // 200 KB: curl sends "Expect: 100-continue" for bodies this size? Only over 1 MiB in
  // 7.88; ask for it explicitly so the interim response is exercised too.
  const std::string file = ::testing::TempDir() + "/gearbox_http_body.txt";
  {
    std::FILE* f = std::fopen(file.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::fwrite(body.data(), 1, body.size(), f);
    std::fclose(f);
  }
  const gb::os::Output out = curl(fixture, {"--data-binary", "@" + file, "-H", "Expect: 100-continue", url(fixture, "/echo")});
  std::remove(file.c_str());
  ASSERT_TRUE(out.status.success()) << out.err;
  EXPECT_EQ(out.out.size(), body.size());
  EXPECT_EQ(out.out, body);
}

TEST(HttpServerWithCurl, curl_reports_the_status_of_a_refused_request) {
  Fixture fixture({.max_body_bytes = 10});
  const gb::os::Output out =
      curl(fixture, {"--output", "/dev/null", "--write-out", "%{http_code}", "--data", "more than ten bytes", url(fixture, "/echo")});
  EXPECT_EQ(out.out, "413") << out.err;
}
