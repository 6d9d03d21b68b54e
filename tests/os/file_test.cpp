// Files on the blocking pool (include/gearbox/os/file.hpp): whole-file round trips (empty,
// small, several MiB), errors that name the path (ENOENT, ENOSPC on /dev/full, EBADF after
// close), reading in chunks to the end, append mode, write + sync + close, and operations
// abandoned by a timeout (a read, an open) that finish in the background without leaking
// the descriptor.
//
// The operations run on real threads, so the tests use the steady clock under a deadline
// (see os_test_support.hpp). A read or open that must block forever uses a FIFO: a read
// from an empty FIFO and an open of a FIFO for reading both wait for a writer, and the test
// releases them by writing. Each test works in its own temporary directory.
#include <gearbox/os/file.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <exception>
#include <filesystem>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include <gearbox/error.hpp>
#include <gearbox/task.hpp>
#include <gearbox/time.hpp>

#include <gtest/gtest.h>

#include "os/os_test_support.hpp"

namespace gb = gearbox;
namespace os = gearbox::os;
using namespace std::literals;
using gearbox_test::run_with_deadline;
using gearbox_test::TempDir;

namespace {

std::string pattern(std::size_t size) {
  std::string data(size, '\0');
  for (std::size_t i = 0; i < size; ++i) data[i] = static_cast<char>((i * 131 + i / 65536) % 256);
  return data;
}

// Whether some descriptor of this process still has `fifo` open for reading: opening it
// for writing without blocking fails with ENXIO when there is no reader.
bool fifo_has_a_reader(const std::filesystem::path& fifo) {
  const int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return errno != ENXIO;
  ::close(fd);
  return true;
}

// Waits (bounded) until nothing has `fifo` open for reading any more: the pool finishes
// abandoned operations in the background, so "eventually", not "at once".
bool fifo_reader_goes_away(const std::filesystem::path& fifo) {
  for (int i = 0; i < 10000; ++i) {
    if (!fifo_has_a_reader(fifo)) return true;
    std::this_thread::sleep_for(1ms);
  }
  return false;
}

}  // namespace

TEST(File, write_file_then_read_file_returns_the_same_bytes) {
  TempDir dir;
  const std::string text = "hello\nworld\0with a nul"s;
  const std::string back = run_with_deadline([](std::filesystem::path path, std::string text) -> gb::Task<std::string> {
    co_await os::write_file(path, text);
    co_return co_await os::read_file(path);
  }(dir / "small.txt", text));
  EXPECT_EQ(back, text);
}

TEST(File, a_file_of_several_mebibytes_round_trips) {
  TempDir dir;
  const std::string data = pattern((5 << 20) + 123);  // not a multiple of any buffer size
  const std::string back = run_with_deadline([](std::filesystem::path path, std::string data) -> gb::Task<std::string> {
    co_await os::write_file(path, data);
    co_return co_await os::read_file(path);
  }(dir / "big.bin", data));
  EXPECT_EQ(back.size(), data.size());
  EXPECT_TRUE(back == data);
}

TEST(File, an_empty_file_round_trips_as_an_empty_string) {
  TempDir dir;
  const std::string back = run_with_deadline([](std::filesystem::path path) -> gb::Task<std::string> {
    co_await os::write_file(path, "will be truncated");
    co_await os::write_file(path, "");
    co_return co_await os::read_file(path);
  }(dir / "empty"));
  EXPECT_EQ(back, "");
  EXPECT_EQ(std::filesystem::file_size(dir / "empty"), 0u);
}

TEST(File, read_file_of_a_missing_file_is_an_IoError_ENOENT_naming_the_path) {
  TempDir dir;
  const auto path = dir / "missing.txt";
  try {
    (void)run_with_deadline(os::read_file(path));
    ADD_FAILURE() << "read a file that does not exist";
  } catch (const gb::IoError& e) {
    EXPECT_EQ(e.error_number(), ENOENT);
    EXPECT_NE(e.operation().find(path.string()), std::string::npos) << e.operation();
    EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
  }
}

TEST(File, write_file_to_dev_full_is_an_IoError_ENOSPC) {
  try {
    run_with_deadline(os::write_file("/dev/full", "no room for this"));
    ADD_FAILURE() << "wrote to /dev/full";
  } catch (const gb::IoError& e) {
    EXPECT_EQ(e.error_number(), ENOSPC) << e.what();
    EXPECT_NE(e.operation().find("/dev/full"), std::string::npos) << e.operation();
  }
}

