// README's I/O sample, compiled.
#include <csignal>
#include <string>

#include <gearbox/gearbox.hpp>

namespace gb = gearbox;

// README sample begin
gb::Task<void> echo(gb::net::TcpStream client) {
  gb::net::BufferedReader reader{client, {.max_line = 1024}};
  while (auto line = co_await reader.read_line())           // nullopt: the client left
    co_await client.write_all(std::string(*line) + "\n");
}

gb::Task<int> serve() {
  auto listener = gb::net::TcpListener::bind(gb::net::SocketAddress::loopback(7000));
  auto acceptor = gb::spawn([](gb::net::TcpListener& l) -> gb::Task<void> {
    for (;;) gb::spawn(echo(co_await l.accept())).detach();
  }(listener));
  co_await gb::os::signal(SIGINT);                          // Ctrl-C: a clean stop
  co_return 0;                                              // the loop cancels the rest
}

gb::Task<void> files(gb::os::ProcessOptions options) {
  gb::os::Output out = co_await gb::os::run(options);      // subprocess.run, via pidfd
  std::string text = co_await gb::os::read_file("in.txt"); // io_uring: no thread waits
}
// README sample end
