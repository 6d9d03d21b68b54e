// Peer for `gearbox-bench tcp_echo`: a TCP echo server in libuv, one uv loop run on the
// main thread, driven by the harness's load generator (run_echo_load) through
// gearbox::bench::ServerPeer.
//
// Protocol (server_peer.hpp): `--port P` (default 0: any free port). Binds 127.0.0.1:P,
// listens with a backlog of 4096, prints one line {"port": N} and flushes, then echoes:
// every byte read on a connection is written back on it, in order. Exits 0 on SIGTERM or
// SIGINT, and when stdin reaches end of file if stdin is a pipe or a socket (what the
// harness gives it; a server whose driver died must not linger). Other stdins are not
// watched: </dev/null reads as end of file at once, and a terminal is for Ctrl-C.
//
// How it maps to gearbox: gearbox's echo server is one task per connection on one Loop,
// reading into a buffer and writing it all back before reading again. Here each
// connection is a Connection holding its uv_tcp_t, one uv_write_t and a 16 KiB buffer
// (the Asio peer's size too) that the alloc callback hands out every time: the buffer is
// free whenever libuv reads, because reading stops while a write is pending.
//
// The read callback writes what came with uv_try_write first: on loopback, and for
// messages that fit the socket buffer, that writes it all at once and reading simply goes
// on, with no request queued and no change to the epoll set. Only when the socket takes
// less (a slow reader, a large message) does the rest go through uv_write, with reading
// stopped until its callback: bounded memory, one buffer per connection. Plain uv_write
// for every chunk, with uv_read_stop/uv_read_start around it, is the other idiomatic
// form; it queues a request and defers the callback to the next loop turn each time.
// Measured through ServerPeer and run_echo_load, 100 connections x 200,000 64-byte
// requests, 10 interleaved runs each on a shared 2-core machine: uv_try_write first
// 225k requests/s at 2.27 us of server CPU per request, plain uv_write 193k/s at
// 2.82 us (medians).
//
// Accept errors do not end the server: libuv itself handles EMFILE (it closes a spare
// descriptor to accept and drop the waiting connections, so the listening socket does not
// spin) and reports the error to the connection callback, which carries on.
#include "server_options.hpp"

#include <uv.h>

#include <arpa/inet.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>

