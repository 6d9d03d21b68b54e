// gearbox-chat-load: opens C chat clients, has T of them ("talkers") send M messages each,
// and checks that every client received every message it should have, exactly once and in
// order. Reports messages delivered per second, p50/p99 delivery latency and the server's
// peak RSS. One gearbox loop, one thread; loopback only; bounded in count and time.
//
//   gearbox-chat-load --spawn bin/gearbox-chat              # starts the server itself
//   gearbox-chat-load --port 7000 --clients 1000            # against a running server
//
// The scheme: a full mesh (every client talks) of 10,000 clients x 10 messages would be
// 10^9 deliveries; instead T talkers (default 100) send and all C clients receive, so a
// run makes T * M * (C - 1) deliveries (9,999,000 by default). Each message carries its
// talker, its sequence number and its send time (CLOCK_MONOTONIC, same machine):
// "m <talker> <seq> <ns>". The server preserves each sender's order, so a receiver
// expects seq 0, 1, 2... from each talker: a smaller seq is a duplicate, a larger one a
// loss (the gap is counted), and its own message coming back is an echo. Latency is the
// receive time (when the read that brought the line returned) minus the send time, for
// every delivery.
//
// The send pattern: by default each talker writes its M messages back to back (a burst of
// T * M messages: the throughput, and latencies that are mostly queueing); --round-interval D
// sends in rounds (every D, each talker one message); --rate R spreads the messages
// evenly at R per second overall. Clients connect --connect-window at a time. Durations
// (--round-interval, --time-limit) are written 100ms, 2s, 1.5 (seconds), 1m.
//
// With --spawn the server is a child process: its port is read from its first line, its
// peak RSS (VmHWM) from /proc/<pid>/status, and at the end it gets SIGINT while the
// clients are still connected: every client must then receive the goodbye line and the
// server must exit with status 0.
//
// Exit status: 0 if every check passed, 1 if not (or the time limit passed), 2 on bad
// arguments or too few descriptors.
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <gearbox/gearbox.hpp>

#include "cli/duration_option.hpp"

namespace gb = gearbox;
using namespace std::chrono_literals;

namespace {

struct Options {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string spawn;
  std::string server_args;  // more arguments for the spawned server, space-separated
  long clients = 10000;
  long talkers = -1;  // -1: min(clients, 100)
  long messages = 10;
  double rate = 0;    // messages per second over all talkers, spread evenly; 0: see round_interval
  // Every interval, each talker sends its next message (rounds); 0 with rate 0: no pause.
  std::chrono::duration<double, std::milli> round_interval{0};
  std::chrono::duration<double> time_limit{60};
  long connect_window = 256;
  bool json = false;
  bool verbose = false;
};

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Parses the decimal number at p (digits only) and the one separator after it; null if
// there is no digit. (std::from_chars is general and took a fifth of the time here.)
const char* parse_number(const char* p, const char* end, std::uint64_t& value) {
  const char* start = p;
  std::uint64_t v = 0;
  while (p < end && static_cast<unsigned>(*p - '0') < 10) v = v * 10 + static_cast<unsigned>(*p++ - '0');
  if (p == start || p - start > 19) return nullptr;
  value = v;
  return p < end ? p + 1 : p;
}

// The read side of a client for BufferedReader, remembering when its last read returned:
// the receive time of every line in that read (one clock call per read, not per line).
class TimedStream {
public:
  explicit TimedStream(gb::net::TcpStream& stream) : m_stream(&stream) {}
  gb::Task<std::size_t> read(std::span<char> buffer) {
    const std::size_t n = co_await m_stream->read(buffer);
    m_last_read_ns = now_ns();
    co_return n;
  }
  std::int64_t last_read_ns() const { return m_last_read_ns; }

private:
  gb::net::TcpStream* m_stream;
  std::int64_t m_last_read_ns = 0;
};

// Latencies in a log-linear histogram: 64 buckets per power of two (within 1.6%).
class Histogram {
public:
  void add(std::int64_t value) {
    const std::uint64_t v = value < 0 ? 0 : static_cast<std::uint64_t>(value);
    ++m_counts[index(v)];
    ++m_total;
    m_max = std::max(m_max, v);
  }
  std::uint64_t total() const { return m_total; }
  std::uint64_t max() const { return m_max; }
  // The value at quantile q (0..1): the middle of its bucket.
  double quantile(double q) const {
    if (m_total == 0) return 0;
    const auto rank = static_cast<std::uint64_t>(std::max(1.0, q * static_cast<double>(m_total) + 0.5));
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < m_counts.size(); ++i) {
      seen += m_counts[i];
      if (seen >= rank) return std::min(static_cast<double>(m_max), middle(i));
    }
    return static_cast<double>(m_max);
  }

private:
  static constexpr int k_sub_bits = 6;
  static constexpr std::uint64_t k_sub = 1u << k_sub_bits;
  static std::size_t index(std::uint64_t v) {
    if (v < 2 * k_sub) return static_cast<std::size_t>(v);
    const int e = 63 - __builtin_clzll(v);  // >= k_sub_bits + 1
    return 2 * k_sub + static_cast<std::size_t>(e - k_sub_bits - 1) * k_sub + ((v >> (e - k_sub_bits)) & (k_sub - 1));
  }
  static double middle(std::size_t i) {
    if (i < 2 * k_sub) return static_cast<double>(i);
    const std::size_t e = (i - 2 * k_sub) / k_sub + k_sub_bits + 1;
    const std::size_t sub = (i - 2 * k_sub) % k_sub;
    const double low = static_cast<double>((k_sub + sub) << (e - k_sub_bits));
    return low + static_cast<double>(std::uint64_t{1} << (e - k_sub_bits)) / 2;
  }
  std::array<std::uint64_t, 2 * k_sub + 64 * k_sub> m_counts{};
  std::uint64_t m_total = 0;
  std::uint64_t m_max = 0;
};

