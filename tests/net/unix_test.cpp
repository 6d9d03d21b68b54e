// Unix domain stream sockets (include/gearbox/net/unix.hpp): an echo through a listener,
// socketpair, abstract names, the socket file's life (removed at close, EADDRINUSE, stale
// files), connect errors, EPIPE, shutdown_write, and descriptors left open. The stream
// behaviour they share with TCP and pipes (BufferedReader, read_exact, end of stream,
// close) is tested in unix_stream_io_test; the helpers they share are in
// net_test_support.hpp.
//
// Unix sockets deliver within the writing system call, so the tests run on the manual
// clock (run_bounded: deterministic, and a lost wake-up is a TimeoutError at once instead
// of a hang), and those without a close() from another task on a Runtime too. Each test
// uses its own temporary directory for socket paths, and abstract names carry the pid.
#include <gearbox/net/unix.hpp>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gearbox/combinators.hpp>
#include <gearbox/error.hpp>
#include <gearbox/join_handle.hpp>
#include <gearbox/net/buffered_reader.hpp>
#include <gearbox/spawn.hpp>
#include <gearbox/task.hpp>
#include <gearbox/time.hpp>

#include <gtest/gtest.h>

#include "support/descriptors.hpp"
#include "net_test_support.hpp"
#include "os/os_test_support.hpp"
#include "support/test_loop.hpp"

namespace gb = gearbox;
namespace net = gearbox::net;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using gearbox_test::TempDir;

namespace {

using gearbox_test::read_to_end;
using gearbox_test::run_bounded;

std::string abstract_name(const std::string& what) {
  return "@gearbox-test-" + std::to_string(::getpid()) + "-" + what;
}

// Leaves a socket file at `path` with nobody listening (as a crashed server does).
void make_stale_socket_file(const fs::path& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ::close(fd);
  ASSERT_TRUE(fs::is_socket(path));
}

using gearbox_test::open_descriptors;

// Accepts one connection and echoes it until the client's end of stream.
gb::Task<void> echo_once(net::UnixListener& listener) {
  net::UnixStream connection = co_await listener.accept();
  std::array<char, 4096> buffer{};
  for (;;) {
    const std::size_t n = co_await connection.read(buffer);
    if (n == 0) break;
    co_await connection.write_all(std::string_view(buffer.data(), n));
  }
}

// Echoes connections one after another until one of them sent something (bounded). For a
// listener that may have been probed: remove_stale's probe is a connection that closes at
// once.
gb::Task<void> echo_first_with_data(net::UnixListener& listener) {
  for (int connections = 0; connections < 4; ++connections) {
    net::UnixStream connection = co_await listener.accept();
    std::array<char, 4096> buffer{};
    bool any = false;
    for (;;) {
      const std::size_t n = co_await connection.read(buffer);
      if (n == 0) break;
      any = true;
      co_await connection.write_all(std::string_view(buffer.data(), n));
    }
    if (any) co_return;
  }
  ADD_FAILURE() << "no connection with data among the first 4";
}

}  // namespace

// The cases without a close() from another task run on both flavors: on the Runtime
// the two ends run on two workers at once (real clock, under the hang guard).
class UnixOnEveryFlavor : public testing::TestWithParam<gearbox_test::Flavor> {};
INSTANTIATE_TEST_SUITE_P(Unix, UnixOnEveryFlavor, gearbox_test::every_flavor(), gearbox_test::flavor_name);

TEST_P(UnixOnEveryFlavor, a_client_connected_to_a_listener_gets_its_bytes_echoed) {
  TempDir dir;
  const std::string path = (dir / "echo.sock").string();
  const std::string echoed = run_bounded(GetParam(), [](std::string path) -> gb::Task<std::string> {
    auto listener = net::UnixListener::bind(path);
    EXPECT_EQ(listener.path(), path);
    EXPECT_TRUE(fs::is_socket(path));
    auto server = gb::spawn(echo_once(listener));
    net::UnixStream client = co_await net::UnixStream::connect(path);
    co_await client.write_all("hello over a unix socket");
    client.shutdown_write();  // the server sees end of stream and stops echoing
    std::string all = co_await read_to_end(client);
    co_await server;
    co_return all;
  }(path));
  EXPECT_EQ(echoed, "hello over a unix socket");
}

TEST_P(UnixOnEveryFlavor, pair_gives_two_connected_streams_both_ways) {
  run_bounded(GetParam(), []() -> gb::Task<void> {
    auto [a, b] = net::UnixStream::pair();
    co_await a.write_all("ping");
    std::array<char, 16> buffer{};
    EXPECT_EQ(co_await b.read(buffer), 4u);
    EXPECT_EQ(std::string_view(buffer.data(), 4), "ping");
    co_await b.write_all("pong!");
    EXPECT_EQ(co_await a.read(buffer), 5u);
    EXPECT_EQ(std::string_view(buffer.data(), 5), "pong!");
  }());
}

