// The one exception hierarchy of gearbox. Everything the runtime throws derives from
// gearbox::Error, so `catch (const gb::Error&)` sees every runtime failure while user
// exceptions pass through untouched:
//
//   Error ─┬─ Cancelled       a suspension point of a cancelled task
//          ├─ TimeoutError    timeout() ran out before its task finished
//          ├─ ChannelClosed   a send on a closed Channel
//          ├─ BrokenPromise   a Promise was destroyed without a result
//          ├─ ShutdownError   work submitted to a pool that was shut down
//          └─ IoError         a system call failed (errno and the operation's name)
#pragma once

#include <stdexcept>
#include <string>
#include <system_error>

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

}  // namespace gearbox
