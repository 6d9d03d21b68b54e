// Files without blocking the loop: whole-file helpers and a File stream.
//
//   std::string text = co_await gb::os::read_file("input.txt");
//   co_await gb::os::write_file("output.txt", text);
//
//   auto file = co_await gb::os::File::open("big.log", gb::os::OpenMode::read);
//   while (std::size_t n = co_await file.read(buffer)) { ... }
//
// Regular files are always "ready" to epoll, so their reads and writes would block the
// loop on a slow disk. How they run depends on the loop's I/O back end (io_backend.hpp):
//   io_uring  each operation is submitted to the ring of the loop (or Runtime worker) the
//             task runs on, and reads and writes go straight into and out of the caller's
//             buffer; no thread waits. A cancelled operation is cancelled in the kernel
//             and the task resumes only once the kernel is done with the buffer (Cancelled,
//             or the operation's result if it had finished: an open is never lost).
//   epoll     each operation runs on the blocking pool (see to_thread) while the loop goes
//             on. Data crosses between the loop and the pool thread by copy, so a
//             cancelled operation never touches the caller's buffer afterwards: it is
//             abandoned (Cancelled at once) and finishes in the background.
// One visible difference: io_uring opens without blocking first, so opening a FIFO for
// reading does not wait for a writer there.
//
// Errors: IoError with errno and the operation and path ("open data.txt": ENOENT; a full
// disk is ENOSPC on write or close). Thread-safety: a File is used by one task at a time,
// except read_at and write_all_at, which many tasks may run on one File at once (they
// do not use the position); it may be destroyed anywhere (the descriptor closes when the
// last pending operation ends).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include <gearbox/task.hpp>

namespace gearbox::os {

[[nodiscard]] Task<std::string> read_file(std::filesystem::path path);
// Creates or truncates `path` and writes `data` to it (mode 0644 before the umask).
[[nodiscard]] Task<void> write_file(std::filesystem::path path, std::string data);

enum class OpenMode : unsigned char {
  read,      // existing file, from its start
  write,     // create or truncate
  append,    // create, write at the end
  read_write,
};

class File {
public:
  File() noexcept = default;
  [[nodiscard]] static Task<File> open(std::filesystem::path path, OpenMode mode);

  // Reads up to buffer.size() bytes at the current position; 0 at end of file.
  [[nodiscard]] Task<std::size_t> read(std::span<char> buffer);
  // Writes all of `data` at the current position (the end, in append mode).
  [[nodiscard]] Task<void> write_all(std::string_view data);
  // Reads up to buffer.size() bytes at `offset` (pread): the position does not move; 0 at
  // or past the end.
  [[nodiscard]] Task<std::size_t> read_at(std::uint64_t offset, std::span<char> buffer);
  // Writes all of `data` at `offset` (pwrite; in append mode Linux writes at the end).
  [[nodiscard]] Task<void> write_all_at(std::uint64_t offset, std::string_view data);
  // Flushes to the device (fsync).
  [[nodiscard]] Task<void> sync();
  // Closes, reporting a failure the kernel kept for close (some file systems say ENOSPC
  // only there). Destroying an open File closes it too, silently.
  [[nodiscard]] Task<void> close();
  bool is_open() const noexcept { return m_handle != nullptr; }
  const std::filesystem::path& path() const noexcept { return m_path; }

  struct Handle;  // the descriptor, shared with operations still running on the pool

private:
  std::shared_ptr<Handle> m_handle;
  std::filesystem::path m_path;
};

}  // namespace gearbox::os
