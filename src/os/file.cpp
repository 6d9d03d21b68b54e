#include <gearbox/os/file.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <utility>

#include <gearbox/error.hpp>
#include <gearbox/loop.hpp>
#include <gearbox/to_thread.hpp>

#include "loop/ring.hpp"
#include "loop/ring_call.hpp"

namespace gearbox::os {

struct File::Handle {
  int fd = -1;
  explicit Handle(int descriptor) noexcept : fd(descriptor) {}
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() {
    if (fd >= 0) ::close(fd);
  }
};

namespace {

// The work of each operation, run on a blocking-pool thread. Each throws IoError.
int open_blocking(const std::filesystem::path& path, int flags) {
  for (;;) {
    const int fd = ::open(path.c_str(), flags | O_CLOEXEC, 0644);
    if (fd >= 0) return fd;
    if (errno != EINTR) throw IoError(errno, "open " + path.string());
  }
}

// Writes all of `data` at `offset`, or at the position when it is -1.
void write_blocking(int fd, std::string_view data, const std::filesystem::path& path, off_t offset = -1) {
  while (!data.empty()) {
    const ssize_t n = offset < 0 ? ::write(fd, data.data(), data.size()) : ::pwrite(fd, data.data(), data.size(), offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw IoError(errno, "write " + path.string());
    }
    data.remove_prefix(static_cast<std::size_t>(n));
    if (offset >= 0) offset += n;
  }
}

void close_blocking(int fd, const std::filesystem::path& path) {
  if (::close(fd) != 0 && errno != EINTR) throw IoError(errno, "close " + path.string());
}

std::string read_file_blocking(const std::filesystem::path& path) {
  File::Handle file{open_blocking(path, O_RDONLY)};
  std::string data;
  std::size_t size = 0;
  for (;;) {
    if (data.size() - size < 64 * 1024) data.resize(std::max<std::size_t>(data.size() * 2, 128 * 1024));
    const ssize_t n = ::read(file.fd, data.data() + size, data.size() - size);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw IoError(errno, "read " + path.string());
    }
    if (n == 0) break;
    size += static_cast<std::size_t>(n);
  }
  data.resize(size);
  return data;
}

void write_file_blocking(const std::filesystem::path& path, const std::string& data) {
  File::Handle file{open_blocking(path, O_WRONLY | O_CREAT | O_TRUNC)};
  write_blocking(file.fd, data, path);
  close_blocking(std::exchange(file.fd, -1), path);
}

int flags_of(OpenMode mode) {
  switch (mode) {
  case OpenMode::read: return O_RDONLY;
  case OpenMode::write: return O_WRONLY | O_CREAT | O_TRUNC;
  case OpenMode::append: return O_WRONLY | O_CREAT | O_APPEND;
  case OpenMode::read_write: return O_RDWR | O_CREAT;
  }
  return O_RDONLY;
}

// The io_uring path: each operation is one submission to the ring of the loop the task
// runs on, awaited in place (no copy, no thread). Null when the loop uses epoll.
detail::Ring* current_ring() noexcept {
  Loop* loop = Loop::current();
  return loop ? detail::LoopAccess::ring(*loop) : nullptr;
}

// The ring of the worker the task runs on now: on a Runtime a task may move between
// workers at any await, and each ring is its worker's own, so it is looked up per call.
detail::Ring& ring_here() noexcept { return *current_ring(); }


Task<int> ring_open(const std::filesystem::path& path, int flags) {
  for (;;) {
    auto call = detail::ring_call(ring_here(), [&](io_uring_sqe* sqe) {
      io_uring_prep_openat(sqe, AT_FDCWD, path.c_str(), flags | O_CLOEXEC, 0644);
    });
    const int fd = co_await call;
    if (fd >= 0) co_return fd;
    if (fd != -EINTR && fd != -EAGAIN) throw IoError(-fd, "open " + path.string());
  }
}

// An offset meaning "at the file's position, which moves" (read, write_all).
constexpr std::uint64_t k_at_position = static_cast<std::uint64_t>(-1);

// One read at `offset` (or the position); 0 at end of file.
Task<std::size_t> ring_read(int fd, char* data, std::size_t size, std::uint64_t offset, const std::filesystem::path& path) {
  for (;;) {
    auto call = detail::ring_call(ring_here(), [&](io_uring_sqe* sqe) {
      io_uring_prep_read(sqe, fd, data, static_cast<unsigned>(std::min(size, detail::Ring::k_max_transfer)), offset);
    });
    const int n = co_await call;
    if (n >= 0) co_return static_cast<std::size_t>(n);
    if (n != -EINTR && n != -EAGAIN) throw IoError(-n, "read " + path.string());
  }
}

// Writes all of `data` at `offset` (or the position), across short writes.
Task<void> ring_write_all(int fd, std::string_view data, std::uint64_t offset, const std::filesystem::path& path) {
  while (!data.empty()) {
    auto call = detail::ring_call(ring_here(), [&](io_uring_sqe* sqe) {
      io_uring_prep_write(sqe, fd, data.data(), static_cast<unsigned>(std::min(data.size(), detail::Ring::k_max_transfer)), offset);
    });
    const int n = co_await call;
    if (n < 0) {
      if (n == -EINTR || n == -EAGAIN) continue;
      throw IoError(-n, "write " + path.string());
    }
    if (n == 0) throw IoError(EIO, "write " + path.string());  // no progress: never loop forever
    data.remove_prefix(static_cast<std::size_t>(n));
    if (offset != k_at_position) offset += static_cast<std::uint64_t>(n);
  }
}

Task<void> ring_close(int fd, const std::filesystem::path& path) {
  auto call = detail::ring_call(ring_here(), [fd](io_uring_sqe* sqe) { io_uring_prep_close(sqe, fd); });
  const int rc = co_await call;
  if (rc < 0 && rc != -EINTR) throw IoError(-rc, "close " + path.string());
}

Task<std::string> ring_read_file(std::filesystem::path path) {
  File::Handle file{co_await ring_open(path, O_RDONLY)};
  // The size is a hint (the file may grow or shrink meanwhile): read until a read says 0.
  struct stat info {};
  const std::size_t expected = ::fstat(file.fd, &info) == 0 && info.st_size > 0 ? static_cast<std::size_t>(info.st_size) : 0;
  std::string data(expected + 1, '\0');
  std::size_t size = 0;
  for (;;) {
    if (size == data.size()) data.resize(std::max<std::size_t>(data.size() * 2, 128 * 1024));
    const std::size_t n = co_await ring_read(file.fd, data.data() + size, data.size() - size, k_at_position, path);
    if (n == 0) break;
    size += n;
  }
  data.resize(size);
  co_await ring_close(std::exchange(file.fd, -1), path);
  co_return data;
}

Task<void> ring_write_file(std::filesystem::path path, std::string data) {
  File::Handle file{co_await ring_open(path, O_WRONLY | O_CREAT | O_TRUNC)};
  co_await ring_write_all(file.fd, data, k_at_position, path);
  co_await ring_close(std::exchange(file.fd, -1), path);
}

}  // namespace

