// A same-site web crawler on either engine: from a start URL, follow the links of every
// page of the same origin (scheme, host, port), breadth first, to a bounded depth, with
// a bounded number of requests in flight and a politeness delay between request starts.
//
//   engine async    one loop and http::Client: `concurrency` worker tasks share a frontier
//   engine threads  `concurrency` threads share it, each calling fetch_blocking
//
//   CrawlResult result = crawl("http://127.0.0.1:8080/", {.max_depth = 3, .concurrency = 8});
//   write_graph_json(result, std::cout);   // pages, their status and their links
//
// Every URL is fetched at most once (links are normalised: no fragment, lower-case host),
// so loops and pages linked from many places cost one request each. A page that fails
// (a 404, a refused connection, a timeout) is kept in the result with its status or error
// and its links are not followed; the crawl goes on. Only text/html bodies are searched
// for links (<a href=...>, by a tolerant scanner, not a full HTML parser).
#pragma once

#include <chrono>
#include <cstddef>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace gearbox::crawler {

enum class Engine { async, threads };
const char* to_string(Engine engine) noexcept;

struct CrawlOptions {
  int max_depth = 3;        // the start page is depth 0
  int concurrency = 8;      // requests in flight at most
  std::size_t max_pages = 10'000;
  std::chrono::milliseconds politeness{0};  // at least this long between two request starts
  std::chrono::milliseconds timeout{10'000};
  Engine engine = Engine::async;
};

struct Page {
  std::string url;
  int depth = 0;
  int status = 0;                  // 0: no response (see error)
  std::string error;               // why it failed; "" when it answered 2xx
  std::vector<std::string> links;  // same-site links found on it (normalised, each once)
};

struct CrawlResult {
  std::vector<Page> pages;  // in the order they were discovered
  double seconds = 0;
  std::size_t broken() const noexcept;  // pages that did not answer 2xx
  std::size_t links() const noexcept;   // edges of the link graph
};

// std::invalid_argument if `start` is not an http(s) URL or the options are out of range.
CrawlResult crawl(const std::string& start, const CrawlOptions& options);

// The href targets of the <a> elements of `html`, as written (not yet resolved).
std::vector<std::string> find_hrefs(std::string_view html);

// {"pages": [{"url", "depth", "status", "error", "links": [...]}], "seconds": ...}
void write_graph_json(const CrawlResult& result, std::ostream& out);

}  // namespace gearbox::crawler
