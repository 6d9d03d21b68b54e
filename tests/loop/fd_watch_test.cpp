// FdWatch: edge-triggered readiness on the loop, with pipes. Manual clock with
// auto_advance: a writer that sleeps first makes the interleaving deterministic.
#include <gearbox/detail/fd_watch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include <gearbox/join_handle.hpp>
#include <gearbox/loop.hpp>
#include <gearbox/spawn.hpp>
#include <gearbox/time.hpp>

#include <gtest/gtest.h>

namespace gb = gearbox;
using namespace std::chrono_literals;

namespace {

// A non-blocking pipe, closed on destruction.
struct Pipe {
  int read_end = -1;
  int write_end = -1;
  Pipe() {
    int fds[2];
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) throw gb::IoError(errno, "pipe2");
    read_end = fds[0];
    write_end = fds[1];
  }
  ~Pipe() {
    close_read();
    close_write();
  }
  void close_read() {
    if (read_end >= 0) ::close(std::exchange(read_end, -1));
  }
  void close_write() {
    if (write_end >= 0) ::close(std::exchange(write_end, -1));
  }
};

// Reads what is there, waiting for readability on EAGAIN. Returns "" at end of stream.
gb::Task<std::string> read_some(gb::detail::FdWatch& watch) {
  char buffer[256];
  for (;;) {
    const std::uint32_t tick = watch.read_tick();
    const ssize_t n = ::read(watch.fd(), buffer, sizeof buffer);
    if (n >= 0) co_return std::string(buffer, static_cast<std::size_t>(n));
    if (errno != EAGAIN) throw gb::IoError(errno, "read");
    watch.clear_readable(tick);
    co_await watch.readable();
  }
}

struct TestLoop {
  gb::ManualClock clock;
  gb::Loop loop{{.clock = &clock, .auto_advance = true}};
};

}  // namespace

TEST(FdWatch, a_reader_waits_until_a_writer_writes_and_then_reads_the_bytes) {
  TestLoop t;
  Pipe pipe;
  std::vector<std::string> log;
  t.loop.run([](Pipe& pipe, std::vector<std::string>& log) -> gb::Task<void> {
    gb::detail::FdWatch watch{*gb::Loop::current(), pipe.read_end};
    auto writer = gb::spawn([](Pipe& pipe, std::vector<std::string>& log) -> gb::Task<void> {
      co_await gb::sleep_for(1s);
      log.push_back("write");
      EXPECT_EQ(::write(pipe.write_end, "hello", 5), 5);
    }(pipe, log));
    log.push_back("read " + co_await read_some(watch));
    co_await writer;
  }(pipe, log));
  EXPECT_EQ(log, (std::vector<std::string>{"write", "read hello"}));
}

TEST(FdWatch, closing_the_write_end_wakes_the_reader_with_end_of_stream) {
  TestLoop t;
  Pipe pipe;
  const std::string got = t.loop.run([](Pipe& pipe) -> gb::Task<std::string> {
    gb::detail::FdWatch watch{*gb::Loop::current(), pipe.read_end};
    auto closer = gb::spawn([](Pipe& pipe) -> gb::Task<void> {
      co_await gb::sleep_for(1s);
      pipe.close_write();
    }(pipe));
    std::string s = co_await read_some(watch);
    co_await closer;
    EXPECT_TRUE(watch.hung_up());
    co_return s;
  }(pipe));
  EXPECT_EQ(got, "");
}

TEST(FdWatch, a_cancelled_wait_throws_cancelled_and_the_watch_stays_usable) {
  TestLoop t;
  Pipe pipe;
  std::vector<std::string> log;
  t.loop.run([](Pipe& pipe, std::vector<std::string>& log) -> gb::Task<void> {
    gb::detail::FdWatch watch{*gb::Loop::current(), pipe.read_end};
    auto waiter = gb::spawn([](gb::detail::FdWatch& watch, std::vector<std::string>& log) -> gb::Task<void> {
      try {
        co_await read_some(watch);
        log.push_back("read");
      } catch (const gb::Cancelled&) {
        log.push_back("cancelled");
        throw;
      }
    }(watch, log));
    co_await gb::sleep_for(1s);
    waiter.cancel();
    try {
      co_await waiter;
    } catch (const gb::Cancelled&) {
      log.push_back("joined");
    }
    EXPECT_EQ(::write(pipe.write_end, "x", 1), 1);
    log.push_back("again " + co_await read_some(watch));
  }(pipe, log));
  EXPECT_EQ(log, (std::vector<std::string>{"cancelled", "joined", "again x"}));
}

TEST(FdWatch, a_second_waiter_in_the_same_direction_is_a_logic_error) {
  TestLoop t;
  Pipe pipe;
  bool refused = false;
  t.loop.run([](Pipe& pipe, bool& refused) -> gb::Task<void> {
    gb::detail::FdWatch watch{*gb::Loop::current(), pipe.read_end};
    auto first = gb::spawn([](gb::detail::FdWatch& watch) -> gb::Task<void> { co_await watch.readable(); }(watch));
    co_await gb::yield_now();  // first is waiting now
    try {
      co_await watch.readable();
    } catch (const std::logic_error&) {
      refused = true;
    }
    EXPECT_EQ(::write(pipe.write_end, "x", 1), 1);
    co_await first;
  }(pipe, refused));
  EXPECT_TRUE(refused);
}

TEST(FdWatch, an_always_ready_descriptor_still_lets_other_tasks_run) {
  TestLoop t;
  Pipe pipe;
  int other_ran_at = -1;
  t.loop.run([](Pipe& pipe, int& other_ran_at) -> gb::Task<void> {
    gb::detail::FdWatch watch{*gb::Loop::current(), pipe.write_end};
    co_await watch.writable();  // the first edge: an empty pipe is writable
    bool other_ran = false;
    auto other = gb::spawn([](bool& ran) -> gb::Task<void> {
      ran = true;
      co_return;
    }(other_ran));
    // Never waits again: the direction stays marked ready, yet the budget makes it yield.
    for (int i = 0; i < 10'000 && !other_ran; ++i) {
      co_await watch.writable();
      if (other_ran) other_ran_at = i;
    }
    co_await other;
  }(pipe, other_ran_at));
  EXPECT_GE(other_ran_at, 0) << "the other task never ran while this one looped";
  EXPECT_LE(other_ran_at, static_cast<int>(gb::detail::k_resume_budget));
}
