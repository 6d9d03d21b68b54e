// Peer for `gearbox-bench tcp_echo`: a TCP echo server written directly on liburing, one
// io_uring on the main thread, driven by the harness's load generator (run_echo_load)
// through gearbox::bench::ServerPeer. No runtime sits between it and the kernel: it shows
// what io_uring itself gives for sockets on this machine, used the way its authors
// recommend for networking.
//
// Protocol (server_peer.hpp): `--port P` (default 0: any free port). Binds 127.0.0.1:P,
// listens with a backlog of 4096, prints one line {"port": N} and flushes, then echoes:
// every byte read on a connection is written back on it, in order. Exits 0 on SIGTERM or
// SIGINT, and when stdin reaches end of file if stdin is a pipe or a socket (what the
// harness gives it; a server whose driver died must not linger). Other stdins are not
// watched: </dev/null reads as end of file at once, and a terminal is for Ctrl-C.
//
// How it uses io_uring (liburing 2.3; all of it needs Linux 6.1):
// - One ring with SINGLE_ISSUER | DEFER_TASKRUN (dropped where the kernel refuses them):
//   completions are run only when this thread asks, in batches, and each turn of the loop
//   is one io_uring_submit_and_wait, which submits and reaps in one system call.
// - A multishot accept, and per connection a multishot recv that takes its buffer from a
//   ring of provided buffers shared by all connections, so an idle connection holds none.
//   2048 buffers of 2 KiB: ping-pong holds at most one per connection, so 2048, twice the
//   1,000 connections of the largest runs, never run dry (measured: at most ~20
//   completions per batch there); a large message comes in 2 KiB pieces, one per
//   completion. The kernel takes buffers in ring order, so a run touches all 4 MiB:
//   about what libuv's 16 KiB per connection touches at 1,000 connections (a page each).
// - Echo: data is written at once with a non-blocking send(2), as the libuv peer does
//   with uv_try_write; on loopback that takes it all and the buffer goes straight back to
//   the ring. Only the rest of a send that took less goes through an io_uring send; data
//   received meanwhile queues behind it (order). A buffer goes back to the ring as soon
//   as its bytes are sent.
// - Back pressure: a connection holding k_max_unsent buffers unsent has its recv cancelled
//   until they are sent. When the ring runs dry anyway (-ENOBUFS ends a recv), the recv
//   is re-armed at once, or, if every buffer waits in an unsent queue, once one is sent:
//   some 64 clients that send without reading can so stall the others until they go.
// - Stop: SIGINT and SIGTERM are blocked and read through a signalfd, and stdin is
//   polled: both arrive as completions like any other.
//
// Every request's user_data is its Connection's address with the kind of operation (Op)
// in the low bits. A Connection is freed only once none of its requests is in flight, so
// no completion refers to freed memory. Accept errors do not end the server; at the
// descriptor limit (EMFILE, ENFILE) the accept waits for a connection to close, leaving
// the waiting clients in the backlog (libuv accepts and drops them instead).
#include "server_options.hpp"

#include <liburing.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

[[noreturn]] void fail(const char* what, int error) {
  std::fprintf(stderr, "peer-uring-tcp_echo_server: %s: %s\n", what, std::strerror(error));
  std::exit(1);
}

constexpr unsigned k_ring_entries = 4096;
constexpr unsigned k_buffer_count = 2048;  // a power of two, as the kernel requires
constexpr unsigned k_buffer_bytes = 2048;
constexpr int k_buffer_group = 0;
constexpr std::size_t k_max_unsent = 32;  // buffers (64 KiB) a connection may hold unsent
constexpr int k_backlog = 4096;

// The kind of a request, in the low bits of its user_data (Connection is 8-aligned).
enum class Op : std::uint64_t { accept, stop_signal, stdin_ready, recv, send, cancel };
constexpr std::uint64_t k_op_mask = 7;

struct Unsent {  // a received buffer; bytes [offset, length) not yet sent back
  std::uint16_t buffer_id;
  std::uint32_t offset;
  std::uint32_t length;
};

