// Files without blocking the loop: whole-file helpers and a File stream.
//
//   std::string text = co_await gb::os::read_file("input.txt");
//   co_await gb::os::write_file("output.txt", text);
//
//   auto file = co_await gb::os::File::open("big.log", gb::os::OpenMode::read);
//   while (std::size_t n = co_await file.read(buffer)) { ... }
//
// Regular files are always "ready" to epoll, so their reads and writes would block the
// loop on a slow disk. Each operation runs on the blocking pool (see to_thread) while the
// loop goes on; the loop resumes the awaiting task. (An io_uring back end can take over
// these operations behind the same interface.) Data crosses between the loop and the pool
// thread by copy, so a cancelled operation never touches the caller's buffer afterwards:
// it is abandoned (Cancelled at once) and finishes in the background.
//
// Errors: IoError with errno and the operation and path ("open data.txt": ENOENT; a full
// disk is ENOSPC on write or close). Thread-safety: a File is used by one task at a time;
// it may be destroyed anywhere (the descriptor closes when the last pending operation ends).
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
