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
  feed_in_pieces(parser, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world", 3);
  ASSERT_EQ(parser.state(), State::complete);
  EXPECT_EQ(parser.take().body, "hello world");
}

TEST(RequestParser, a_chunked_body_is_dechunked) {
  RequestParser parser;
  feed_in_pieces(parser, "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", 4);
  ASSERT_EQ(parser.state(), State::complete);
  EXPECT_EQ(parser.take().body, "hello world");
}

TEST(RequestParser, pipelined_requests_come_out_one_at_a_time_in_order) {
  RequestParser parser;
  std::string rest = "GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhiGET /c HTTP/1.1\r\nHost: x\r\n\r\n";
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
  for (const Case& c : {Case{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", true}, Case{"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", false},
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
  const std::string head = "PUT /f HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-Continue\r\n\r\n";
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
  feed_in_pieces(parser, "PUT /f HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: telepathy\r\n\r\nabc");
  ASSERT_EQ(parser.state(), State::failed);
  EXPECT_EQ(parser.error().status, 417);
}

TEST(RequestParser, malformed_requests_are_400_with_a_reason) {
  // ("GET / HTTP/9.1" was here: a major version other than 1 is now 505, as RFC 9110
  // section 15.6.6 says; see an_http_major_version_other_than_1_is_505.)
  for (const std::string bad : {"GARBAGE\r\n\r\n", "GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
                                "GET /\x01 HTTP/1.1\r\n\r\n",
                                "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
                                "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nhello\r\n0\r\n\r\n",
                                "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"}) {
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
  const std::string head = "GET / HTTP/1.1\r\nHost: x\r\nX-Fill: " + std::string(900, 'x') + "\r\n\r\n";
  ASSERT_LT(head.size(), 1024u);
  RequestParser parser({.max_head_bytes = 1024});
  feed_in_pieces(parser, head, 10);
  EXPECT_EQ(parser.state(), State::complete);
}

TEST(RequestParser, a_declared_body_over_the_limit_is_413_before_any_of_it_arrives) {
  RequestParser parser({.max_body_bytes = 100});
  const std::string head = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n";
  parser.feed(head);
  ASSERT_EQ(parser.state(), State::failed);
  EXPECT_EQ(parser.error().status, 413);
}

TEST(RequestParser, a_chunked_body_is_counted_as_it_arrives_and_413_past_the_limit) {
  RequestParser parser({.max_body_bytes = 100});
  std::string request = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 20; ++i) request += "a\r\n0123456789\r\n";  // 200 bytes in all
  request += "0\r\n\r\n";
  feed_in_pieces(parser, request, 16);
  ASSERT_EQ(parser.state(), State::failed);
  EXPECT_EQ(parser.error().status, 413);
}

TEST(RequestParser, a_body_exactly_at_the_limit_is_accepted) {
  RequestParser parser({.max_body_bytes = 5});
  feed_in_pieces(parser, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
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
  cut.feed("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc");
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
  feed_in_pieces(parser, "GET http://localhost:8080/a/b?x=1 HTTP/1.1\r\nHost: ignored.example\r\n\r\n");
  ASSERT_EQ(parser.state(), State::complete);
  const http::Request request = parser.take();
  EXPECT_EQ(request.path, "/a/b");
  EXPECT_EQ(request.query, "x=1");
}

// ---- RFC 9112: what a server must refuse, and what it must still accept ----
//
// Each case is fed whole, a byte at a time and in pieces of 5: the status and the reason
// must be the same every time (the syntax check finds an error at the same byte however
// the input is split). `reason` is a piece of the expected reason, so that a case refused
// for some other fault (a missing Host, say) fails. docs/http_conformance.md lists the
// rules with these case names.

namespace {

using namespace std::string_literals;

struct Refusal {
  const char* name;
  std::string request;
  int status;
  const char* reason;
};

const std::string k_host = "Host: x\r\n";
const std::string k_chunked_head = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";

std::vector<Refusal> refusals() {
  return {
      // request line (RFC 9112 section 3)
      {"method_not_a_token", "G(T / HTTP/1.1\r\n" + k_host + "\r\n", 400, "method is not a token"},
      {"unknown_method", "FOO / HTTP/1.1\r\n" + k_host + "\r\n", 400, "invalid HTTP method"},
      {"two_spaces_before_target", "GET  / HTTP/1.1\r\n" + k_host + "\r\n", 400, "more than one SP between the method"},
      {"two_spaces_before_version", "GET /  HTTP/1.1\r\n" + k_host + "\r\n", 400, "more than one SP between the target"},
      {"tab_between_method_and_target", "GET\t/ HTTP/1.1\r\n" + k_host + "\r\n", 400, "method is not a token"},
      {"space_inside_target", "GET /a b HTTP/1.1\r\n" + k_host + "\r\n", 400, "HTTP version is not"},
      {"tab_inside_target", "GET /a\tb HTTP/1.1\r\n" + k_host + "\r\n", 400, "in the request target"},
      {"del_inside_target", "GET /a\x7f HTTP/1.1\r\n" + k_host + "\r\n", 400, "in the request target"},
      {"non_ascii_target", "GET /caf\xc3\xa9 HTTP/1.1\r\n" + k_host + "\r\n", 400, "in the request target"},
      {"fragment_in_target", "GET /a#b HTTP/1.1\r\n" + k_host + "\r\n", 400, "fragment"},
      {"relative_target", "GET a/b HTTP/1.1\r\n" + k_host + "\r\n", 400, "malformed request"},
      {"asterisk_form_for_get", "GET * HTTP/1.1\r\n" + k_host + "\r\n", 400, "only for OPTIONS"},
      {"asterisk_prefixed_target", "GET *x HTTP/1.1\r\n" + k_host + "\r\n", 400, "neither a path nor an absolute URI"},
      {"authority_form_for_get", "GET example.com:80 HTTP/1.1\r\n" + k_host + "\r\n", 400, "malformed request"},
      {"absolute_form_with_userinfo", "GET http://user@example.com/ HTTP/1.1\r\n" + k_host + "\r\n", 400, "user@"},
      {"absolute_form_not_http", "GET ftp://example.com/ HTTP/1.1\r\n" + k_host + "\r\n", 400, "scheme is not http"},
      {"no_version_http_0_9", "GET /\r\n\r\n", 400, "without an HTTP version"},
      {"lowercase_version", "GET / http/1.1\r\n" + k_host + "\r\n", 400, "HTTP version is not"},
      {"misspelt_version", "GET / HTTX/1.1\r\n" + k_host + "\r\n", 400, "HTTP version is not"},
      {"two_digit_minor_version", "GET / HTTP/1.10\r\n" + k_host + "\r\n", 400, "HTTP version is not"},
      {"version_without_minor", "GET / HTTP/1\r\n" + k_host + "\r\n", 400, "HTTP version is not"},
      {"space_after_version", "GET / HTTP/1.1 \r\n" + k_host + "\r\n", 400, "HTTP version is not"},
      {"request_line_ends_in_bare_cr", "GET / HTTP/1.1\rHost: x\r\n\r\n", 400, "bare CR"},
      {"request_line_ends_in_bare_lf", "GET / HTTP/1.1\nHost: x\r\n\r\n", 400, "bare LF"},
      {"bare_lf_before_request_line", "\nGET / HTTP/1.1\r\n" + k_host + "\r\n", 400, "bare LF"},
      {"bare_cr_before_request_line", "\rGET / HTTP/1.1\r\n" + k_host + "\r\n", 400, "bare CR"},
      // field lines (RFC 9112 sections 2.2, 5.1, 5.2; RFC 9110 section 5)
      {"whitespace_before_first_field", "GET / HTTP/1.1\r\n " + k_host + "\r\n", 400, "between the request line and the first field"},
      {"obs_fold_with_space", "GET / HTTP/1.1\r\n" + k_host + "X-A: a\r\n b\r\n\r\n", 400, "obs-fold"},
      {"obs_fold_with_tab", "GET / HTTP/1.1\r\n" + k_host + "X-A: a\r\n\tb\r\n\r\n", 400, "obs-fold"},
      {"space_before_colon", "GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400, "whitespace between a field name and its colon"},
      {"tab_before_colon", "GET / HTTP/1.1\r\n" + k_host + "X-A\t: 1\r\n\r\n", 400, "whitespace between a field name and its colon"},
      {"empty_field_name", "GET / HTTP/1.1\r\n" + k_host + ": 1\r\n\r\n", 400, "empty name"},
      {"field_name_not_a_token", "GET / HTTP/1.1\r\n" + k_host + "X(A): 1\r\n\r\n", 400, "not a token"},
      {"field_line_without_colon", "GET / HTTP/1.1\r\n" + k_host + "X-A\r\n\r\n", 400, "without a colon"},
      {"nul_in_field_value", "GET / HTTP/1.1\r\n" + k_host + "X-A: a\0b\r\n\r\n"s, 400, "NUL"},
      {"bare_cr_in_field_value", "GET / HTTP/1.1\r\n" + k_host + "X-A: a\rb\r\n\r\n", 400, "bare CR"},
      {"control_character_in_field_value", "GET / HTTP/1.1\r\n" + k_host + "X-A: a\x01z\r\n\r\n", 400, "control character"},
      {"del_in_field_value", "GET / HTTP/1.1\r\n" + k_host + "X-A: a\x7fz\r\n\r\n", 400, "control character"},
      {"field_line_ends_in_bare_lf", "GET / HTTP/1.1\r\nX-A: a\n" + k_host + "\r\n", 400, "bare LF"},
      {"head_ends_in_bare_lf", "GET / HTTP/1.1\r\n" + k_host + "\n", 400, "bare LF"},
      {"head_ends_in_bare_cr", "GET / HTTP/1.1\r\n" + k_host + "\rX", 400, "bare CR"},
      // Host (RFC 9112 section 3.2, RFC 9110 section 7.2)
      {"http_1_1_without_host", "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", 400, "without Host"},
      {"two_host_fields", "GET / HTTP/1.1\r\nHost: x\r\nHost: x\r\n\r\n", 400, "more than one Host"},
      {"two_host_fields_in_http_1_0", "GET / HTTP/1.0\r\nHost: x\r\nHost: y\r\n\r\n", 400, "more than one Host"},
      {"host_with_a_path", "GET / HTTP/1.1\r\nHost: x/y\r\n\r\n", 400, "invalid Host"},
      {"host_with_userinfo", "GET / HTTP/1.1\r\nHost: u@x\r\n\r\n", 400, "invalid Host"},
      {"host_with_a_space", "GET / HTTP/1.1\r\nHost: x y\r\n\r\n", 400, "invalid Host"},
      {"host_with_a_list", "GET / HTTP/1.1\r\nHost: x, y\r\n\r\n", 400, "invalid Host"},
      {"host_with_a_bad_port", "GET / HTTP/1.1\r\nHost: x:8o\r\n\r\n", 400, "invalid Host"},
      {"host_with_two_ports", "GET / HTTP/1.1\r\nHost: x:1:2\r\n\r\n", 400, "invalid Host"},
      {"host_with_only_a_port", "GET / HTTP/1.1\r\nHost: :80\r\n\r\n", 400, "invalid Host"},
      {"host_with_an_open_ipv6_literal", "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400, "invalid Host"},
      {"host_with_a_bad_escape", "GET / HTTP/1.1\r\nHost: x%4\r\n\r\n", 400, "invalid Host"},
      {"absolute_form_without_host", "GET http://x/ HTTP/1.1\r\n\r\n", 400, "without Host"},
      {"absolute_form_with_an_invalid_host", "GET http://x/ HTTP/1.1\r\nHost: x y\r\n\r\n", 400, "invalid Host"},
      // Content-Length (RFC 9112 section 6.3 item 5, RFC 9110 section 8.6)
      {"content_length_list_of_different_values", "POST / HTTP/1.1\r\n" + k_host + "Content-Length: 5, 6\r\n\r\nhello", 400, "content-length"},
      {"content_length_list_of_equal_values", "POST / HTTP/1.1\r\n" + k_host + "Content-Length: 5, 5\r\n\r\nhello", 400, "content-length"},
      {"two_content_lengths_of_equal_value", "POST / HTTP/1.1\r\n" + k_host + "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400, "content-length"},
      {"content_length_with_plus", "POST / HTTP/1.1\r\n" + k_host + "Content-Length: +5\r\n\r\nhello", 400, "content-length"},
      {"content_length_in_hex", "POST / HTTP/1.1\r\n" + k_host + "Content-Length: 0x5\r\n\r\nhello", 400, "content-length"},
      {"content_length_negative", "POST / HTTP/1.1\r\n" + k_host + "Content-Length: -1\r\n\r\nhello", 400, "content-length"},
      {"content_length_with_inner_space", "POST / HTTP/1.1\r\n" + k_host + "Content-Length: 5 5\r\n\r\nhello", 400, "content-length"},
      {"content_length_empty", "POST / HTTP/1.1\r\n" + k_host + "Content-Length:\r\n\r\nhello", 400, "content-length"},
      {"content_length_overflow", "POST / HTTP/1.1\r\n" + k_host + "Content-Length: 99999999999999999999999\r\n\r\n", 400, "content-length"},
      // Transfer-Encoding (RFC 9112 sections 6.1 and 6.3 items 3 and 4)
      {"transfer_encoding_and_content_length", "POST / HTTP/1.1\r\n" + k_host + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", 400, "content-length"},
      {"content_length_and_transfer_encoding", "POST / HTTP/1.1\r\n" + k_host + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "content-length"},
      {"final_coding_not_chunked", "POST / HTTP/1.1\r\n" + k_host + "Transfer-Encoding: gzip\r\n\r\nhello", 400, "final coding is not chunked"},
      {"chunked_then_another_coding", "POST / HTTP/1.1\r\n" + k_host + "Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 400, "final coding is not chunked"},
      {"identity_coding", "POST / HTTP/1.1\r\n" + k_host + "Transfer-Encoding: identity\r\n\r\nhello", 400, "final coding is not chunked"},
      {"chunked_with_a_parameter", "POST / HTTP/1.1\r\n" + k_host + "Transfer-Encoding: chunked;q=1\r\n\r\n0\r\n\r\n", 400, "final coding is not chunked"},
      {"empty_transfer_encoding", "POST / HTTP/1.1\r\n" + k_host + "Transfer-Encoding:\r\n\r\n0\r\n\r\n", 400, "final coding is not chunked"},
      // (RFC 9110 section 5.6.1 says empty list elements are ignored, but http-parser does
      // not frame these as chunked; refused rather than let the two disagree)
      {"transfer_encoding_with_empty_list_elements", "POST / HTTP/1.1\r\n" + k_host + "Transfer-Encoding: , chunked\r\n\r\n0\r\n\r\n", 400, "ambiguous"},
      {"chunked_twice", "POST / HTTP/1.1\r\n" + k_host + "Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 400, "more than once"},
      {"transfer_encoding_in_http_1_0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "HTTP/1.0"},
      {"unsupported_coding_before_chunked", "POST / HTTP/1.1\r\n" + k_host + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501, "not supported"},
      {"unknown_coding_before_chunked", "POST / HTTP/1.1\r\n" + k_host + "Transfer-Encoding: x-rot13\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501, "not supported"},
      // chunked framing (RFC 9112 section 7.1)
      {"chunk_size_with_plus", k_chunked_head + "+5\r\nhello\r\n0\r\n\r\n", 400, "not hexadecimal"},
      {"chunk_size_with_0x", k_chunked_head + "0x5\r\nhello\r\n0\r\n\r\n", 400, "not hexadecimal"},
      {"chunk_size_with_leading_space", k_chunked_head + " 5\r\nhello\r\n0\r\n\r\n", 400, "not hexadecimal"},
      {"chunk_size_missing", k_chunked_head + "\r\nhello\r\n0\r\n\r\n", 400, "not hexadecimal"},
      {"chunk_size_negative", k_chunked_head + "-5\r\nhello\r\n0\r\n\r\n", 400, "not hexadecimal"},
      {"chunk_size_overflow", k_chunked_head + "10000000000000000\r\nhello\r\n0\r\n\r\n", 400, "too large"},
      {"chunk_size_at_the_64_bit_limit", k_chunked_head + "ffffffffffffffff\r\nhello\r\n0\r\n\r\n", 400, "too large"},
      {"chunk_extension_without_name", k_chunked_head + "5;\r\nhello\r\n0\r\n\r\n", 400, "chunk extension"},
      {"chunk_extension_without_value", k_chunked_head + "5;a=\r\nhello\r\n0\r\n\r\n", 400, "chunk extension"},
      {"chunk_extension_with_a_space_in_the_value", k_chunked_head + "5;a=b c\r\nhello\r\n0\r\n\r\n", 400, "chunk extension"},
      {"chunk_extension_with_an_open_quote", k_chunked_head + "5;a=\"b\r\nhello\r\n0\r\n\r\n", 400, "chunk extension"},
      {"chunk_extension_with_a_bare_lf", k_chunked_head + "5;a\nhello\r\n0\r\n\r\n", 400, "chunk extension"},
      {"whitespace_ending_a_chunk_line", k_chunked_head + "5 \r\nhello\r\n0\r\n\r\n", 400, "chunk extension"},
      {"chunk_extensions_without_end", k_chunked_head + "5;" + std::string(5000, 'a') + "\r\nhello\r\n0\r\n\r\n", 400, "chunk line longer"},
      {"chunk_line_ends_in_bare_lf", k_chunked_head + "5\nhello\r\n0\r\n\r\n", 400, "bare LF"},
      {"chunk_line_ends_in_bare_cr", k_chunked_head + "5\rhello\r\n0\r\n\r\n", 400, "bare CR"},
      {"chunk_data_longer_than_its_size", k_chunked_head + "5\r\nhelloXX0\r\n\r\n", 400, "not followed by CRLF"},
      {"chunk_data_ends_in_bare_lf", k_chunked_head + "5\r\nhello\n0\r\n\r\n", 400, "not followed by CRLF"},
      {"chunk_data_ends_in_bare_cr", k_chunked_head + "5\r\nhello\r0\r\n\r\n", 400, "bare CR"},
      {"trailer_with_space_before_colon", k_chunked_head + "5\r\nhello\r\n0\r\nX-T : 1\r\n\r\n", 400, "whitespace between a field name"},
      {"trailer_with_obs_fold", k_chunked_head + "5\r\nhello\r\n0\r\nX-T: 1\r\n 2\r\n\r\n", 400, "obs-fold"},
      {"trailers_starting_with_whitespace", k_chunked_head + "5\r\nhello\r\n0\r\n X-T: 1\r\n\r\n", 400, "whitespace at the start of the trailer"},
      {"trailers_ending_in_bare_lf", k_chunked_head + "5\r\nhello\r\n0\r\n\n", 400, "bare LF"},
      // HTTP version (RFC 9110 section 15.6.6)
      {"http_2_0", "GET / HTTP/2.0\r\n" + k_host + "\r\n", 505, "HTTP/2.x"},
      {"http_0_9", "GET / HTTP/0.9\r\n" + k_host + "\r\n", 505, "HTTP/0.x"},
      {"http_9_1", "GET / HTTP/9.1\r\n\r\n", 505, "HTTP/9.x"},
  };
}

// Feeds `request` in pieces of `piece` bytes; the parser's state afterwards.
struct Outcome {
  State state;
  http::detail::ParseError error;
};

Outcome parse(const std::string& request, std::size_t piece) {
  RequestParser parser;
  feed_in_pieces(parser, request, piece);
  return {parser.state(), parser.error()};
}

}  // namespace

TEST(RequestParser, each_request_rfc_9112_says_a_server_must_refuse_is_refused_with_its_status_and_reason) {
  for (const Refusal& c : refusals()) {
    for (std::size_t piece : {std::size_t{0}, std::size_t{1}, std::size_t{5}}) {
      SCOPED_TRACE(std::string(c.name) + ", fed in pieces of " + std::to_string(piece));
      const Outcome outcome = parse(c.request, piece);
      ASSERT_EQ(outcome.state, State::failed);
      EXPECT_EQ(outcome.error.status, c.status);
      EXPECT_NE(outcome.error.reason.find(c.reason), std::string::npos) << outcome.error.reason;
    }
  }
}

TEST(RequestParser, a_refused_request_stops_the_parser_at_the_offending_byte) {
  // The syntax check hands http-parser nothing past the fault: the bytes before a bad
  // field line are used, the bad line and the request after it are not.
  const std::string good = "GET / HTTP/1.1\r\n" + k_host;
  RequestParser parser;
  const std::size_t used = parser.feed(good + "Host : y\r\n\r\nGET / HTTP/1.1\r\n" + k_host + "\r\n");
  ASSERT_EQ(parser.state(), State::failed);
  EXPECT_EQ(used, good.size() + 4);  // "Host" was read; the space before the colon was not
  EXPECT_EQ(parser.feed("GET / HTTP/1.1\r\n" + k_host + "\r\n"), 0u);
}

TEST(RequestParser, an_http_major_version_other_than_1_is_505) {
  for (const std::string version : {"HTTP/2.0", "HTTP/3.0", "HTTP/0.9"}) {
    RequestParser parser;
    feed_in_pieces(parser, "GET / " + version + "\r\n" + k_host + "\r\n");
    ASSERT_EQ(parser.state(), State::failed) << version;
    EXPECT_EQ(parser.error().status, 505) << version;
  }
}

TEST(RequestParser, requests_at_the_edge_of_the_grammar_are_still_accepted) {
  struct Accepted {
    const char* name;
    std::string request;
    std::string body;
  };
  const std::vector<Accepted> cases = {
      {"one_empty_line_before_the_request_line", "\r\nGET / HTTP/1.1\r\n" + k_host + "\r\n", ""},
      {"several_empty_lines_before_the_request_line", "\r\n\r\n\r\nGET / HTTP/1.1\r\n" + k_host + "\r\n", ""},
      {"http_1_0_without_host", "GET / HTTP/1.0\r\n\r\n", ""},
      {"http_1_2_as_http_1_1", "GET / HTTP/1.2\r\n" + k_host + "\r\n", ""},
      {"empty_host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", ""},
      {"host_with_port", "GET / HTTP/1.1\r\nHost: example.com:8080\r\n\r\n", ""},
      {"host_ipv4", "GET / HTTP/1.1\r\nHost: 127.0.0.1:80\r\n\r\n", ""},
      {"host_ipv6_literal", "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", ""},
      {"host_percent_encoded", "GET / HTTP/1.1\r\nHost: ex%41mple\r\n\r\n", ""},
      {"host_with_trailing_whitespace", "GET / HTTP/1.1\r\nHost: x \t\r\n\r\n", ""},
      {"options_asterisk", "OPTIONS * HTTP/1.1\r\n" + k_host + "\r\n", ""},
      {"absolute_form", "GET http://example.com/a?b HTTP/1.1\r\n" + k_host + "\r\n", ""},
      {"target_with_sub_delims", "GET /a;b=c/(d)!$&'*+,:@~?x=/? HTTP/1.1\r\n" + k_host + "\r\n", ""},
      {"field_value_with_tab_and_obs_text", "GET / HTTP/1.1\r\n" + k_host + "X-A: a\tb \xc3\xa9\r\n\r\n", ""},
      {"field_value_empty", "GET / HTTP/1.1\r\n" + k_host + "X-A:\r\n\r\n", ""},
      {"field_name_with_token_characters", "GET / HTTP/1.1\r\n" + k_host + "X!#$%&'*+-.^_`|~9: 1\r\n\r\n", ""},
      {"content_length_with_trailing_whitespace", "POST / HTTP/1.1\r\n" + k_host + "Content-Length: 5 \r\n\r\nhello", "hello"},
      {"content_length_zero", "POST / HTTP/1.1\r\n" + k_host + "Content-Length: 0\r\n\r\n", ""},
      {"transfer_encoding_in_any_case", "POST / HTTP/1.1\r\n" + k_host + "Transfer-Encoding: ChUnKeD\r\n\r\n5\r\nhello\r\n0\r\n\r\n", "hello"},
      {"chunk_size_upper_hex_and_leading_zeros", k_chunked_head + "0A\r\n0123456789\r\n000\r\n\r\n", "0123456789"},
      {"chunk_extensions", k_chunked_head + "5;a;b=c ; d = \"q\\\"x;y\"\r\nhello\r\n0;last\r\n\r\n", "hello"},
      {"trailer_fields", k_chunked_head + "5\r\nhello\r\n0\r\nX-Checksum: 1\r\nX-More: 2\r\n\r\n", "hello"},
  };
  for (const Accepted& c : cases) {
    for (std::size_t piece : {std::size_t{0}, std::size_t{1}}) {
      SCOPED_TRACE(std::string(c.name) + ", fed in pieces of " + std::to_string(piece));
      RequestParser parser;
      EXPECT_EQ(feed_in_pieces(parser, c.request, piece), "");
      ASSERT_EQ(parser.state(), State::complete) << parser.error().reason;
      EXPECT_EQ(parser.take().body, c.body);
    }
  }
}

TEST(RequestParser, an_absolute_form_target_replaces_the_host_the_client_sent) {
  RequestParser parser;
  feed_in_pieces(parser, "GET http://example.com:8080/a?b=1 HTTP/1.1\r\nHost: other.example\r\n\r\n");
  ASSERT_EQ(parser.state(), State::complete);
  const http::Request request = parser.take();
  EXPECT_EQ(request.headers.get("Host"), "example.com:8080");
  EXPECT_EQ(request.path, "/a");
  ASSERT_EQ(request.headers.size(), 1u) << "replaced, not added";

  RequestParser http_1_0;  // HTTP/1.0 needs no Host; the target's is added
  feed_in_pieces(http_1_0, "GET http://example.com/ HTTP/1.0\r\n\r\n");
  ASSERT_EQ(http_1_0.state(), State::complete);
  EXPECT_EQ(http_1_0.take().headers.get("Host"), "example.com");
}

TEST(RequestParser, field_values_lose_their_surrounding_whitespace) {
  RequestParser parser;
  feed_in_pieces(parser, "GET / HTTP/1.1\r\nHost:   x \t\r\nX-A: \t a b \r\n\r\n");
  ASSERT_EQ(parser.state(), State::complete);
  const http::Request request = parser.take();
  EXPECT_EQ(request.headers.get("Host"), "x");
  EXPECT_EQ(request.headers.get("X-A"), "a b");
}

TEST(RequestParser, the_trailer_section_counts_against_the_head_limit) {
  RequestParser parser({.max_head_bytes = 256});
  std::string request = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n";
  for (int i = 0; i < 20; ++i) request += "X-Trailer-" + std::to_string(i) + ": 0123456789\r\n";
  feed_in_pieces(parser, request + "\r\n", 9);
  ASSERT_EQ(parser.state(), State::failed);
  EXPECT_EQ(parser.error().status, 431);
}
