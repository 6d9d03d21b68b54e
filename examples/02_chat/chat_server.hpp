// ChatServer: a line-based chat room built to hold 10,000 clients, on one gearbox Loop
// (one thread) or on a multi-thread Runtime (every core). Try it with `nc 127.0.0.1 PORT`
// (see README.md for the protocol).
//
//   auto listener = gb::net::TcpListener::bind(gb::net::SocketAddress::loopback(0));
//   gearbox::chat::ChatServer server;
//   co_await server.run(listener);        // until server.stop()
//
// The protocol, one line each way ('\n', a '\r' before it is dropped):
//   on connect     "* welcome to gearbox chat, you are guestN (...)"   and "* guestN joined" to the others
//   /nick NAME     "* you are now NAME" and "* OLD is now NAME" to the others;
//                  "! invalid nick ..." or "! nick taken: NAME" (the client stays connected)
//   /who           "* K online: a, b, c" (at most k_who_max names, then "and R more")
//   /quit          "* bye", then the server closes the connection; "* NICK left" to the others
//   /anything      "! unknown command: /anything"
//   other text     "NICK: text" to everyone else (never echoed to the sender); empty lines are ignored
//   a line longer than max_line bytes: "! line too long ..."; the rest of it is skipped and
//                  the client stays connected.
// Lines from the server begin with "* " (news), "! " (an error reply to this client) or
// "NICK: " (a message); nicks cannot contain ' ', '*' or '!', so the three never mix up.
//
// Each client has a reader task, a writer task and a queue of outgoing lines. Broadcast
// never waits: it appends a shared, immutable copy of the line (one allocation for all
// recipients) to each queue and wakes the writers, which write whatever has queued up
// in one write (up to write_batch bytes). A client whose queue would pass
// max_queued_bytes (it stopped reading, or reads slower than the room talks) is
// disconnected on the spot, with reason "too slow"; the others never wait for it. When
// all queues together pass max_backlog_bytes (a burst: the room talks faster than the
// kernel takes the lines), readers wait before their next line until the writers have
// caught up, so the server's memory stays bounded either way.
//
// Joins and leaves are announced while the room has at most announce_limit members:
// announcing each of N joins to everyone costs O(N^2) lines (5*10^7 for 10,000 clients),
// so big rooms stay quiet about them, as big IRC channels do.
//
// Thread-safety: run() on a Loop or on a Runtime; on a Runtime the clients' tasks run on
// every worker. The room (members, nicks) is under a reader-writer lock: messages and
// /who share it, joins, leaves, renames, drops and stop() take it alone, so each of those
// is one step that every client sees in the same order. Each client's queue has its own
// lock, held only to append or to take the whole queue (never across a write). stop(),
// stats() and clients() may be called from any task or thread. Streams of other clients
// are only ever shut down, never closed, across tasks: a closed descriptor could be
// reused by the next accept while its tasks still use the number. Destruction: run()
// must have returned (or never been called).
//
// Memory ordering: the figures are relaxed atomics (counts, read as a snapshot that may
// mix instants); everything else is ordered by the room lock and the queues' locks.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <gearbox/net/tcp.hpp>
#include <gearbox/sync/event.hpp>
#include <gearbox/task.hpp>

namespace gearbox::chat {

struct ChatOptions {
  std::size_t max_line = 1024;                // longest accepted line, without its "\r\n"
  std::size_t max_nick = 16;                  // nicks: 1..max_nick of [A-Za-z0-9_-], unique ignoring case
  std::size_t max_queued_bytes = 256 * 1024;  // a client's queued output beyond this: disconnected (each
                                              // line counts its text and its 16-byte slot)
  std::size_t announce_limit = 1000;          // joins/leaves announced while members <= this
  std::size_t read_size = 512;                // bytes asked of the socket per read (per-client buffer)
  std::size_t write_batch = 16 * 1024;        // queued lines copied into one write, up to this size
  // How long a leaving client (/quit, stop()) has to read its last lines before it is closed.
  std::chrono::milliseconds close_grace{2000};
  // All clients' queued output together (counted as max_queued_bytes counts it): past
  // this, a reader waits before it handles its client's next line until the writers have
  // brought the backlog down to half, or for backlog_wait at most (clients that never
  // read may hold the backlog up until they are dropped). A burst then costs bounded
  // memory, and talkers are slowed to the pace the room can take.
  std::size_t max_backlog_bytes = 64 * 1024 * 1024;
  std::chrono::milliseconds backlog_wait{50};
  // Where the server says what it did to whom (slow clients dropped, errors); null: silent.
  // On a Runtime it may be called from several workers at once.
  std::function<void(std::string_view)> log = {};
};

struct ChatStats {
  std::uint64_t accepted = 0;            // connections accepted
  std::uint64_t peak_clients = 0;        // most clients connected at once
  std::uint64_t lines_received = 0;      // lines read from clients (commands included)
  std::uint64_t messages_broadcast = 0;  // chat lines broadcast
  std::uint64_t deliveries = 0;          // lines queued for a client (broadcasts, news and replies)
  std::uint64_t bytes_written = 0;       // bytes written to clients
  std::uint64_t writes = 0;              // batches written (bytes/writes: the batching)
  std::uint64_t error_replies = 0;       // "! ..." replies (bad commands, nicks, long lines)
  std::uint64_t dropped_slow = 0;        // clients disconnected because their queue passed the bound
  std::uint64_t disconnected = 0;        // clients gone, for any reason
  std::uint64_t backlog_waits = 0;       // times a reader waited for the backlog to go down
  std::uint64_t peak_backlog_bytes = 0;  // most output queued for all clients at once
};

class ChatServer {
public:
  // Names at most this many clients in a /who reply (the rest are counted).
  static constexpr std::size_t k_who_max = 1000;

