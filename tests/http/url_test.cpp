// Url::parse and join_url: what a crawler meets in hrefs.
#include <gearbox/http/url.hpp>

#include <gtest/gtest.h>

namespace http = gearbox::http;

TEST(Url, parse_normalises_and_splits_an_absolute_http_url) {
  const auto url = http::Url::parse("HTTP://Example.COM/a/b.html?x=1&y=2#section");
  ASSERT_TRUE(url.has_value());
  EXPECT_EQ(url->scheme, "http");
  EXPECT_EQ(url->host, "example.com");
  EXPECT_EQ(url->port, 80);
  EXPECT_EQ(url->path, "/a/b.html");
  EXPECT_EQ(url->query, "x=1&y=2");
  EXPECT_EQ(url->text, "http://example.com/a/b.html?x=1&y=2");
  const auto bare = http::Url::parse("https://example.com:8443");
  ASSERT_TRUE(bare.has_value());
  EXPECT_EQ(bare->port, 8443);
  EXPECT_EQ(bare->path, "/");
  EXPECT_EQ(http::Url::parse("https://example.com:443/x")->text, "https://example.com/x");
}

TEST(Url, parse_refuses_what_is_not_an_absolute_http_url) {
  for (const char* bad : {"/relative/path", "mailto:someone@example.com", "ftp://example.com/file", "javascript:void(0)",
                          "http://", "", "not a url at all"})
    EXPECT_FALSE(http::Url::parse(bad).has_value()) << bad;
}

TEST(Url, same_origin_compares_scheme_host_and_port) {
  const auto a = *http::Url::parse("http://example.com/a");
  EXPECT_TRUE(a.same_origin(*http::Url::parse("http://EXAMPLE.com:80/b?c")));
  EXPECT_FALSE(a.same_origin(*http::Url::parse("https://example.com/a")));
  EXPECT_FALSE(a.same_origin(*http::Url::parse("http://example.com:8080/a")));
  EXPECT_FALSE(a.same_origin(*http::Url::parse("http://www.example.com/a")));
}

TEST(JoinUrl, resolves_references_as_a_browser_does_and_drops_fragments) {
  const std::string base = "http://Example.com/a/b.html";
  EXPECT_EQ(http::join_url(base, "c.html"), "http://example.com/a/c.html");
  EXPECT_EQ(http::join_url(base, "../c.html#top"), "http://example.com/c.html");
  EXPECT_EQ(http::join_url(base, "/root.html"), "http://example.com/root.html");
  EXPECT_EQ(http::join_url(base, "?q=1"), "http://example.com/a/b.html?q=1");
  EXPECT_EQ(http::join_url(base, "?q=2#part"), "http://example.com/a/b.html?q=2");
  EXPECT_EQ(http::join_url(base, "#only-a-fragment"), "http://example.com/a/b.html");
  EXPECT_EQ(http::join_url(base, "//other.org/x"), "http://other.org/x");
  EXPECT_EQ(http::join_url(base, "https://secure.example.com/"), "https://secure.example.com/");
}

TEST(JoinUrl, refuses_references_that_are_not_http) {
  for (const char* reference : {"mailto:someone@example.com", "javascript:void(0)", "ftp://example.com/f", "data:text/plain,hi"})
    EXPECT_FALSE(http::join_url("http://example.com/", reference).has_value()) << reference;
  EXPECT_FALSE(http::join_url("not absolute", "x.html").has_value());
}
