// UDP sockets (include/gearbox/net/udp.hpp) on 127.0.0.1: datagrams with the sender's
// address, truncation, connected sockets (and what they filter), ECONNREFUSED from a port
// nobody listens on, cancelled receives, EADDRINUSE and SO_REUSEPORT, oversized sends, and
// a close that wakes a waiting receiver.
//
// Loopback delivery goes through the kernel's network stack, so these tests run on the
// steady clock under a generous deadline (see tests/os/os_test_support.hpp) rather than on
// a manual clock, whose timeouts would fire before a datagram had a chance to arrive. Every
// socket is made inside the task, so it is closed before its loop is destroyed.
#include <gearbox/net/udp.hpp>

#include <netinet/in.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>

#include <gearbox/error.hpp>
#include <gearbox/join_handle.hpp>
#include <gearbox/spawn.hpp>
#include <gearbox/task.hpp>
#include <gearbox/time.hpp>

#include <gtest/gtest.h>

#include "os/os_test_support.hpp"

namespace gb = gearbox;
namespace net = gearbox::net;
using namespace std::chrono_literals;
using gearbox_test::run_with_deadline;

namespace {

net::UdpSocket bind_loopback() { return net::UdpSocket::bind(net::SocketAddress::loopback(0)); }

// A loopback port that nothing is bound to (bound once by us, then released).
std::uint16_t unused_port() {
  auto socket = bind_loopback();
  const std::uint16_t port = socket.local_address().port();
  socket.close();
  return port;
}

}  // namespace

TEST(UdpSocket, a_socket_bound_to_port_0_gets_a_real_port_on_loopback) {
  auto socket = bind_loopback();
  const net::SocketAddress local = socket.local_address();
  EXPECT_EQ(local.family(), AF_INET);
  EXPECT_NE(local.port(), 0);
  EXPECT_EQ(local, net::SocketAddress::loopback(local.port()));
}

TEST(UdpSocket, send_to_and_receive_from_round_trip_and_report_the_senders_address) {
  run_with_deadline([]() -> gb::Task<void> {
    auto a = bind_loopback();
    auto b = bind_loopback();
    EXPECT_EQ(co_await a.send_to("ping", b.local_address()), 4u);
    std::array<char, 64> buffer{};
    const net::Datagram got = co_await b.receive_from(buffer);
    EXPECT_EQ(std::string_view(buffer.data(), got.size), "ping");
    EXPECT_FALSE(got.truncated);
    EXPECT_EQ(got.from, a.local_address());
    // And back, to the address the datagram came from.
    EXPECT_EQ(co_await b.send_to("pong", got.from), 4u);
    const net::Datagram reply = co_await a.receive_from(buffer);
    EXPECT_EQ(std::string_view(buffer.data(), reply.size), "pong");
    EXPECT_EQ(reply.from, b.local_address());
  }());
}

TEST(UdpSocket, datagrams_keep_their_boundaries_and_an_empty_one_arrives_as_size_0) {
  run_with_deadline([]() -> gb::Task<void> {
    auto a = bind_loopback();
    auto b = bind_loopback();
    co_await a.send_to("one", b.local_address());
    co_await a.send_to("", b.local_address());
    co_await a.send_to("three", b.local_address());
    std::array<char, 64> buffer{};
    const net::Datagram first = co_await b.receive_from(buffer);
    EXPECT_EQ(std::string_view(buffer.data(), first.size), "one");
    const net::Datagram empty = co_await b.receive_from(buffer);
    EXPECT_EQ(empty.size, 0u);
    EXPECT_FALSE(empty.truncated);
    EXPECT_EQ(empty.from, a.local_address());
    const net::Datagram third = co_await b.receive_from(buffer);
    EXPECT_EQ(std::string_view(buffer.data(), third.size), "three");
  }());
}

