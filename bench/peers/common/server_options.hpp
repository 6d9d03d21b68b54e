// The command line shared by the server peers (bench/peers/*/tcp_echo_server.cpp):
// `--port P` at most once (0..65535, default 0: the kernel picks a free port), nothing
// else. A bad command line prints the peer's usage on stderr and exits with 2, as every
// peer must.
//
// Also what every server peer does once it listens: print exactly one line
// `{"port": N}` on stdout and flush it (gearbox::bench::ServerPeer waits for that line).
#pragma once

#include <cstdio>
#include <cstring>

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

inline void announce_port(int port) {
  std::printf("{\"port\": %d}\n", port);
  std::fflush(stdout);
}

}  // namespace gearbox_peer
