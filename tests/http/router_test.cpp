// Router: exact and prefix routes, the most specific wins, 404 and 405 with Allow, HEAD by GET.
#include <gearbox/http/router.hpp>

#include <gtest/gtest.h>

#include <string>

#include <gearbox/loop.hpp>

namespace gb = gearbox;
namespace http = gearbox::http;

namespace {

// A handler that answers its own name, so a test can see which one find() chose.
http::Handler named(std::string name) {
  return [name](http::Request&) -> gb::Task<http::Response> { co_return http::Response::text(name); };
}

std::string answer_of(const http::Router& router, const std::string& method, const std::string& path) {
  const http::Router::Match match = router.find(method, path);
  if (!match.handler) return std::to_string(match.status);
  http::Request request;
  gb::Loop loop;
  return loop.run((*match.handler)(request)).body;
}

}  // namespace

TEST(Router, exact_routes_match_by_method_and_path) {
  http::Router router;
  router.get("/a", named("get a")).post("/a", named("post a")).get("/b", named("get b"));
  EXPECT_EQ(answer_of(router, "GET", "/a"), "get a");
  EXPECT_EQ(answer_of(router, "POST", "/a"), "post a");
  EXPECT_EQ(answer_of(router, "GET", "/b"), "get b");
  EXPECT_EQ(answer_of(router, "GET", "/a/"), "404");
  EXPECT_EQ(answer_of(router, "GET", "/"), "404");
}

TEST(Router, a_path_with_routes_for_other_methods_is_405_and_lists_them) {
  http::Router router;
  router.get("/items", named("list")).post("/items", named("add"));
  const http::Router::Match match = router.find("DELETE", "/items");
  EXPECT_EQ(match.handler, nullptr);
  EXPECT_EQ(match.status, 405);
  EXPECT_EQ(match.allow, "GET, HEAD, POST");
}

TEST(Router, head_is_answered_by_the_get_route) {
  http::Router router;
  router.get("/page", named("page"));
  EXPECT_EQ(answer_of(router, "HEAD", "/page"), "page");
}

TEST(Router, the_exact_route_beats_a_prefix_and_a_longer_prefix_beats_a_shorter) {
  http::Router router;
  router.get("/files/*", named("files")).get("/files/special", named("special")).get("/files/deep/*", named("deep"));
  router.get("/*", named("everything"));
  EXPECT_EQ(answer_of(router, "GET", "/files/a.txt"), "files");
  EXPECT_EQ(answer_of(router, "GET", "/files/"), "files");
  EXPECT_EQ(answer_of(router, "GET", "/files/special"), "special");
  EXPECT_EQ(answer_of(router, "GET", "/files/deep/x/y"), "deep");
  EXPECT_EQ(answer_of(router, "GET", "/files"), "everything");
  EXPECT_EQ(answer_of(router, "GET", "/other"), "everything");
}

TEST(Router, a_second_route_for_the_same_method_and_path_replaces_the_first) {
  http::Router router;
  router.get("/x", named("first")).get("/x", named("second"));
  EXPECT_EQ(answer_of(router, "GET", "/x"), "second");
}