Task<std::string> read_file(std::filesystem::path path) {
  if (current_ring()) co_return co_await ring_read_file(std::move(path));
  co_return co_await to_thread(read_file_blocking, std::move(path));
}

Task<void> write_file(std::filesystem::path path, std::string data) {
  if (current_ring()) {
    co_await ring_write_file(std::move(path), std::move(data));
    co_return;
  }
  co_await to_thread(write_file_blocking, std::move(path), std::move(data));
}

Task<File> File::open(std::filesystem::path path, OpenMode mode) {
  if (current_ring()) {
    File file;
    file.m_handle = std::make_shared<Handle>(co_await ring_open(path, flags_of(mode)));
    file.m_path = std::move(path);
    co_return file;
  }
  // The descriptor is owned by a Handle from the moment it exists, on the pool thread: if
  // this task is cancelled while the open runs (a FIFO, a slow NFS server), the abandoned
  // result is destroyed with the future's state and closes it instead of leaking it.
  auto pending = to_thread(
      [](std::filesystem::path to_open, int flags) { return std::make_shared<Handle>(open_blocking(to_open, flags)); },
      path, flags_of(mode));
  File file;
  file.m_handle = co_await pending;
  file.m_path = std::move(path);
  co_return file;
}

Task<std::size_t> File::read(std::span<char> buffer) {
  if (!m_handle) throw IoError(EBADF, "read " + m_path.string());
  if (current_ring()) {
    // The handle is held across the await: the File may be destroyed meanwhile.
    const std::shared_ptr<Handle> handle = m_handle;
    co_return co_await ring_read(handle->fd, buffer.data(), buffer.size(), k_at_position, m_path);
  }
  // The future is made in a statement of its own: g++ 12 may destroy a temporary made
  // inside a co_await expression twice (see the note in future.hpp).
  auto pending = to_thread(
      [](std::shared_ptr<Handle> handle, std::size_t size, std::filesystem::path path) {
        std::string chunk(size, '\0');
        for (;;) {
          const ssize_t n = ::read(handle->fd, chunk.data(), size);
          if (n >= 0) {
            chunk.resize(static_cast<std::size_t>(n));
            return chunk;
          }
          if (errno != EINTR) throw IoError(errno, "read " + path.string());
        }
      },
      m_handle, buffer.size(), m_path);
  std::string data = co_await pending;
  std::memcpy(buffer.data(), data.data(), data.size());
  co_return data.size();
}

