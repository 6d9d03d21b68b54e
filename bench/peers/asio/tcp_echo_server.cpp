// Peer for `gearbox-bench tcp_echo`: a TCP echo server in standalone Asio, one
// io_context run() on the main thread, driven by the harness's load generator
// (run_echo_load) through gearbox::bench::ServerPeer.
//
// Protocol (server_peer.hpp): `--port P` (default 0: any free port) and `--threads T`
// (default 1). Binds 127.0.0.1:P,
// listens with a backlog of 4096, prints one line {"port": N} and flushes, then echoes:
// every byte read on a connection is written back on it, in order. Exits 0 on SIGTERM or
// SIGINT, and when stdin reaches end of file if stdin is a pipe or a socket (what the
// harness gives it; a server whose driver died must not linger). Other stdins are not
// watched: </dev/null reads as end of file at once, and a terminal is for Ctrl-C.
//
// How it maps to gearbox: gearbox's echo server is one task per connection on one Loop,
// reading into a buffer and writing it all back before reading again. Here each
// connection is a Session owned by the handlers in flight (shared_from_this, Asio's
// idiom), with a 16 KiB buffer (the libuv peer's size too): async_read_some into it,
// async_write of what came (all of it, however many partial writes that takes), then the
// next read. So at most one buffer per connection is ever held: while a write is pending
// the connection is not read.
//
// Handlers, not coroutines: both are idiomatic Asio, and the handler chain is the faster.
// A co_spawn'ed awaitable per connection (async_read_some / async_write with
// as_tuple(use_awaitable)) makes the same system calls (Asio's reactor tries each read
// and write at once and registers a socket with epoll once, edge-triggered) but pays
// for the coroutine machinery on every operation. Measured through ServerPeer and
// run_echo_load, 100 connections x 200,000 64-byte requests, 10 interleaved runs each on
// a shared 2-core machine: handlers 212k requests/s at 2.48 us of server CPU per
// request, coroutines 201k/s at 2.61 us (medians).
//
// On T threads it is Asio's io_context-per-thread design (its HTTP server 2 example):
// T io_contexts, each run by one thread; the acceptor lives on the first, and each
// accepted socket is handed to the next io_context in turn (async_accept into another
// context), where its Session stays. gearbox's Runtime spreads connections by stealing
// instead; Asio's other design (one io_context run by T threads) locks its scheduler.
//
// Each io_context gets concurrency hint 1 (one thread runs it), as the other Asio peers.
// ASIO_CONCURRENCY_HINT_UNSAFE also drops the scheduler's and reactor's locks; in the same
// runs it gave 217k/s at 2.40 us, within the noise, and it is not what users write.
//
// Accept errors (EMFILE, ENFILE, ENOBUFS, ENOMEM) do not end the server: it stops
// accepting for 10 ms (the listening socket stays readable, so retrying at once would
// spin) and tries again.
#include "server_options.hpp"

#include <asio.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <functional>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

namespace {

using asio::ip::tcp;

constexpr std::size_t k_buffer_bytes = 16 * 1024;
constexpr int k_backlog = 4096;
constexpr std::chrono::milliseconds k_accept_pause{10};

// One connection: reads a chunk, writes it all back, reads again, until end of file or
// an error. Owned by the completion handler in flight (there is always exactly one).
class Session : public std::enable_shared_from_this<Session> {
 public:
  explicit Session(tcp::socket socket) : m_socket(std::move(socket)) {}

  void start() { read(); }

 private:
  void read() {
    m_socket.async_read_some(asio::buffer(m_buffer),
                             [self = shared_from_this()](const asio::error_code& error, std::size_t bytes) {
                               if (!error) self->write(bytes);  // else: EOF or error, the socket closes with self
                             });
  }

  void write(std::size_t bytes) {
    asio::async_write(m_socket, asio::buffer(m_buffer.data(), bytes),
                      [self = shared_from_this()](const asio::error_code& error, std::size_t) {
                        if (!error) self->read();
                      });
  }

  tcp::socket m_socket;
  std::array<char, k_buffer_bytes> m_buffer;
};

class Server {
 public:
  // Accepts on contexts[0]; serves each connection on the next context in turn.
  Server(std::vector<std::unique_ptr<asio::io_context>>& contexts, int port)
      : m_contexts(contexts), m_acceptor(*contexts[0]), m_pause(*contexts[0]) {
    const tcp::endpoint endpoint(asio::ip::make_address_v4("127.0.0.1"), static_cast<unsigned short>(port));
    m_acceptor.open(endpoint.protocol());
    m_acceptor.set_option(tcp::acceptor::reuse_address(true));
    m_acceptor.bind(endpoint);
    m_acceptor.listen(k_backlog);
  }

