// The one exception hierarchy of gearbox. Everything the runtime throws derives from
// gearbox::Error, so `catch (const gb::Error&)` sees every runtime failure while user
// exceptions pass through untouched:
//
//   Error ─┬─ Cancelled       a suspension point of a cancelled task
//          ├─ TimeoutError    timeout() ran out before its task finished
//          ├─ ChannelClosed   a send on a closed Channel
//          ├─ BrokenPromise   a Promise was destroyed without a result
//          ├─ ShutdownError   work submitted to a pool that was shut down
//          ├─ IoError         a system call failed (errno and the operation's name)
//          ├─ UnexpectedEof   the peer closed a stream in the middle of a message
//          ├─ LineTooLong     a line longer than the reader's limit (the rest is skipped)
//          ├─ ResolveError    a host name could not be resolved (getaddrinfo's code)
//          ├─ WorkerCrashed   a process-pool worker died running the task (signal or exit code)
//          └─ RemoteError     a process-pool task threw (its type name, message, worker pid)
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

namespace gearbox {

class Error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

// Thrown at the suspension point of a task that was cancelled. Catch it only to clean up;
// let it propagate, so that whoever cancelled the task sees it end.
class Cancelled : public Error {
public:
  Cancelled() : Error("gearbox: task cancelled") {}
};

class TimeoutError : public Error {
public:
  TimeoutError() : Error("gearbox: timed out") {}
};

class ChannelClosed : public Error {
public:
  ChannelClosed() : Error("gearbox: channel closed") {}
};

class BrokenPromise : public Error {
public:
  BrokenPromise() : Error("gearbox: broken promise (destroyed without a result)") {}
};

class ShutdownError : public Error {
public:
  ShutdownError() : Error("gearbox: the pool was shut down") {}
  using Error::Error;
};

class IoError : public Error {
public:
  IoError(int error_number, const std::string& operation)
      : Error(operation + ": " + std::system_category().message(error_number)),
        m_errno(error_number), m_operation(operation) {}
  int error_number() const noexcept { return m_errno; }
  const std::string& operation() const noexcept { return m_operation; }

private:
  int m_errno;
  std::string m_operation;
};

// The stream ended before a whole message arrived: read_exact got EOF after some bytes,
// or a line reader got EOF in the middle of a line.
class UnexpectedEof : public Error {
public:
  explicit UnexpectedEof(const std::string& operation)
      : Error(operation + ": the peer closed the stream in the middle of a message") {}
};

// A line reader found no end of line within its limit. The reader skips the rest of that
// line, so the caller can answer with an error and go on reading the next one.
class LineTooLong : public Error {
public:
  explicit LineTooLong(std::size_t limit)
      : Error("read_line: line longer than " + std::to_string(limit) + " bytes"), m_limit(limit) {}
  std::size_t limit() const noexcept { return m_limit; }

private:
  std::size_t m_limit;
};

// getaddrinfo failed. code() is its EAI_* code (EAI_NONAME: no such host).
class ResolveError : public Error {
public:
  ResolveError(int code, const std::string& host, const std::string& reason)
      : Error("resolve " + host + ": " + reason), m_code(code) {}
  int code() const noexcept { return m_code; }

private:
  int m_code;
};

// A process-pool worker died (killed by a signal, or exited) while it ran the task.
// Exactly one of signal() and exit_code() is meaningful: signal() > 0 for a signal.
class WorkerCrashed : public Error {
public:
  WorkerCrashed(int pid, int signal, int exit_code, const std::string& detail = {})
      : Error(describe(pid, signal, exit_code, detail)), m_pid(pid), m_signal(signal), m_exit_code(exit_code) {}
  int pid() const noexcept { return m_pid; }
  int signal() const noexcept { return m_signal; }        // 0 if it exited
  int exit_code() const noexcept { return m_exit_code; }  // meaningful when signal() == 0

private:
  static std::string describe(int pid, int signal, int exit_code, const std::string& detail) {
    std::string what = "gearbox: worker " + std::to_string(pid) +
                       (signal > 0 ? " was killed by signal " + std::to_string(signal)
                                   : " exited with code " + std::to_string(exit_code));
    return detail.empty() ? what : what + " (" + detail + ")";
  }
  int m_pid;
  int m_signal;
  int m_exit_code;
};

// A process-pool task threw: the exception's type name (demangled), its what() and the pid
// of the worker. Also reports a task name no worker knows (type_name
// "gearbox::UnregisteredFunction") and arguments that did not decode ("gearbox::BadArguments").
class RemoteError : public Error {
public:
  RemoteError(std::string type_name, std::string message, int pid)
      : Error(type_name + ": " + message + " (in worker " + std::to_string(pid) + ")"),
        m_type_name(std::move(type_name)), m_message(std::move(message)), m_pid(pid) {}
  const std::string& type_name() const noexcept { return m_type_name; }
  const std::string& message() const noexcept { return m_message; }
  int pid() const noexcept { return m_pid; }

private:
  std::string m_type_name;
  std::string m_message;
  int m_pid;
};

}  // namespace gearbox
