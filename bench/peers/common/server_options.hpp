// The command line shared by the server peers (bench/peers/*/tcp_echo_server.cpp):
// `--port P` at most once (0..65535, default 0: the kernel picks a free port) and, for a
// peer that can serve on several threads, `--threads T` at most once (1..1024, default
// 1); nothing else. A bad command line prints the peer's usage on stderr and exits with
// 2, as every peer must.
//
// Also what every server peer does once it listens: print exactly one line
// `{"port": N}` on stdout and flush it (gearbox::bench::ServerPeer waits for that line);
// and, once it has begun to stop, block the stop signals (block_stop_signals).
#pragma once

#include <csignal>
#include <cstdio>
#include <cstring>

#include <pthread.h>

#include "peer_options.hpp"

namespace gearbox_peer {

// `usage_text` is printed after "usage: ", e.g. "peer-uv-tcp_echo_server [--port P]".
inline int parse_port_option(int argc, char** argv, const char* usage_text) {
  long port = 0;
  bool seen = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--port") != 0 || i + 1 >= argc || seen) usage(usage_text);
    seen = true;
    if (!parse_long(argv[++i], 0, 65535, port)) usage(usage_text);
  }
  return static_cast<int>(port);
}

struct ServerOptions {
  int port = 0;
  int threads = 1;
};

// `usage_text` is printed after "usage: ", e.g. "peer-asio-tcp_echo_server [--port P] [--threads T]".
inline ServerOptions parse_server_options(int argc, char** argv, const char* usage_text) {
  ServerOptions options;
  bool seen_port = false;
  bool seen_threads = false;
  for (int i = 1; i < argc; ++i) {
    const bool is_port = std::strcmp(argv[i], "--port") == 0;
    const bool is_threads = std::strcmp(argv[i], "--threads") == 0;
    if ((!is_port && !is_threads) || i + 1 >= argc) usage(usage_text);
    bool& seen = is_port ? seen_port : seen_threads;
    if (seen) usage(usage_text);
    seen = true;
    long value = 0;
    if (!parse_long(argv[++i], is_port ? 0 : 1, is_port ? 65535 : 1024, value)) usage(usage_text);
    (is_port ? options.port : options.threads) = static_cast<int>(value);
  }
  return options;
}

inline void announce_port(int port) {
  std::printf("{\"port\": %d}\n", port);
  std::fflush(stdout);
}

// Called once a server has begun to stop (its stdin ended, or a stop signal came): the
// harness closes stdin and sends SIGTERM at once, so a SIGTERM may arrive after the
// event loop has torn down its signal handling (Asio's ~signal_set and libuv's closed
// signal handles restore the default action) and turn a clean exit into a kill. Blocked,
// it stays pending and the process exits with 0. Call it on every thread of the server
// that may still be running (the others have ended, or block every signal).
inline void block_stop_signals() {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
}

}  // namespace gearbox_peer
