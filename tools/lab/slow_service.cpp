#include "slow_service.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <future>
#include <stdexcept>
#include <string>

#include <gearbox/gearbox.hpp>
#include <gearbox/net/buffered_reader.hpp>
#include <gearbox/net/tcp.hpp>

namespace gearbox::lab {
namespace {

constexpr int k_max_wait_ms = 600'000;

// The requested wait, or -1 if the line is not "WAIT <ms>" with a sane <ms>.
int parse_request(std::string_view line) {
  constexpr std::string_view prefix = "WAIT ";
  if (line.substr(0, prefix.size()) != prefix) return -1;
  line.remove_prefix(prefix.size());
  int ms = -1;
  const auto [end, error] = std::from_chars(line.data(), line.data() + line.size(), ms);
  if (error != std::errc{} || end != line.data() + line.size() || ms < 0 || ms > k_max_wait_ms) return -1;
  return ms;
}

Task<void> serve_one(net::TcpStream stream) {
  try {
    net::BufferedReader reader(stream, {.max_line = 64});
    std::optional<std::string_view> line = co_await reader.read_line();
    if (!line) co_return;
    const int ms = parse_request(*line);
    if (ms < 0) {
      co_await stream.write_all("ERROR expected WAIT <ms>\n");
      co_return;
    }
    co_await sleep_for(std::chrono::milliseconds(ms));
    const std::string answer = "DONE " + std::to_string(ms) + "\n";
    co_await stream.write_all(answer);
  } catch (const Cancelled&) {
    throw;
  } catch (const std::exception&) {
    // A client that vanished or sent a line too long: its connection just closes.
  }
}

Task<void> accept_forever(net::TcpListener& listener) {
  for (;;) {
    net::TcpStream stream = co_await listener.accept();
    spawn(serve_one(std::move(stream))).detach();
  }
}

}  // namespace

struct SlowService::State {
  net::TcpListener listener = net::TcpListener::bind(net::SocketAddress::loopback(0));
  Loop* loop = nullptr;  // set by the service thread before `ready`; read after it
  Event stop;
};

SlowService::SlowService() : m_state(std::make_unique<State>()) {
  m_port = m_state->listener.local_address().port();
  std::promise<void> ready;
  std::future<void> started = ready.get_future();
  m_thread = std::thread([state = m_state.get(), &ready] {
    Loop loop;
    state->loop = &loop;
    loop.run([](State& s, std::promise<void>& up) -> Task<void> {
      auto acceptor = spawn(accept_forever(s.listener));
      up.set_value();
      co_await s.stop.wait();
      acceptor.cancel();
    }(*state, ready));
    // ~Loop cancels the requests still waiting: their clients see the connection close.
  });
  started.wait();
}

SlowService::~SlowService() {
  m_state->loop->post([state = m_state.get()] { state->stop.set(); });
  m_thread.join();
}

std::string slow_request(int ms) { return "WAIT " + std::to_string(ms) + "\n"; }

void wait_on_service_blocking(std::uint16_t port, int ms) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw IoError(errno, "socket");
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) throw IoError(errno, "connect to the slow service");
  const std::string request = slow_request(ms);
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size()))
    throw IoError(errno, "send to the slow service");
  std::string answer;
  {
    trace::Span waiting("wait on service", trace::SpanKind::wait);
    char buffer[64];
    for (;;) {
      const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw IoError(errno, "recv from the slow service");
      if (n == 0) break;
      answer.append(buffer, static_cast<std::size_t>(n));
      if (answer.find('\n') != std::string::npos) break;
    }
  }
  if (answer.rfind("DONE ", 0) != 0) throw std::runtime_error("the slow service answered: " + answer);
}

}  // namespace gearbox::lab