TEST_P(UnixOnEveryFlavor, a_large_transfer_through_a_pair_arrives_whole_while_both_sides_run) {
  std::string data(3 << 20, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 31 % 251);
  const std::string got = run_bounded(GetParam(), [](const std::string& data) -> gb::Task<std::string> {
    auto [a, b] = net::UnixStream::pair();
    auto writer = [](net::UnixStream& a, const std::string& data) -> gb::Task<void> {
      co_await a.write_all(data);  // far more than the socket buffers: waits for the reader
      a.close();
    };
    auto [done, all] = co_await gb::gather(writer(a, data), read_to_end(b));
    (void)done;
    co_return all;
  }(data));
  EXPECT_EQ(got.size(), data.size());
  EXPECT_TRUE(got == data);
}

TEST(UnixListener, an_abstract_name_works_without_a_file_and_is_free_again_after_close) {
  const std::string name = abstract_name("abstract");
  run_bounded([](std::string name) -> gb::Task<void> {
    auto listener = net::UnixListener::bind(name);
    EXPECT_TRUE(listener.is_open());
    EXPECT_FALSE(fs::exists(name)) << "an abstract name is not a file";
    EXPECT_FALSE(fs::exists(name.substr(1)));
    auto server = gb::spawn(echo_once(listener));
    net::UnixStream client = co_await net::UnixStream::connect(name);
    co_await client.write_all("abstract");
    client.shutdown_write();
    EXPECT_EQ(co_await read_to_end(client), "abstract");
    co_await server;
    // The name is taken while the listener lives...
    try {
      auto second = net::UnixListener::bind(name);
      ADD_FAILURE() << "bound an abstract name in use";
    } catch (const gb::IoError& e) {
      EXPECT_EQ(e.error_number(), EADDRINUSE);
    }
    // ...and free once it is closed.
    listener.close();
    auto again = net::UnixListener::bind(name);
    EXPECT_TRUE(again.is_open());
  }(name));
}

TEST(UnixListener, the_socket_file_is_removed_when_the_listener_closes_or_is_destroyed) {
  TempDir dir;
  const fs::path closed = dir / "closed.sock";
  const fs::path destroyed = dir / "destroyed.sock";
  {
    auto listener = net::UnixListener::bind(closed.string());
    EXPECT_TRUE(fs::is_socket(closed));
    listener.close();
    EXPECT_FALSE(fs::exists(closed));
    listener.close();  // idempotent
  }
  {
    auto listener = net::UnixListener::bind(destroyed.string());
    EXPECT_TRUE(fs::is_socket(destroyed));
  }
  EXPECT_FALSE(fs::exists(destroyed));
}

TEST(UnixListener, a_moved_listener_removes_its_file_once_when_the_new_owner_closes) {
  TempDir dir;
  const fs::path path = dir / "moved.sock";
  {
    auto original = net::UnixListener::bind(path.string());
    net::UnixListener moved = std::move(original);
    original.close();  // the moved-from listener owns nothing: the file stays
    EXPECT_TRUE(fs::is_socket(path));
    EXPECT_EQ(moved.path(), path.string());
    EXPECT_TRUE(moved.is_open());
  }
  EXPECT_FALSE(fs::exists(path));
}

TEST(UnixListener, binding_over_an_existing_path_is_an_IoError_EADDRINUSE) {
  TempDir dir;
  const fs::path path = dir / "taken.sock";
  auto first = net::UnixListener::bind(path.string());
  try {
    auto second = net::UnixListener::bind(path.string());
    ADD_FAILURE() << "bound a path in use";
  } catch (const gb::IoError& e) {
    EXPECT_EQ(e.error_number(), EADDRINUSE) << e.what();
  }
  // The failed bind must not have removed the first listener's file.
  EXPECT_TRUE(fs::is_socket(path));
}

TEST_P(UnixOnEveryFlavor, remove_stale_replaces_a_socket_file_nobody_listens_on) {
  TempDir dir;
  const fs::path path = dir / "stale.sock";
  make_stale_socket_file(path);
  try {
    auto refused = net::UnixListener::bind(path.string());
    ADD_FAILURE() << "bound over a stale socket file without remove_stale";
  } catch (const gb::IoError& e) {
    EXPECT_EQ(e.error_number(), EADDRINUSE);
  }
  const std::string echoed = run_bounded(GetParam(), [](std::string path) -> gb::Task<std::string> {
    auto listener = net::UnixListener::bind(path, {.remove_stale = true});
    auto server = gb::spawn(echo_once(listener));
    net::UnixStream client = co_await net::UnixStream::connect(path);
    co_await client.write_all("fresh");
    client.shutdown_write();
    std::string all = co_await read_to_end(client);
    co_await server;
    co_return all;
  }(path.string()));
  EXPECT_EQ(echoed, "fresh");
}

