#include "crawl.hpp"

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include <gearbox/combinators.hpp>
#include <gearbox/http/client.hpp>
#include <gearbox/http/url.hpp>
#include <gearbox/loop.hpp>
#include <gearbox/sync/event.hpp>
#include <gearbox/time.hpp>

namespace gearbox::crawler {
namespace {

using Clock = std::chrono::steady_clock;

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool starts_with_ignoring_case(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() &&
         std::equal(prefix.begin(), prefix.end(), text.begin(), [](char a, char b) { return lower(a) == lower(b); });
}

std::string decode_entities(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text.substr(i).starts_with("&amp;")) {
      out += '&';
      i += 4;
    } else {
      out += text[i];
    }
  }
  return out;
}

// The pages found so far and those still to fetch, shared by the workers of either engine
// (every member under m_mutex).
class Frontier {
public:
  Frontier(const http::Url& origin, const CrawlOptions& options) : m_origin(origin), m_options(options) {
    add(origin.text, 0);
  }

  // The next page to fetch (its index), or nullopt if none is queued now.
  std::optional<std::size_t> take() {
    std::lock_guard lock(m_mutex);
    return take_locked();
  }
  // The next page to fetch, waiting while others are in flight; nullopt when the crawl is done.
  std::optional<std::size_t> take_blocking() {
    std::unique_lock lock(m_mutex);
    m_changed.wait(lock, [this] { return !m_queue.empty() || m_in_flight == 0; });
    return take_locked();
  }
  bool finished() {
    std::lock_guard lock(m_mutex);
    return m_queue.empty() && m_in_flight == 0;
  }
  std::string url_of(std::size_t index) {
    std::lock_guard lock(m_mutex);
    return m_pages[index].url;
  }
  // How long to wait before starting a request, keeping `politeness` between starts.
  Clock::duration reserve_start() {
    std::lock_guard lock(m_mutex);
    const auto now = Clock::now();
    const auto start = std::max(now, m_next_start);
    m_next_start = start + m_options.politeness;
    return start - now;
  }

  // Records what fetching page `index` gave, and queues the new same-site pages it links to.
  void complete(std::size_t index, const http::FetchResponse* response, std::string error) {
    std::vector<std::string> links;
    if (response && response->status >= 200 && response->status < 300) links = same_site_links(*response);
    {
      std::lock_guard lock(m_mutex);
      Page& page = m_pages[index];
      page.status = response ? response->status : 0;
      page.error = std::move(error);
      const int depth = page.depth;
      for (const std::string& link : links) {
        if (depth + 1 <= m_options.max_depth && m_pages.size() < m_options.max_pages && m_seen.insert(link).second)
          add_locked(link, depth + 1);
      }
      m_pages[index].links = std::move(links);
      --m_in_flight;
    }
    m_changed.notify_all();
  }

  std::vector<Page> take_pages() {
    std::lock_guard lock(m_mutex);
    return std::move(m_pages);
  }

private:
  std::optional<std::size_t> take_locked() {
    if (m_queue.empty()) return std::nullopt;
    const std::size_t index = m_queue.front();
    m_queue.pop_front();
    ++m_in_flight;
    return index;
  }
  void add(const std::string& url, int depth) {
    std::lock_guard lock(m_mutex);
    m_seen.insert(url);
    add_locked(url, depth);
  }
  void add_locked(const std::string& url, int depth) {
    Page page;
    page.url = url;
    page.depth = depth;
    m_pages.push_back(std::move(page));
    m_queue.push_back(m_pages.size() - 1);
  }
  // The distinct same-origin links of an HTML response, resolved against its final URL.
  std::vector<std::string> same_site_links(const http::FetchResponse& response) const {
    std::vector<std::string> links;
    const auto type = response.headers.get("Content-Type");
    if (!type || type->find("text/html") == std::string_view::npos) return links;
    const std::optional<http::Url> base = http::Url::parse(response.url);
    if (!base || !base->same_origin(m_origin)) return links;  // redirected off the site
    std::unordered_set<std::string> distinct;
    for (const std::string& href : find_hrefs(response.body)) {
      const std::optional<std::string> link = http::join_url(base->text, href);
      if (!link) continue;
      const std::optional<http::Url> parsed = http::Url::parse(*link);
      if (parsed && parsed->same_origin(m_origin) && distinct.insert(*link).second) links.push_back(*link);
    }
    return links;
  }

  const http::Url m_origin;
  const CrawlOptions& m_options;
  std::mutex m_mutex;
  std::condition_variable m_changed;
  std::vector<Page> m_pages;
  std::deque<std::size_t> m_queue;
  std::unordered_set<std::string> m_seen;
  int m_in_flight = 0;
  Clock::time_point m_next_start{};
};

http::FetchOptions fetch_options(const CrawlOptions& options) {
  http::FetchOptions fetch;
  fetch.timeout = options.timeout;
  fetch.max_body_bytes = 8 * 1024 * 1024;
  return fetch;
}

std::string error_of(const http::FetchResponse& response) {
  if (response.status >= 200 && response.status < 300) return {};
  return "HTTP " + std::to_string(response.status) + " " + std::string(http::reason_phrase(response.status));
}

