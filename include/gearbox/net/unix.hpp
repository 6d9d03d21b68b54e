// Unix domain stream sockets on the loop: the same shape as TCP, addressed by a path.
//
//   auto listener = gb::net::UnixListener::bind("/tmp/app.sock");
//   gb::net::UnixStream client = co_await gb::net::UnixStream::connect("/tmp/app.sock");
//   auto [a, b] = gb::net::UnixStream::pair();            // connected to each other
//
// A path that starts with '@' is in Linux's abstract namespace (no file; gone when the
// last socket closes). A listener bound to a file path removes that file when it closes.
// Thread-safety and errors as TcpStream / TcpListener.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include <gearbox/detail/async_fd.hpp>
#include <gearbox/net/address.hpp>
#include <gearbox/net/stream.hpp>
#include <gearbox/task.hpp>

namespace gearbox::net {

class UnixStream : public ByteStream {
public:
  UnixStream() noexcept = default;
  explicit UnixStream(detail::AsyncFd fd) noexcept;

  [[nodiscard]] static Task<UnixStream> connect(std::string path);
  // Two streams connected to each other (socketpair). IoError("socketpair").
  static std::pair<UnixStream, UnixStream> pair();
};

struct UnixListenOptions {
  int backlog = 1024;
  // Remove a stale socket file at the path before binding (a server that crashed leaves
  // one behind). Only a socket is removed, never another kind of file.
  bool remove_stale = false;
};

class UnixListener {
public:
  UnixListener() noexcept = default;
  UnixListener(UnixListener&& other) noexcept;
  UnixListener& operator=(UnixListener&& other) noexcept;
  ~UnixListener() { close(); }

  // IoError("bind ..."): EADDRINUSE if the path exists (see remove_stale).
  [[nodiscard]] static UnixListener bind(std::string path, UnixListenOptions options = {});
  // As TcpListener::accept, including the back-off when out of descriptors.
  [[nodiscard]] Task<UnixStream> accept();
  // The path it was bound to ('@name' for an abstract one); empty once moved from.
  const std::string& path() const noexcept { return m_path; }
  std::uint64_t accept_backoffs() const noexcept { return m_backoffs; }
  // Closes the socket and removes its file, if the file at the path is still the one it
  // made (not a newer server's that replaced it). Idempotent.
  void close() noexcept;
  bool is_open() const noexcept { return m_fd.is_open(); }

private:
  detail::AsyncFd m_fd;
  std::string m_path;
  std::uint64_t m_backoffs = 0;
  std::pair<unsigned long, unsigned long> m_file_id{};  // st_dev, st_ino of the socket file
  bool m_owns_file = false;
};

}  // namespace gearbox::net
