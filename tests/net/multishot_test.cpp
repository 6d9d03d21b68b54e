// The multishot operations of sockets by completion on a standalone Loop. The receive
// (src/net/recv_stream.hpp): reads after the first submit nothing, a reader slower than its
// peer holds a bounded number of the ring's buffers, a pool that runs out falls back to
// plain receives and loses nothing, a cancelled read loses nothing, close() gives the
// buffers back, and what was received but not read outlives the loop it came on. The
// accept (src/net/accept_stream.hpp): connections it accepted before anyone asked are
// handed out in order, a listener closed with some not taken closes them, and a Unix
// listener's close ends a waiting accept.
#include <gearbox/net/tcp.hpp>
#include <gearbox/net/unix.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <memory>
#include <stdexcept>
#include <tuple>
#include <string>
#include <vector>

#include <gearbox/combinators.hpp>
#include <gearbox/error.hpp>
#include <gearbox/io_backend.hpp>
#include <gearbox/loop.hpp>
#include <gearbox/spawn.hpp>
#include <gearbox/task.hpp>
#include <gearbox/time.hpp>

#include <gtest/gtest.h>

#include "loop/provided_buffers.hpp"
#include "loop/ring.hpp"
#include "net/recv_stream.hpp"
#include "support/descriptors.hpp"
#include "support/hang_guard.hpp"

namespace gb = gearbox;
namespace net = gearbox::net;
using gb::detail::ProvidedBuffers;
using gb::detail::RecvStream;
using namespace std::chrono_literals;

namespace {

class Multishot : public testing::Test {
protected:
  void SetUp() override {
    if (!gb::io_uring_support().socket_completion) GTEST_SKIP() << "no io_uring with cancellation by descriptor here";
  }

  static gb::LoopOptions options() {
    gb::LoopOptions options;
    options.io_backend = gb::IoBackend::io_uring;
    options.socket_io = gb::SocketIo::completion;
    return options;
  }

