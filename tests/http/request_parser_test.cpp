// RequestParser: whole requests out of arbitrary pieces of bytes, one at a time, and every
// kind of bad input refused with the status the server will answer.
#include "http/request_parser.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace http = gearbox::http;
using http::detail::ParseLimits;
using http::detail::RequestParser;
using State = RequestParser::State;

namespace {

// Feeds `bytes` in pieces of `piece` bytes (0: all at once) until a request completes or
// the parser fails; returns the bytes it did not use.
std::string feed_in_pieces(RequestParser& parser, std::string bytes, std::size_t piece = 0) {
  std::size_t at = 0;
  while (at < bytes.size() && parser.state() != State::complete && parser.state() != State::failed) {
    const std::size_t size = piece == 0 ? bytes.size() - at : std::min(piece, bytes.size() - at);
    const std::string_view chunk = std::string_view(bytes).substr(at, size);
    const std::size_t used = parser.feed(chunk);
    at += used;
    if (used < chunk.size()) break;  // stopped at the end of a request (or an error)
  }
  return bytes.substr(at);
}

const std::string k_get = "GET /search?q=gear+box&lang=en HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n";

}  // namespace

TEST(RequestParser, a_get_request_gives_method_target_path_query_and_headers) {
  RequestParser parser;
  EXPECT_EQ(feed_in_pieces(parser, k_get), "");
  ASSERT_EQ(parser.state(), State::complete);
  const http::Request request = parser.take();
  EXPECT_EQ(request.method, "GET");
  EXPECT_EQ(request.target, "/search?q=gear+box&lang=en");
  EXPECT_EQ(request.path, "/search");
  EXPECT_EQ(request.query, "q=gear+box&lang=en");
  EXPECT_EQ(request.version_minor, 1);
  ASSERT_EQ(request.headers.size(), 2u);
  EXPECT_EQ(request.headers.get("host"), "localhost");
  EXPECT_EQ(request.headers.get("ACCEPT"), "*/*");
  EXPECT_EQ(request.body, "");
  EXPECT_EQ(parser.state(), State::idle);
}

TEST(RequestParser, the_same_request_fed_one_byte_at_a_time_parses_the_same) {
  RequestParser whole;
  feed_in_pieces(whole, k_get);
  RequestParser bytewise;
  EXPECT_EQ(feed_in_pieces(bytewise, k_get, 1), "");
  ASSERT_EQ(bytewise.state(), State::complete);
  const http::Request a = whole.take();
  const http::Request b = bytewise.take();
  EXPECT_EQ(a.target, b.target);
  EXPECT_EQ(a.headers.fields(), b.headers.fields());
}

TEST(RequestParser, a_body_by_content_length_arrives_whole) {
  RequestParser parser;
  feed_in_pieces(parser, "POST /echo HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world", 3);
  ASSERT_EQ(parser.state(), State::complete);
  EXPECT_EQ(parser.take().body, "hello world");
}

TEST(RequestParser, a_chunked_body_is_dechunked) {
  RequestParser parser;
  feed_in_pieces(parser, "POST /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", 4);
  ASSERT_EQ(parser.state(), State::complete);
  EXPECT_EQ(parser.take().body, "hello world");
}

TEST(RequestParser, pipelined_requests_come_out_one_at_a_time_in_order) {
  RequestParser parser;
  std::string rest = "GET /a HTTP/1.1\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 2\r\n\r\nhiGET /c HTTP/1.1\r\n\r\n";
  std::vector<std::string> seen;
  while (!rest.empty()) {
    rest = feed_in_pieces(parser, rest);
    ASSERT_EQ(parser.state(), State::complete) << rest;
    const http::Request request = parser.take();
    seen.push_back(request.method + " " + request.path + " " + request.body);
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"GET /a ", "POST /b hi", "GET /c "}));
}

