// SocketAddress: parsing and printing, without any socket.
#include <gearbox/net/address.hpp>

#include <netinet/in.h>
#include <sys/un.h>

#include <stdexcept>

#include <gtest/gtest.h>

namespace net = gearbox::net;

TEST(SocketAddress, an_ipv4_address_keeps_its_port_and_prints_as_host_colon_port) {
  const auto address = net::SocketAddress::ip("10.1.2.3", 8080);
  EXPECT_EQ(address.family(), AF_INET);
  EXPECT_EQ(address.port(), 8080);
  EXPECT_EQ(address.to_string(), "10.1.2.3:8080");
  EXPECT_EQ(address.native_size(), sizeof(sockaddr_in));
}

TEST(SocketAddress, an_ipv6_address_prints_in_brackets) {
  const auto address = net::SocketAddress::ip("::1", 443);
  EXPECT_EQ(address.family(), AF_INET6);
  EXPECT_EQ(address.to_string(), "[::1]:443");
}

TEST(SocketAddress, parse_reads_both_families_and_round_trips_with_to_string) {
  for (const char* text : {"127.0.0.1:80", "[::1]:65535", "0.0.0.0:0"}) {
    EXPECT_EQ(net::SocketAddress::parse(text).to_string(), text);
  }
  EXPECT_EQ(net::SocketAddress::parse("127.0.0.1:80"), net::SocketAddress::loopback(80));
}

TEST(SocketAddress, parse_rejects_missing_or_bad_ports_and_host_names) {
  for (const char* text : {"127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:8x", "localhost:80", ":80"}) {
    EXPECT_THROW(net::SocketAddress::parse(text), std::invalid_argument) << text;
  }
}

TEST(SocketAddress, unix_paths_and_abstract_names_print_as_given) {
  EXPECT_EQ(net::SocketAddress::unix_path("/tmp/x.sock").to_string(), "/tmp/x.sock");
  const auto abstract = net::SocketAddress::unix_path("@gearbox-test");
  EXPECT_EQ(abstract.family(), AF_UNIX);
  EXPECT_EQ(abstract.to_string(), "@gearbox-test");
  EXPECT_EQ(abstract.port(), 0);
}

TEST(SocketAddress, a_unix_path_too_long_for_sun_path_is_rejected) {
  EXPECT_THROW(net::SocketAddress::unix_path(std::string(sizeof(sockaddr_un{}.sun_path), 'a')), std::invalid_argument);
  EXPECT_THROW(net::SocketAddress::unix_path(""), std::invalid_argument);
}

TEST(SocketAddress, a_default_address_is_empty_and_unequal_to_any_real_one) {
  const net::SocketAddress empty;
  EXPECT_TRUE(empty.empty());
  EXPECT_FALSE(empty == net::SocketAddress::loopback(0));
}