  template <class T>
  static T run(gb::Task<T> task) {
    gb::Loop loop{options()};
    return loop.run(gb::timeout(gearbox_test::k_hang_guard, std::move(task)));
  }
};

gb::detail::Ring& ring() { return *gb::detail::LoopAccess::ring(gb::Loop::current_or_throw()); }
unsigned buffers_held() {
  ProvidedBuffers* buffers = ring().provided_buffers();
  return buffers ? buffers->held() : 0;
}

// `size` bytes that say where they are: a stream that loses, repeats or reorders a piece
// does not compare equal.
std::string pattern(std::size_t size, unsigned seed) {
  std::string text(size, '\0');
  for (std::size_t i = 0; i < size; ++i) text[i] = static_cast<char>((i * 131 + seed * 7 + i / 4096) % 251);
  return text;
}

gb::Task<std::string> read_exactly(net::UnixStream& stream, std::size_t size) {
  std::string text;
  std::vector<char> buffer(10'000);  // not a multiple of the ring's buffers
  while (text.size() < size) {
    const std::size_t n = co_await stream.read(std::span<char>(buffer));
    if (n == 0) break;
    text.append(buffer.data(), n);
  }
  co_return text;
}

TEST_F(Multishot, reads_after_the_first_submit_nothing_while_data_keeps_coming) {
  const auto [submitted, exchanges] = run([]() -> gb::Task<std::pair<std::uint64_t, int>> {
    auto [a, b] = net::UnixStream::pair();
    char buffer[8];
    co_await b.write_all("x");
    (void)co_await a.read(std::span<char>(buffer));  // arms the receive
    const std::uint64_t before = ring().counters().submitted;
    int exchanges = 0;
    for (; exchanges < 200; ++exchanges) {
      co_await b.write_all("y");
      if (co_await a.read(std::span<char>(buffer)) != 1) break;
    }
    co_return std::pair{ring().counters().submitted - before, exchanges};
  }());
  EXPECT_EQ(exchanges, 200);
  EXPECT_LT(submitted, 10u) << "a plain receive submits once per read: 200";
}

TEST_F(Multishot, a_reader_slower_than_its_peer_holds_a_bounded_number_of_buffers_and_gets_every_byte) {
  constexpr std::size_t k_size = 1 << 20;  // 256 of the ring's buffers, were they all taken
  const std::string sent = pattern(k_size, 1);
  const auto [held_while_idle, got, held_after] = run([&]() -> gb::Task<std::tuple<unsigned, std::string, unsigned>> {
    auto [a, b] = net::UnixStream::pair();
    char first;
    auto writer = gb::spawn([](net::UnixStream& s, const std::string& text) -> gb::Task<void> {
      co_await s.write_all(text);
    }(b, sent));
    (void)co_await a.read(std::span<char>(&first, 1));  // arms the receive
    co_await gb::sleep_for(30ms);  // the writer fills what the reader lets it
    const unsigned idle = buffers_held();
    std::string text(1, first);
    text += co_await read_exactly(a, k_size - 1);
    co_await std::move(writer);
    co_return std::tuple{idle, std::move(text), buffers_held()};
  }());
  EXPECT_GT(held_while_idle, 0u);
  // Disarmed at k_max_queued, it still completes what the kernel had under way (a batch of
  // up to 32 receives per wake-up): well under the 256 buffers the megabyte would take.
  EXPECT_LT(held_while_idle, 128u);
  EXPECT_TRUE(got == sent) << "the bytes differ (" << got.size() << " of " << sent.size() << " came)";
  EXPECT_EQ(held_after, 0u) << "a buffer was not given back";
}

TEST_F(Multishot, a_pool_that_runs_out_falls_back_to_plain_receives_and_loses_nothing) {
  // Each socket may hold k_max_queued buffers: more sockets than the pool has room for.
  constexpr unsigned k_sockets = ProvidedBuffers::k_count / RecvStream::k_max_queued + 30;
  constexpr std::size_t k_size = 100'000;
  const std::size_t before = gearbox_test::open_descriptors();
  const auto [good, ran_out, held_after] = run([&]() -> gb::Task<std::tuple<unsigned, std::uint64_t, unsigned>> {
    std::vector<std::pair<net::UnixStream, net::UnixStream>> pairs;
    std::vector<gb::JoinHandle<void>> writers;
    for (unsigned i = 0; i < k_sockets; ++i) pairs.push_back(net::UnixStream::pair());
    for (unsigned i = 0; i < k_sockets; ++i) {
      writers.push_back(gb::spawn([](net::UnixStream& s, unsigned seed) -> gb::Task<void> {
        co_await s.write_all(pattern(k_size, seed));
      }(pairs[i].second, i)));
    }
    // The first byte of each arms its receive; their arrivals then take the pool.
    std::vector<char> first(k_sockets);
    for (unsigned i = 0; i < k_sockets; ++i) (void)co_await pairs[i].first.read(std::span<char>(&first[i], 1));
    co_await gb::sleep_for(30ms);
    unsigned good = 0;
    for (unsigned i = 0; i < k_sockets; ++i) {
      const std::string got = std::string(1, first[i]) + co_await read_exactly(pairs[i].first, k_size - 1);
      if (got == pattern(k_size, i)) ++good;
    }
    for (auto& writer : writers) co_await std::move(writer);
    co_return std::tuple{good, ring().provided_buffers()->ran_out(), buffers_held()};
  }());
  EXPECT_EQ(good, k_sockets) << "a socket's bytes differ";
  EXPECT_GT(ran_out, 0u) << "the pool never ran out: the test does not test what it says";
  EXPECT_EQ(held_after, 0u) << "a buffer was not given back";
  EXPECT_EQ(gearbox_test::open_descriptors(), before);
}

TEST_F(Multishot, reads_cancelled_while_armed_lose_nothing_that_arrives_after_and_leave_it_armed) {
  const auto [got, submitted] = run([]() -> gb::Task<std::pair<std::string, std::uint64_t>> {
    auto [a, b] = net::UnixStream::pair();
    char buffer[4];
    std::uint64_t before = 0;
    for (int i = 0; i < 3; ++i) {
      auto reading = a.read(std::span<char>(buffer));
      EXPECT_THROW((void)co_await gb::timeout(2ms, std::move(reading)), gb::TimeoutError);
      if (i == 0) before = ring().counters().submitted;  // the first read armed the receive
    }
    for (const char c : std::string("abc")) {
      co_await b.write_all(std::string(1, c));
      co_await gb::sleep_for(1ms);  // it arrives with no read waiting
    }
    co_await b.write_all("-end");
    std::string text = co_await read_exactly(a, 7);
    co_return std::pair{std::move(text), ring().counters().submitted - before};
  }());
  EXPECT_EQ(got, "abc-end");
  // A cancel leaves the receive armed: no read after the first submits anything (a plain
  // receive would cost a submission and a cancel each time).
  EXPECT_EQ(submitted, 0u);
}

TEST_F(Multishot, close_gives_back_the_buffers_of_what_was_not_read_and_the_descriptor) {
  const std::size_t before = gearbox_test::open_descriptors();
  const auto [held_before_close, held_after] = run([]() -> gb::Task<std::pair<unsigned, unsigned>> {
    auto [a, b] = net::UnixStream::pair();
    char c;
    co_await b.write_all("x");
    (void)co_await a.read(std::span<char>(&c, 1));
    co_await b.write_all(pattern(40'000, 3));
    co_await gb::sleep_for(10ms);  // received, not read
    const unsigned held = buffers_held();
    a.close();
    b.close();
    co_await gb::sleep_for(1ms);  // the cancelled receive's last completion
    co_return std::pair{held, buffers_held()};
  }());
  EXPECT_GT(held_before_close, 0u);
  EXPECT_EQ(held_after, 0u);
  EXPECT_EQ(gearbox_test::open_descriptors(), before);
}

TEST_F(Multishot, the_peer_sees_the_close_at_once_even_if_the_loop_never_polls_again) {
  auto [a, b] = net::UnixStream::pair();
  {
    gb::Loop loop{options()};
    loop.run([](net::UnixStream& s, net::UnixStream& peer) -> gb::Task<void> {
      char c;
      co_await peer.write_all("x");
      (void)co_await s.read(std::span<char>(&c, 1));  // armed now
      s.close();  // no poll after this: run() returns
    }(a, b));
    // The loop lives on without polling: the receive must not keep the socket open.
    char c;
    EXPECT_EQ(::recv(b.native_handle(), &c, 1, MSG_DONTWAIT), 0) << "errno " << errno;
  }
}

TEST_F(Multishot, what_was_received_and_not_read_outlives_its_loop) {
  auto [a, b] = net::UnixStream::pair();
  {
    gb::Loop first{options()};
    first.run([](net::UnixStream& s, net::UnixStream& peer) -> gb::Task<void> {
      char word[5];
      co_await peer.write_all("hello world");
      std::size_t got = 0;
      while (got < sizeof word) got += co_await s.read(std::span<char>(word + got, sizeof word - got));
      co_await gb::sleep_for(5ms);  // " world" is in the ring's buffers now
    }(a, b));
  }
  gb::Loop second{options()};
  const std::string rest = second.run([](net::UnixStream& s, net::UnixStream& peer) -> gb::Task<std::string> {
    co_await peer.write_all("!");
    co_return co_await read_exactly(s, 7);
  }(a, b));
  EXPECT_EQ(rest, " world!");
}

// A blocking connect, outside the loop: on loopback it returns once the handshake is done
// and the connection waits in the listener's backlog.
int connect_blocking(const net::SocketAddress& address) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_GE(fd, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(address.port());
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to), 0) << "errno " << errno;
  return fd;
}

// The port a connected client socket was given.
std::uint16_t local_port(int fd) {
  sockaddr_in local{};
  socklen_t size = sizeof local;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &size);
  return ntohs(local.sin_port);
}

TEST_F(Multishot, an_accept_takes_what_came_before_it_was_asked_in_order_and_a_close_closes_what_was_not_taken) {
  constexpr int k_clients = 6;
  const std::size_t before = gearbox_test::open_descriptors();
  const auto [queued, ports_in_order, left] = run([]() -> gb::Task<std::tuple<long, bool, long>> {
    auto listener = net::TcpListener::bind(net::SocketAddress::loopback(0));
    std::vector<int> clients;
    clients.push_back(connect_blocking(listener.local_address()));
    auto first = co_await listener.accept();  // arms the accept
    for (int i = 1; i < k_clients; ++i) clients.push_back(connect_blocking(listener.local_address()));
    const auto baseline = static_cast<long>(gearbox_test::open_descriptors());
    co_await gb::sleep_for(5ms);  // the armed accept takes them: they are descriptors now
    const long queued = static_cast<long>(gearbox_test::open_descriptors()) - baseline;
    // Handed out in the order they connected: each accepted socket's peer is the client
    // made at that place.
    bool in_order = true;
    for (int i = 1; i < 3; ++i) {
      auto stream = co_await listener.accept();
      in_order = in_order && stream.peer_address().port() == local_port(clients[static_cast<std::size_t>(i)]);
    }
    listener.close();  // 3 accepted and not taken: closed with it
    co_await gb::sleep_for(1ms);
    const long left = static_cast<long>(gearbox_test::open_descriptors()) - baseline;
    for (const int fd : clients) ::close(fd);
    co_return std::tuple{queued, in_order, left};
  }());
  EXPECT_EQ(queued, k_clients - 1) << "the connections were not accepted ahead";
  EXPECT_TRUE(ports_in_order);
  // From the baseline: the 5 accepted ahead, less the 2 taken (their streams closed them),
  // the 3 not taken and the listener (closed with it).
  EXPECT_EQ(left, (k_clients - 1) - 2 - 3 - 1);
  EXPECT_EQ(gearbox_test::open_descriptors(), before);
}

TEST_F(Multishot, closing_a_unix_listener_ends_a_waiting_accept_with_EBADF_and_closes_it) {
  const std::size_t before = gearbox_test::open_descriptors();
  const int error = run([]() -> gb::Task<int> {
    auto listener = net::UnixListener::bind("@gearbox-multishot-" + std::to_string(::getpid()));
    auto accepting = gb::spawn([](net::UnixListener& l) -> gb::Task<int> {
      try {
        (void)co_await l.accept();
      } catch (const gb::IoError& e) {
        co_return e.error_number();
      }
      co_return 0;
    }(listener));
    co_await gb::sleep_for(2ms);  // it waits in the kernel now
    listener.close();
    co_return co_await std::move(accepting);
  }());
  EXPECT_EQ(error, EBADF);
  EXPECT_EQ(gearbox_test::open_descriptors(), before) << "the listener stayed open";
}

TEST_F(Multishot, a_socket_read_on_a_live_loop_is_refused_on_another_and_keeps_its_bytes) {
  auto [a, b] = net::UnixStream::pair();
  gb::Loop first{options()};
  first.run([](net::UnixStream& s, net::UnixStream& peer) -> gb::Task<void> {
    char c;
    co_await peer.write_all("xy");
    (void)co_await s.read(std::span<char>(&c, 1));  // "x"; the receive stays armed on this loop
  }(a, b));
  gb::Loop second{options()};
  const bool refused = second.run([](net::UnixStream& s) -> gb::Task<bool> {
    char c;
    try {
      (void)co_await s.read(std::span<char>(&c, 1));
    } catch (const std::logic_error&) {
      co_return true;
    }
    co_return false;
  }(a));
  EXPECT_TRUE(refused) << "a second live loop read a socket whose receive is armed on the first";
  const std::string rest = first.run(read_exactly(a, 1));
  EXPECT_EQ(rest, "y");
}

TEST_F(Multishot, connections_accepted_ahead_outlive_their_loop_and_are_handed_out_by_the_next) {
  auto listener = std::make_unique<net::TcpListener>(net::TcpListener::bind(net::SocketAddress::loopback(0)));
  std::vector<int> clients;
  {
    gb::Loop first{options()};
    first.run([](net::TcpListener& l, std::vector<int>& clients) -> gb::Task<void> {
      clients.push_back(connect_blocking(l.local_address()));
      (void)co_await l.accept();  // arms the accept
      for (int i = 0; i < 3; ++i) clients.push_back(connect_blocking(l.local_address()));
      co_await gb::sleep_for(5ms);  // accepted ahead: queued in the listener
    }(*listener, clients));
  }
  gb::Loop second{options()};
  const int ports_matched = second.run([](net::TcpListener& l, const std::vector<int>& clients) -> gb::Task<int> {
    int matched = 0;
    for (std::size_t i = 1; i < clients.size(); ++i) {
      auto stream = co_await l.accept();
      matched += stream.peer_address().port() == local_port(clients[i]);
    }
    co_return matched;
  }(*listener, clients));
  EXPECT_EQ(ports_matched, 3);
  for (const int fd : clients) ::close(fd);
}

}  // namespace
