// The chat protocol, against an in-process ChatServer on 127.0.0.1 (a port the kernel
// picks), with clients made of gearbox TcpStreams on the same engine: every test runs on
// both flavors, a Loop and a Runtime of 2 workers (where the server's clients and the
// test's run on both workers at once). Every test runs under a time limit (a hang
// fails), and none measures time.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <gearbox/gearbox.hpp>

#include "chat_server.hpp"
#include "support/flavors.hpp"
#include "support/runtime_threads.hpp"

namespace {

namespace gb = gearbox;
using gb::chat::ChatOptions;
using gb::chat::ChatServer;
using gb::chat::ChatStats;
using namespace std::chrono_literals;

constexpr auto k_test_limit = 60s;

// One chat client. Heap-allocated and never moved: the reader refers to the stream.
class Client {
public:
  static gb::Task<std::unique_ptr<Client>> connect(std::uint16_t port) {
    auto client = std::unique_ptr<Client>(new Client);
    client->m_stream = co_await gb::net::TcpStream::connect(gb::net::SocketAddress::loopback(port));
    co_return client;
  }

  // The next line from the server; "<eof>" at the end of the stream, "<error: ...>" if the
  // connection failed.
  gb::Task<std::string> line() {
    try {
      std::optional<std::string_view> line = co_await m_reader.read_line();
      co_return line ? std::string(*line) : std::string("<eof>");
    } catch (const gb::IoError& e) {
      co_return std::string("<error: ") + e.what() + ">";
    } catch (const gb::UnexpectedEof&) {
      co_return std::string("<eof>");
    }
  }

  // Reads the welcome line and returns the nick it gives.
  gb::Task<std::string> welcome() {
    const std::string text = co_await line();
    const std::string marker = "you are ";
    const std::size_t at = text.find(marker);
    EXPECT_TRUE(text.starts_with("* welcome to gearbox chat, you are ")) << text;
    if (at == std::string::npos) co_return std::string();
    const std::size_t end = text.find(' ', at + marker.size());
    co_return text.substr(at + marker.size(), end - at - marker.size());
  }

  gb::Task<void> send(std::string text) { co_await m_stream.write_all(text); }
  gb::net::TcpStream& stream() { return m_stream; }

private:
  Client() = default;
  gb::net::TcpStream m_stream;
  gb::net::BufferedReader<gb::net::TcpStream> m_reader{m_stream, {.max_line = 1 << 20}};
};

using Body = std::function<gb::Task<void>(ChatServer&, std::uint16_t port)>;
using gearbox_test::Flavor;

// Serves on `listener` while `body` runs, then stops the server and waits for run() to end.
gb::Task<void> serve_during(ChatServer& server, gb::net::TcpListener& listener, std::uint16_t port, Body& body) {
  auto serving = gb::spawn(server.run(listener));
  std::exception_ptr failure;
  try {
    co_await gb::timeout(k_test_limit, body(server, port));
  } catch (...) {
    failure = std::current_exception();
  }
  server.stop();
  co_await gb::timeout(k_test_limit, std::move(serving));
  if (failure) std::rethrow_exception(failure);
}

// Runs `body` against a fresh server, then stops the server and waits for run() to end.
void with_server(Flavor flavor, ChatOptions options, Body body) {
  gb::net::TcpListener listener = gb::net::TcpListener::bind(gb::net::SocketAddress::loopback(0));
  const std::uint16_t port = listener.local_address().port();
  ChatServer server{std::move(options)};
  gearbox_test::run_on(flavor, serve_during(server, listener, port, body));
}

void with_server(Flavor flavor, Body body) { with_server(flavor, ChatOptions{}, std::move(body)); }

class ChatOnEveryFlavor : public testing::TestWithParam<Flavor> {};

}  // namespace

INSTANTIATE_TEST_SUITE_P(Chat, ChatOnEveryFlavor, gearbox_test::every_flavor(), gearbox_test::flavor_name);