Task<void> File::write_all(std::string_view data) {
  if (!m_handle) throw IoError(EBADF, "write " + m_path.string());
  if (current_ring()) {
    const std::shared_ptr<Handle> handle = m_handle;
    co_await ring_write_all(handle->fd, data, k_at_position, m_path);
    co_return;
  }
  auto pending = to_thread([](std::shared_ptr<Handle> handle, std::string bytes,
                             std::filesystem::path path) { write_blocking(handle->fd, bytes, path); },
                          m_handle, std::string(data), m_path);
  co_await pending;
}

Task<std::size_t> File::read_at(std::uint64_t offset, std::span<char> buffer) {
  if (!m_handle) throw IoError(EBADF, "read " + m_path.string());
  if (offset > static_cast<std::uint64_t>(std::numeric_limits<off_t>::max())) throw IoError(EINVAL, "read " + m_path.string());
  if (current_ring()) {
    const std::shared_ptr<Handle> handle = m_handle;
    co_return co_await ring_read(handle->fd, buffer.data(), buffer.size(), offset, m_path);
  }
  auto pending = to_thread(
      [](std::shared_ptr<Handle> handle, std::uint64_t at, std::size_t size, std::filesystem::path path) {
        std::string chunk(size, '\0');
        for (;;) {
          const ssize_t n = ::pread(handle->fd, chunk.data(), size, static_cast<off_t>(at));
          if (n >= 0) {
            chunk.resize(static_cast<std::size_t>(n));
            return chunk;
          }
          if (errno != EINTR) throw IoError(errno, "read " + path.string());
        }
      },
      m_handle, offset, buffer.size(), m_path);
  std::string data = co_await pending;
  std::memcpy(buffer.data(), data.data(), data.size());
  co_return data.size();
}

Task<void> File::write_all_at(std::uint64_t offset, std::string_view data) {
  if (!m_handle) throw IoError(EBADF, "write " + m_path.string());
  if (offset > static_cast<std::uint64_t>(std::numeric_limits<off_t>::max())) throw IoError(EINVAL, "write " + m_path.string());
  if (current_ring()) {
    const std::shared_ptr<Handle> handle = m_handle;
    co_await ring_write_all(handle->fd, data, offset, m_path);
    co_return;
  }
  auto pending = to_thread([](std::shared_ptr<Handle> handle, std::uint64_t at, std::string bytes,
                             std::filesystem::path path) { write_blocking(handle->fd, bytes, path, static_cast<off_t>(at)); },
                          m_handle, offset, std::string(data), m_path);
  co_await pending;
}

Task<void> File::sync() {
  if (!m_handle) throw IoError(EBADF, "fsync " + m_path.string());
  if (current_ring()) {
    const std::shared_ptr<Handle> handle = m_handle;
    auto call = detail::ring_call(ring_here(), [fd = handle->fd](io_uring_sqe* sqe) { io_uring_prep_fsync(sqe, fd, 0); });
    const int rc = co_await call;
    if (rc < 0) throw IoError(-rc, "fsync " + m_path.string());
    co_return;
  }
  auto pending = to_thread(
      [](std::shared_ptr<Handle> handle, std::filesystem::path path) {
        if (::fsync(handle->fd) != 0) throw IoError(errno, "fsync " + path.string());
      },
      m_handle, m_path);
  co_await pending;
}

Task<void> File::close() {
  if (!m_handle) co_return;
  std::shared_ptr<Handle> handle = std::move(m_handle);
  if (handle.use_count() > 1) co_return;  // an abandoned operation still runs: it closes it
  const int fd = std::exchange(handle->fd, -1);
  if (current_ring()) {
    co_await ring_close(fd, m_path);
    co_return;
  }
  co_await to_thread(close_blocking, fd, m_path);
}

}  // namespace gearbox::os