  explicit ChatServer(ChatOptions options = {});
  ~ChatServer();
  ChatServer(const ChatServer&) = delete;
  ChatServer& operator=(const ChatServer&) = delete;

  // Accepts clients from `listener` and serves them until stop(); returns once every
  // client has been closed. A failure of accept other than the stop is rethrown after
  // the clients were closed. Cancelling run() closes every client too (without a goodbye
  // flush). Call once.
  [[nodiscard]] Task<void> run(net::TcpListener& listener);

  // Stops: shuts the listener down, queues `goodbye` for every client and closes each once
  // its queue has been written (or after close_grace, for a client that does not read);
  // run() returns when all are closed. Leaves are not announced while stopping. Idempotent;
  // may be called before run() (run() then closes the listener and returns at once), and
  // from any task or thread. Does not suspend.
  void stop(std::string_view goodbye = "* server shutting down, bye");

  // A snapshot of the figures.
  ChatStats stats() const noexcept;
  // Clients connected now.
  std::size_t clients() const;
  const ChatOptions& options() const noexcept { return m_options; }

private:
  struct Client;
  using Message = std::shared_ptr<const std::string>;
  // A figure of ChatStats, bumped by tasks on any worker.
  using Figure = std::atomic<std::uint64_t>;

  Task<void> session(net::TcpStream stream);
  Task<void> read_loop(Client& client);
  Task<void> write_loop(Client& client);
  Task<void> finish_writer(Client& client);
  bool stopping() const noexcept { return m_stopping.load(std::memory_order_acquire); }
  bool attach_listener(net::TcpListener& listener);
  bool enter(Client& client);
  void exit(Client& client);

  void handle_line(Client& client, std::string_view line);
  void handle_nick(Client& client, std::string_view name);
  void handle_who(Client& client);
  void reply(Client& client, std::string text);
  void process_drops_if_any();
  bool backlog_over() const noexcept;
  Task<void> wait_for_backlog();
  void add_backlog(std::size_t bytes) noexcept;
  void remove_backlog(std::size_t bytes) noexcept;

  // These need the room lock: shared at least (enqueue, broadcast, announce), or alone
  // (join, leave, process_drops_locked: they change the room).
  void join(Client& client);
  void leave(Client& client, std::string_view reason);
  void broadcast(const Message& message, const Client* except);
  void announce(std::string text, const Client* except);
  bool enqueue(Client& client, const Message& message);  // adds the backlog itself
  bool enqueue_line(Client& client, const Message& message);  // leaves the backlog to the caller
  void schedule_drop(Client& client);
  void process_drops_locked();
  std::string next_guest_nick();

  bool valid_nick(std::string_view name) const;
  void log(std::string_view what) const;
  static void bump(Figure& figure, std::uint64_t by = 1) noexcept {
    figure.fetch_add(by, std::memory_order_relaxed);  // Memory ordering: a count, nothing else depends on it
  }

  ChatOptions m_options;
  Figure m_accepted{0}, m_peak_clients{0}, m_lines_received{0}, m_messages_broadcast{0}, m_deliveries{0},
      m_bytes_written{0}, m_writes{0}, m_error_replies{0}, m_dropped_slow{0}, m_disconnected{0}, m_backlog_waits{0},
      m_peak_backlog{0};
  // The sum of every client's queued_bytes: added once per broadcast, removed once per
  // write. Memory ordering: relaxed; it orders nothing, m_backlog_drained wakes readers.
  std::atomic<std::int64_t> m_backlog{0};  // signed: a write may be counted before its broadcast
  Event m_backlog_drained;  // set when m_backlog falls to half max_backlog_bytes
  // Memory ordering: release by stop() (exchange), acquire by stopping(); stop() sets it
  // before it takes the room lock, so a client entering the room under that lock either
  // is found by stop() or finds it stopping.
  std::atomic<bool> m_stopping{false};

  mutable std::shared_mutex m_room;  // guards what follows, down to the drops
  net::TcpListener* m_listener = nullptr;
  std::uint64_t m_next_guest = 1;
  std::vector<Client*> m_members;                      // everyone who receives broadcasts
  std::unordered_map<std::string, Client*> m_by_nick;  // lower-cased nick -> member

  // Members over their bound, to disconnect: found by enqueue under the shared room lock
  // (so several at once, hence their own lock), disconnected under the room lock alone.
  std::mutex m_drops_lock;
  std::vector<Client*> m_pending_drops;
  // Memory ordering: a hint read without the lock (relaxed); the list is what counts.
  std::atomic<bool> m_drops_pending{false};
  bool m_dropping = false;  // process_drops_locked() is running (under the room lock alone)
};

}  // namespace gearbox::chat