namespace {

TEST_P(ChatOnEveryFlavor, a_new_client_is_welcomed_with_a_default_guest_nick_and_the_others_see_it_join) {
  with_server(GetParam(), [](ChatServer&, std::uint16_t port) -> gb::Task<void> {
    auto a = co_await Client::connect(port);
    EXPECT_EQ(co_await a->welcome(), "guest1");
    auto b = co_await Client::connect(port);
    EXPECT_EQ(co_await b->welcome(), "guest2");
    EXPECT_EQ(co_await a->line(), "* guest2 joined");
  });
}

TEST_P(ChatOnEveryFlavor, a_valid_nick_is_taken_and_the_others_are_told) {
  with_server(GetParam(), [](ChatServer&, std::uint16_t port) -> gb::Task<void> {
    auto a = co_await Client::connect(port);
    co_await a->welcome();
    auto b = co_await Client::connect(port);
    co_await b->welcome();
    EXPECT_EQ(co_await a->line(), "* guest2 joined");
    co_await a->send("/nick Alice_-9\n");
    EXPECT_EQ(co_await a->line(), "* you are now Alice_-9");
    EXPECT_EQ(co_await b->line(), "* guest1 is now Alice_-9");
    co_await a->send("hi\n");
    EXPECT_EQ(co_await b->line(), "Alice_-9: hi");
  });
}

TEST_P(ChatOnEveryFlavor, an_invalid_nick_is_refused_and_the_client_stays_connected) {
  with_server(GetParam(), [](ChatServer& server, std::uint16_t port) -> gb::Task<void> {
    auto a = co_await Client::connect(port);
    co_await a->welcome();
    const std::string invalid = "! invalid nick: use 1 to 16 of A-Z a-z 0-9 _ -";
    for (const char* bad : {"/nick bad!\n", "/nick two words\n", "/nick\n", "/nick 12345678901234567\n", "/nick caf\xc3\xa9\n"}) {
      co_await a->send(bad);
      EXPECT_EQ(co_await a->line(), invalid) << bad;
    }
    co_await a->send("/nick 1234567890123456\n");  // exactly 16: fine
    EXPECT_EQ(co_await a->line(), "* you are now 1234567890123456");
    EXPECT_EQ(server.clients(), 1u);
  });
}

TEST_P(ChatOnEveryFlavor, a_nick_another_client_has_is_refused_whatever_its_case) {
  with_server(GetParam(), [](ChatServer&, std::uint16_t port) -> gb::Task<void> {
    auto a = co_await Client::connect(port);
    co_await a->welcome();
    auto b = co_await Client::connect(port);
    co_await b->welcome();
    co_await a->send("/nick alice\n");
    EXPECT_EQ(co_await a->line(), "* guest2 joined");
    EXPECT_EQ(co_await a->line(), "* you are now alice");
    EXPECT_EQ(co_await b->line(), "* guest1 is now alice");
    co_await b->send("/nick ALICE\n");
    EXPECT_EQ(co_await b->line(), "! nick taken: ALICE");
    co_await b->send("/nick guest1\n");  // freed by alice's rename
    EXPECT_EQ(co_await b->line(), "* you are now guest1");
    co_await a->send("/nick Alice\n");  // one's own nick in another case: fine
    EXPECT_EQ(co_await a->line(), "* guest2 is now guest1");
    EXPECT_EQ(co_await a->line(), "* you are now Alice");
  });
}

TEST_P(ChatOnEveryFlavor, who_lists_everyone_online) {
  with_server(GetParam(), [](ChatServer&, std::uint16_t port) -> gb::Task<void> {
    std::vector<std::unique_ptr<Client>> clients;
    for (int i = 0; i < 3; ++i) {
      clients.push_back(co_await Client::connect(port));
      co_await clients.back()->welcome();
    }
    co_await clients[1]->send("/nick bob\n");
    // The rename is done before /who is sent: two clients' lines have no order of their
    // own (on a Runtime their readers run on two workers at once).
    EXPECT_EQ(co_await clients[1]->line(), "* guest3 joined");
    EXPECT_EQ(co_await clients[1]->line(), "* you are now bob");
    co_await clients[2]->send("/who\n");
    EXPECT_EQ(co_await clients[2]->line(), "* guest2 is now bob");
    EXPECT_EQ(co_await clients[2]->line(), "* 3 online: bob, guest1, guest3");
  });
}

TEST_P(ChatOnEveryFlavor, a_message_reaches_everyone_else_and_not_its_sender) {
  with_server(GetParam(), [](ChatServer&, std::uint16_t port) -> gb::Task<void> {
    auto a = co_await Client::connect(port);
    co_await a->welcome();
    auto b = co_await Client::connect(port);
    co_await b->welcome();
    auto c = co_await Client::connect(port);
    co_await c->welcome();
    EXPECT_EQ(co_await a->line(), "* guest2 joined");
    EXPECT_EQ(co_await a->line(), "* guest3 joined");
    EXPECT_EQ(co_await b->line(), "* guest3 joined");
    co_await a->send("hello, room\r\n");  // nc -C style: the \r goes
    co_await a->send("\n");               // an empty line is ignored
    EXPECT_EQ(co_await b->line(), "guest1: hello, room");
    EXPECT_EQ(co_await c->line(), "guest1: hello, room");
    // The sender's next line is the answer to its next command: nothing was echoed.
    co_await a->send("/who\n");
    EXPECT_EQ(co_await a->line(), "* 3 online: guest1, guest2, guest3");
  });
}

TEST_P(ChatOnEveryFlavor, quit_says_bye_closes_the_connection_and_the_others_see_the_client_leave) {
  with_server(GetParam(), [](ChatServer& server, std::uint16_t port) -> gb::Task<void> {
    auto a = co_await Client::connect(port);
    co_await a->welcome();
    auto b = co_await Client::connect(port);
    co_await b->welcome();
    co_await a->send("/quit\n");
    EXPECT_EQ(co_await a->line(), "* guest2 joined");
    EXPECT_EQ(co_await a->line(), "* bye");
    EXPECT_EQ(co_await a->line(), "<eof>");
    EXPECT_EQ(co_await b->line(), "* guest1 left");
    co_await b->send("/who\n");
    EXPECT_EQ(co_await b->line(), "* 1 online: guest2");
    EXPECT_EQ(server.clients(), 1u);
  });
}

TEST_P(ChatOnEveryFlavor, an_unknown_command_gets_an_error_and_the_client_stays_connected) {
  with_server(GetParam(), [](ChatServer&, std::uint16_t port) -> gb::Task<void> {
    auto a = co_await Client::connect(port);
    co_await a->welcome();
    co_await a->send("/xyz something\n/\n");
    EXPECT_EQ(co_await a->line(), "! unknown command: /xyz (commands: /nick NAME, /who, /quit)");
    EXPECT_EQ(co_await a->line(), "! unknown command: / (commands: /nick NAME, /who, /quit)");
    co_await a->send("/who\n");
    EXPECT_EQ(co_await a->line(), "* 1 online: guest1");
  });
}

TEST_P(ChatOnEveryFlavor, an_oversized_line_gets_an_error_the_client_stays_connected_and_its_next_line_works) {
  ChatOptions options;
  options.max_line = 100;
  with_server(GetParam(), options, [](ChatServer& server, std::uint16_t port) -> gb::Task<void> {
    auto a = co_await Client::connect(port);
    co_await a->welcome();
    auto b = co_await Client::connect(port);
    co_await b->welcome();
    const std::string longest(100, 'x');  // exactly the limit: accepted
    co_await a->send(longest + "\r\n");
    EXPECT_EQ(co_await b->line(), "guest1: " + longest);
    co_await a->send(std::string(101, 'y') + "\n");            // one over
    co_await a->send(std::string(100000, 'z') + "\nafter\n");  // far over, in many reads
    EXPECT_EQ(co_await a->line(), "* guest2 joined");
    EXPECT_EQ(co_await a->line(), "! line too long (the limit is 100 bytes)");
    EXPECT_EQ(co_await a->line(), "! line too long (the limit is 100 bytes)");
    EXPECT_EQ(co_await b->line(), "guest1: after");  // nothing of the long lines leaked through
    EXPECT_EQ(server.stats().error_replies, 2u);
    EXPECT_EQ(server.clients(), 2u);
  });
}

TEST_P(ChatOnEveryFlavor, a_client_whose_stream_ends_mid_line_is_removed_and_the_others_are_told) {
  with_server(GetParam(), [](ChatServer& server, std::uint16_t port) -> gb::Task<void> {
    auto a = co_await Client::connect(port);
    co_await a->welcome();
    auto b = co_await Client::connect(port);
    co_await b->welcome();
    co_await a->send("half a li");
    a->stream().shutdown_write();
    EXPECT_EQ(co_await b->line(), "* guest1 left (connection lost mid-line)");
    EXPECT_EQ(server.clients(), 1u);
    EXPECT_EQ(co_await a->line(), "* guest2 joined");
    EXPECT_EQ(co_await a->line(), "<eof>");  // the server closed its side too
  });
}

// The last line and the end of the stream arrive together (one readiness edge): the
// server must still see the end after reading the line. (It did not before AsyncFd::read
// kept the readiness after a hang-up: the session lingered forever.)
TEST_P(ChatOnEveryFlavor, a_client_that_sends_a_line_and_closes_is_seen_leaving) {
  with_server(GetParam(), [](ChatServer& server, std::uint16_t port) -> gb::Task<void> {
    auto a = co_await Client::connect(port);
    co_await a->welcome();
    auto b = co_await Client::connect(port);
    co_await b->welcome();
    EXPECT_EQ(co_await a->line(), "* guest2 joined");  // nothing unread: close() sends FIN, not RST
    co_await a->send("last words\n");
    a->stream().close();
    EXPECT_EQ(co_await b->line(), "guest1: last words");
    EXPECT_EQ(co_await b->line(), "* guest1 left");
    EXPECT_EQ(server.clients(), 1u);
  });
}

// A talker, a listener that reads everything, and a sleeper that never reads: the sleeper
// is dropped once its queue passes max_queued_bytes, and the listener gets every line.
void check_a_client_that_never_reads_is_dropped(Flavor flavor, ChatOptions options) {
  with_server(flavor, options, [](ChatServer& server, std::uint16_t port) -> gb::Task<void> {
    auto talker = co_await Client::connect(port);
    co_await talker->welcome();
    auto listener = co_await Client::connect(port);
    co_await listener->welcome();
    auto sleeper = co_await Client::connect(port);  // never reads after this
    co_await sleeper->welcome();
    EXPECT_EQ(co_await talker->line(), "* guest2 joined");
    EXPECT_EQ(co_await talker->line(), "* guest3 joined");
    EXPECT_EQ(co_await listener->line(), "* guest3 joined");

    // The listener reads everything concurrently and checks the order.
    // Atomics: on the Runtime the two tasks run on two workers at once.
    struct Tally {
      std::atomic<long> received = 0;
      std::atomic<long> out_of_order = 0;
      std::atomic<bool> saw_drop = false;
      std::atomic<long> sent = 0;
      gb::Event progress;  // set when the listener has received another line
    } tally;
    auto reading = gb::spawn([](Client& listener, Tally& tally) -> gb::Task<void> {
      for (;;) {
        const std::string line = co_await listener.line();
        tally.progress.set();
        if (line == "guest1: end") co_return;
        if (line == "* guest3 left (too slow)") {
          tally.saw_drop = true;
          continue;
        }
        if (!line.starts_with("guest1: ")) {
          ADD_FAILURE() << "unexpected line: " << line.substr(0, 80);
          co_return;
        }
        if (std::stol(line.substr(8, line.find(' ', 8) - 8)) != tally.received) ++tally.out_of_order;
        ++tally.received;
      }
    }(*listener, tally));

    // The talker keeps at most 16 lines (16 KB) ahead of the listener, so the listener's
    // queue stays far under the bound however the loop interleaves the three; the sleeper
    // falls further behind with every line. Kernel buffers take a few MB before the
    // server's queue for the sleeper grows; 40 MB is far beyond that, so the drop must
    // come well before the loop's bound.
    const std::string padding(1000, 'p');
    for (long i = 0; i < 40000 && server.stats().dropped_slow == 0; ++i) {
      for (;;) {
        tally.progress.clear();  // before the check: a line received after it sets it again
        if (tally.sent - tally.received < 16) break;
        co_await tally.progress.wait();
      }
      co_await talker->send(std::to_string(i) + " " + padding + "\n");
      ++tally.sent;
    }
    EXPECT_EQ(server.stats().dropped_slow, 1u);
    co_await talker->send("end\n");
    co_await std::move(reading);
    EXPECT_TRUE(tally.saw_drop);
    EXPECT_EQ(tally.received, tally.sent);
    EXPECT_EQ(tally.out_of_order, 0);
    EXPECT_EQ(server.clients(), 2u);
    co_await talker->send("/who\n");
    EXPECT_EQ(co_await talker->line(), "* guest3 left (too slow)");
    EXPECT_EQ(co_await talker->line(), "* 2 online: guest1, guest2");
    // With the room's bound below the sleeper's, the sleeper held the room up.
    if (server.options().max_backlog_bytes < server.options().max_queued_bytes) {
      EXPECT_GT(server.stats().backlog_waits, 0u);
    }
  });
}

TEST_P(ChatOnEveryFlavor, a_client_that_never_reads_is_disconnected_once_its_queue_passes_the_bound_and_the_others_get_everything) {
  ChatOptions options;
  options.max_queued_bytes = 128 * 1024;
  check_a_client_that_never_reads_is_dropped(GetParam(), options);
}

// The same with a backlog bound below the sleeper's own: its queue alone holds the room
// past max_backlog_bytes, so the talker's reader waits backlog_wait before each line
// (the writers cannot bring it down) until the sleeper is dropped - then all flows again.
TEST_P(ChatOnEveryFlavor, a_client_that_never_reads_holds_the_backlog_up_only_until_it_is_dropped) {
  ChatOptions options;
  options.max_queued_bytes = 128 * 1024;
  options.max_backlog_bytes = 32 * 1024;
  options.backlog_wait = 2ms;
  check_a_client_that_never_reads_is_dropped(GetParam(), options);
}

// `clients` connect; the first `talkers` of them each send `messages` lines ("SEQ" and
// `padding` bytes), all at once; every client must get each other talker's lines exactly
// once, in its order, and never its own. Returns a description of the first thing that
// went wrong, or "".
struct Mesh {
  int clients = 12;
  int talkers = 6;
  long messages = 200;
  std::size_t padding = 0;
};

gb::Task<std::string> talk_and_check(std::uint16_t port, Mesh mesh) {
  std::vector<std::unique_ptr<Client>> clients;
  std::vector<std::string> nicks;
  for (int i = 0; i < mesh.clients; ++i) {
    clients.push_back(co_await Client::connect(port));
    nicks.push_back(co_await clients.back()->welcome());
  }
  auto listen = [](Client& client, int me, std::vector<std::string> nicks, Mesh mesh) -> gb::Task<std::string> {
    const long expected = (me < mesh.talkers ? mesh.talkers - 1 : mesh.talkers) * mesh.messages;
    std::vector<long> next(static_cast<std::size_t>(mesh.talkers), 0);
    for (long got = 0; got < expected;) {
      const std::string line = co_await client.line();
      if (line.starts_with("* ")) continue;  // joins
      const std::size_t colon = line.find(": ");
      const auto sender = std::find(nicks.begin(), nicks.end(), line.substr(0, colon)) - nicks.begin();
      if (colon == std::string::npos || sender >= mesh.talkers || sender == me)
        co_return "client " + std::to_string(me) + " got " + line.substr(0, 80);
      if (std::stol(line.substr(colon + 2)) != next[static_cast<std::size_t>(sender)]++)
        co_return "client " + std::to_string(me) + " got " + line.substr(0, 80) + " out of order";
      ++got;
    }
    co_return std::string();
  };
  auto talk = [](Client& client, Mesh mesh) -> gb::Task<void> {
    const std::string padding(mesh.padding, 'p');
    std::string all;  // one write: the server reads many lines at a time
    for (long seq = 0; seq < mesh.messages; ++seq) all += std::to_string(seq) + " " + padding + "\n";
    co_await client.send(std::move(all));
  };
  std::vector<gb::JoinHandle<std::string>> listeners;
  std::vector<gb::JoinHandle<void>> talkers;
  for (int i = 0; i < mesh.clients; ++i) listeners.push_back(gb::spawn(listen(*clients[i], i, nicks, mesh)));
  for (int i = 0; i < mesh.talkers; ++i) talkers.push_back(gb::spawn(talk(*clients[i], mesh)));
  for (auto& talker : talkers) co_await std::move(talker);
  std::string failure;
  for (auto& listener : listeners) {
    std::string wrong = co_await std::move(listener);
    if (failure.empty()) failure = std::move(wrong);
  }
  co_return failure;
}

// Everyone talks at once: on the Runtime the talkers' readers broadcast from both workers
// into the same queues while the writers drain them.
TEST_P(ChatOnEveryFlavor, messages_from_many_talkers_at_once_reach_every_other_client_once_and_in_order) {
  with_server(GetParam(), [](ChatServer& server, std::uint16_t port) -> gb::Task<void> {
    const Mesh mesh;
    EXPECT_EQ(co_await talk_and_check(port, mesh), "");
    EXPECT_EQ(server.stats().messages_broadcast, static_cast<std::uint64_t>(mesh.talkers * mesh.messages));
    EXPECT_EQ(server.stats().dropped_slow, 0u);
  });
}

// A burst far past max_backlog_bytes: each broadcast alone passes the bound, so every
// reader waits for the writers before its next line, and the backlog never grows by more
// than the broadcasts that passed the check at once (one per talker) - yet nothing is lost.
TEST_P(ChatOnEveryFlavor, a_burst_past_the_backlog_bound_makes_readers_wait_for_the_writers_and_loses_nothing) {
  ChatOptions options;
  options.max_backlog_bytes = 4 * 1024;
  options.backlog_wait = 10s;  // a drain, not this, ends the waits here
  with_server(GetParam(), options, [](ChatServer& server, std::uint16_t port) -> gb::Task<void> {
    const Mesh mesh{.clients = 10, .talkers = 3, .messages = 100, .padding = 1000};
    EXPECT_EQ(co_await talk_and_check(port, mesh), "");
    const ChatStats stats = server.stats();
    const std::uint64_t broadcast_cost = (mesh.clients - 1) * (mesh.padding + 32 + 16);  // "guestN: SEQ pad\n", slot
    EXPECT_GT(stats.backlog_waits, 0u);
    EXPECT_LE(stats.peak_backlog_bytes, server.options().max_backlog_bytes + mesh.talkers * broadcast_cost);
    EXPECT_EQ(stats.dropped_slow, 0u);
  });
}

// The two busiest cases again on 1, 2, 4 and 8 workers (more than this machine's cores,
// so that workers are preempted while they hold the room or a queue).
class ChatOnRuntimeThreads : public testing::TestWithParam<unsigned> {};

INSTANTIATE_TEST_SUITE_P(Chat, ChatOnRuntimeThreads, gearbox_test::runtime_threads(), gearbox_test::threads_name);

void with_server_on_runtime(unsigned threads, ChatOptions options, Body body) {
  gb::net::TcpListener listener = gb::net::TcpListener::bind(gb::net::SocketAddress::loopback(0));
  const std::uint16_t port = listener.local_address().port();
  ChatServer server{std::move(options)};
  gb::Runtime runtime{{.threads = threads}};
  runtime.run(serve_during(server, listener, port, body));
}

TEST_P(ChatOnRuntimeThreads, many_talkers_at_once_and_a_tight_backlog_bound_lose_nothing) {
  ChatOptions options;
  options.max_backlog_bytes = 16 * 1024;
  with_server_on_runtime(GetParam(), options, [](ChatServer& server, std::uint16_t port) -> gb::Task<void> {
    const Mesh mesh{.clients = 16, .talkers = 8, .messages = 100, .padding = 100};
    EXPECT_EQ(co_await talk_and_check(port, mesh), "");
    EXPECT_EQ(server.stats().messages_broadcast, static_cast<std::uint64_t>(mesh.talkers * mesh.messages));
    EXPECT_EQ(server.stats().dropped_slow, 0u);
  });
}

TEST_P(ChatOnEveryFlavor, stop_says_goodbye_to_everyone_and_closes_them_and_run_returns) {
  gb::net::TcpListener listener = gb::net::TcpListener::bind(gb::net::SocketAddress::loopback(0));
  const std::uint16_t port = listener.local_address().port();
  ChatOptions options;
  options.close_grace = 200ms;
  ChatServer server{options};
  std::vector<std::string> last_lines(3);
  gearbox_test::run_on(GetParam(), [](ChatServer& server, gb::net::TcpListener& listener, std::uint16_t port,
              std::vector<std::string>& last_lines) -> gb::Task<void> {
    auto serving = gb::spawn(server.run(listener));
    std::vector<std::unique_ptr<Client>> clients;
    for (int i = 0; i < 3; ++i) {
      clients.push_back(co_await Client::connect(port));
      co_await clients.back()->welcome();
    }
    // A fourth client never reads: stop() must not wait for it forever.
    auto sleeper = co_await Client::connect(port);
    co_await sleeper->welcome();
    // Each reader keeps the last two lines before the end of its stream; the first one
    // also says when the answer to its /who came (the server has read all it sent).
    gb::Event who_answered;
    std::vector<gb::JoinHandle<void>> readers;
    for (int i = 0; i < 3; ++i) {
      readers.push_back(gb::spawn([](Client& client, std::string& last, gb::Event& who) -> gb::Task<void> {
        std::string previous, line;
        for (long n = 0; n < 100000 && line != "<eof>" && !line.starts_with("<error"); ++n) {
          previous = std::exchange(line, co_await client.line());
          if (line.starts_with("* 4 online")) who.set();
        }
        last = previous + " | " + line;
      }(*clients[i], last_lines[i], who_answered)));
    }
    const std::string padding(1000, 'p');
    for (int i = 0; i < 200; ++i) co_await clients[0]->send(padding + "\n");  // 200 KB to everyone else
    co_await clients[0]->send("/who\n");
    co_await who_answered.wait();
    server.stop();
    co_await gb::timeout(k_test_limit, std::move(serving));  // run() returns
    for (auto& reader : readers) co_await gb::timeout(k_test_limit, std::move(reader));
  }(server, listener, port, last_lines));
  for (const auto& last : last_lines) EXPECT_EQ(last, "* server shutting down, bye | <eof>");
  EXPECT_EQ(server.clients(), 0u);
  EXPECT_EQ(server.stats().disconnected, 4u);
  EXPECT_FALSE(listener.is_open());
}

TEST_P(ChatOnEveryFlavor, stop_before_run_makes_run_return_at_once) {
  gb::net::TcpListener listener = gb::net::TcpListener::bind(gb::net::SocketAddress::loopback(0));
  ChatServer server;
  server.stop();
  gearbox_test::run_on(GetParam(), gb::timeout(k_test_limit, server.run(listener)));
  EXPECT_FALSE(listener.is_open());
}

}  // namespace