TEST(RequestParser, keep_alive_follows_the_version_and_the_connection_header) {
  struct Case {
    std::string request;
    bool keep_alive;
  };
  for (const Case& c : {Case{"GET / HTTP/1.1\r\n\r\n", true}, Case{"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", false},
                        Case{"GET / HTTP/1.0\r\n\r\n", false},
                        Case{"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true}}) {
    RequestParser parser;
    feed_in_pieces(parser, c.request);
    ASSERT_EQ(parser.state(), State::complete) << c.request;
    EXPECT_EQ(parser.keep_alive(), c.keep_alive) << c.request;
  }
}

TEST(RequestParser, expect_100_continue_is_seen_once_the_head_is_complete) {
  RequestParser parser;
  const std::string head = "PUT /f HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-Continue\r\n\r\n";
  EXPECT_EQ(parser.feed(head), head.size());
  EXPECT_EQ(parser.state(), State::body);
  EXPECT_TRUE(parser.head_complete());
  EXPECT_TRUE(parser.expects_continue());
  EXPECT_EQ(parser.request().path, "/f");
  parser.feed("abc");
  ASSERT_EQ(parser.state(), State::complete);
  EXPECT_EQ(parser.take().body, "abc");
  EXPECT_FALSE(parser.expects_continue());  // reset for the next request
}

TEST(RequestParser, an_unknown_expectation_is_417) {
  RequestParser parser;
  feed_in_pieces(parser, "PUT /f HTTP/1.1\r\nContent-Length: 3\r\nExpect: telepathy\r\n\r\nabc");
  ASSERT_EQ(parser.state(), State::failed);
  EXPECT_EQ(parser.error().status, 417);
}

TEST(RequestParser, malformed_requests_are_400_with_a_reason) {
  for (const std::string bad : {"GARBAGE\r\n\r\n", "GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
                                "GET / HTTP/9.1\r\n\r\n", "GET /\x01 HTTP/1.1\r\n\r\n",
                                "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
                                "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nhello\r\n0\r\n\r\n",
                                "POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n"}) {
    RequestParser parser;
    feed_in_pieces(parser, bad);
    ASSERT_EQ(parser.state(), State::failed) << bad;
    EXPECT_EQ(parser.error().status, 400) << bad;
    EXPECT_FALSE(parser.error().reason.empty());
    EXPECT_EQ(parser.feed("GET / HTTP/1.1\r\n\r\n"), 0u) << "a failed parser takes nothing more";
  }
}

TEST(RequestParser, a_head_over_the_limit_is_431_whether_it_comes_whole_or_in_pieces) {
  const std::string big = "GET / HTTP/1.1\r\nX-Big: " + std::string(2000, 'x') + "\r\n\r\n";
  for (std::size_t piece : {std::size_t{0}, std::size_t{1}, std::size_t{100}}) {
    RequestParser parser({.max_head_bytes = 1024});
    feed_in_pieces(parser, big, piece);
    ASSERT_EQ(parser.state(), State::failed) << piece;
    EXPECT_EQ(parser.error().status, 431);
  }
  // Many small fields add up too; and a long target counts.
  std::string many = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 100; ++i) many += "X-" + std::to_string(i) + ": 0123456789\r\n";
  RequestParser fields({.max_head_bytes = 1024});
  feed_in_pieces(fields, many + "\r\n");
  EXPECT_EQ(fields.error().status, 431);
  RequestParser target({.max_head_bytes = 1024});
  feed_in_pieces(target, "GET /" + std::string(3000, 'a') + " HTTP/1.1\r\n\r\n", 7);
  EXPECT_EQ(target.error().status, 431);
}

TEST(RequestParser, a_head_just_under_the_limit_is_accepted) {
  const std::string head = "GET / HTTP/1.1\r\nX-Fill: " + std::string(900, 'x') + "\r\n\r\n";
  ASSERT_LT(head.size(), 1024u);
  RequestParser parser({.max_head_bytes = 1024});
  feed_in_pieces(parser, head, 10);
  EXPECT_EQ(parser.state(), State::complete);
}

TEST(RequestParser, a_declared_body_over_the_limit_is_413_before_any_of_it_arrives) {
  RequestParser parser({.max_body_bytes = 100});
  const std::string head = "POST / HTTP/1.1\r\nContent-Length: 101\r\n\r\n";
  parser.feed(head);
  ASSERT_EQ(parser.state(), State::failed);
  EXPECT_EQ(parser.error().status, 413);
}

TEST(RequestParser, a_chunked_body_is_counted_as_it_arrives_and_413_past_the_limit) {
  RequestParser parser({.max_body_bytes = 100});
  std::string request = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 20; ++i) request += "a\r\n0123456789\r\n";  // 200 bytes in all
  request += "0\r\n\r\n";
  feed_in_pieces(parser, request, 16);
  ASSERT_EQ(parser.state(), State::failed);
  EXPECT_EQ(parser.error().status, 413);
}

TEST(RequestParser, a_body_exactly_at_the_limit_is_accepted) {
  RequestParser parser({.max_body_bytes = 5});
  feed_in_pieces(parser, "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello");
  ASSERT_EQ(parser.state(), State::complete);
  EXPECT_EQ(parser.take().body, "hello");
}

TEST(RequestParser, connect_and_upgrades_are_501) {
  RequestParser connect;
  feed_in_pieces(connect, "CONNECT example.com:443 HTTP/1.1\r\n\r\n");
  ASSERT_EQ(connect.state(), State::failed);
  EXPECT_EQ(connect.error().status, 501);
  RequestParser upgrade;
  feed_in_pieces(upgrade, "GET /chat HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
  ASSERT_EQ(upgrade.state(), State::failed);
  EXPECT_EQ(upgrade.error().status, 501);
}

TEST(RequestParser, a_stream_that_ends_inside_a_request_fails_and_between_requests_does_not) {
  RequestParser cut;
  cut.feed("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc");
  EXPECT_EQ(cut.state(), State::body);
  cut.finish();
  EXPECT_EQ(cut.state(), State::failed);
  EXPECT_EQ(cut.error().status, 400);

  RequestParser between;
  feed_in_pieces(between, k_get);
  between.take();
  between.finish();
  EXPECT_EQ(between.state(), State::idle);
}

TEST(RequestParser, an_absolute_form_target_gives_its_path_and_query) {
  RequestParser parser;
  feed_in_pieces(parser, "GET http://localhost:8080/a/b?x=1 HTTP/1.1\r\n\r\n");
  ASSERT_EQ(parser.state(), State::complete);
  const http::Request request = parser.take();
  EXPECT_EQ(request.path, "/a/b");
  EXPECT_EQ(request.query, "x=1");
}