// Everything the clients observe, and the events the main task waits for.
struct Run {
  explicit Run(std::size_t window) : connect_window(window) {}

  std::size_t clients = 0;
  std::size_t talkers = 0;
  std::size_t messages = 0;
  std::uint64_t expected = 0;  // talkers * messages * (clients - 1)

  std::vector<std::uint16_t> next_seq;        // [receiver * talkers + talker]: the seq expected next
  std::vector<gb::net::TcpStream*> streams;   // each client's connection, while it is open
  gb::Semaphore connect_window;                // connections not yet welcomed
  std::vector<bool> holds_window;

  std::size_t connected = 0;
  std::size_t connect_failures = 0;
  std::string first_connect_error;
  std::size_t welcomed = 0;
  std::size_t goodbyes = 0;
  std::size_t closed = 0;        // clients whose connection ended (for any reason)
  std::size_t early_closes = 0;  // ...before the end phase began
  bool ending = false;
  std::uint64_t sent = 0;
  std::uint64_t delivered = 0;
  std::uint64_t duplicates = 0;
  std::uint64_t lost = 0;        // gaps seen so far (the rest is counted at the end)
  std::uint64_t echoes = 0;
  std::uint64_t bad_lines = 0;
  std::uint64_t error_replies = 0;
  std::uint64_t other_lines = 0;
  std::int64_t first_send_ns = 0;
  std::int64_t last_delivery_ns = 0;
  Histogram latency;

  gb::Event all_welcomed;
  gb::Event all_delivered;
  gb::Event all_closed;

  void on_closed(std::size_t index) {
    if (holds_window[index]) {  // closed before its welcome: let the next one connect
      holds_window[index] = false;
      connect_window.release();
    }
    ++closed;
    if (!ending) ++early_closes;
    if (closed == clients) all_closed.set();
  }

  void on_line(std::size_t receiver, std::string_view line, std::int64_t received_ns) {
    if (line.starts_with("* ")) {
      if (line.starts_with("* welcome")) {
        if (holds_window[receiver]) {
          holds_window[receiver] = false;
          connect_window.release();
        }
        if (++welcomed == clients) all_welcomed.set();
      } else if (line.starts_with("* server shutting down")) {
        ++goodbyes;
      } else {
        ++other_lines;  // joins, leaves
      }
      return;
    }
    if (line.starts_with("! ")) {
      ++error_replies;
      return;
    }
    const std::size_t colon = line.find(": m ");
    if (colon == std::string_view::npos) {
      ++bad_lines;
      return;
    }
    const char* p = line.data() + colon + 4;
    const char* end = line.data() + line.size();
    std::uint64_t talker = 0, seq = 0, sent_ns = 0;
    if (!(p = parse_number(p, end, talker)) || !(p = parse_number(p, end, seq)) || !(p = parse_number(p, end, sent_ns)) ||
        p != end || talker >= talkers || seq >= messages) {
      ++bad_lines;
      return;
    }
    if (talker == receiver) {
      ++echoes;
      return;
    }
    std::uint16_t& next = next_seq[receiver * talkers + talker];
    if (seq < next) {
      ++duplicates;
      return;
    }
    if (seq > next) lost += seq - next;
    next = static_cast<std::uint16_t>(seq + 1);
    latency.add(received_ns - static_cast<std::int64_t>(sent_ns));
    last_delivery_ns = std::max(last_delivery_ns, received_ns);
    if (++delivered == expected) all_delivered.set();
  }