TEST(UdpSocket, a_datagram_longer_than_the_buffer_is_cut_to_fit_and_says_so) {
  run_with_deadline([]() -> gb::Task<void> {
    auto a = bind_loopback();
    auto b = bind_loopback();
    std::string long_one(1000, 'x');
    for (std::size_t i = 0; i < long_one.size(); ++i) long_one[i] = static_cast<char>('a' + i % 26);
    co_await a.send_to(long_one, b.local_address());
    co_await a.send_to("next", b.local_address());
    std::array<char, 10> small{};
    const net::Datagram cut = co_await b.receive_from(small);
    EXPECT_TRUE(cut.truncated);
    EXPECT_EQ(cut.size, small.size());
    EXPECT_EQ(std::string_view(small.data(), cut.size), long_one.substr(0, small.size()));
    EXPECT_EQ(cut.from, a.local_address());
    // The rest of the long datagram is gone: the next receive gets the next datagram.
    const net::Datagram next = co_await b.receive_from(small);
    EXPECT_FALSE(next.truncated);
    EXPECT_EQ(std::string_view(small.data(), next.size), "next");
    // A datagram exactly the size of the buffer is not truncated.
    co_await a.send_to("0123456789", b.local_address());
    const net::Datagram exact = co_await b.receive_from(small);
    EXPECT_FALSE(exact.truncated);
    EXPECT_EQ(exact.size, small.size());
  }());
}

TEST(UdpSocket, connected_sockets_send_and_receive_without_addresses) {
  run_with_deadline([]() -> gb::Task<void> {
    auto a = bind_loopback();
    auto b = bind_loopback();
    a.connect(b.local_address());
    b.connect(a.local_address());
    EXPECT_EQ(co_await a.send("hello"), 5u);
    std::array<char, 64> buffer{};
    EXPECT_EQ(co_await b.receive(buffer), 5u);
    EXPECT_EQ(std::string_view(buffer.data(), 5), "hello");
    EXPECT_EQ(co_await b.send("world!"), 6u);
    const std::size_t n = co_await a.receive(buffer);
    EXPECT_EQ(std::string_view(buffer.data(), n), "world!");
  }());
}

TEST(UdpSocket, a_connected_socket_receives_only_from_its_peer) {
  run_with_deadline([]() -> gb::Task<void> {
    auto peer = bind_loopback();
    auto stranger = bind_loopback();
    auto socket = bind_loopback();
    socket.connect(peer.local_address());
    co_await stranger.send_to("from a stranger", socket.local_address());
    co_await peer.send_to("from the peer", socket.local_address());
    std::array<char, 64> buffer{};
    const net::Datagram got = co_await socket.receive_from(buffer);
    EXPECT_EQ(std::string_view(buffer.data(), got.size), "from the peer");
    EXPECT_EQ(got.from, peer.local_address());
  }());
}

TEST(UdpSocket, a_connected_send_to_a_port_nobody_listens_on_shows_up_as_ECONNREFUSED) {
  run_with_deadline([]() -> gb::Task<void> {
    auto socket = bind_loopback();
    socket.connect(net::SocketAddress::loopback(unused_port()));
    std::array<char, 64> buffer{};
    int error = 0;
    // The ICMP "port unreachable" comes back asynchronously: it fails the receive (which
    // waits for it), or a later send. Bounded: a few rounds are plenty.
    for (int round = 0; round < 5 && error == 0; ++round) {
      try {
        co_await socket.send("anyone?");
        (void)co_await gb::timeout(2s, socket.receive(buffer));
        ADD_FAILURE() << "a datagram came back from a port nobody listens on";
        break;
      } catch (const gb::IoError& e) {
        error = e.error_number();
      } catch (const gb::TimeoutError&) {
        // no ICMP yet: send again
      }
    }
    EXPECT_EQ(error, ECONNREFUSED);
    // The error is reported once: the socket still works for the next exchange.
    auto listener = bind_loopback();
    socket.connect(listener.local_address());
    EXPECT_EQ(co_await socket.send("now"), 3u);
    const net::Datagram got = co_await listener.receive_from(buffer);
    EXPECT_EQ(std::string_view(buffer.data(), got.size), "now");
  }());
}

TEST(UdpSocket, send_without_an_address_on_an_unconnected_socket_is_an_IoError_EDESTADDRREQ) {
  run_with_deadline([]() -> gb::Task<void> {
    auto socket = bind_loopback();
    try {
      (void)co_await socket.send("to whom?");
      ADD_FAILURE() << "sent without a destination";
    } catch (const gb::IoError& e) {
      EXPECT_EQ(e.error_number(), EDESTADDRREQ) << e.what();
    }
  }());
}

TEST(UdpSocket, a_receive_cancelled_by_a_timeout_leaves_the_socket_usable) {
  run_with_deadline([]() -> gb::Task<void> {
    auto a = bind_loopback();
    auto b = bind_loopback();
    std::array<char, 64> buffer{};
    EXPECT_THROW((void)co_await gb::timeout(20ms, b.receive_from(buffer)), gb::TimeoutError);
    co_await a.send_to("after", b.local_address());
    const net::Datagram got = co_await b.receive_from(buffer);
    EXPECT_EQ(std::string_view(buffer.data(), got.size), "after");
  }());
}