struct Connection {
  explicit Connection(int socket) : fd(socket) {}
  int fd;
  int ops_in_flight = 0;     // requests whose last completion has not come yet
  bool receiving = false;    // its multishot recv is armed
  bool pausing = false;      // a cancel of that recv is in flight (k_max_unsent reached)
  bool client_done = false;  // the client shut its side: close once all is sent
  bool closing = false;      // its requests are being cancelled; freed when none is left
  std::vector<Unsent> unsent;  // oldest first; unless closing, an io_uring send writes the first
};

static_assert(alignof(Connection) > k_op_mask, "user_data keeps the Op in a Connection address's low bits");

std::uint64_t user_data(Connection* connection, Op op) {
  return reinterpret_cast<std::uintptr_t>(connection) | static_cast<std::uint64_t>(op);
}

class EchoServer {
 public:
  // Sets up the ring and its buffers and arms the first requests; exits with 1 if it cannot.
  void start(int listener, int signal_fd, bool watch_stdin) {
    m_listener = listener;
    io_uring_params params{};
    params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    int rc = io_uring_queue_init_params(k_ring_entries, &m_ring, &params);
    if (rc == -EINVAL) {  // a kernel before 6.1
      params = io_uring_params{};
      rc = io_uring_queue_init_params(k_ring_entries, &m_ring, &params);
    }
    if (rc < 0) fail("io_uring_queue_init_params", -rc);
    io_uring_register_ring_fd(&m_ring);  // spares a descriptor lookup per system call; optional

    // liburing 2.3 has no io_uring_setup_buf_ring: the ring is page-aligned memory we register.
    void* ring = ::mmap(nullptr, k_buffer_count * sizeof(io_uring_buf), PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    void* buffers = ::mmap(nullptr, std::size_t{k_buffer_count} * k_buffer_bytes, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (ring == MAP_FAILED || buffers == MAP_FAILED) fail("mmap", errno);
    m_buffer_ring = static_cast<io_uring_buf_ring*>(ring);
    m_buffers = static_cast<char*>(buffers);
    io_uring_buf_ring_init(m_buffer_ring);
    io_uring_buf_reg registration{};
    registration.ring_addr = reinterpret_cast<std::uintptr_t>(ring);
    registration.ring_entries = k_buffer_count;
    registration.bgid = k_buffer_group;
    if (rc = io_uring_register_buf_ring(&m_ring, &registration, 0); rc < 0) fail("io_uring_register_buf_ring", -rc);
    for (unsigned id = 0; id < k_buffer_count; ++id) {
      const auto bid = static_cast<std::uint16_t>(id);
      io_uring_buf_ring_add(m_buffer_ring, buffer(bid), k_buffer_bytes, bid, io_uring_buf_ring_mask(k_buffer_count),
                            static_cast<int>(id));
    }
    io_uring_buf_ring_advance(m_buffer_ring, k_buffer_count);

    arm_accept();
    arm_poll(signal_fd, Op::stop_signal);
    if (watch_stdin) arm_poll(STDIN_FILENO, Op::stdin_ready);
  }

  // Serves until a stop signal or the end of stdin. Open connections and the ring are left
  // to the process's exit, which closes them all.
  void run() {
    while (!m_stopping) {
      const int rc = io_uring_submit_and_wait(&m_ring, 1);
      if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) fail("io_uring_submit_and_wait", -rc);
      unsigned head = 0;
      unsigned seen = 0;
      io_uring_cqe* cqe = nullptr;
      io_uring_for_each_cqe(&m_ring, head, cqe) {
        on_completion(*cqe);
        ++seen;
      }
      io_uring_cq_advance(&m_ring, seen);
    }
  }

 private:
  io_uring_sqe* next_sqe() {
    io_uring_sqe* sqe = io_uring_get_sqe(&m_ring);
    while (sqe == nullptr) {  // the submission queue is full: hand it over to make room
      io_uring_submit(&m_ring);
      sqe = io_uring_get_sqe(&m_ring);
    }
    return sqe;
  }
  void prepare(io_uring_sqe* sqe, Connection* connection, Op op) {
    io_uring_sqe_set_data64(sqe, user_data(connection, op));
    if (connection != nullptr) ++connection->ops_in_flight;
  }
  char* buffer(std::uint16_t id) { return m_buffers + std::size_t{id} * k_buffer_bytes; }

  void arm_accept() {
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_multishot_accept(sqe, m_listener, nullptr, nullptr, SOCK_CLOEXEC);
    prepare(sqe, nullptr, Op::accept);
  }
  void arm_poll(int fd, Op op) {
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_poll_add(sqe, fd, POLLIN);
    prepare(sqe, nullptr, op);
  }
  void arm_recv(Connection* connection) {
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_recv_multishot(sqe, connection->fd, nullptr, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = k_buffer_group;
    prepare(sqe, connection, Op::recv);
    connection->receiving = true;
  }
  void send_first_unsent(Connection* connection) {
    const Unsent& first = connection->unsent.front();
    io_uring_sqe* sqe = next_sqe();
    // MSG_WAITALL: the kernel itself retries a short send until all of it is written.
    io_uring_prep_send(sqe, connection->fd, buffer(first.buffer_id) + first.offset, first.length - first.offset,
                       MSG_NOSIGNAL | MSG_WAITALL);
    prepare(sqe, connection, Op::send);
  }

  void give_back(std::uint16_t id) {
    io_uring_buf_ring_add(m_buffer_ring, buffer(id), k_buffer_bytes, id, io_uring_buf_ring_mask(k_buffer_count), 0);
    io_uring_buf_ring_advance(m_buffer_ring, 1);
    --m_buffers_out;
    if (m_starved.empty()) return;
    std::vector<Connection*> starved;
    starved.swap(m_starved);
    for (Connection* connection : starved) arm_recv(connection);
  }

  void echo(Connection* connection, std::uint16_t id, std::uint32_t length) {
    if (!connection->unsent.empty()) {  // a send is in flight: this goes after it
      connection->unsent.push_back({id, 0, length});
      return;
    }
    const ssize_t sent = ::send(connection->fd, buffer(id), length, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (sent == static_cast<ssize_t>(length)) return give_back(id);
    if (sent < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      give_back(id);
      return close(connection);
    }
    connection->unsent.push_back({id, static_cast<std::uint32_t>(sent > 0 ? sent : 0), length});
    send_first_unsent(connection);
  }

  // Cancels the connection's requests; free_if_done frees it once they have completed.
  void close(Connection* connection) {
    if (connection->closing) return;
    connection->closing = true;
    if (connection->ops_in_flight == 0) return;
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_cancel_fd(sqe, connection->fd, IORING_ASYNC_CANCEL_ALL);
    prepare(sqe, connection, Op::cancel);
  }

  void free_if_done(Connection* connection) {
    if (!connection->closing || connection->ops_in_flight > 0) return;
    for (const Unsent& unsent : connection->unsent) give_back(unsent.buffer_id);
    ::close(connection->fd);
    delete connection;
    --m_connections;
    if (m_accept_waits) {
      m_accept_waits = false;
      arm_accept();
    }
  }

  void on_accept(const io_uring_cqe& cqe) {
    if (cqe.res >= 0) {
      const int one = 1;
      ::setsockopt(cqe.res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      ++m_connections;
      arm_recv(new Connection(cqe.res));
    }
    if (cqe.flags & IORING_CQE_F_MORE) return;
    // At the descriptor limit a new accept would fail at once: wait for a close instead.
    if ((cqe.res == -EMFILE || cqe.res == -ENFILE) && m_connections > 0) {
      m_accept_waits = true;
    } else {
      arm_accept();
    }
  }

  void on_recv(Connection* connection, const io_uring_cqe& cqe) {
    if (!(cqe.flags & IORING_CQE_F_MORE)) {  // this recv has ended
      connection->receiving = false;
      --connection->ops_in_flight;
    }
    if (cqe.flags & IORING_CQE_F_BUFFER) {  // the buffer is ours until given back
      ++m_buffers_out;
      const auto id = static_cast<std::uint16_t>(cqe.flags >> IORING_CQE_BUFFER_SHIFT);
      if (cqe.res > 0 && !connection->closing) {
        echo(connection, id, static_cast<std::uint32_t>(cqe.res));
      } else {
        give_back(id);
      }
    }
    if (cqe.res == 0) {
      connection->client_done = true;
    } else if (cqe.res < 0 && cqe.res != -ENOBUFS && cqe.res != -ECANCELED) {
      close(connection);  // ECONNRESET and the like
    }
    if (connection->closing) return;
    if (connection->client_done) {
      if (connection->unsent.empty()) close(connection);  // else on_send closes it
    } else if (connection->receiving) {
      if (connection->unsent.size() >= k_max_unsent && !connection->pausing) {
        io_uring_sqe* sqe = next_sqe();
        io_uring_prep_cancel64(sqe, user_data(connection, Op::recv), 0);
        prepare(sqe, connection, Op::cancel);
        connection->pausing = true;
      }
    } else if (connection->unsent.empty()) {  // else on_send re-arms once all is sent
      if (cqe.res == -ENOBUFS && m_buffers_out == k_buffer_count) {
        m_starved.push_back(connection);
      } else {
        arm_recv(connection);
      }
    }
  }

  void on_send(Connection* connection, const io_uring_cqe& cqe) {
    --connection->ops_in_flight;
    if (connection->closing) return;
    if (cqe.res <= 0) return close(connection);  // EPIPE, ECONNRESET: the client is gone
    Unsent& first = connection->unsent.front();
    first.offset += static_cast<std::uint32_t>(cqe.res);
    if (first.offset == first.length) {
      give_back(first.buffer_id);
      connection->unsent.erase(connection->unsent.begin());  // short: about k_max_unsent at most
    }
    if (!connection->unsent.empty()) return send_first_unsent(connection);
    if (connection->client_done) return close(connection);
    if (!connection->receiving) arm_recv(connection);  // it was paused, or ended by -ENOBUFS
  }

  void on_completion(const io_uring_cqe& cqe) {
    auto* connection = reinterpret_cast<Connection*>(cqe.user_data & ~k_op_mask);
    switch (static_cast<Op>(cqe.user_data & k_op_mask)) {
      case Op::accept:
        return on_accept(cqe);
      case Op::stop_signal:
        m_stopping = true;
        return;
      case Op::stdin_ready: {
        char discard[256];
        const ssize_t bytes = ::read(STDIN_FILENO, discard, sizeof discard);
        if (bytes == 0 || (bytes < 0 && errno != EAGAIN && errno != EINTR)) {
          m_stopping = true;  // end of file (or an error): the driver is gone
        } else {
          arm_poll(STDIN_FILENO, Op::stdin_ready);
        }
        return;
      }
      case Op::recv:
        on_recv(connection, cqe);
        break;
      case Op::send:
        on_send(connection, cqe);
        break;
      case Op::cancel:
        --connection->ops_in_flight;
        connection->pausing = false;
        break;
    }
    free_if_done(connection);
  }

  io_uring m_ring{};
  io_uring_buf_ring* m_buffer_ring = nullptr;
  char* m_buffers = nullptr;
  unsigned m_buffers_out = 0;          // buffers completions handed us and we have not given back
  std::vector<Connection*> m_starved;  // recv ended by -ENOBUFS, all buffers unsent: re-armed by give_back
  int m_listener = -1;
  int m_connections = 0;
  bool m_accept_waits = false;  // at the descriptor limit: re-armed by free_if_done
  bool m_stopping = false;
};

bool stdin_is_pipe_or_socket() {
  struct stat info{};
  return ::fstat(STDIN_FILENO, &info) == 0 && (S_ISFIFO(info.st_mode) || S_ISSOCK(info.st_mode));
}

}  // namespace

int main(int argc, char** argv) {
  const int port = gearbox_peer::parse_port_option(argc, argv, "peer-uring-tcp_echo_server [--port P]");
  std::signal(SIGPIPE, SIG_IGN);  // every send says MSG_NOSIGNAL; this is a second guard

  // Blocked for good: they reach the signalfd, and cannot kill a server on its way out.
  gearbox_peer::block_stop_signals();
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  const int signal_fd = ::signalfd(-1, &stop, SFD_NONBLOCK | SFD_CLOEXEC);
  if (signal_fd < 0) fail("signalfd", errno);

  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener < 0) fail("socket", errno);
  const int one = 1;
  ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listener, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) fail("bind", errno);
  if (::listen(listener, k_backlog) != 0) fail("listen", errno);
  sockaddr_in bound{};
  socklen_t length = sizeof bound;
  if (::getsockname(listener, reinterpret_cast<sockaddr*>(&bound), &length) != 0) fail("getsockname", errno);

  EchoServer server;
  server.start(listener, signal_fd, stdin_is_pipe_or_socket());
  gearbox_peer::announce_port(ntohs(bound.sin_port));
  server.run();
  return 0;
}