  // Messages never received: what each receiver still expected from each talker.
  std::uint64_t missing() const {
    std::uint64_t n = 0;
    for (std::size_t r = 0; r < clients; ++r)
      for (std::size_t t = 0; t < talkers; ++t)
        if (r != t) n += messages - std::min<std::size_t>(messages, next_seq[r * talkers + t]);
    return n;
  }
};

gb::Task<void> client(Run& run, std::size_t index, gb::net::SocketAddress address) {
  try {
    co_await run.connect_window.acquire();
    run.holds_window[index] = true;
    gb::net::TcpStream stream;
    try {
      stream = co_await gb::net::TcpStream::connect(address, {.timeout = 10s});
    } catch (const gb::Error& e) {
      run.holds_window[index] = false;
      run.connect_window.release();
      if (run.connect_failures++ == 0) run.first_connect_error = e.what();
      run.on_closed(index);
      co_return;
    }
    ++run.connected;
    run.streams[index] = &stream;
    TimedStream source{stream};
    gb::net::BufferedReader reader{source, {.max_line = 2048, .read_size = 4096}};
    try {
      while (auto line = co_await reader.read_line()) run.on_line(index, *line, source.last_read_ns());
    } catch (const gb::Cancelled&) {
      run.streams[index] = nullptr;
      throw;
    } catch (const gb::Error&) {
      // reset, cut mid-line: the connection is over either way
    }
    run.streams[index] = nullptr;
    run.on_closed(index);
  } catch (const gb::Cancelled&) {
    // the end of the run
  }
}

gb::Task<void> talker(Run& run, std::size_t index, double rate, double interval_ms, gb::Clock::time_point start) {
  gb::net::TcpStream* stream = run.streams[index];
  if (!stream) co_return;
  char line[96];
  for (std::size_t seq = 0; seq < run.messages; ++seq) {
    double at_s = -1;
    if (rate > 0) at_s = static_cast<double>(seq * run.talkers + index) / rate;
    if (interval_ms > 0) at_s = static_cast<double>(seq) * interval_ms / 1000;
    if (at_s >= 0) co_await gb::sleep_until(start + std::chrono::duration_cast<gb::Clock::duration>(std::chrono::duration<double>(at_s)));
    stream = run.streams[index];
    if (!stream) co_return;
    const std::int64_t ns = now_ns();
    if (run.first_send_ns == 0) run.first_send_ns = ns;
    const int n = std::snprintf(line, sizeof line, "m %zu %zu %lld\n", index, seq, static_cast<long long>(ns));
    ++run.sent;
    co_await stream->write_all(std::string_view(line, static_cast<std::size_t>(n)));
  }
}

// Waits for `event` until `deadline`; false if the deadline came first.
gb::Task<bool> wait_until(gb::Event& event, gb::Clock::time_point deadline) {
  const auto left = deadline - gb::Loop::current_or_throw().now();
  if (event.is_set()) co_return true;
  if (left <= gb::Clock::duration::zero()) co_return false;
  try {
    co_await gb::timeout(left, event.wait());
    co_return true;
  } catch (const gb::TimeoutError&) {
    co_return false;
  }
}

long read_vm_hwm_kb(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line))
    if (line.starts_with("VmHWM:")) return std::atol(line.c_str() + 6);
  return 0;
}

// Raises the soft limit on open descriptors to the hard limit; returns {soft, hard}.
std::pair<rlim_t, rlim_t> raise_descriptor_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return {0, 0};
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
    getrlimit(RLIMIT_NOFILE, &limit);
  }
  return {limit.rlim_cur, limit.rlim_max};
}