TEST(UdpSocket, binding_a_port_in_use_without_reuse_is_an_IoError_EADDRINUSE) {
  auto first = bind_loopback();
  try {
    auto second = net::UdpSocket::bind(first.local_address());
    ADD_FAILURE() << "bound a port already in use";
  } catch (const gb::IoError& e) {
    EXPECT_EQ(e.error_number(), EADDRINUSE) << e.what();
  }
}

TEST(UdpSocket, a_failed_bind_leaves_no_descriptor_open) {
  auto first = bind_loopback();
  const auto open_descriptors = [] {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
    return n;
  };
  const std::size_t before = open_descriptors();
  for (int i = 0; i < 5; ++i) EXPECT_THROW((void)net::UdpSocket::bind(first.local_address()), gb::IoError);
  EXPECT_THROW((void)net::UdpSocket::bind(first.local_address(), {.reuse_port = true}), gb::IoError);
  EXPECT_EQ(open_descriptors(), before);
}

TEST(UdpSocket, two_sockets_with_reuse_port_may_bind_the_same_port) {
  auto first = net::UdpSocket::bind(net::SocketAddress::loopback(0), {.reuse_port = true});
  auto second = net::UdpSocket::bind(first.local_address(), {.reuse_port = true});
  EXPECT_EQ(second.local_address(), first.local_address());
}

TEST(UdpSocket, a_datagram_too_large_for_udp_is_an_IoError_EMSGSIZE) {
  run_with_deadline([]() -> gb::Task<void> {
    auto a = bind_loopback();
    auto b = bind_loopback();
    const std::string huge(70000, 'h');  // more than the 65507 bytes an IPv4 datagram holds
    try {
      (void)co_await a.send_to(huge, b.local_address());
      ADD_FAILURE() << "sent a 70000-byte datagram";
    } catch (const gb::IoError& e) {
      EXPECT_EQ(e.error_number(), EMSGSIZE) << e.what();
    }
  }());
}

TEST(UdpSocket, close_wakes_a_task_waiting_in_receive_with_EBADF) {
  run_with_deadline([]() -> gb::Task<void> {
    auto socket = bind_loopback();
    auto receiver = gb::spawn([](net::UdpSocket& socket) -> gb::Task<int> {
      std::array<char, 16> buffer{};
      try {
        (void)co_await socket.receive_from(buffer);
      } catch (const gb::IoError& e) {
        co_return e.error_number();
      }
      co_return 0;
    }(socket));
    co_await gb::yield_now();  // the receiver runs to its wait
    EXPECT_FALSE(receiver.done());
    socket.close();
    EXPECT_FALSE(socket.is_open());
    EXPECT_EQ(co_await receiver, EBADF);
  }());
}

TEST(UdpSocket, operations_on_a_closed_socket_are_an_IoError_EBADF) {
  run_with_deadline([]() -> gb::Task<void> {
    auto socket = bind_loopback();
    const net::SocketAddress self = socket.local_address();
    socket.close();
    socket.close();  // idempotent
    try {
      (void)co_await socket.send_to("x", self);
      ADD_FAILURE() << "sent on a closed socket";
    } catch (const gb::IoError& e) {
      EXPECT_EQ(e.error_number(), EBADF);
    }
    try {
      socket.connect(self);
      ADD_FAILURE() << "connected a closed socket";
    } catch (const gb::IoError& e) {
      EXPECT_EQ(e.error_number(), EBADF);
    }
  }());
}

TEST(UdpSocket, ipv6_loopback_round_trips_when_the_host_has_it) {
  net::UdpSocket a;
  try {
    a = net::UdpSocket::bind(net::SocketAddress::ip("::1", 0));
  } catch (const gb::IoError& e) {
    GTEST_SKIP() << "no IPv6 loopback here: " << e.what();
  }
  run_with_deadline([](net::UdpSocket& a) -> gb::Task<void> {
    auto b = net::UdpSocket::bind(net::SocketAddress::ip("::1", 0));
    co_await a.send_to("six", b.local_address());
    std::array<char, 16> buffer{};
    const net::Datagram got = co_await b.receive_from(buffer);
    EXPECT_EQ(std::string_view(buffer.data(), got.size), "six");
    EXPECT_EQ(got.from, a.local_address());
    EXPECT_EQ(got.from.family(), AF_INET6);
    a.close();  // before its loop goes
  }(a));
}
