// The lab's slow service: a real TCP server on 127.0.0.1 that answers each request after
// the delay the request asks for, so the lab's I/O-bound tasks do real network waits.
//
//   SlowService service;                 // listening on 127.0.0.1:<port>, its own thread
//   ... clients connect to service.port(), send "WAIT 2000\n", read "DONE 2000\n" ...
//
// Protocol, one request per connection: the client sends "WAIT <ms>\n" (0 <= ms <=
// 600000); the service answers "DONE <ms>\n" after <ms> milliseconds and closes. Anything
// else gets "ERROR <reason>\n" at once. Any number of clients wait at the same time: the
// service is a gearbox loop on its own thread (one timer per waiting client).
//
// Thread-safety: port() may be called from any thread. The destructor stops the service
// (cancelling requests in progress: their clients see the connection close) and joins it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

namespace gearbox::lab {

class SlowService {
public:
  SlowService();  // throws gearbox::IoError if it cannot listen
  ~SlowService();
  SlowService(const SlowService&) = delete;
  SlowService& operator=(const SlowService&) = delete;

  std::uint16_t port() const noexcept { return m_port; }

  struct State;

private:
  std::unique_ptr<State> m_state;
  std::uint16_t m_port = 0;
  std::thread m_thread;
};

// What a client sends to ask for a wait of `ms` milliseconds.
std::string slow_request(int ms);

// Blocking client (threads, processes, sequential): connects to 127.0.0.1:port, asks for a
// wait of `ms`, and blocks until the answer; the blocking read is a trace span of kind
// `wait`. Throws gearbox::IoError, or std::runtime_error on a bad answer.
void wait_on_service_blocking(std::uint16_t port, int ms);

}  // namespace gearbox::lab
