// gearbox-crawl: crawls one site from a start URL with async tasks or threads, and writes
// its link graph. See README.md.
//
//   gearbox-crawl http://127.0.0.1:8080/ --depth 3 --concurrency 16 --graph site.json
//   gearbox-crawl http://127.0.0.1:8080/ --delay 200ms    (--delay takes 2s, 500ms, 1.5 for seconds...)
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

#include <CLI/CLI.hpp>

#include "cli/duration_option.hpp"
#include "crawl.hpp"

namespace cr = gearbox::crawler;

int main(int argc, char** argv) {
  CLI::App app{"gearbox-crawl: a same-site crawler on async tasks or threads"};
  std::string start;
  cr::CrawlOptions options;
  std::string engine = "async";
  std::string graph;
  app.add_option("url", start, "where to start (http or https)")->required();
  app.add_option("--depth", options.max_depth, "links to follow from the start, at most (default 3)")->check(CLI::Range(0, 100));
  app.add_option("--concurrency", options.concurrency, "requests in flight at most (default 8)")->check(CLI::Range(1, 1000));
  app.add_option("--max-pages", options.max_pages, "pages to fetch at most (default 10,000)")->check(CLI::Range(1, 10'000'000));
  gearbox::cli::add_duration_option(app, "--delay", options.politeness, "at least this long between two request starts",
                                    {std::chrono::seconds(0), std::chrono::minutes(1)});
  app.add_option("--engine", engine, "async (one loop) or threads (default async)")->check(CLI::IsMember({"async", "threads"}));
  app.add_option("--graph", graph, "write the link graph as JSON to this file");
  CLI11_PARSE(app, argc, argv);
  options.engine = engine == "threads" ? cr::Engine::threads : cr::Engine::async;

  try {
    const cr::CrawlResult result = cr::crawl(start, options);
    for (const cr::Page& page : result.pages)
      if (!page.error.empty()) std::printf("broken  %s: %s\n", page.url.c_str(), page.error.c_str());
    std::printf("%zu pages (%zu broken), %zu links, in %.2f s with %s (%d at once): %.0f pages/s\n", result.pages.size(),
                result.broken(), result.links(), result.seconds, cr::to_string(options.engine), options.concurrency,
                result.seconds > 0 ? static_cast<double>(result.pages.size()) / result.seconds : 0.0);
    if (!graph.empty()) {
      std::ofstream out(graph);
      cr::write_graph_json(result, out);
      if (!out) {
        std::fprintf(stderr, "gearbox-crawl: cannot write %s\n", graph.c_str());
        return 1;
      }
      std::printf("link graph written to %s\n", graph.c_str());
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gearbox-crawl: %s\n", e.what());
    return 2;
  }
}
