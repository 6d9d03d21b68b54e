// Files (include/gearbox/os/file.hpp), on both I/O back ends (the blocking pool under
// epoll, the loop's ring under io_uring): whole-file round trips (empty, small, several
// MiB), errors that name the path (ENOENT, ENOSPC on /dev/full, EBADF after close),
// reading in chunks to the end, append mode, write + sync + close, and operations cancelled
// by a timeout (a read, an open) that never touch the caller's buffer afterwards and leak
// no descriptor. Then what only io_uring has: more operations in flight than its
// submission queue holds, a Runtime's ring per worker, and descriptors counted.
//
// The operations run on real threads or in the kernel, so the tests use the steady clock under a deadline
// (see os_test_support.hpp). A read or open that must block forever uses a FIFO: a read
// from an empty FIFO and an open of a FIFO for reading both wait for a writer, and the test
// releases them by writing. Each test works in its own temporary directory.
#include <gearbox/os/file.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <exception>
#include <filesystem>
#include <fstream>
#include <optional>
#include <vector>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include <gearbox/combinators.hpp>
#include <gearbox/error.hpp>
#include <gearbox/runtime.hpp>
#include <gearbox/task.hpp>
#include <gearbox/task_group.hpp>
#include <gearbox/time.hpp>

#include "loop/ring.hpp"

#include <gtest/gtest.h>

#include "os/os_test_support.hpp"
#include "support/descriptors.hpp"
#include "support/io_backends.hpp"

namespace gb = gearbox;
namespace os = gearbox::os;
using namespace std::literals;
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

// Every test runs on both back ends: epoll (files on the blocking pool) and io_uring.
class File : public gearbox_test::OnEachBackend {
protected:
  template <class T>
  T run(gb::Task<T> task) {
    return gearbox_test::run_with_deadline(std::move(task), backend());
  }
};
GEARBOX_ON_EACH_BACKEND(File);

TEST_P(File, write_file_then_read_file_returns_the_same_bytes) {
  TempDir dir;
  const std::string text = "hello\nworld\0with a nul"s;
  const std::string back = run([](std::filesystem::path path, std::string text) -> gb::Task<std::string> {
    co_await os::write_file(path, text);
    co_return co_await os::read_file(path);
  }(dir / "small.txt", text));
  EXPECT_EQ(back, text);
}

TEST_P(File, a_file_of_several_mebibytes_round_trips) {
  TempDir dir;
  const std::string data = pattern((5 << 20) + 123);  // not a multiple of any buffer size
  const std::string back = run([](std::filesystem::path path, std::string data) -> gb::Task<std::string> {
    co_await os::write_file(path, data);
    co_return co_await os::read_file(path);
  }(dir / "big.bin", data));
  EXPECT_EQ(back.size(), data.size());
  EXPECT_TRUE(back == data);
}

TEST_P(File, an_empty_file_round_trips_as_an_empty_string) {
  TempDir dir;
  const std::string back = run([](std::filesystem::path path) -> gb::Task<std::string> {
    co_await os::write_file(path, "will be truncated");
    co_await os::write_file(path, "");
    co_return co_await os::read_file(path);
  }(dir / "empty"));
  EXPECT_EQ(back, "");
  EXPECT_EQ(std::filesystem::file_size(dir / "empty"), 0u);
}

TEST_P(File, read_file_of_a_missing_file_is_an_IoError_ENOENT_naming_the_path) {
  TempDir dir;
  const auto path = dir / "missing.txt";
  try {
    (void)run(os::read_file(path));
    ADD_FAILURE() << "read a file that does not exist";
  } catch (const gb::IoError& e) {
    EXPECT_EQ(e.error_number(), ENOENT);
    EXPECT_NE(e.operation().find(path.string()), std::string::npos) << e.operation();
    EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
  }
}

TEST_P(File, write_file_to_dev_full_is_an_IoError_ENOSPC) {
  try {
    run(os::write_file("/dev/full", "no room for this"));
    ADD_FAILURE() << "wrote to /dev/full";
  } catch (const gb::IoError& e) {
    EXPECT_EQ(e.error_number(), ENOSPC) << e.what();
    EXPECT_NE(e.operation().find("/dev/full"), std::string::npos) << e.operation();
  }
}

