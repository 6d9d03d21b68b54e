// gearbox-api: an HTTP API on one loop (or, with --threads N, on a gb::Runtime of N
// workers) that offloads CPU work to worker processes and blocking calls to threads, so
// /health stays fast under load. See README.md.
//
//   gearbox-api --port 8080 &            # --threads 2: the same server on 2 workers
//   curl 'http://127.0.0.1:8080/compute?n=2000000'
//   curl 'http://127.0.0.1:8080/legacy?ms=500'
//   wrk -t1 -c50 -d5s http://127.0.0.1:8080/health
#include <signal.h>

#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include <gearbox/gearbox.hpp>
#include <gearbox/http/server.hpp>
#include <gearbox/os/signal.hpp>

#include "api.hpp"

namespace gb = gearbox;

namespace {

gb::Task<void> stop_on_signal(gb::os::SignalSet& signals, gb::http::Server& server) {
  const int which = co_await signals.wait();
  std::fprintf(stderr, "gearbox-api: %s, finishing the requests in flight\n", ::sigabbrev_np(which));
  server.stop();
}

gb::Task<int> serve(gb::http::Server& server, gb::net::TcpListener& listener, gb::os::SignalSet& signals) {
  gb::JoinHandle<void> watcher = gb::spawn(stop_on_signal(signals, server));
  co_await server.serve(listener);
  watcher.cancel();
  try {
    co_await watcher;
  } catch (const gb::Cancelled&) {
  }
  co_return 0;
}

}  // namespace

int main(int argc, char** argv) {
  gb::init(argc, argv);  // a worker process never returns from here

  CLI::App app{"gearbox-api: an async HTTP API that offloads CPU work to processes and blocking calls to threads"};
  std::string host = "127.0.0.1";
  int port = 8080;
  std::size_t workers = 0;
  unsigned threads = 1;
  bool allow_crash = false;
  bool quiet = false;
  bool port_json = false;
  app.add_option("--host", host, "address to listen on (default 127.0.0.1)");
  app.add_option("--port", port, "port (0: any free one, printed)")->check(CLI::Range(0, 65535));
  app.add_option("--workers", workers, "worker processes for /compute (default: one per core)");
  app.add_option("--threads", threads, "threads serving HTTP: 1 runs one loop, more a gb::Runtime of that many workers")
      ->check(CLI::Range(1u, 1024u))
      ->capture_default_str();
  app.add_flag("--allow-crash", allow_crash, "serve /crash, which kills the worker that takes it");
  app.add_flag("--quiet", quiet, "do not log bad requests");
  app.add_flag("--port-json", port_json, "print {\"port\": N} once listening (as gearbox-bench's server peers do)");
  CLI11_PARSE(app, argc, argv);

  try {
    // Before any thread starts, on the thread that runs the loop or waits for the runtime
    // (see signal.hpp).
    gb::os::SignalSet signals{SIGINT, SIGTERM};
    gb::ProcessPool pool{{.workers = workers}};
    gb::http::ServerOptions options;
    if (!quiet) options.log = [](std::string_view line) { std::fprintf(stderr, "gearbox-api: %.*s\n", int(line.size()), line.data()); };
    gb::http::Server server(gearbox::api_example::make_router(pool, {.allow_crash = allow_crash}), options);
    gb::net::TcpListener listener =
        gb::net::TcpListener::bind(gb::net::SocketAddress::ip(host, static_cast<std::uint16_t>(port)));
    if (port_json) std::printf("{\"port\": %u}\n", unsigned{listener.local_address().port()});
    else
      std::printf("gearbox-api: listening on http://%s (%u serving thread%s, %zu worker processes)\n",
                  listener.local_address().to_string().c_str(), threads, threads == 1 ? "" : "s", pool.size());
    std::fflush(stdout);
    int code = 0;
    if (threads == 1) {
      code = gb::run(serve(server, listener, signals));
    } else {
      gb::Runtime runtime({.threads = threads});
      code = runtime.run(serve(server, listener, signals));
    }
    pool.shutdown();
    return code;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gearbox-api: %s\n", e.what());
    return 1;
  }
}
