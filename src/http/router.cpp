#include <gearbox/http/router.hpp>

#include <algorithm>

namespace gearbox::http {

Router& Router::route(std::string method, std::string path, Handler handler) {
  const bool prefix = path.size() >= 2 && path.ends_with("/*");
  if (prefix) path.pop_back();
  for (Route& existing : m_routes) {
    if (existing.method == method && existing.path == path && existing.prefix == prefix) {
      existing.handler = std::move(handler);
      return *this;
    }
  }
  m_routes.push_back({std::move(method), std::move(path), prefix, std::move(handler)});
  return *this;
}

Router::Match Router::find(std::string_view method, std::string_view path) const {
  // The most specific pattern that matches the path: exact beats prefix, longer beats shorter.
  const Route* best = nullptr;
  auto better = [&](const Route& route) {
    if (!best) return true;
    if (route.prefix != best->prefix) return !route.prefix;
    return route.path.size() > best->path.size();
  };
  for (const Route& route : m_routes) {
    const bool matches = route.prefix ? path.starts_with(route.path) : path == route.path;
    if (matches && better(route)) best = &route;
  }
  if (!best) return {nullptr, 404, {}};

  const Route* fallback = nullptr;  // GET, for a HEAD
  std::vector<std::string_view> allowed;
  for (const Route& route : m_routes) {
    if (route.prefix != best->prefix || route.path != best->path) continue;
    if (route.method == method) return {&route.handler, 200, {}};
    if (method == "HEAD" && route.method == "GET") fallback = &route;
    allowed.push_back(route.method);
    if (route.method == "GET") allowed.push_back("HEAD");
  }
  if (fallback) return {&fallback->handler, 200, {}};
  std::sort(allowed.begin(), allowed.end());
  allowed.erase(std::unique(allowed.begin(), allowed.end()), allowed.end());
  std::string allow;
  for (std::string_view name : allowed) allow += (allow.empty() ? "" : ", ") + std::string(name);
  return {nullptr, 405, std::move(allow)};
}

}  // namespace gearbox::http