TEST_P(File, a_file_read_in_chunks_gives_every_byte_and_then_0_at_the_end) {
  TempDir dir;
  const std::string data = pattern(100'003);
  const std::string back = run([](std::filesystem::path path, std::string data) -> gb::Task<std::string> {
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

TEST_P(File, append_mode_writes_at_the_end_of_what_is_there) {
  TempDir dir;
  const std::string back = run([](std::filesystem::path path) -> gb::Task<std::string> {
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

TEST_P(File, write_mode_truncates_and_read_write_mode_keeps_the_contents) {
  TempDir dir;
  run([](std::filesystem::path path) -> gb::Task<void> {
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

TEST_P(File, write_all_sync_and_close_leave_the_data_in_the_file) {
  TempDir dir;
  const std::string data = pattern(1 << 20);
  const std::string back = run([](std::filesystem::path path, std::string data) -> gb::Task<std::string> {
    auto file = co_await os::File::open(path, os::OpenMode::write);
    co_await file.write_all(std::string_view(data).substr(0, 1000));
    co_await file.write_all(std::string_view(data).substr(1000));
    co_await file.sync();
    co_await file.close();
    co_return co_await os::read_file(path);
  }(dir / "synced.bin", data));
  EXPECT_TRUE(back == data);
}

TEST_P(File, read_file_of_a_directory_is_an_IoError_EISDIR) {
  TempDir dir;
  try {
    (void)run(os::read_file(dir.path()));
    ADD_FAILURE() << "read a directory as a file";
  } catch (const gb::IoError& e) {
    EXPECT_EQ(e.error_number(), EISDIR) << e.what();
  }
}

TEST_P(File, write_file_into_a_missing_directory_is_an_IoError_ENOENT) {
  TempDir dir;
  try {
    run(os::write_file(dir / "no-such-dir" / "file", "data"));
    ADD_FAILURE() << "wrote into a directory that does not exist";
  } catch (const gb::IoError& e) {
    EXPECT_EQ(e.error_number(), ENOENT) << e.what();
  }
}

TEST_P(File, a_moved_file_keeps_its_descriptor_and_the_moved_from_one_is_closed) {
  TempDir dir;
  const std::string back = run([](std::filesystem::path path) -> gb::Task<std::string> {
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

TEST_P(File, opening_a_missing_file_for_reading_is_an_IoError_ENOENT_naming_the_path) {
  TempDir dir;
  const auto path = dir / "nope";
  try {
    (void)run(os::File::open(path, os::OpenMode::read));
    ADD_FAILURE() << "opened a file that does not exist";
  } catch (const gb::IoError& e) {
    EXPECT_EQ(e.error_number(), ENOENT);
    EXPECT_NE(e.operation().find(path.string()), std::string::npos) << e.operation();
  }
}

TEST_P(File, every_operation_on_a_closed_file_is_an_IoError_EBADF) {
  TempDir dir;
  run([](std::filesystem::path path) -> gb::Task<void> {
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

TEST_P(File, a_read_cancelled_by_a_timeout_does_not_crash_and_the_file_can_be_closed_after) {
  TempDir dir;
  const auto fifo = dir / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  run([](std::filesystem::path fifo, gb::IoBackend backend) -> gb::Task<void> {
    // read_write: opening a FIFO that way does not wait for a writer; reading it does.
    auto file = co_await os::File::open(fifo, os::OpenMode::read_write);
    std::array<char, 64> buffer{};
    buffer.fill('#');
    EXPECT_THROW((void)co_await gb::timeout(20ms, file.read(buffer)), gb::TimeoutError);
    co_await file.close();
    EXPECT_FALSE(file.is_open());
    const int writer = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (backend == gb::IoBackend::io_uring) {
      // The kernel cancelled the read before the task resumed, and the file is closed:
      // nothing reads the FIFO any more (ENXIO).
      EXPECT_LT(writer, 0) << "something still reads the FIFO";
      if (writer >= 0) ::close(writer);
      co_return;
    }
    // Release the abandoned read on the pool: it must not write into our buffer.
    EXPECT_GE(writer, 0);
    if (writer >= 0) {
      EXPECT_EQ(::write(writer, "late", 4), 4);
      ::close(writer);
    }
    EXPECT_EQ(std::string(buffer.data(), buffer.size()), std::string(64, '#'));
  }(fifo, backend()));
  // The descriptor closes when the abandoned read ends.
  EXPECT_TRUE(fifo_reader_goes_away(fifo));
}

TEST_P(File, an_open_cancelled_by_a_timeout_does_not_leak_the_descriptor) {
  TempDir dir;
  const auto fifo = dir / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  if (backend() == gb::IoBackend::io_uring) {
    // io_uring first tries an open without blocking, which for a FIFO succeeds without a
    // writer: the open completes, and closing the File leaves nothing open.
    run([](std::filesystem::path fifo) -> gb::Task<void> {
      auto file = co_await gb::timeout(20ms, os::File::open(fifo, os::OpenMode::read));
      EXPECT_TRUE(file.is_open());
    }(fifo));
    EXPECT_FALSE(fifo_has_a_reader(fifo)) << "the File's descriptor was not closed";
    return;
  }
  run([](std::filesystem::path fifo) -> gb::Task<void> {
    // Opening a FIFO for reading waits for a writer: the timeout abandons the open.
    EXPECT_THROW((void)co_await gb::timeout(20ms, os::File::open(fifo, os::OpenMode::read)), gb::TimeoutError);
  }(fifo));
  // On the pool the open is abandoned, not interrupted: a writer lets it finish, and the
  // descriptor it returns has no File to own it.
  int writer = -1;
  for (int i = 0; i < 10000 && writer < 0; ++i) {  // ENXIO until the pool thread is in open()
    writer = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (writer < 0) std::this_thread::sleep_for(1ms);
  }
  ASSERT_GE(writer, 0) << "the abandoned open never reached the FIFO";
  ::close(writer);
  EXPECT_TRUE(fifo_reader_goes_away(fifo)) << "the descriptor opened for an abandoned File::open was leaked";
}

TEST_P(File, reads_at_offsets_from_many_tasks_at_once_get_their_bytes_and_leave_the_position_alone) {
  TempDir dir;
  const std::string data = pattern(1 << 20);
  const int matching = run([](std::filesystem::path path, std::string data) -> gb::Task<int> {
    co_await os::write_file(path, data);
    auto file = co_await os::File::open(path, os::OpenMode::read);
    std::vector<gb::Task<bool>> reads;
    for (std::uint64_t i = 0; i < 64; ++i)
      reads.push_back([](os::File& file, std::uint64_t offset, const std::string& data) -> gb::Task<bool> {
        std::array<char, 4096> block{};
        const std::size_t n = co_await file.read_at(offset, block);
        co_return n == block.size() && std::string_view(block.data(), n) == std::string_view(data).substr(offset, n);
      }(file, (i * 7919 * 4096 + i) % (data.size() - 4096), data));
    int ok = 0;
    for (bool b : co_await gb::gather(std::move(reads))) ok += b;
    std::array<char, 16> start{};
    EXPECT_EQ(co_await file.read(start), start.size());
    EXPECT_EQ(std::string_view(start.data(), start.size()), std::string_view(data).substr(0, 16)) << "read_at moved the position";
    std::array<char, 64> tail{};
    EXPECT_EQ(co_await file.read_at(data.size() - 10, tail), 10u) << "a short read at the end";
    EXPECT_EQ(co_await file.read_at(data.size() + 100, tail), 0u) << "past the end";
    co_await file.close();
    co_return ok;
  }(dir / "random.bin", data));
  EXPECT_EQ(matching, 64);
}

TEST_P(File, writes_at_offsets_in_any_order_build_the_whole_file) {
  TempDir dir;
  const std::string data = pattern(256 * 1024 + 17);
  const std::string back = run([](std::filesystem::path path, std::string data) -> gb::Task<std::string> {
    auto file = co_await os::File::open(path, os::OpenMode::write);
    constexpr std::size_t k_piece = 16 * 1024;
    std::vector<gb::Task<void>> writes;
    for (std::size_t at = 0; at < data.size(); at += k_piece)  // all at once, finishing in any order
      writes.push_back(file.write_all_at(at, std::string_view(data).substr(at, k_piece)));
    co_await gb::gather(std::move(writes));
    EXPECT_THROW(co_await file.write_all_at(std::uint64_t{1} << 63, "x"), gb::IoError) << "an offset off_t cannot hold";
    co_await file.close();
    co_return co_await os::read_file(path);
  }(dir / "pieces.bin", data));
  EXPECT_TRUE(back == data);
}

// What only the io_uring back end has.

namespace {

using gearbox_test::open_descriptors;

}  // namespace

class FileOnIoUring : public testing::Test {
protected:
  void SetUp() override {
    if (!gb::io_uring_support().available) GTEST_SKIP() << gb::io_uring_support().why_not;
  }
};

TEST_F(FileOnIoUring, more_reads_in_flight_than_the_submission_queue_holds_all_complete_and_no_descriptor_is_left) {
  TempDir dir;
  constexpr int k_files = 8;
  constexpr int k_reads = 3 * static_cast<int>(gb::detail::Ring::k_entries);  // three queues' worth
  for (int i = 0; i < k_files; ++i) {
    std::ofstream out{dir / std::to_string(i)};
    out << pattern(4096 + static_cast<std::size_t>(i));
  }
  const std::size_t descriptors_before = open_descriptors();
  gb::detail::RingCounters counters;
  std::optional<gearbox_test::DeadlineLoop> loop{std::in_place, gb::IoBackend::io_uring};
  const int matching = loop->run([](std::filesystem::path dir, gb::detail::RingCounters& counters) -> gb::Task<int> {
    gb::detail::Ring& ring = *gb::detail::LoopAccess::ring(gb::Loop::current_or_throw());
    const gb::detail::RingCounters before = ring.counters();
    std::vector<gb::Task<std::string>> reads;
    for (int i = 0; i < k_reads; ++i) reads.push_back(os::read_file(dir / std::to_string(i % k_files)));
    // gather starts every read before any completes: each is an open, reads and a close.
    std::vector<std::string> results = co_await gb::gather(std::move(reads));
    counters = ring.counters();
    counters.submitted -= before.submitted;
    counters.full_flushes -= before.full_flushes;
    int ok = 0;
    for (int i = 0; i < k_reads; ++i) ok += results[static_cast<std::size_t>(i)] == pattern(4096 + static_cast<std::size_t>(i % k_files));
    co_return ok;
  }(dir.path(), counters));
  loop.reset();  // its ring, epoll and eventfd descriptors
  EXPECT_EQ(matching, k_reads);
  EXPECT_GT(counters.full_flushes, 0u) << "the submission queue never filled up: the test did not test that";
  EXPECT_GE(counters.submitted, 4u * k_reads) << "open, two reads and a close each";
  EXPECT_EQ(open_descriptors(), descriptors_before);
}

TEST_F(FileOnIoUring, a_runtime_gives_each_worker_a_ring_and_file_tasks_on_every_worker_complete) {
  TempDir dir;
  const std::string data = pattern(300'001);
  { std::ofstream{dir / "shared.bin"} << data; }
  const std::size_t descriptors_before = open_descriptors();
  for (const unsigned threads : {1u, 2u, 4u}) {
    gb::Runtime runtime{{.threads = threads, .io_backend = gb::IoBackend::io_uring}};
    EXPECT_EQ(runtime.io_backend(), gb::IoBackend::io_uring);
    const int matching = runtime.run([](std::filesystem::path path, std::string expected) -> gb::Task<int> {
      gb::TaskGroup group;
      std::atomic<int> ok{0};
      for (int i = 0; i < 64; ++i)
        group.spawn([](std::filesystem::path path, const std::string& expected, std::atomic<int>& ok) -> gb::Task<void> {
          // Chunked reads: each await may resume on another worker, with that worker's ring.
          auto file = co_await os::File::open(path, os::OpenMode::read);
          std::string all;
          std::array<char, 8192> buffer{};
          while (const std::size_t n = co_await file.read(buffer)) all.append(buffer.data(), n);
          co_await file.close();
          if (all == expected) ok.fetch_add(1, std::memory_order_relaxed);  // read after join()
        }(path, expected, ok));
      co_await group.join();
      co_return ok.load(std::memory_order_relaxed);
    }(dir / "shared.bin", data));
    EXPECT_EQ(matching, 64) << threads << " workers";
  }
  EXPECT_EQ(open_descriptors(), descriptors_before);
}
