// gearbox-echo-server: the gearbox side of the tcp_echo benchmark, written the way a user
// would write an echo server with gearbox: one loop, one task per connection.
//
//   gearbox-echo-server [--port P]
//
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
#include <cstdlib>
#include <cstring>
#include <string>

#include <gearbox/gearbox.hpp>

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
  for (;;) gb::spawn(echo(co_await listener.accept()), gb::Start::eager).detach();
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

gb::Task<int> serve(int port) {
  gb::os::SignalSet stop_signals{SIGTERM, SIGINT};
  auto listener = net::TcpListener::bind(net::SocketAddress::loopback(static_cast<std::uint16_t>(port)), {.backlog = 4096});
  std::printf("{\"port\": %u}\n", listener.local_address().port());
  std::fflush(stdout);
  auto acceptor = gb::spawn(accept_forever(listener));
  co_await gb::when_any(stop_signals.wait(), wait_for_stdin_eof());
  acceptor.cancel();
  co_return 0;  // the loop cancels the connections' tasks as it ends
}

}  // namespace

int main(int argc, char** argv) {
  int port = 0;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
      port = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: %s [--port P]\n", argv[0]);
      return 2;
    }
  }
  try {
    return gb::run(serve(port));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gearbox-echo-server: %s\n", e.what());
    return 1;
  }
}
