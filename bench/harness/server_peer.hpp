// Runs a benchmark's server peer (an echo server written for Asio, libuv, ...) as a child
// process for as long as a load generator drives it, then stops it and collects what it
// cost: CPU time and peak memory. The counterpart of run_peer for peers that serve
// instead of running to completion.
//
// A server peer is a program that binds 127.0.0.1, prints exactly one line
// `{"port": N}` on stdout (and flushes it), serves until it is told to stop, and then
// exits 0. It is told to stop two ways at once: its stdin (a pipe held here) reaches end
// of file, and its process group gets SIGTERM. Watching stdin is what keeps a server
// whose driver died from lingering.
//
//   gearbox::bench::ServerPeer server({"asio", {dir / "peer-asio-tcp_echo_server"}}, 10s);
//   if (!server.started()) report(server.error());
//   auto load = gearbox::bench::run_echo_load({.port = server.port(), ...});
//   gearbox::bench::ServerStats stats = server.stop(5s);   // stats.cpu_ms, stats.peak_rss_kb
//
// Nothing here throws on a child's failure (a missing program, a crash, a hang, no port):
// errors come back in error() and ServerStats::error.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>

#include "peer_runner.hpp"

namespace gearbox::bench {

// How a server peer ended and what it used over its whole life (start-up included).
struct ServerStats {
  // The server was running until stop() and then exited with code 0, or was ended by the
  // SIGTERM stop() sent (the default action of SIGTERM is a clean end for a program that
  // holds nothing to flush), within stop()'s limit.
  bool ok = false;
  std::string exit;      // how it ended, e.g. "exited with code 0"; empty if it never started
  std::string error;     // why ok == false; empty when ok
  double cpu_ms = 0;     // user + system CPU time (wait4's rusage, its reaped children included)
  // The server's peak resident set in KiB (VmHWM in /proc/<pid>/status, read just before
  // stop() asks it to exit); 0 if unknown (it had already ended). Not wait4's
  // ru_maxrss: on Linux that includes the peak memory of the process that spawned it.
  long peak_rss_kb = 0;
};

// One running server peer. Not thread-safe: one thread owns it (several ServerPeers may
// run at once on different threads). Movable, not copyable.
class ServerPeer {
 public:
  // Starts spec.argv as a child process and waits (blocking the calling thread) until it
  // prints its `{"port": N}` line, at most `startup_limit`. The child leads a process
  // group of its own; its stdin is a pipe held here, its stdout a pipe read here, its
  // stderr the caller's; it starts with an empty signal mask and default dispositions
  // (as in run_peer), and inherits no other descriptor of ours (all are close-on-exec).
  // Lines before the port line are ignored; nothing reads stdout again until stop(), so
  // a server must not write more than a pipe holds (64 KiB) after its port line.
  // On failure (program missing, exit or crash before the port line, no port line within
  // the limit: then it and its process group are killed) the child has been reaped,
  // started() is false and error() says why. Never throws.
  ServerPeer(const PeerSpec& spec, std::chrono::milliseconds startup_limit);

  // Stops the server as stop() does, with a limit of 2 s, if it is still running.
  ~ServerPeer();

  ServerPeer(ServerPeer&&) noexcept;
  ServerPeer& operator=(ServerPeer&&) noexcept;  // stops the server this one held first
  ServerPeer(const ServerPeer&) = delete;
  ServerPeer& operator=(const ServerPeer&) = delete;

  // True if the server printed its port; stays true after stop().
  [[nodiscard]] bool started() const;
  // Why the start failed; empty if started().
  [[nodiscard]] const std::string& error() const;
  // The port the server listens on (127.0.0.1), or 0 if it did not start.
  [[nodiscard]] int port() const;
  // The child's pid, which leads its process group; 0 if it did not start. Valid until
  // stop() (after that the pid may belong to another process).
  [[nodiscard]] pid_t pid() const;
  [[nodiscard]] const std::string& name() const;

  // Closes the server's stdin, sends SIGTERM to its process group, and waits up to
  // `limit` for it to exit; past that, kills the group with SIGKILL (ok = false). Then
  // reaps it and reports its CPU time and peak memory. A server that had already exited
  // (a crash) is reported as such (ok = false) with the figures it left. Blocks the
  // calling thread. Calling it again returns the same stats; on a server that did not
  // start it returns ok = false with error(). Never throws. As with run_peer, the caller
  // must not reap children with waitpid(-1) or ignore SIGCHLD meanwhile.
  ServerStats stop(std::chrono::milliseconds limit);

 private:
  struct State;
  std::unique_ptr<State> m_state;
};

}  // namespace gearbox::bench
