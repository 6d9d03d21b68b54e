// The crawler on both engines against a small site served by a real nginx: every page
// once despite loops, same-site links only, broken links recorded and not followed, the
// depth bound, the page bound; the href scanner on awkward HTML; the politeness delay
// seen by the server.
#include "crawl.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include <gearbox/http/server.hpp>
#include <gearbox/loop.hpp>

#include "support/nginx.hpp"

namespace cr = gearbox::crawler;
namespace fs = std::filesystem;

namespace {

std::string html(const std::string& body) { return "<!doctype html><html><body>" + body + "</body></html>\n"; }

// index -> a, b, an external site, mail, a fragment; a -> b, a (itself), c, missing;
// b -> index (a loop); c -> deep1 -> deep2 -> deep3.
void write_site(const gearbox_test::Nginx& nginx) {
  nginx.put_file("index.html", html(R"(<a href="a.html">A</a> <A HREF='b.html'>B</A> <a href="http://other.example/x">x</a>
      <a href="mailto:me@example.com">mail</a> <a href="#top">top</a> <a class="c" href=b.html>B again</a>)"));
  nginx.put_file("a.html", html(R"(<a href="/b.html">B</a><a href="a.html#self">me</a><a href="c.html">C</a><a href="missing.html">gone</a>)"));
  nginx.put_file("b.html", html(R"(<p>back <a href="index.html">home</a></p>)"));
  nginx.put_file("c.html", html(R"(<a href="deep1.html">deeper</a>)"));
  nginx.put_file("deep1.html", html(R"(<a href="deep2.html">deeper</a>)"));
  nginx.put_file("deep2.html", html(R"(<a href="deep3.html">deeper</a>)"));
  nginx.put_file("deep3.html", html("the end"));
}

std::map<std::string, int> statuses(const cr::CrawlResult& result, const std::string& base) {
  std::map<std::string, int> out;
  for (const cr::Page& page : result.pages) out[page.url.substr(base.size())] = page.status;
  return out;
}

class CrawlEngines : public ::testing::TestWithParam<cr::Engine> {
protected:
  void SetUp() override {
    if (!gearbox_test::Nginx::installed()) GTEST_SKIP() << "nginx is not installed (scripts/setup installs nginx-light)";
    m_nginx = std::make_unique<gearbox_test::Nginx>(fs::path(::testing::TempDir()) / ("crawl-" + std::to_string(::getpid())));
    ASSERT_TRUE(m_nginx->running());
    write_site(*m_nginx);
  }
  std::string base() const { return m_nginx->url(""); }
  std::unique_ptr<gearbox_test::Nginx> m_nginx;
};

}  // namespace

TEST(FindHrefs, finds_quoted_unquoted_and_upper_case_hrefs_of_a_elements_only) {
  const auto hrefs = cr::find_hrefs(R"(<a href="one.html">1</a><A HREF='two.html'>2</A><a class=x href=three.html>3</a>
      <link href="style.css"><area href="no.html"><a name="anchor">no href</a><a href = "four.html?a=1&amp;b=2">4</a>
      <abbr href="not-a-link">x</abbr><a href="unclosed)");
  EXPECT_EQ(hrefs, (std::vector<std::string>{"one.html", "two.html", "three.html", "four.html?a=1&b=2"}));
}

TEST_P(CrawlEngines, every_same_site_page_is_fetched_once_and_a_broken_link_is_recorded) {
  cr::CrawlOptions options;
  options.max_depth = 10;
  options.concurrency = 3;
  options.engine = GetParam();
  const cr::CrawlResult result = cr::crawl(m_nginx->url("/index.html"), options);
  const auto found = statuses(result, base());
  EXPECT_EQ(found, (std::map<std::string, int>{{"/index.html", 200}, {"/a.html", 200}, {"/b.html", 200}, {"/c.html", 200},
                                               {"/missing.html", 404}, {"/deep1.html", 200}, {"/deep2.html", 200},
                                               {"/deep3.html", 200}}));
  EXPECT_EQ(result.pages.size(), 8u) << "each page once, despite the loops";
  EXPECT_EQ(result.broken(), 1u);
  const auto index = std::find_if(result.pages.begin(), result.pages.end(), [](const cr::Page& p) { return p.depth == 0; });
  ASSERT_NE(index, result.pages.end());
  EXPECT_EQ(index->links, (std::vector<std::string>{base() + "/a.html", base() + "/b.html", base() + "/index.html"}))
      << "same-site only, resolved, without fragments, each once";
  for (const cr::Page& page : result.pages) {
    if (page.url.ends_with("missing.html")) {
      EXPECT_EQ(page.error, "HTTP 404 Not Found");
    }
  }
}

TEST_P(CrawlEngines, the_depth_and_page_bounds_hold) {
  cr::CrawlOptions shallow;
  shallow.max_depth = 1;
  shallow.engine = GetParam();
  const auto found = statuses(cr::crawl(m_nginx->url("/index.html"), shallow), base());
  EXPECT_EQ(found.size(), 3u);  // index, a, b
  EXPECT_TRUE(found.contains("/a.html") && found.contains("/b.html"));

  cr::CrawlOptions few;
  few.max_depth = 10;
  few.max_pages = 4;
  few.engine = GetParam();
  EXPECT_EQ(cr::crawl(m_nginx->url("/index.html"), few).pages.size(), 4u);
}

TEST_P(CrawlEngines, the_graph_is_written_as_json_with_every_page_and_its_links) {
  cr::CrawlOptions options;
  options.engine = GetParam();
  const cr::CrawlResult result = cr::crawl(m_nginx->url("/index.html"), options);
  std::ostringstream out;
  cr::write_graph_json(result, out);
  const nlohmann::json graph = nlohmann::json::parse(out.str());
  ASSERT_EQ(graph.at("pages").size(), result.pages.size());
  std::size_t links = 0;
  for (const auto& page : graph.at("pages")) links += page.at("links").size();
  EXPECT_EQ(links, result.links());
}

INSTANTIATE_TEST_SUITE_P(Engines, CrawlEngines, ::testing::Values(cr::Engine::async, cr::Engine::threads),
                         [](const auto& info) { return std::string(cr::to_string(info.param)); });

TEST(Crawl, the_politeness_delay_separates_the_requests_the_server_sees) {
  // A gearbox server on a loop of its own thread records when each request arrives.
  std::mutex mutex;
  std::vector<std::chrono::steady_clock::time_point> arrivals;
  gearbox::http::Router router;
  router.get("/*", [&](gearbox::http::Request& request) -> gearbox::Task<gearbox::http::Response> {
    {
      std::lock_guard lock(mutex);
      arrivals.push_back(std::chrono::steady_clock::now());
    }
    gearbox::http::Response response = gearbox::http::Response::text(
        request.path == "/" ? "<a href=/1>1</a><a href=/2>2</a><a href=/3>3</a>" : "leaf");
    response.headers.set("Content-Type", "text/html");
    co_return response;
  });
  gearbox::http::Server server(std::move(router));
  auto listener = gearbox::net::TcpListener::bind(gearbox::net::SocketAddress::loopback(0));
  std::promise<gearbox::Loop*> started;
  std::thread serving([&] {
    gearbox::Loop loop;
    started.set_value(&loop);
    loop.run(server.serve(listener));
  });
  gearbox::Loop* server_loop = started.get_future().get();
  cr::CrawlOptions options;
  options.concurrency = 4;
  options.politeness = std::chrono::milliseconds(100);
  const cr::CrawlResult result = cr::crawl("http://127.0.0.1:" + std::to_string(listener.local_address().port()) + "/", options);
  server_loop->post([&] { server.stop(); });
  serving.join();
  EXPECT_EQ(result.pages.size(), 4u);
  ASSERT_EQ(arrivals.size(), 4u);
  std::sort(arrivals.begin(), arrivals.end());
  // Each request starts 100 ms after the one before (a guarantee of the crawler, not a
  // measure of speed: it sleeps before it sends). Arrivals can be closer by the difference
  // of two connection set-ups, so half of it is asked: without the delay, 4 workers would
  // send the last three at once.
  for (std::size_t i = 1; i < arrivals.size(); ++i) EXPECT_GE(arrivals[i] - arrivals[i - 1], std::chrono::milliseconds(50));
}
