// crawl: pages per second crawling a local site of n pages (default 10,000) served by
// nginx, with the async engine (one loop, http::Client) and with threads (fetch_blocking),
// each with 32 requests in flight, in the same run. The site is generated: page i links
// to its ten children 10i+1..10i+10 and to two pages elsewhere, so every page is at most
// a few links from the start and many links lead to pages already seen. The result is the
// number of pages found, which must be n for both engines.
//
// Built only with the examples (it runs examples/06_crawler's crawler); nginx from
// scripts/setup, run as the tests run it (tests/support/nginx.hpp).
#include <unistd.h>

#include <filesystem>
#include <string>

#include "crawl.hpp"
#include "registry.hpp"
#include "support/nginx.hpp"

namespace gearbox::bench {
namespace {

constexpr int k_in_flight = 32;

std::string page_name(long i) {
  std::string name = "/p";
  name += std::to_string(i);
  name += ".html";
  return name;
}

void write_site(const gearbox_test::Nginx& nginx, long pages) {
  for (long i = 0; i < pages; ++i) {
    std::string body = "<!doctype html><html><body><h1>page " + std::to_string(i) + "</h1>\n";
    for (long child = 10 * i + 1; child <= 10 * i + 10 && child < pages; ++child)
      body += "<a href=\"" + page_name(child).substr(1) + "\">child</a>\n";
    body += "<a href=\"" + page_name((i * 7919 + 13) % pages) + "\">elsewhere</a>\n";
    body += "<a href=\"" + page_name(i / 2) + "#top\">up</a>\n</body></html>\n";
    nginx.put_file(page_name(i).substr(1), body);
  }
}

}  // namespace

std::vector<Benchmark> crawl_benchmarks() {
  std::vector<Benchmark> list;
  list.push_back(Benchmark{
      .name = "crawl",
      .description = "crawl a generated site of n pages on nginx: async (one loop) vs threads, 32 in flight",
      .default_n = 10'000,
      .valid_n = [](long n) { return n >= 1 && n <= 1'000'000; },
      .expected = [](long n) { return nlohmann::json(n); },
      .run =
          [](const BenchArgs& args) {
            BenchRun run;
            if (!gearbox_test::Nginx::installed()) {
              run.result = "nginx is not installed (scripts/setup installs nginx-light)";
              return run;
            }
            gearbox_test::Nginx nginx(std::filesystem::temp_directory_path() / ("gearbox-crawl-" + std::to_string(::getpid())));
            write_site(nginx, args.n);
            crawler::CrawlOptions options;
            options.max_depth = 100;
            options.max_pages = static_cast<std::size_t>(args.n) + 1;
            options.concurrency = k_in_flight;
            options.engine = crawler::Engine::async;
            const crawler::CrawlResult async = crawler::crawl(nginx.url(page_name(0)), options);
            options.engine = crawler::Engine::threads;
            const crawler::CrawlResult threads = crawler::crawl(nginx.url(page_name(0)), options);
            run.ms = async.seconds * 1000;
            const auto pages = static_cast<long>(async.pages.size() - async.broken());
            const auto thread_pages = static_cast<long>(threads.pages.size() - threads.broken());
            run.result = pages == thread_pages ? nlohmann::json(pages) : nlohmann::json("async and threads disagree");
            run.extra = {{"async_pages_per_sec", static_cast<double>(async.pages.size()) / async.seconds},
                         {"threads_ms", threads.seconds * 1000},
                         {"threads_pages_per_sec", static_cast<double>(threads.pages.size()) / threads.seconds},
                         {"links", async.links()},
                         {"in_flight", k_in_flight}};
            return run;
          },
      .peer_args = {},
      .peer_name = {},
  });
  return list;
}

}  // namespace gearbox::bench