  int port() const { return m_acceptor.local_endpoint().port(); }

  void accept() {
    asio::io_context& next = *m_contexts[m_next];
    m_next = (m_next + 1) % m_contexts.size();
    m_acceptor.async_accept(next, [this](const asio::error_code& error, tcp::socket socket) {
      if (!error) {
        asio::error_code ignored;  // a connection already reset fails here and at its first read
        socket.set_option(tcp::no_delay(true), ignored);
        std::make_shared<Session>(std::move(socket))->start();
        accept();
      } else if (error == asio::error::operation_aborted) {
        return;  // shutting down
      } else if (error == asio::error::no_descriptors || error == asio::error::no_buffer_space ||
                 error == asio::error::no_memory || error.value() == ENFILE) {
        m_pause.expires_after(k_accept_pause);
        m_pause.async_wait([this](const asio::error_code& wait_error) {
          if (!wait_error) accept();
        });
      } else {
        accept();  // e.g. a connection aborted before it was accepted
      }
    });
  }

 private:
  std::vector<std::unique_ptr<asio::io_context>>& m_contexts;
  std::size_t m_next = 0;
  tcp::acceptor m_acceptor;
  asio::steady_timer m_pause;
};

bool stdin_is_pipe_or_socket() {
  struct stat info{};
  return ::fstat(STDIN_FILENO, &info) == 0 && (S_ISFIFO(info.st_mode) || S_ISSOCK(info.st_mode));
}

// Reads and discards stdin until end of file or an error, then calls `stop`.
class StdinWatch {
 public:
  StdinWatch(asio::io_context& io, std::function<void()> stop) : m_stop(std::move(stop)), m_stdin(io, ::dup(STDIN_FILENO)) {}

  void start() {
    m_stdin.async_read_some(asio::buffer(m_buffer), [this](const asio::error_code& error, std::size_t) {
      if (error) {
        m_stop();
      } else {
        start();
      }
    });
  }

 private:
  std::function<void()> m_stop;
  asio::posix::stream_descriptor m_stdin;
  std::array<char, 256> m_buffer;
};

}  // namespace

int main(int argc, char** argv) {
  const gearbox_peer::ServerOptions options =
      gearbox_peer::parse_server_options(argc, argv, "peer-asio-tcp_echo_server [--port P] [--threads T]");
  try {
    std::vector<std::unique_ptr<asio::io_context>> contexts;
    for (int i = 0; i < options.threads; ++i) contexts.push_back(std::make_unique<asio::io_context>(1));
    asio::io_context& io = *contexts[0];
    const auto stop_all = [&contexts] {
      for (auto& context : contexts) context->stop();
    };
    asio::signal_set stop_signals(io, SIGINT, SIGTERM);
    stop_signals.async_wait([&stop_all](const asio::error_code& error, int) {
      if (!error) stop_all();
    });

    Server server(contexts, options.port);
    server.accept();

    std::unique_ptr<StdinWatch> stdin_watch;
    if (stdin_is_pipe_or_socket()) {
      stdin_watch = std::make_unique<StdinWatch>(io, stop_all);
      stdin_watch->start();
    }

    // The other contexts' threads block every signal: the signals go to this one.
    std::vector<std::thread> threads;
    {
      sigset_t all, previous;
      sigfillset(&all);
      pthread_sigmask(SIG_BLOCK, &all, &previous);
      for (std::size_t i = 1; i < contexts.size(); ++i)
        threads.emplace_back([context = contexts[i].get()] {
          const auto work = asio::make_work_guard(*context);
          context->run();
        });
      pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    }

    gearbox_peer::announce_port(server.port());
    io.run();
    gearbox_peer::block_stop_signals();  // before ~signal_set restores their default action
    stop_all();
    for (auto& thread : threads) thread.join();
  } catch (const std::exception& error) {  // cannot bind or listen, most likely
    std::fprintf(stderr, "peer-asio-tcp_echo_server: %s\n", error.what());
    return 1;
  }
  return 0;
}
