// Router: which handler answers a request, by method and path.
//
//   gb::http::Router router;
//   router.get("/health", [](gb::http::Request&) -> gb::Task<gb::http::Response> {
//     co_return gb::http::Response::text("ok\n");
//   });
//   router.post("/compute", compute);          // any callable returning Task<Response>
//   router.get("/files/*", serve_file);        // a prefix: "/files/a/b.txt" (and "/files/")
//
// A path is matched exactly, or as a prefix when the route ends in "/*". The exact route
// wins over a prefix, and a longer prefix over a shorter one. A path with no route is 404;
// a path whose routes are all for other methods is 405 with an Allow header. HEAD is
// answered by the GET handler (the server sends the head of its response only).
//
// Handlers run as tasks on the server's loop; the Request stays alive until the handler's
// task has ended, and a handler may move parts of it (the body) away. A handler that
// throws gets a 500 response; the connection goes on.
//
// Thread-safety: build the router before serving; find() is const and may run anywhere.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <gearbox/http/message.hpp>
#include <gearbox/task.hpp>

namespace gearbox::http {

using Handler = std::function<Task<Response>(Request&)>;

class Router {
public:
  // Adds a route; a second route for the same method and path replaces the first.
  Router& route(std::string method, std::string path, Handler handler);
  Router& get(std::string path, Handler handler) { return route("GET", std::move(path), std::move(handler)); }
  Router& post(std::string path, Handler handler) { return route("POST", std::move(path), std::move(handler)); }
  Router& put(std::string path, Handler handler) { return route("PUT", std::move(path), std::move(handler)); }
  Router& del(std::string path, Handler handler) { return route("DELETE", std::move(path), std::move(handler)); }

  struct Match {
    const Handler* handler = nullptr;  // null: answer `status`
    int status = 200;                  // 200 (found), 404 or 405
    std::string allow;                 // for 405: the methods the path has ("GET, HEAD, POST")
  };
  Match find(std::string_view method, std::string_view path) const;

private:
  struct Route {
    std::string method;
    std::string path;  // without the "*" of a prefix route
    bool prefix;
    Handler handler;
  };
  std::vector<Route> m_routes;
};

}  // namespace gearbox::http
