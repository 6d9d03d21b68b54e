// The stream behaviour that Unix domain stream sockets (include/gearbox/net/unix.hpp)
// share with TCP and pipes (stream.hpp, buffered_reader.hpp), over a UnixStream:
// BufferedReader (CRLF, LineTooLong and recovery, UnexpectedEof, clean end), read_exact
// across many small writes, a peer that closes under a blocked read, and close() from
// another task. The listener, the socket file and connect errors are tested in unix_test;
// the helpers they share are in net_test_support.hpp.
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

// One line read, as the test sees it: the line, "<eof>", or the exception's kind.
gb::Task<std::string> next_line(net::BufferedReader<net::UnixStream>& reader) {
  try {
    std::optional<std::string_view> line = co_await reader.read_line();
    co_return line ? std::string(*line) : std::string("<eof>");
  } catch (const gb::LineTooLong&) {
    co_return "<too long>";
  } catch (const gb::UnexpectedEof&) {
    co_return "<unexpected eof>";
  }
}

}  // namespace

// ---- BufferedReader over a UnixStream ----

// The cases without a close() from another task run on both flavors: on the Runtime
// the two ends run on two workers at once (real clock, under the hang guard).
class StreamIoOnEveryFlavor : public testing::TestWithParam<gearbox_test::Flavor> {};
INSTANTIATE_TEST_SUITE_P(Unix, StreamIoOnEveryFlavor, gearbox_test::every_flavor(), gearbox_test::flavor_name);

TEST_P(StreamIoOnEveryFlavor, lines_ending_in_crlf_or_lf_come_without_their_line_ends) {
  const std::vector<std::string> lines = run_bounded(GetParam(), []() -> gb::Task<std::vector<std::string>> {
    auto [a, b] = net::UnixStream::pair();
    co_await a.write_all("first\r\nsecond\n\r\nlast\r\n");
    a.close();
    net::BufferedReader reader{b};
    std::vector<std::string> got;
    for (int i = 0; i < 10; ++i) {
      std::string line = co_await next_line(reader);
      got.push_back(line);
      if (line == "<eof>") break;
    }
    co_return got;
  }());
  EXPECT_EQ(lines, (std::vector<std::string>{"first", "second", "", "last", "<eof>"}));
}

TEST_P(StreamIoOnEveryFlavor, a_line_longer_than_max_line_is_LineTooLong_and_the_next_read_returns_the_line_after_it) {
  const std::vector<std::string> lines = run_bounded(GetParam(), []() -> gb::Task<std::vector<std::string>> {
    auto [a, b] = net::UnixStream::pair();
    net::BufferedReader reader{b, {.max_line = 16, .read_size = 8}};
    // Written in pieces, so the long line spans many reads and the skip crosses them.
    auto writer = [](net::UnixStream& a) -> gb::Task<void> {
      const std::string text = "short\n" + std::string(100, 'x') + "\nexactly-16-bytes\n" +
                               std::string(17, 'y') + "\nafter\n";
      for (std::size_t at = 0; at < text.size(); at += 5) {
        co_await a.write_all(std::string_view(text).substr(at, 5));
        co_await gb::yield_now();
      }
      a.close();
    };
    auto writing = gb::spawn(writer(a));
    std::vector<std::string> got;
    for (int i = 0; i < 10; ++i) {
      std::string line = co_await next_line(reader);
      got.push_back(line);
      if (line == "<eof>") break;
    }
    co_await writing;
    co_return got;
  }());
  EXPECT_EQ(lines, (std::vector<std::string>{"short", "<too long>", "exactly-16-bytes", "<too long>", "after", "<eof>"}));
}

TEST_P(StreamIoOnEveryFlavor, a_too_long_line_already_in_the_buffer_with_its_end_is_skipped_at_once) {
  const std::vector<std::string> lines = run_bounded(GetParam(), []() -> gb::Task<std::vector<std::string>> {
    auto [a, b] = net::UnixStream::pair();
    // All in one write: the long line's '\n' arrives in the same read as its start.
    co_await a.write_all(std::string(20, 'z') + "\nnext\n");
    a.close();
    net::BufferedReader reader{b, {.max_line = 16, .read_size = 64}};
    std::vector<std::string> got;
    for (int i = 0; i < 5; ++i) {
      std::string line = co_await next_line(reader);
      got.push_back(line);
      if (line == "<eof>") break;
    }
    co_return got;
  }());
  EXPECT_EQ(lines, (std::vector<std::string>{"<too long>", "next", "<eof>"}));
}