// Starts the server and reads its port from "gearbox-chat listening on HOST:PORT".
gb::Task<std::uint16_t> start_server(gb::os::Process& server, const Options& options) {
  std::vector<std::string> args = {options.spawn, "--port", "0"};
  if (!options.verbose) args.push_back("--quiet");
  for (std::size_t at = 0; at < options.server_args.size();) {
    const std::size_t end = std::min(options.server_args.find(' ', at), options.server_args.size());
    if (end > at) args.push_back(options.server_args.substr(at, end - at));
    at = end + 1;
  }
  server = gb::os::Process::spawn({.args = std::move(args), .stdout_mode = gb::os::Stdio::pipe});
  gb::net::BufferedReader reader{server.stdout_stream(), {.max_line = 4096}};
  std::optional<std::string_view> line;
  try {
    line = co_await gb::timeout(10s, reader.read_line());
  } catch (const gb::TimeoutError&) {
    throw std::runtime_error("the server printed no port within 10 s");
  }
  if (!line || line->find("listening on ") == std::string_view::npos)
    throw std::runtime_error("the server did not start (its first line: '" + std::string(line.value_or("")) + "')");
  const std::size_t colon = line->rfind(':');
  unsigned port = 0;
  std::from_chars(line->data() + colon + 1, line->data() + line->size(), port);
  if (port == 0 || port > 65535) throw std::runtime_error("no port in the server's line '" + std::string(*line) + "'");
  co_return static_cast<std::uint16_t>(port);
}

gb::Task<nlohmann::json> run_load(const Options& options, Run& run) {
  gb::Loop& loop = gb::Loop::current_or_throw();
  const auto deadline = loop.now() + std::chrono::duration_cast<gb::Clock::duration>(options.time_limit);
  nlohmann::json report;
  std::vector<std::string> failures;

  gb::os::Process server;
  std::uint16_t port = static_cast<std::uint16_t>(options.port);
  if (!options.spawn.empty()) port = co_await start_server(server, options);
  const gb::net::SocketAddress address = gb::net::SocketAddress::ip(options.host, port);

  // Connect everyone, at most connect_window not yet welcomed at a time (so the server's
  // accept queue never overflows, which would cost a 1 s SYN retry).
  const std::int64_t connect_start = now_ns();
  gb::TaskGroup clients;
  for (std::size_t i = 0; i < run.clients; ++i) clients.spawn(client(run, i, address));
  const bool all_joined = co_await wait_until(run.all_welcomed, deadline);
  const double connect_s = static_cast<double>(now_ns() - connect_start) / 1e9;
  if (run.connect_failures > 0)
    failures.push_back(std::to_string(run.connect_failures) + " clients could not connect (" + run.first_connect_error + ")");
  if (!all_joined) failures.push_back("only " + std::to_string(run.welcomed) + " of " + std::to_string(run.clients) + " clients were welcomed in time");

  // Talk, if everyone is there.
  bool all_arrived = false;
  double send_s = 0;
  if (failures.empty()) {
    gb::TaskGroup talkers;
    const auto start = loop.now();
    for (std::size_t t = 0; t < run.talkers; ++t) talkers.spawn(talker(run, t, options.rate, options.round_interval.count(), start));
    all_arrived = co_await wait_until(run.all_delivered, deadline);
    if (all_arrived) {
      send_s = static_cast<double>(run.last_delivery_ns - run.first_send_ns) / 1e9;
      co_await gb::sleep_for(100ms);  // late duplicates would arrive now
    }
    try {
      co_await gb::timeout(5s, talkers.join());
    } catch (const gb::Error& e) {
      failures.push_back(std::string("talkers: ") + e.what());
    }
    if (!all_arrived) failures.push_back("the time limit passed before every message arrived");
  }

  // The end: with our own server, SIGINT it while everyone is connected: each client must
  // get the goodbye and the end of its stream, and the server must exit with 0.
  run.ending = true;
  long server_rss_kb = 0;
  std::optional<gb::os::ExitStatus> server_exit;
  const std::size_t still_connected = run.clients - run.closed;
  if (!options.spawn.empty()) {
    server_rss_kb = read_vm_hwm_kb(server.pid());
    server.kill(SIGINT);
    const auto close_deadline = std::min(deadline + 10s, loop.now() + 30s);
    if (!co_await wait_until(run.all_closed, close_deadline)) failures.push_back(std::to_string(run.clients - run.closed) + " clients still open after the server's SIGINT");
    server_rss_kb = std::max(server_rss_kb, read_vm_hwm_kb(server.pid()));
    try {
      server_exit = co_await gb::timeout(20s, server.wait());
    } catch (const gb::TimeoutError&) {
      failures.push_back("the server did not exit within 20 s of SIGINT");
      server.kill();
    }
    if (server_exit && !server_exit->success()) failures.push_back("the server ended with " + server_exit->to_string());
    if (run.goodbyes != still_connected)
      failures.push_back(std::to_string(still_connected - std::min(still_connected, run.goodbyes)) + " clients did not get the goodbye");
  }
  clients.cancel();
  co_await clients.join();  // client tasks swallow their cancellation

  const std::uint64_t missing = run.missing();
  if (missing > 0) failures.push_back(std::to_string(missing) + " deliveries missing");
  if (run.duplicates > 0) failures.push_back(std::to_string(run.duplicates) + " duplicated deliveries");
  if (run.echoes > 0) failures.push_back(std::to_string(run.echoes) + " messages echoed to their sender");
  if (run.bad_lines > 0) failures.push_back(std::to_string(run.bad_lines) + " lines not understood");
  if (run.early_closes > 0) failures.push_back(std::to_string(run.early_closes) + " clients disconnected early");

  report = {{"clients", run.clients},
            {"talkers", run.talkers},
            {"messages_per_talker", run.messages},
            {"rate", options.rate},
            {"interval_ms", options.round_interval.count()},
            {"sent", run.sent},
            {"expected_deliveries", run.expected},
            {"delivered", run.delivered},
            {"missing", missing},
            {"duplicates", run.duplicates},
            {"echoes", run.echoes},
            {"error_replies", run.error_replies},
            {"connect_s", connect_s},
            {"ms", send_s * 1000},
            {"deliveries_per_s", send_s > 0 ? static_cast<double>(run.delivered) / send_s : 0.0},
            {"messages_per_s", send_s > 0 ? static_cast<double>(run.sent) / send_s : 0.0},
            {"latency_p50_ms", run.latency.quantile(0.50) / 1e6},
            {"latency_p99_ms", run.latency.quantile(0.99) / 1e6},
            {"latency_max_ms", static_cast<double>(run.latency.max()) / 1e6},
            {"result", run.delivered},
            {"ok", failures.empty()}};
  if (!options.spawn.empty()) {
    report["server_peak_rss_kb"] = server_rss_kb;
    report["goodbyes"] = run.goodbyes;
    report["server_exit"] = server_exit ? server_exit->to_string() : "unknown";
  }
  if (!failures.empty()) {
    std::string all;
    for (const auto& f : failures) all += (all.empty() ? "" : "; ") + f;
    report["error"] = all;
  }
  co_return report;
}