namespace {

constexpr std::size_t k_buffer_bytes = 16 * 1024;
constexpr int k_backlog = 4096;

struct Connection {
  uv_tcp_t handle;       // handle.data points back here
  uv_write_t write;      // the one write that can be pending
  char buffer[k_buffer_bytes];
};

Connection* connection_of(uv_handle_t* handle) { return static_cast<Connection*>(handle->data); }

// Every handle's close callback: connections are the only handles allocated here (the
// others live in main and have data == nullptr).
void on_closed(uv_handle_t* handle) { delete connection_of(handle); }

void close_handle(uv_handle_t* handle) {
  if (!uv_is_closing(handle)) uv_close(handle, on_closed);
}

void on_alloc(uv_handle_t* handle, std::size_t /*suggested*/, uv_buf_t* buffer) {
  Connection* connection = connection_of(handle);
  *buffer = uv_buf_init(connection->buffer, sizeof connection->buffer);
}

void on_read(uv_stream_t* stream, ssize_t bytes, const uv_buf_t* buffer);

void on_written(uv_write_t* request, int status) {
  auto* stream = request->handle;
  if (status < 0 || uv_read_start(stream, on_alloc, on_read) != 0) {
    close_handle(reinterpret_cast<uv_handle_t*>(stream));
  }
}

void on_read(uv_stream_t* stream, ssize_t bytes, const uv_buf_t* buffer) {
  if (bytes < 0) {  // UV_EOF, or an error such as ECONNRESET
    close_handle(reinterpret_cast<uv_handle_t*>(stream));
    return;
  }
  if (bytes == 0) return;  // EAGAIN: nothing this time
  uv_buf_t rest = uv_buf_init(buffer->base, static_cast<unsigned int>(bytes));
  const int wrote = uv_try_write(stream, &rest, 1);
  if (wrote == bytes) return;  // all of it, at once: keep reading
  if (wrote < 0 && wrote != UV_EAGAIN) {
    close_handle(reinterpret_cast<uv_handle_t*>(stream));
    return;
  }
  if (wrote > 0) rest = uv_buf_init(buffer->base + wrote, static_cast<unsigned int>(bytes - wrote));
  // The socket took less than all: stop reading until the rest is written, so that one
  // buffer per connection is all the memory a slow reader can make the server hold.
  uv_read_stop(stream);
  Connection* connection = connection_of(reinterpret_cast<uv_handle_t*>(stream));
  if (uv_write(&connection->write, stream, &rest, 1, on_written) != 0) {
    close_handle(reinterpret_cast<uv_handle_t*>(stream));
  }
}

void on_connection(uv_stream_t* server, int status) {
  if (status < 0) return;  // EMFILE and the like: see the header comment
  auto* connection = new Connection;
  uv_tcp_init(server->loop, &connection->handle);
  connection->handle.data = connection;
  auto* stream = reinterpret_cast<uv_stream_t*>(&connection->handle);
  if (uv_accept(server, stream) != 0) {
    close_handle(reinterpret_cast<uv_handle_t*>(stream));
    return;
  }
  uv_tcp_nodelay(&connection->handle, 1);
  if (uv_read_start(stream, on_alloc, on_read) != 0) close_handle(reinterpret_cast<uv_handle_t*>(stream));
}

// Closes every handle, so that uv_run returns once their close callbacks have run.
void shut_down(uv_loop_t* loop) {
  gearbox_peer::block_stop_signals();  // closing the signal handles restores their default action
  uv_walk(
      loop, [](uv_handle_t* handle, void*) { close_handle(handle); }, nullptr);
}

void on_signal(uv_signal_t* signal, int /*number*/) { shut_down(signal->loop); }

void on_stdin_alloc(uv_handle_t* /*handle*/, std::size_t /*suggested*/, uv_buf_t* buffer) {
  static char discard[256];
  *buffer = uv_buf_init(discard, sizeof discard);
}

void on_stdin_read(uv_stream_t* stream, ssize_t bytes, const uv_buf_t* /*buffer*/) {
  if (bytes < 0) shut_down(stream->loop);  // end of file (or an error): the driver is gone
}

bool stdin_is_pipe_or_socket() {
  struct stat info{};
  return ::fstat(STDIN_FILENO, &info) == 0 && (S_ISFIFO(info.st_mode) || S_ISSOCK(info.st_mode));
}

int fail(const char* what, int error) {
  std::fprintf(stderr, "peer-uv-tcp_echo_server: %s: %s\n", what, uv_strerror(error));
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  const int port = gearbox_peer::parse_port_option(argc, argv, "peer-uv-tcp_echo_server [--port P]");
  // libuv writes to sockets with write(2): a peer that vanished must be an EPIPE on that
  // connection, not the end of the server.
  std::signal(SIGPIPE, SIG_IGN);

  uv_loop_t* loop = uv_default_loop();

  uv_tcp_t listener;
  uv_tcp_init(loop, &listener);
  listener.data = nullptr;
  sockaddr_in address{};
  uv_ip4_addr("127.0.0.1", port, &address);
  if (const int rc = uv_tcp_bind(&listener, reinterpret_cast<const sockaddr*>(&address), 0); rc != 0) {
    return fail("bind", rc);
  }
  if (const int rc = uv_listen(reinterpret_cast<uv_stream_t*>(&listener), k_backlog, on_connection); rc != 0) {
    return fail("listen", rc);
  }
  sockaddr_in bound{};
  int length = sizeof bound;
  if (const int rc = uv_tcp_getsockname(&listener, reinterpret_cast<sockaddr*>(&bound), &length); rc != 0) {
    return fail("getsockname", rc);
  }

  uv_signal_t sigterm;
  uv_signal_t sigint;
  uv_signal_init(loop, &sigterm);
  uv_signal_init(loop, &sigint);
  sigterm.data = nullptr;
  sigint.data = nullptr;
  uv_signal_start(&sigterm, on_signal, SIGTERM);
  uv_signal_start(&sigint, on_signal, SIGINT);

  uv_pipe_t stdin_pipe;
  if (stdin_is_pipe_or_socket()) {
    uv_pipe_init(loop, &stdin_pipe, 0);
    stdin_pipe.data = nullptr;
    if (uv_pipe_open(&stdin_pipe, STDIN_FILENO) == 0) {
      uv_read_start(reinterpret_cast<uv_stream_t*>(&stdin_pipe), on_stdin_alloc, on_stdin_read);
    }
  }

  gearbox_peer::announce_port(ntohs(bound.sin_port));
  uv_run(loop, UV_RUN_DEFAULT);
  // Every handle is closed by now (shut_down), so the loop's resources can go too.
  uv_loop_close(loop);
  return 0;
}