TEST_P(StreamIoOnEveryFlavor, end_of_stream_in_the_middle_of_a_line_is_UnexpectedEof) {
  const std::vector<std::string> lines = run_bounded(GetParam(), []() -> gb::Task<std::vector<std::string>> {
    auto [a, b] = net::UnixStream::pair();
    co_await a.write_all("complete\npartial");
    a.close();
    net::BufferedReader reader{b};
    std::vector<std::string> got;
    got.push_back(co_await next_line(reader));
    got.push_back(co_await next_line(reader));
    got.push_back(co_await next_line(reader));  // the partial line was dropped: clean end now
    co_return got;
  }());
  EXPECT_EQ(lines, (std::vector<std::string>{"complete", "<unexpected eof>", "<eof>"}));
}

TEST_P(StreamIoOnEveryFlavor, a_clean_end_of_stream_is_nullopt_every_time) {
  run_bounded(GetParam(), []() -> gb::Task<void> {
    auto [a, b] = net::UnixStream::pair();
    co_await a.write_all("only\n");
    a.close();
    net::BufferedReader reader{b};
    EXPECT_EQ(co_await next_line(reader), "only");
    EXPECT_FALSE((co_await reader.read_line()).has_value());
    EXPECT_FALSE((co_await reader.read_line()).has_value());
  }());
}

TEST_P(StreamIoOnEveryFlavor, read_until_splits_on_any_delimiter_and_read_returns_the_buffered_rest_first) {
  run_bounded(GetParam(), []() -> gb::Task<void> {
    auto [a, b] = net::UnixStream::pair();
    co_await a.write_all("key=value;tail bytes");
    a.close();
    net::BufferedReader reader{b};
    std::optional<std::string_view> key = co_await reader.read_until('=');
    EXPECT_EQ(key.value_or("<none>"), "key");
    std::optional<std::string_view> value = co_await reader.read_until(';');
    EXPECT_EQ(value.value_or("<none>"), "value");
    EXPECT_EQ(reader.buffered(), std::string_view("tail bytes").size());
    std::array<char, 64> buffer{};
    const std::size_t n = co_await reader.read(buffer);
    EXPECT_EQ(std::string_view(buffer.data(), n), "tail bytes");
    EXPECT_EQ(co_await reader.read(buffer), 0u);
  }());
}

// ---- read_exact, end of stream, close ----

TEST_P(StreamIoOnEveryFlavor, read_exact_collects_a_message_sent_one_byte_at_a_time) {
  const std::string got = run_bounded(GetParam(), []() -> gb::Task<std::string> {
    auto [a, b] = net::UnixStream::pair();
    auto writer = [](net::UnixStream& a) -> gb::Task<void> {
      for (int i = 0; i < 1000; ++i) {
        const char byte = static_cast<char>('A' + i % 26);
        co_await a.write_all(std::string_view(&byte, 1));
        co_await gb::yield_now();  // let the reader take each byte on its own
      }
    };
    auto writing = gb::spawn(writer(a));
    std::string message(1000, '\0');
    co_await b.read_exact(std::span<char>(message));
    co_await writing;
    co_return message;
  }());
  ASSERT_EQ(got.size(), 1000u);
  for (std::size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], static_cast<char>('A' + i % 26)) << "at " << i;
}

TEST_P(StreamIoOnEveryFlavor, read_exact_that_meets_end_of_stream_is_UnexpectedEof) {
  run_bounded(GetParam(), []() -> gb::Task<void> {
    auto [a, b] = net::UnixStream::pair();
    co_await a.write_all("short");
    a.close();
    std::array<char, 10> buffer{};
    EXPECT_THROW(co_await b.read_exact(buffer), gb::UnexpectedEof);
  }());
}