void print_table(const nlohmann::json& r) {
  std::printf("gearbox-chat-load: %zu clients, %zu talkers x %zu messages\n", r["clients"].get<std::size_t>(),
              r["talkers"].get<std::size_t>(), r["messages_per_talker"].get<std::size_t>());
  std::printf("  connect + join       %10.2f s\n", r["connect_s"].get<double>());
  std::printf("  deliveries           %10llu of %llu expected (missing %llu, duplicated %llu)\n",
              r["delivered"].get<unsigned long long>(), r["expected_deliveries"].get<unsigned long long>(),
              r["missing"].get<unsigned long long>(), r["duplicates"].get<unsigned long long>());
  std::printf("  delivery time        %10.1f ms (first send to last delivery)\n", r["ms"].get<double>());
  std::printf("  deliveries/s         %10.0f\n", r["deliveries_per_s"].get<double>());
  std::printf("  messages sent/s      %10.0f\n", r["messages_per_s"].get<double>());
  std::printf("  latency p50          %10.2f ms\n", r["latency_p50_ms"].get<double>());
  std::printf("  latency p99          %10.2f ms\n", r["latency_p99_ms"].get<double>());
  std::printf("  latency max          %10.2f ms\n", r["latency_max_ms"].get<double>());
  if (r.contains("server_peak_rss_kb")) {
    std::printf("  server peak RSS      %10.1f MB\n", r["server_peak_rss_kb"].get<long>() / 1024.0);
    std::printf("  server exit          %s, goodbyes %zu\n", r["server_exit"].get<std::string>().c_str(), r["goodbyes"].get<std::size_t>());
  }
  std::printf("  result               %s\n", r["ok"].get<bool>() ? "ok" : ("FAILED: " + r["error"].get<std::string>()).c_str());
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"gearbox-chat-load: C chat clients, T talkers x M messages; checks every delivery, reports rate and latency"};
  Options options;
  app.add_option("--host", options.host, "the server's numeric address (loopback)")->capture_default_str();
  auto* port = app.add_option("--port", options.port, "the server's port")->check(CLI::Range(1, 65535));
  auto* spawn = app.add_option("--spawn", options.spawn, "start this gearbox-chat binary and use it (and report its peak RSS)");
  port->excludes(spawn);
  app.add_option("--server-args", options.server_args,
                 "more arguments for the spawned server, space-separated (e.g. \"--threads 2\")")
      ->needs(spawn);
  app.add_option("--clients", options.clients, "clients to connect")->check(CLI::Range(1L, 1000000L))->capture_default_str();
  app.add_option("--talkers", options.talkers, "clients that send (default: min(clients, 100))")->check(CLI::Range(0L, 1000000L));
  app.add_option("--messages", options.messages, "messages each talker sends")->check(CLI::Range(0L, 60000L))->capture_default_str();
  auto* rate = app.add_option("--rate", options.rate, "messages per second over all talkers (0: no pacing)")->check(CLI::NonNegativeNumber)->capture_default_str();
  auto* interval = gb::cli::add_duration_option(app, "--round-interval", options.round_interval,
                                                "time between rounds, in each of which every talker sends one message; 0: no pause",
                                                {0s, 1h});
  gb::cli::add_duration_option(app, "--time-limit", options.time_limit, "how long before the run gives up", {1ms, 24h});
  app.add_option("--connect-window", options.connect_window, "connections in progress at once")->check(CLI::Range(1L, 100000L))->capture_default_str();
  interval->excludes(rate);
  app.add_flag("--json", options.json, "print the report as one JSON line");
  app.add_flag("--verbose", options.verbose, "let the spawned server log");
  CLI11_PARSE(app, argc, argv);
  if (options.spawn.empty() && options.port == 0) {
    std::fprintf(stderr, "gearbox-chat-load: give --port PORT (a running gearbox-chat) or --spawn PATH (start one)\n");
    return 2;
  }
  if (options.talkers < 0) options.talkers = std::min(options.clients, 100L);
  if (options.talkers > options.clients) {
    std::fprintf(stderr, "gearbox-chat-load: --talkers (%ld) exceeds --clients (%ld)\n", options.talkers, options.clients);
    return 2;
  }

  // One descriptor per client, plus a few for the loop, the server's pipe and stdio. The
  // spawned server inherits the raised limit and needs as many.
  const auto [soft, hard] = raise_descriptor_limit();
  const rlim_t needed = static_cast<rlim_t>(options.clients) + 32;
  if (soft < needed) {
    std::fprintf(stderr,
                 "gearbox-chat-load: %ld clients need about %lu open descriptors, but this process may open only %lu "
                 "(hard limit %lu). Raise it with `ulimit -n %lu` (as root, or via /etc/security/limits.conf for the "
                 "hard limit), or use fewer --clients.\n",
                 options.clients, static_cast<unsigned long>(needed), static_cast<unsigned long>(soft),
                 static_cast<unsigned long>(hard), static_cast<unsigned long>(needed));
    return 2;
  }

  Run run{static_cast<std::size_t>(options.connect_window)};
  run.clients = static_cast<std::size_t>(options.clients);
  run.talkers = static_cast<std::size_t>(options.talkers);
  run.messages = static_cast<std::size_t>(options.messages);
  run.expected = static_cast<std::uint64_t>(run.talkers) * run.messages * (run.clients - 1);
  run.next_seq.assign(run.clients * run.talkers, 0);
  run.streams.assign(run.clients, nullptr);
  run.holds_window.assign(run.clients, false);
  if (run.expected == 0) run.all_delivered.set();

  try {
    gb::Loop loop;
    const nlohmann::json report = loop.run(run_load(options, run));
    if (options.json)
      std::printf("%s\n", report.dump().c_str());
    else
      print_table(report);
    if (!report["ok"].get<bool>() && options.json) std::fprintf(stderr, "gearbox-chat-load: FAILED: %s\n", report["error"].get<std::string>().c_str());
    return report["ok"].get<bool>() ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gearbox-chat-load: %s\n", e.what());
    if (options.json) std::printf("%s\n", nlohmann::json{{"ok", false}, {"error", e.what()}}.dump().c_str());
    return 1;
  }
}