Task<void> crawl_worker(Frontier& frontier, http::Client& client, Event& changed, const CrawlOptions& options) {
  for (;;) {
    const std::optional<std::size_t> index = frontier.take();
    if (!index) {
      if (frontier.finished()) {
        changed.set();  // the others see it too
        co_return;
      }
      changed.clear();
      co_await changed.wait();  // until a page completes and may have queued more
      continue;
    }
    if (const auto wait = frontier.reserve_start(); wait > Clock::duration::zero()) co_await sleep_for(wait);
    try {
      // Named, not temporaries in the co_await expression (see http/client.hpp on g++ 12).
      std::string url = frontier.url_of(*index);
      http::FetchOptions fetch = fetch_options(options);
      const http::FetchResponse response = co_await client.fetch(std::move(url), std::move(fetch));
      frontier.complete(*index, &response, error_of(response));
    } catch (const Cancelled&) {
      throw;
    } catch (const std::exception& e) {
      frontier.complete(*index, nullptr, e.what());
    }
    changed.set();
  }
}

void crawl_thread(Frontier& frontier, const CrawlOptions& options) {
  while (const std::optional<std::size_t> index = frontier.take_blocking()) {
    std::this_thread::sleep_for(frontier.reserve_start());
    try {
      const http::FetchResponse response = http::fetch_blocking(frontier.url_of(*index), fetch_options(options));
      frontier.complete(*index, &response, error_of(response));
    } catch (const std::exception& e) {
      frontier.complete(*index, nullptr, e.what());
    }
  }
}

}  // namespace

const char* to_string(Engine engine) noexcept { return engine == Engine::async ? "async" : "threads"; }

std::size_t CrawlResult::broken() const noexcept {
  return static_cast<std::size_t>(std::count_if(pages.begin(), pages.end(), [](const Page& p) { return !p.error.empty(); }));
}

std::size_t CrawlResult::links() const noexcept {
  std::size_t total = 0;
  for (const Page& page : pages) total += page.links.size();
  return total;
}

std::vector<std::string> find_hrefs(std::string_view html) {
  std::vector<std::string> hrefs;
  for (std::size_t at = html.find('<'); at != std::string_view::npos; at = html.find('<', at + 1)) {
    const std::string_view rest = html.substr(at + 1);
    if (!starts_with_ignoring_case(rest, "a") || rest.size() < 2 || !std::isspace(static_cast<unsigned char>(rest[1])))
      continue;
    const std::size_t end = rest.find('>');
    const std::string_view tag = rest.substr(1, end == std::string_view::npos ? rest.size() - 1 : end - 1);
    for (std::size_t i = 0; i + 4 <= tag.size(); ++i) {
      if (!starts_with_ignoring_case(tag.substr(i), "href") || (i > 0 && !std::isspace(static_cast<unsigned char>(tag[i - 1]))))
        continue;
      std::size_t j = i + 4;
      while (j < tag.size() && std::isspace(static_cast<unsigned char>(tag[j]))) ++j;
      if (j >= tag.size() || tag[j] != '=') continue;
      ++j;
      while (j < tag.size() && std::isspace(static_cast<unsigned char>(tag[j]))) ++j;
      if (j >= tag.size()) break;
      std::size_t value_end;
      std::size_t value_start = j;
      if (tag[j] == '"' || tag[j] == '\'') {
        value_start = j + 1;
        value_end = tag.find(tag[j], value_start);
        if (value_end == std::string_view::npos) break;  // an unclosed quote: no href here
      } else {
        value_end = j;
        while (value_end < tag.size() && !std::isspace(static_cast<unsigned char>(tag[value_end]))) ++value_end;
      }
      hrefs.push_back(decode_entities(tag.substr(value_start, value_end - value_start)));
      break;  // one href per element
    }
  }
  return hrefs;
}

CrawlResult crawl(const std::string& start, const CrawlOptions& options) {
  const std::optional<http::Url> origin = http::Url::parse(start);
  if (!origin) throw std::invalid_argument("crawl: the start must be an http or https URL: " + start);
  if (options.concurrency < 1 || options.max_depth < 0 || options.max_pages < 1)
    throw std::invalid_argument("crawl: concurrency and max_pages must be at least 1, max_depth at least 0");
  Frontier frontier(*origin, options);
  const auto began = Clock::now();
  if (options.engine == Engine::async) {
    Loop loop;
    loop.run([&]() -> Task<void> {
      http::Client client({.max_connections = options.concurrency});
      Event changed;
      std::vector<Task<void>> workers;
      for (int i = 0; i < options.concurrency; ++i) workers.push_back(crawl_worker(frontier, client, changed, options));
      co_await gather(std::move(workers));
    }());
  } else {
    std::vector<std::thread> threads;
    for (int i = 0; i < options.concurrency; ++i) threads.emplace_back([&] { crawl_thread(frontier, options); });
    for (std::thread& thread : threads) thread.join();
  }
  CrawlResult result;
  result.seconds = std::chrono::duration<double>(Clock::now() - began).count();
  result.pages = frontier.take_pages();
  return result;
}

void write_graph_json(const CrawlResult& result, std::ostream& out) {
  nlohmann::json pages = nlohmann::json::array();
  for (const Page& page : result.pages)
    pages.push_back({{"url", page.url}, {"depth", page.depth}, {"status", page.status}, {"error", page.error}, {"links", page.links}});
  out << nlohmann::json{{"pages", pages}, {"seconds", result.seconds}}.dump(1) << "\n";
}

}  // namespace gearbox::crawler
