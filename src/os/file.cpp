#include <gearbox/os/file.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include <gearbox/error.hpp>
#include <gearbox/to_thread.hpp>

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

void write_blocking(int fd, std::string_view data, const std::filesystem::path& path) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw IoError(errno, "write " + path.string());
    }
    data.remove_prefix(static_cast<std::size_t>(n));
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

}  // namespace

Task<std::string> read_file(std::filesystem::path path) { co_return co_await to_thread(read_file_blocking, std::move(path)); }

Task<void> write_file(std::filesystem::path path, std::string data) {
  co_await to_thread(write_file_blocking, std::move(path), std::move(data));
}

Task<File> File::open(std::filesystem::path path, OpenMode mode) {
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
  auto pending = to_thread([](std::shared_ptr<Handle> handle, std::string bytes,
                             std::filesystem::path path) { write_blocking(handle->fd, bytes, path); },
                          m_handle, std::string(data), m_path);
  co_await pending;
}

Task<void> File::sync() {
  if (!m_handle) throw IoError(EBADF, "fsync " + m_path.string());
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
  co_await to_thread(close_blocking, fd, m_path);
}

}  // namespace gearbox::os