TEST(UnixListener, remove_stale_never_removes_a_regular_file) {
  TempDir dir;
  const fs::path path = dir / "precious.txt";
  std::ofstream(path) << "keep me";
  try {
    auto listener = net::UnixListener::bind(path.string(), {.remove_stale = true});
    ADD_FAILURE() << "bound over a regular file";
  } catch (const gb::IoError& e) {
    EXPECT_EQ(e.error_number(), EADDRINUSE) << e.what();
  }
  ASSERT_TRUE(fs::is_regular_file(path));
  std::string content;
  std::getline(std::ifstream(path), content);
  EXPECT_EQ(content, "keep me");
}

TEST_P(UnixOnEveryFlavor, remove_stale_does_not_take_the_path_of_a_listener_that_is_alive) {
  TempDir dir;
  const fs::path path = dir / "live.sock";
  const std::string answer = run_bounded(GetParam(), [](std::string path) -> gb::Task<std::string> {
    auto live = net::UnixListener::bind(path);
    try {
      auto usurper = net::UnixListener::bind(path, {.remove_stale = true});
      ADD_FAILURE() << "remove_stale unlinked the socket file of a live listener";
    } catch (const gb::IoError& e) {
      EXPECT_EQ(e.error_number(), EADDRINUSE) << e.what();
    }
    // The live listener still owns the path: a new client reaches it.
    auto server = gb::spawn(echo_first_with_data(live));
    net::UnixStream client = co_await net::UnixStream::connect(path);
    co_await client.write_all("still mine");
    client.shutdown_write();
    std::string all = co_await read_to_end(client);
    co_await server;
    co_return all;
  }(path.string()));
  EXPECT_EQ(answer, "still mine");
}

TEST_P(UnixOnEveryFlavor, connecting_to_a_missing_path_is_an_IoError_ENOENT) {
  TempDir dir;
  const std::string path = (dir / "nobody.sock").string();
  const int error = run_bounded(GetParam(), [](std::string path) -> gb::Task<int> {
    try {
      (void)co_await net::UnixStream::connect(path);
    } catch (const gb::IoError& e) {
      co_return e.error_number();
    }
    co_return 0;
  }(path));
  EXPECT_EQ(error, ENOENT);
}

TEST_P(UnixOnEveryFlavor, connecting_to_a_stale_socket_file_is_an_IoError_ECONNREFUSED) {
  TempDir dir;
  const fs::path path = dir / "stale.sock";
  make_stale_socket_file(path);
  const int error = run_bounded(GetParam(), [](std::string path) -> gb::Task<int> {
    try {
      (void)co_await net::UnixStream::connect(path);
    } catch (const gb::IoError& e) {
      co_return e.error_number();
    }
    co_return 0;
  }(path.string()));
  EXPECT_EQ(error, ECONNREFUSED);
}

TEST(UnixStream, writing_to_a_closed_peer_is_an_IoError_EPIPE_not_SIGPIPE) {
  // net_test never ignores SIGPIPE: a send without MSG_NOSIGNAL would end the binary.
  run_bounded([]() -> gb::Task<void> {
    auto [a, b] = net::UnixStream::pair();
    b.close();
    try {
      co_await a.write_all("into the void");
      ADD_FAILURE() << "wrote to a closed peer";
    } catch (const gb::IoError& e) {
      EXPECT_EQ(e.error_number(), EPIPE) << e.what();
    }
  }());
}

TEST_P(UnixOnEveryFlavor, shutdown_write_ends_the_peers_reading_while_the_other_direction_goes_on) {
  run_bounded(GetParam(), []() -> gb::Task<void> {
    auto [a, b] = net::UnixStream::pair();
    co_await a.write_all("request");
    a.shutdown_write();
    EXPECT_EQ(co_await read_to_end(b), "request");
    co_await b.write_all("response");
    b.close();
    EXPECT_EQ(co_await read_to_end(a), "response");
  }());
}

TEST(UnixStream, failed_binds_and_connects_and_closed_connections_leave_no_descriptor_open) {
  TempDir dir;
  const std::string path = (dir / "fds.sock").string();
  const std::size_t before = open_descriptors();
  run_bounded([](std::string path, std::string missing) -> gb::Task<void> {
    for (int i = 0; i < 3; ++i) {
      auto listener = net::UnixListener::bind(path);
      EXPECT_THROW((void)net::UnixListener::bind(path), gb::IoError);  // EADDRINUSE
      auto server = gb::spawn(echo_once(listener));
      net::UnixStream client = co_await net::UnixStream::connect(path);
      co_await client.write_all("x");
      client.shutdown_write();
      EXPECT_EQ(co_await read_to_end(client), "x");
      co_await server;
      try {
        (void)co_await net::UnixStream::connect(missing);
        ADD_FAILURE() << "connected to a missing path";
      } catch (const gb::IoError&) {
      }
      auto [a, b] = net::UnixStream::pair();
      a.close();
    }
  }(path, (dir / "missing.sock").string()));
  EXPECT_EQ(open_descriptors(), before);
}
