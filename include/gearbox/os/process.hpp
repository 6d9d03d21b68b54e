// Subprocesses on the loop: start a program, talk to it through pipes, await its exit.
//
//   auto child = gb::os::Process::spawn({.args = {"grep", "error"},
//                                        .stdin_mode = gb::os::Stdio::pipe,
//                                        .stdout_mode = gb::os::Stdio::pipe});
//   co_await child.stdin_stream().write_all(log_text);
//   child.stdin_stream().close();                      // grep sees end of input
//   std::string found = co_await gb::os::read_all(child.stdout_stream());
//   gb::os::ExitStatus status = co_await child.wait();  // status.code == 0: matches
//
//   gb::os::ProcessOptions uname{.args = {"uname", "-r"}};
//   gb::os::Output out = co_await gb::os::run(std::move(uname));   // subprocess.run
//
// (Make the options in a statement of their own: g++ 12 rejects a braced list inside a
// co_await expression, "array used as initializer".)
//
// How: posix_spawn (no fork of a threaded parent), the child's signal mask and dispositions
// reset, only its three standard descriptors inherited (everything gearbox opens is
// close-on-exec). The exit is learned from a pidfd on the loop, so no SIGCHLD handler and
// no thread per child; wait() reaps it. Creating a stdin pipe sets SIGPIPE to be ignored
// in the parent (if it was at its default), as Python does, so a child that exits early
// makes the next write fail with EPIPE instead of killing the program.
//
// Thread-safety: a Process belongs to the loop that awaits it. Destroying a Process whose
// exit was not awaited kills it (SIGKILL) and reaps it, so no zombie is left behind; that
// reaping waits (on the loop's thread) for the kernel to end the child, which is quick
// unless the child is stuck in uninterruptible sleep: await wait() after kill() instead
// where that matters.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include <gearbox/detail/async_fd.hpp>
#include <gearbox/net/stream.hpp>
#include <gearbox/task.hpp>

namespace gearbox::os {

enum class Stdio : unsigned char {
  inherit,  // the parent's own descriptor
  pipe,     // a pipe the parent reads or writes through stdin/stdout/stderr_stream()
  null,     // /dev/null
};

struct ProcessOptions {
  std::vector<std::string> args;                     // args[0]: the program, found on the parent's PATH if it has no '/'
  Stdio stdin_mode = Stdio::inherit;
  Stdio stdout_mode = Stdio::inherit;
  Stdio stderr_mode = Stdio::inherit;
  std::optional<std::string> working_directory = {};  // default: the parent's
  std::optional<std::vector<std::string>> environment = {};  // "NAME=value" entries; default: the parent's
};

struct ExitStatus {
  int code = -1;    // exit code, or -1 if a signal ended it
  int signal = 0;   // the signal that ended it, or 0
  bool success() const noexcept { return code == 0; }
  std::string to_string() const;  // "exit code 3", "killed by signal 9 (Killed)"
};

class Process {
public:
  Process() noexcept = default;
  Process(Process&& other) noexcept;
  Process& operator=(Process&& other) noexcept;
  ~Process();

  // Starts the program. IoError("spawn <program>") if it cannot be started (ENOENT: not
  // found, EACCES: not executable); std::invalid_argument if args is empty.
  [[nodiscard]] static Process spawn(ProcessOptions options);

  pid_t pid() const noexcept { return m_pid; }
  // The parent's end of a piped standard stream; std::logic_error if it was not piped.
  net::ByteStream& stdin_stream();
  net::ByteStream& stdout_stream();
  net::ByteStream& stderr_stream();

  // Waits for the child to end and reaps it; later calls return the same status at once.
  // A cancellation point: cancelled, the child runs on (kill() it if that is the intent).
  [[nodiscard]] Task<ExitStatus> wait();
  // Sends `signal_number` (default SIGKILL). No effect once the child was reaped.
  // IoError("kill") on failure.
  void kill(int signal_number = SIGKILL);
  // The status, if the child was reaped.
  const std::optional<ExitStatus>& status() const noexcept { return m_status; }

private:
  bool try_reap(int flags);

  pid_t m_pid = -1;
  detail::AsyncFd m_pidfd;
  std::optional<ExitStatus> m_status;
  net::ByteStream m_stdin;
  net::ByteStream m_stdout;
  net::ByteStream m_stderr;
};

// Everything `stream` gives until its end, as a string.
[[nodiscard]] Task<std::string> read_all(net::ByteStream& stream);

struct Output {
  ExitStatus status;
  std::string out;  // captured standard output
  std::string err;  // captured standard error
};

// Runs the program to its end with `input` on its stdin and its stdout and stderr
// captured (the modes in `options` for those are overridden). Like subprocess.run with
// capture_output. Cancelled, the child is killed.
[[nodiscard]] Task<Output> run(ProcessOptions options, std::string input = {});

}  // namespace gearbox::os
