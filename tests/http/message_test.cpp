// Headers, query parameters, percent-decoding and the response helpers.
#include <gearbox/http/message.hpp>

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace http = gearbox::http;

TEST(Headers, names_match_without_regard_to_case_and_keep_their_spelling) {
  http::Headers headers;
  headers.add("Content-Type", "text/html");
  EXPECT_EQ(headers.get("content-type"), "text/html");
  EXPECT_EQ(headers.get("CONTENT-TYPE"), "text/html");
  EXPECT_FALSE(headers.get("Content-Length").has_value());
  EXPECT_EQ(headers.fields().front().first, "Content-Type");
}

TEST(Headers, add_keeps_repeats_set_replaces_them_all_and_remove_counts_them) {
  http::Headers headers;
  headers.add("Set-Cookie", "a=1");
  headers.add("set-cookie", "b=2");
  headers.add("Server", "x");
  EXPECT_EQ(headers.size(), 3u);
  EXPECT_EQ(headers.get("Set-Cookie"), "a=1");  // the first
  headers.set("SET-COOKIE", "c=3");
  EXPECT_EQ(headers.size(), 2u);
  EXPECT_EQ(headers.get("set-cookie"), "c=3");
  EXPECT_EQ(headers.remove("set-cookie"), 1u);
  EXPECT_EQ(headers.remove("set-cookie"), 0u);
  EXPECT_EQ(headers.size(), 1u);
}

TEST(PercentDecode, escapes_and_plus_are_decoded_and_a_broken_escape_is_refused) {
  EXPECT_EQ(http::percent_decode("a%20b%2Fc"), "a b/c");
  EXPECT_EQ(http::percent_decode("a+b"), "a+b");
  EXPECT_EQ(http::percent_decode("a+b", true), "a b");
  EXPECT_EQ(http::percent_decode("%e2%82%AC"), "\xe2\x82\xac");
  EXPECT_FALSE(http::percent_decode("%G1").has_value());
  EXPECT_FALSE(http::percent_decode("abc%4").has_value());
  EXPECT_FALSE(http::percent_decode("%").has_value());
}

TEST(Request, query_param_finds_the_first_value_decoded) {
  http::Request request;
  request.query = "name=gear+box&x=%41&x=2&flag&empty=&bad=%Z";
  EXPECT_EQ(request.query_param("name"), "gear box");
  EXPECT_EQ(request.query_param("x"), "A");
  EXPECT_EQ(request.query_param("flag"), "");
  EXPECT_EQ(request.query_param("empty"), "");
  EXPECT_FALSE(request.query_param("missing").has_value());
  EXPECT_FALSE(request.query_param("bad").has_value());
}

TEST(Response, helpers_set_status_type_and_body) {
  const http::Response text = http::Response::text("hi\n", 201);
  EXPECT_EQ(text.status, 201);
  EXPECT_EQ(text.headers.get("Content-Type"), "text/plain; charset=utf-8");
  EXPECT_EQ(text.body, "hi\n");
  EXPECT_EQ(http::Response::json("{}").headers.get("content-type"), "application/json");
  const http::Response missing = http::Response::error(404);
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.body, "Not Found\n");
}

TEST(ReasonPhrase, registered_codes_have_their_phrase_and_others_say_unknown) {
  EXPECT_EQ(http::reason_phrase(200), "OK");
  EXPECT_EQ(http::reason_phrase(413), "Payload Too Large");
  EXPECT_EQ(http::reason_phrase(431), "Request Header Fields Too Large");
  EXPECT_EQ(http::reason_phrase(599), "Unknown");
}

TEST(Headers, a_field_that_could_split_the_response_or_is_no_token_is_refused) {
  http::Headers headers;
  EXPECT_THROW(headers.add("X-Evil", "a\r\nSet-Cookie: stolen=1"), std::invalid_argument);
  EXPECT_THROW(headers.add("X-Evil", "line\nbreak"), std::invalid_argument);
  EXPECT_THROW(headers.set("X-Evil", std::string("nul\0byte", 8)), std::invalid_argument);
  EXPECT_THROW(headers.add("Bad Name", "v"), std::invalid_argument);
  EXPECT_THROW(headers.add("Bad:Name", "v"), std::invalid_argument);
  EXPECT_THROW(headers.add("", "v"), std::invalid_argument);
  EXPECT_TRUE(headers.empty()) << "nothing was added";
  headers.add("X-Fine", "tabs\tand spaces are fine");
  EXPECT_EQ(headers.size(), 1u);
}
