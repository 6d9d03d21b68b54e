// gearbox-echo-server: the gearbox side of the tcp_echo benchmark, written the way a user
// would write an echo server with gearbox: one task per connection, on one loop or on a
// Runtime of several workers (the same tasks; only main() differs).
//
//   gearbox-echo-server [--port P] [--threads T]
//
// --threads 1 (the default) runs the single-thread Loop (gb::run); T > 1 a gb::Runtime of
// T workers, where connections spread over the workers as idle ones steal them.
// Binds 127.0.0.1:P (0: any free port), prints {"port": N} on a line of its own, then
// echoes every byte back on the connection it came from until SIGTERM or SIGINT, or until
// its stdin reaches end of file (so a server whose driver died does not linger). The
// peers (bench/peers/asio, bench/peers/uv) speak the same protocol; gearbox-bench drives
// all of them with the same load (bench/harness/echo_load.hpp).
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <string>

#include <gearbox/gearbox.hpp>

#include "server_options.hpp"

namespace gb = gearbox;
namespace net = gearbox::net;

namespace {

gb::Task<void> echo(net::TcpStream stream) {
  char buffer[16 * 1024];
  try {
    for (;;) {
      const std::size_t n = co_await stream.read(std::span<char>(buffer));
      if (n == 0) co_return;
      co_await stream.write_all(std::string_view(buffer, n));
    }
  } catch (const gb::IoError&) {
    // the client reset the connection: it is gone, the others are not
  }
}

gb::Task<void> accept_forever(net::TcpListener& listener) {
  for (;;) gb::spawn(echo(co_await listener.accept())).detach();
}

// Ends when stdin reaches end of file. A stdin that cannot be watched (/dev/null, a
// regular file: epoll refuses them) is not a driver's pipe: then it never ends.
gb::Task<void> wait_for_stdin_eof() {
  ::fcntl(0, F_SETFL, ::fcntl(0, F_GETFL) | O_NONBLOCK);
  net::ByteStream input{gb::detail::AsyncFd{::fcntl(0, F_DUPFD_CLOEXEC, 0)}};
  char buffer[256];
  bool watchable = true;
  try {
    while (co_await input.read(std::span<char>(buffer)) > 0) {
    }
  } catch (const gb::IoError& e) {
    if (e.error_number() != EPERM) throw;
    watchable = false;
  }
  while (!watchable) co_await gb::sleep_for(std::chrono::hours(24));
}

// `stop_signals` is made by main(), on the thread that runs the loop or waits for the
// runtime: that thread must block them too (signal.hpp).
gb::Task<int> serve(int port, gb::os::SignalSet& stop_signals) {
  auto listener = net::TcpListener::bind(net::SocketAddress::loopback(static_cast<std::uint16_t>(port)), {.backlog = 4096});
  std::printf("{\"port\": %u}\n", listener.local_address().port());
  std::fflush(stdout);
  auto acceptor = gb::spawn(accept_forever(listener));
  co_await gb::when_any(stop_signals.wait(), wait_for_stdin_eof());
  // The acceptor may be running on another worker: let it end before the listener goes.
  acceptor.cancel();
  try {
    co_await std::move(acceptor);
  } catch (const gb::Cancelled&) {
  }
  co_return 0;  // the loop (or runtime) cancels the connections' tasks as it ends
}

}  // namespace

int main(int argc, char** argv) {
  // The peers' command line (bench/peers/common): exit 2 on anything else.
  const gearbox_peer::ServerOptions options =
      gearbox_peer::parse_server_options(argc, argv, "gearbox-echo-server [--port P] [--threads T]");
  try {
    // Blocked for the whole life of the process, not just the SignalSet's: the harness
    // closes stdin and sends SIGTERM at once, and a SIGTERM that comes after the server
    // began to stop on end of file must stay pending, not turn a clean exit into a kill.
    gearbox_peer::block_stop_signals();
    gb::os::SignalSet stop_signals{SIGTERM, SIGINT};
    if (options.threads == 1) return gb::run(serve(options.port, stop_signals));
    gb::Runtime runtime({.threads = static_cast<unsigned>(options.threads)});
    return runtime.run(serve(options.port, stop_signals));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gearbox-echo-server: %s\n", e.what());
    return 1;
  }
}
