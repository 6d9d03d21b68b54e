// ByteStream: a connected, ordered stream of bytes on the loop: the shared shape of
// TcpStream, UnixStream and a subprocess's pipes.
//
//   char buffer[4096];
//   std::size_t n = co_await stream.read(buffer);      // 0: the peer closed its side
//   co_await stream.write_all("hello\n");              // every byte, across partial writes
//
// Reads and writes suspend only the awaiting task, never the loop. Each is a cancellation
// point (Cancelled) and works under timeout(). Errors are IoError with errno and the
// operation's name: a reset connection is ECONNRESET on read, EPIPE on write (never
// SIGPIPE for sockets). One task may read while another writes; two readers (or two
// writers) at once are a std::logic_error.
//
// Thread-safety: a stream is attached to the loop of the task that first uses it and must
// be used and destroyed on that loop's thread; on a Runtime, by tasks on any of its
// workers (a reader and a writer may run on two at once). Destroying or moving a stream
// while a task awaits it is undefined; close() resumes such tasks (with IoError EBADF)
// first.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>

#include <gearbox/detail/async_fd.hpp>
#include <gearbox/task.hpp>

namespace gearbox::net {

class ByteStream {
public:
  ByteStream() noexcept = default;
  explicit ByteStream(detail::AsyncFd fd) noexcept : m_fd(std::move(fd)) {}

  // Reads what is available (at least one byte, waiting if none); 0 at end of stream.
  [[nodiscard]] Task<std::size_t> read(std::span<char> buffer) { return m_fd.read(buffer.data(), buffer.size()); }
  [[nodiscard]] Task<std::size_t> read(std::span<std::byte> buffer) { return m_fd.read(buffer.data(), buffer.size()); }
  // Fills the whole buffer; UnexpectedEof if the stream ends first (even before any byte).
  [[nodiscard]] Task<void> read_exact(std::span<char> buffer);
  [[nodiscard]] Task<void> read_exact(std::span<std::byte> buffer);

  // Writes some of `data` (at least one byte); returns how many.
  [[nodiscard]] Task<std::size_t> write_some(std::string_view data) { return m_fd.write_some(data.data(), data.size()); }
  // Writes all of `data`, which must stay alive until the task ends. Cancelled or failed
  // part-way, a prefix was written: the stream is then only fit to be closed.
  [[nodiscard]] Task<void> write_all(std::string_view data) { return m_fd.write_all(data.data(), data.size()); }
  [[nodiscard]] Task<void> write_all(std::span<const std::byte> data) { return m_fd.write_all(data.data(), data.size()); }
  // Writes every piece, in order, as if they were one buffer, without copying them into
  // one: each system call takes as many pieces as it can (writev). The pieces' bytes must
  // stay alive until the task ends; cancelled or failed part-way, as write_all.
  [[nodiscard]] Task<void> write_all_vectored(std::span<const std::string_view> pieces) {
    return m_fd.write_all_vectored(pieces);
  }

  // Sends end-of-stream to the peer (sockets: shutdown(SHUT_WR)); reading goes on.
  void shutdown_write();
  // Ends both directions at once (sockets only: shutdown(SHUT_RDWR)). A task reading the
  // stream then sees end of stream, a task writing it fails with EPIPE, and the peer
  // reads end of stream. Unlike close(), the descriptor stays open and registered, so this
  // may be called from any thread while tasks on other workers use the stream (close it
  // once they have ended). A connection the peer already ended is no error. Throws
  // IoError: EBADF once closed, ENOTSOCK on a pipe.
  void shutdown();
  // Resumes any waiting task (IoError EBADF) and closes the descriptor. Idempotent.
  void close() noexcept { m_fd.close(); }
  bool is_open() const noexcept { return m_fd.is_open(); }
  int native_handle() const noexcept { return m_fd.fd(); }

protected:
  detail::AsyncFd m_fd;
};

}  // namespace gearbox::net
