// bench_test_echo_server: PollEchoServer as a server peer, for server_peer_test. Speaks
// the server-peer protocol (server_peer.hpp): prints {"port": N}, serves until its stdin
// reaches end of file or it gets SIGTERM or SIGINT, then exits 0. Takes no arguments but
// an optional --port 0 (the kernel always picks the port).
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cstdio>

#include "poll_echo_server.hpp"

int main() {
  // Taken through a signalfd, so that the poll loop sees them and main returns 0.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  if (sigprocmask(SIG_BLOCK, &stop_signals, nullptr) != 0) return 1;
  const int signal_fd = signalfd(-1, &stop_signals, SFD_CLOEXEC);
  if (signal_fd < 0) return 1;

  gearbox_test::PollEchoServer server;
  std::printf("{\"port\": %d}\n", server.port());
  std::fflush(stdout);
  server.serve(STDIN_FILENO, signal_fd);
  return 0;
}