TEST(File, a_file_read_in_chunks_gives_every_byte_and_then_0_at_the_end) {
  TempDir dir;
  const std::string data = pattern(100'003);
  const std::string back = run_with_deadline([](std::filesystem::path path, std::string data) -> gb::Task<std::string> {
    co_await os::write_file(path, data);
    auto file = co_await os::File::open(path, os::OpenMode::read);
    EXPECT_TRUE(file.is_open());
    EXPECT_EQ(file.path(), path);
    std::string all;
    std::array<char, 4096> buffer{};
    for (int reads = 0; reads < 1000; ++reads) {  // bounded: 25 reads are enough
      const std::size_t n = co_await file.read(buffer);
      if (n == 0) break;
      EXPECT_LE(n, buffer.size());
      all.append(buffer.data(), n);
    }
    EXPECT_EQ(co_await file.read(buffer), 0u) << "end of file stays end of file";
    co_await file.close();
    EXPECT_FALSE(file.is_open());
    co_return all;
  }(dir / "chunks.bin", data));
  EXPECT_TRUE(back == data);
}

TEST(File, append_mode_writes_at_the_end_of_what_is_there) {
  TempDir dir;
  const std::string back = run_with_deadline([](std::filesystem::path path) -> gb::Task<std::string> {
    co_await os::write_file(path, "first\n");
    {
      auto file = co_await os::File::open(path, os::OpenMode::append);
      co_await file.write_all("second\n");
      co_await file.write_all("third\n");
      co_await file.close();
    }
    auto again = co_await os::File::open(path, os::OpenMode::append);  // a new descriptor, still at the end
    co_await again.write_all("fourth\n");
    co_await again.close();
    co_return co_await os::read_file(path);
  }(dir / "log.txt"));
  EXPECT_EQ(back, "first\nsecond\nthird\nfourth\n");
}

TEST(File, write_mode_truncates_and_read_write_mode_keeps_the_contents) {
  TempDir dir;
  run_with_deadline([](std::filesystem::path path) -> gb::Task<void> {
    co_await os::write_file(path, "0123456789");
    auto rw = co_await os::File::open(path, os::OpenMode::read_write);
    co_await rw.write_all("ab");  // overwrites at the start, keeps the rest
    co_await rw.close();
    EXPECT_EQ(co_await os::read_file(path), "ab23456789");
    auto w = co_await os::File::open(path, os::OpenMode::write);
    co_await w.write_all("xyz");
    co_await w.close();
    EXPECT_EQ(co_await os::read_file(path), "xyz");
  }(dir / "modes.txt"));
}

TEST(File, write_all_sync_and_close_leave_the_data_in_the_file) {
  TempDir dir;
  const std::string data = pattern(1 << 20);
  const std::string back = run_with_deadline([](std::filesystem::path path, std::string data) -> gb::Task<std::string> {
    auto file = co_await os::File::open(path, os::OpenMode::write);
    co_await file.write_all(std::string_view(data).substr(0, 1000));
    co_await file.write_all(std::string_view(data).substr(1000));
    co_await file.sync();
    co_await file.close();
    co_return co_await os::read_file(path);
  }(dir / "synced.bin", data));
  EXPECT_TRUE(back == data);
}

TEST(File, read_file_of_a_directory_is_an_IoError_EISDIR) {
  TempDir dir;
  try {
    (void)run_with_deadline(os::read_file(dir.path()));
    ADD_FAILURE() << "read a directory as a file";
  } catch (const gb::IoError& e) {
    EXPECT_EQ(e.error_number(), EISDIR) << e.what();
  }
}

TEST(File, write_file_into_a_missing_directory_is_an_IoError_ENOENT) {
  TempDir dir;
  try {
    run_with_deadline(os::write_file(dir / "no-such-dir" / "file", "data"));
    ADD_FAILURE() << "wrote into a directory that does not exist";
  } catch (const gb::IoError& e) {
    EXPECT_EQ(e.error_number(), ENOENT) << e.what();
  }
}

TEST(File, a_moved_file_keeps_its_descriptor_and_the_moved_from_one_is_closed) {
  TempDir dir;
  const std::string back = run_with_deadline([](std::filesystem::path path) -> gb::Task<std::string> {
    co_await os::write_file(path, "moved content");
    auto original = co_await os::File::open(path, os::OpenMode::read);
    os::File moved = std::move(original);
    EXPECT_FALSE(original.is_open());  // NOLINT(bugprone-use-after-move): specified state
    EXPECT_TRUE(moved.is_open());
    std::array<char, 64> buffer{};
    try {
      (void)co_await original.read(buffer);
      ADD_FAILURE() << "read through a moved-from File";
    } catch (const gb::IoError& e) {
      EXPECT_EQ(e.error_number(), EBADF);
    }
    const std::size_t n = co_await moved.read(buffer);
    co_await moved.close();
    co_return std::string(buffer.data(), n);
  }(dir / "moved.txt"));
  EXPECT_EQ(back, "moved content");
}

TEST(File, opening_a_missing_file_for_reading_is_an_IoError_ENOENT_naming_the_path) {
  TempDir dir;
  const auto path = dir / "nope";
  try {
    (void)run_with_deadline(os::File::open(path, os::OpenMode::read));
    ADD_FAILURE() << "opened a file that does not exist";
  } catch (const gb::IoError& e) {
    EXPECT_EQ(e.error_number(), ENOENT);
    EXPECT_NE(e.operation().find(path.string()), std::string::npos) << e.operation();
  }
}

TEST(File, every_operation_on_a_closed_file_is_an_IoError_EBADF) {
  TempDir dir;
  run_with_deadline([](std::filesystem::path path) -> gb::Task<void> {
    auto file = co_await os::File::open(path, os::OpenMode::read_write);
    co_await file.close();
    co_await file.close();  // idempotent
    char buffer[16];
    auto expect_ebadf = [](const char* what, const std::exception_ptr& error) {
      try {
        if (error) std::rethrow_exception(error);
        ADD_FAILURE() << what << " on a closed file did not throw";
      } catch (const gb::IoError& e) {
        EXPECT_EQ(e.error_number(), EBADF) << what << ": " << e.what();
      } catch (...) {
        ADD_FAILURE() << what << " threw something other than IoError";
      }
    };
    std::exception_ptr error;
    try { (void)co_await file.read(buffer); } catch (...) { error = std::current_exception(); }
    expect_ebadf("read", std::exchange(error, nullptr));
    try { co_await file.write_all("x"); } catch (...) { error = std::current_exception(); }
    expect_ebadf("write_all", std::exchange(error, nullptr));
    try { co_await file.sync(); } catch (...) { error = std::current_exception(); }
    expect_ebadf("sync", std::exchange(error, nullptr));
    os::File never_opened;
    EXPECT_FALSE(never_opened.is_open());
    try { (void)co_await never_opened.read(buffer); } catch (...) { error = std::current_exception(); }
    expect_ebadf("read of a default File", std::exchange(error, nullptr));
  }(dir / "closed"));
}

TEST(File, a_read_cancelled_by_a_timeout_does_not_crash_and_the_file_can_be_closed_after) {
  TempDir dir;
  const auto fifo = dir / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  run_with_deadline([](std::filesystem::path fifo) -> gb::Task<void> {
    // read_write: opening a FIFO that way does not wait for a writer; reading it does.
    auto file = co_await os::File::open(fifo, os::OpenMode::read_write);
    std::array<char, 64> buffer{};
    buffer.fill('#');
    EXPECT_THROW((void)co_await gb::timeout(20ms, file.read(buffer)), gb::TimeoutError);
    co_await file.close();
    EXPECT_FALSE(file.is_open());
    // Release the abandoned read on the pool: it must not write into our buffer.
    const int writer = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    EXPECT_GE(writer, 0);
    if (writer >= 0) {
      EXPECT_EQ(::write(writer, "late", 4), 4);
      ::close(writer);
    }
    EXPECT_EQ(std::string(buffer.data(), buffer.size()), std::string(64, '#'));
  }(fifo));
  // The descriptor closes when the abandoned read ends.
  EXPECT_TRUE(fifo_reader_goes_away(fifo));
}

TEST(File, an_open_cancelled_by_a_timeout_does_not_leak_the_descriptor_it_opens_later) {
  TempDir dir;
  const auto fifo = dir / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  run_with_deadline([](std::filesystem::path fifo) -> gb::Task<void> {
    // Opening a FIFO for reading waits for a writer: the open is abandoned by the timeout.
    EXPECT_THROW((void)co_await gb::timeout(20ms, os::File::open(fifo, os::OpenMode::read)), gb::TimeoutError);
  }(fifo));
  // A writer lets the pool's open() finish; the descriptor it returns has no File to own it.
  int writer = -1;
  for (int i = 0; i < 10000 && writer < 0; ++i) {  // ENXIO until the pool thread is in open()
    writer = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (writer < 0) std::this_thread::sleep_for(1ms);
  }
  ASSERT_GE(writer, 0) << "the abandoned open never reached the FIFO";
  ::close(writer);
  EXPECT_TRUE(fifo_reader_goes_away(fifo)) << "the descriptor opened for an abandoned File::open was leaked";
}
