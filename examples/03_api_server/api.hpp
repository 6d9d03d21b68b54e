// The API server's routes: one loop answers every request, and each endpoint shows which
// engine fits its work.
//
//   GET /health            "ok": answered on the loop at once, however busy the rest is
//   GET /compute?n=N       counts the primes below N in a worker process (CPU work:
//                          the ProcessPool runs it on another core; the loop only waits)
//   GET /legacy?ms=M       a blocking call that takes M ms (a library with no async API),
//                          run on the blocking pool by to_thread; the loop only waits
//   GET /crash             (only with allow_crash) kills the worker that takes it: that
//                          request gets 502, every other request goes on
//
// Answers are JSON. A bad parameter is 400 with {"error": "..."}; a worker that crashed
// is 502.
//
//   gb::init(argc, argv);
//   gb::ProcessPool pool;
//   gb::http::Server server(gearbox::api_example::make_router(pool));
//
// The router keeps a reference to `pool`, which must outlive it and the server.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include <gearbox/http/router.hpp>
#include <gearbox/process/process_pool.hpp>

namespace gearbox::api_example {

struct ApiOptions {
  std::uint64_t max_compute_n = 100'000'000;  // /compute's largest n (a bound on one request's CPU time)
  int max_legacy_ms = 60'000;                 // /legacy's longest call
  bool allow_crash = false;                   // serve /crash (tests and demonstrations)
  // The blocking call /legacy makes (default: legacy_lookup); run by to_thread.
  std::function<std::string(int ms)> legacy_call = {};
};

http::Router make_router(ProcessPool& pool, ApiOptions options = {});

// The CPU work of /compute: how many primes are below `n`, by trial division (deliberately
// plain: about 0.6 s for n = 2,000,000 on one core). Registered as a remote function.
std::uint64_t count_primes(std::uint64_t n);

// The blocking call of /legacy: sleeps `ms` milliseconds, then says which thread ran it.
std::string legacy_lookup(int ms);

}  // namespace gearbox::api_example