TEST(UnixStream, a_peer_that_closes_while_a_task_is_blocked_in_read_makes_the_read_return_0) {
  const std::size_t n = run_bounded([]() -> gb::Task<std::size_t> {
    auto [a, b] = net::UnixStream::pair();
    auto reader = gb::spawn([](net::UnixStream& b) -> gb::Task<std::size_t> {
      std::array<char, 16> buffer{};
      co_return co_await b.read(buffer);
    }(b));
    co_await gb::yield_now();  // the reader is blocked now
    EXPECT_FALSE(reader.done());
    a.close();
    co_return co_await reader;
  }());
  EXPECT_EQ(n, 0u);
}

// The data and the peer's close can reach the reader in one readiness report. A read that
// then returns fewer bytes than asked for must not wait for another edge: none will come,
// the end of stream is already there.
TEST(UnixStream, a_read_after_data_and_close_arrived_together_returns_the_end_of_stream) {
  const std::string got = run_bounded([]() -> gb::Task<std::string> {
    auto [a, b] = net::UnixStream::pair();
    co_await a.write_all("x");
    std::array<char, 16> buffer{};
    EXPECT_EQ(co_await b.read(buffer), 1u);  // first read: registers b, reads "x" (short)
    co_await a.write_all("y");
    a.close();                                // data and hang-up, before b waits again
    std::string rest = co_await read_to_end(b);
    co_return rest;
  }());
  EXPECT_EQ(got, "y");
}

TEST(UnixStream, close_from_another_task_wakes_a_blocked_reader_with_EBADF) {
  const int error = run_bounded([]() -> gb::Task<int> {
    auto [a, b] = net::UnixStream::pair();
    auto reader = gb::spawn([](net::UnixStream& b) -> gb::Task<int> {
      std::array<char, 16> buffer{};
      try {
        (void)co_await b.read(buffer);
      } catch (const gb::IoError& e) {
        co_return e.error_number();
      }
      co_return 0;
    }(b));
    co_await gb::yield_now();
    EXPECT_FALSE(reader.done());
    b.close();
    EXPECT_FALSE(b.is_open());
    const int result = co_await reader;
    // The stream is closed for good: a later read is EBADF too, and close stays harmless.
    std::array<char, 4> buffer{};
    EXPECT_THROW((void)co_await b.read(buffer), gb::IoError);
    b.close();
    co_return result;
  }());
  EXPECT_EQ(error, EBADF);
}

TEST(UnixStream, close_wakes_both_a_blocked_reader_and_a_blocked_writer_with_EBADF) {
  const std::pair<int, int> errors = run_bounded([]() -> gb::Task<std::pair<int, int>> {
    auto [a, b] = net::UnixStream::pair();
    auto failure_of = [](gb::Task<void> operation) -> gb::Task<int> {
      try {
        co_await std::move(operation);
      } catch (const gb::IoError& e) {
        co_return e.error_number();
      }
      co_return 0;
    };
    auto read_one = [](net::UnixStream& s) -> gb::Task<void> {
      std::array<char, 1> buffer{};
      (void)co_await s.read(buffer);
    };
    const std::string big(8 << 20, 'w');  // more than the socket buffers hold: the writer blocks
    auto reader = gb::spawn(failure_of(read_one(a)));
    auto writer = gb::spawn(failure_of(a.write_all(big)));
    co_await gb::yield_now();
    co_await gb::yield_now();
    EXPECT_FALSE(reader.done());
    EXPECT_FALSE(writer.done());
    a.close();
    const int read_error = co_await reader;
    const int write_error = co_await writer;
    co_return std::pair{read_error, write_error};
  }());
  EXPECT_EQ(errors.first, EBADF);
  EXPECT_EQ(errors.second, EBADF);
}

TEST(UnixListener, close_from_another_task_wakes_a_blocked_accept_with_EBADF) {
  TempDir dir;
  const fs::path path = dir / "accept.sock";
  const int error = run_bounded([](std::string path) -> gb::Task<int> {
    auto listener = net::UnixListener::bind(path);
    auto acceptor = gb::spawn([](net::UnixListener& listener) -> gb::Task<int> {
      try {
        (void)co_await listener.accept();
      } catch (const gb::IoError& e) {
        co_return e.error_number();
      }
      co_return 0;
    }(listener));
    co_await gb::yield_now();
    EXPECT_FALSE(acceptor.done());
    listener.close();
    co_return co_await acceptor;
  }(path.string()));
  EXPECT_EQ(error, EBADF);
  EXPECT_FALSE(fs::exists(path));
}
