// The load generator of the tcp_echo benchmark: drives an echo server on 127.0.0.1 with
// many connections doing ping-pong and measures round trips per second and latency. It
// is neutral: plain epoll on the calling thread, no gearbox, so gearbox's server and its
// peers (Asio, libuv, ...) are measured by the same client.
//
//   gearbox::bench::ServerPeer server(spec, 10s);
//   auto load = gearbox::bench::run_echo_load({.port = server.port(), .connections = 100,
//                                              .requests = 200'000});
//   if (!load.ok) report(load.error);
//
// Each connection does ping-pong: it writes one message, reads until the whole message
// has come back, checks that every byte is the one it sent (the contents change with
// every request: a request number in the first bytes, a per-connection pattern in the
// rest), records the round trip's latency, and starts the next, until `requests` round
// trips are done across all connections. Connections are all established before the
// clock starts. Latency is measured from the first byte written to the last byte read.
//
// The generator shares the machine with the server it measures, so it costs little per
// request: no allocation once running, one epoll_wait per batch of ready connections,
// level-triggered, a write per request straight from the loop (EPOLLOUT only while a
// write is partial), a read per readiness.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

namespace gearbox::bench {

struct EchoLoadOptions {
  int port = 0;                    // the server's port on 127.0.0.1 (1..65535)
  int connections = 1;             // open at once, >= 1
  long requests = 1;               // round trips in total across all connections, >= 1
  std::size_t message_bytes = 64;  // per request, 1 .. 16 MiB
  // The whole run (connecting included) must end within this, or it stops with ok = false.
  std::chrono::milliseconds time_limit{std::chrono::seconds{60}};
};

struct EchoLoadResult {
  bool ok = false;          // every request came back whole and unchanged within the time limit
  std::string error;        // why ok == false (the first failure); empty when ok
  long requests_done = 0;   // round trips completed and verified (also when not ok)
  double seconds = 0;       // from the first request to the last completed one (connecting excluded)
  double requests_per_sec = 0;
  // Round-trip latency percentiles over the completed requests, in microseconds, from a
  // log-linear histogram: each is within 1% of the exact value. 0 when none completed.
  double p50_us = 0;
  double p99_us = 0;
};

// Connects `connections` sockets to 127.0.0.1:port and runs `requests` ping-pong round
// trips over them (see above); with fewer requests than connections, some connections
// send nothing. Blocks the calling thread until done, the first error (connection
// refused or reset, the server closing a connection, bytes that differ from those sent,
// more bytes than were sent, too many open files: raise `ulimit -n`), or the time limit.
// All sockets are closed before it returns. Never throws (errors are in the result).
// Thread-safe: runs share nothing. Writes use MSG_NOSIGNAL, so a server that vanishes
// is an error here, not a SIGPIPE.
[[nodiscard]] EchoLoadResult run_echo_load(const EchoLoadOptions& options);

}  // namespace gearbox::bench
