// The command line shared by the thread-engine peers (bench/peers/tbb, stdasync and
// asio/to_thread_latency): `--n N` and `--threads T`, in any order, each at most once,
// nothing else. A bad command line prints the peer's usage on stderr and exits with 2,
// as every peer must.
#pragma once

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace gearbox_peer {

struct PeerOptions {
  long n = 0;
  int threads = 2;
};

struct OptionLimits {
  long default_n;
  long min_n;
  long max_n;
  int max_threads = 1024;
};

[[noreturn]] inline void usage(const char* text) {
  std::fprintf(stderr, "usage: %s\n", text);
  std::exit(2);
}

// Parses a whole argument as a base-10 long in [min, max]; false if it is anything else.
inline bool parse_long(const char* text, long min, long max, long& out) {
  errno = 0;
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  if (*text == '\0' || *end != '\0' || errno == ERANGE || value < min || value > max) return false;
  out = value;
  return true;
}

// `usage_text` is printed after "usage: ", e.g. "peer-tbb-fib [--n N] [--threads T]".
inline PeerOptions parse_options(int argc, char** argv, const OptionLimits& limits, const char* usage_text) {
  PeerOptions options;
  options.n = limits.default_n;
  bool seen_n = false;
  bool seen_threads = false;
  for (int i = 1; i < argc; ++i) {
    const bool is_n = std::strcmp(argv[i], "--n") == 0;
    const bool is_threads = std::strcmp(argv[i], "--threads") == 0;
    if ((!is_n && !is_threads) || i + 1 >= argc) usage(usage_text);
    bool& seen = is_n ? seen_n : seen_threads;
    if (seen) usage(usage_text);
    seen = true;
    long value = 0;
    if (is_n) {
      if (!parse_long(argv[++i], limits.min_n, limits.max_n, value)) usage(usage_text);
      options.n = value;
    } else {
      if (!parse_long(argv[++i], 1, limits.max_threads, value)) usage(usage_text);
      options.threads = static_cast<int>(value);
    }
  }
  return options;
}

}  // namespace gearbox_peer
