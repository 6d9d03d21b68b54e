#include "chat_server.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <exception>
#include <optional>
#include <shared_mutex>
#include <utility>

#include <gearbox/error.hpp>
#include <gearbox/join_handle.hpp>
#include <gearbox/loop.hpp>
#include <gearbox/net/buffered_reader.hpp>
#include <gearbox/sync/event.hpp>
#include <gearbox/sync/spin_lock.hpp>
#include <gearbox/task_group.hpp>
#include <gearbox/time.hpp>

namespace gearbox::chat {

namespace {

constexpr std::size_t k_not_member = static_cast<std::size_t>(-1);
// A drained queue keeps this many slots; a bigger one (after a burst) is freed, so an
// idle client costs no queue memory beyond it.
constexpr std::size_t k_queue_keep = 16;
// The writer keeps its batch buffer between writes up to this size.
constexpr std::size_t k_batch_keep = 4096;
// What one queued line costs a client besides its text (its slot in the queue), counted
// against max_queued_bytes so that the bound holds for memory, not only for text.
constexpr std::size_t k_slot_bytes = sizeof(std::shared_ptr<const std::string>);

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

Task<void> wait_for(Event& event) { co_await event.wait(); }

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

}  // namespace

// One connection. Lives in its session's coroutine frame; the reader and writer tasks
// refer to it and have ended before the session does, and it has left the room (so no
// other task can reach it) before that.
struct ChatServer::Client {
  // First, together: what every broadcast touches, in as few cache lines as can be (a
  // broadcast visits every client's).
  // Under `lock`: outgoing lines not yet taken by the writer, and their cost; queued_bytes
  // also counts what the writer is writing now.
  SpinLock lock;
  bool closing = false;  // no more lines are queued: the writer writes what is left and ends
  std::size_t queued_bytes = 0;
  std::vector<Message> queue;
  std::string leave_reason;  // under `lock`; the first reason given wins

  // Set when the writer may have something to do. The writer clears it before it looks
  // at the queue, so a line queued after that look sets it again: no wake-up is lost.
  Event wake;

  net::TcpStream stream;
  // Under the room lock (its own reader reads nick without it: only it renames itself).
  std::string nick;
  std::string key;                          // lower(nick): the key in m_by_nick
  std::size_t member_index = k_not_member;  // position in m_members, while a member
  bool quit = false;                        // said /quit (the reader's own)

  JoinHandle<void> reader;  // the session's own
  JoinHandle<void> writer;

  void set_leave_reason(std::string_view reason) {
    std::lock_guard guard{lock};
    if (leave_reason.empty()) leave_reason = reason;
  }
  std::string reason() {
    std::lock_guard guard{lock};
    return leave_reason;
  }
  // Takes `bytes` (at most what is left) off queued_bytes; returns how many it took.
  std::size_t release(std::size_t bytes) {
    std::lock_guard guard{lock};
    const std::size_t released = std::min(bytes, queued_bytes);
    queued_bytes -= released;
    return released;
  }
  void close_queue() {
    {
      std::lock_guard guard{lock};
      closing = true;
    }
    wake.set();
  }
};

ChatServer::ChatServer(ChatOptions options) : m_options(std::move(options)) {}

ChatServer::~ChatServer() = default;

ChatStats ChatServer::stats() const noexcept {
  constexpr auto relaxed = std::memory_order_relaxed;
  return {.accepted = m_accepted.load(relaxed),
          .peak_clients = m_peak_clients.load(relaxed),
          .lines_received = m_lines_received.load(relaxed),
          .messages_broadcast = m_messages_broadcast.load(relaxed),
          .deliveries = m_deliveries.load(relaxed),
          .bytes_written = m_bytes_written.load(relaxed),
          .writes = m_writes.load(relaxed),
          .error_replies = m_error_replies.load(relaxed),
          .dropped_slow = m_dropped_slow.load(relaxed),
          .disconnected = m_disconnected.load(relaxed),
          .backlog_waits = m_backlog_waits.load(relaxed),
          .peak_backlog_bytes = m_peak_backlog.load(relaxed)};
}

std::size_t ChatServer::clients() const {
  std::shared_lock room{m_room};
  return m_members.size();
}

bool ChatServer::attach_listener(net::TcpListener& listener) {
  std::unique_lock room{m_room};
  if (stopping()) return false;
  m_listener = &listener;
  return true;
}

Task<void> ChatServer::run(net::TcpListener& listener) {
  if (!attach_listener(listener)) {
    listener.close();
    co_return;
  }
  TaskGroup sessions;
  std::exception_ptr failure;
  bool cancelled = false;
  std::uint64_t backoffs_seen = 0;
  try {
    while (!stopping()) {
      net::TcpStream stream = co_await listener.accept();
      if (stopping()) break;  // closes the stream
      bump(m_accepted);
      if (listener.accept_backoffs() > backoffs_seen) {
        backoffs_seen = listener.accept_backoffs();
        log("out of file descriptors at " + std::to_string(clients()) +
            " clients: new clients wait until some leave (raise the limit with ulimit -n)");
      }
      sessions.spawn(session(std::move(stream)));
    }
  } catch (const Cancelled&) {
    cancelled = true;
  } catch (const IoError&) {
    if (!stopping()) failure = std::current_exception();  // else: stop() shut the listener down
  }
  if (failure || cancelled) stop();
  {
    std::unique_lock room{m_room};  // stop() no longer reaches the listener
    m_listener = nullptr;
  }
  listener.close();
  // Cancelled, join() cancels every session, waits for them and rethrows Cancelled.
  co_await sessions.join();
  if (failure) std::rethrow_exception(failure);
}

void ChatServer::stop(std::string_view goodbye) {
  if (m_stopping.exchange(true, std::memory_order_acq_rel)) return;
  auto message = std::make_shared<const std::string>(std::string(goodbye) + "\n");
  std::unique_lock room{m_room};
  // Shut down, not closed: see Thread-safety in the header. A shut-down listener fails
  // its accept; run() then closes it.
  if (m_listener) ::shutdown(m_listener->native_handle(), SHUT_RD);
  for (Client* client : m_members) {
    enqueue(*client, message);
    client->set_leave_reason("server stopping");
    client->close_queue();  // the goodbye is its last line
    // Its reader sees end of stream (after any bytes already received) and ends; the
    // session then lets the writer finish and closes.
    ::shutdown(client->stream.native_handle(), SHUT_RD);
  }
  process_drops_locked();
}

bool ChatServer::enter(Client& client) {
  std::unique_lock room{m_room};
  if (stopping()) return false;
  join(client);
  process_drops_locked();
  return true;
}

void ChatServer::exit(Client& client) {
  std::unique_lock room{m_room};
  leave(client, client.reason());
  process_drops_locked();
}

Task<void> ChatServer::session(net::TcpStream stream) {
  Client client;
  client.stream = std::move(stream);
  if (!enter(client)) co_return;  // stopping: the stream closes
  Loop& loop = Loop::current_or_throw();
  client.writer = loop.spawn(write_loop(client));
  client.reader = loop.spawn(read_loop(client));

  bool cancelled = false;
  try {
    co_await client.reader;  // read_loop ends on /quit, end of stream, an error, a drop or stop()
  } catch (const Cancelled&) {
    cancelled = true;  // this session was cancelled (run() was): the reader has ended too
  } catch (const std::exception& e) {
    log("client " + client.nick + ": reader failed: " + e.what());
  }
  exit(client);
  client.close_queue();
  try {
    // The writer writes what is still queued ("* bye", the goodbye), then ends. A client
    // that does not read gets close_grace to take it; then it is closed regardless.
    co_await timeout(m_options.close_grace, finish_writer(client));
  } catch (const Cancelled&) {
    cancelled = true;
  } catch (const TimeoutError&) {
  } catch (const std::exception& e) {
    log("client " + client.nick + ": writer failed: " + e.what());
  }
  client.stream.close();  // the reader and the writer have ended
  remove_backlog(client.release(static_cast<std::size_t>(-1)));  // what the writer did not write
  if (cancelled) throw Cancelled{};
}

Task<void> ChatServer::finish_writer(Client& client) { co_await client.writer; }

Task<void> ChatServer::read_loop(Client& client) {
  // One byte more than max_line, for the '\r' that read_line drops after nc -C or telnet.
  net::BufferedReader reader{client.stream, {.max_line = m_options.max_line + 1, .read_size = m_options.read_size}};
  const std::string too_long = "! line too long (the limit is " + std::to_string(m_options.max_line) + " bytes)";
  try {
    while (!stopping()) {
      std::optional<std::string_view> line;
      try {
        line = co_await reader.read_line();
      } catch (const LineTooLong&) {
        bump(m_lines_received);
        bump(m_error_replies);
        reply(client, too_long);  // the reader skips the rest of that line
        continue;
      }
      if (!line) {
        client.set_leave_reason("left");
        co_return;
      }
      bump(m_lines_received);
      if (line->size() > m_options.max_line) {
        bump(m_error_replies);
        reply(client, too_long);
        continue;
      }
      if (backlog_over()) co_await wait_for_backlog();  // the line stays in the reader's buffer meanwhile
      handle_line(client, *line);
      if (client.quit) co_return;
    }
  } catch (const Cancelled&) {
    client.set_leave_reason("server stopping");
    co_return;  // run() was cancelled: the session ends
  } catch (const UnexpectedEof&) {
    client.set_leave_reason("connection lost mid-line");
  } catch (const IoError& e) {
    client.set_leave_reason(std::string("connection lost: ") + e.what());
  }
}

Task<void> ChatServer::write_loop(Client& client) {
  // Swapped with the client's queue: the writer writes a whole queue while the room
  // appends to the other one. Both keep their capacity while lines keep coming.
  std::vector<Message> writing;
  // Lines copied together into one write of up to write_batch bytes. Measured against
  // handing the kernel the lines themselves (one writev, no copy): lines are tens of
  // bytes, and the kernel's per-piece cost made that 15% slower at 10,000 clients.
  std::string batch;
  try {
    for (;;) {
      client.wake.clear();  // before looking: see Client::wake
      bool idle = false;
      bool done = false;
      std::vector<Message> spare;  // freed after the lock
      {
        std::lock_guard guard{client.lock};
        if (!client.queue.empty()) {
          writing.swap(client.queue);
        } else {
          idle = true;
          done = client.closing;
          // Drained: a burst's slots are freed, so an idle client costs no more than this.
          if (client.queue.capacity() > k_queue_keep) spare.swap(client.queue);
        }
      }
      if (done) break;
      if (idle) {
        if (writing.capacity() > k_queue_keep) std::vector<Message>().swap(writing);
        co_await client.wake.wait();
        // Let the broadcasts that are running now queue their lines too before writing:
        // on a Runtime another worker would otherwise write each line as it comes, one
        // system call each (measured at 2 threads, 10,000 clients: 5.7x the writes, and
        // 0.6x the deliveries per second).
        co_await yield_now();
        continue;
      }
      std::size_t bytes = 0;
      for (std::size_t next = 0; next < writing.size();) {
        if (writing[next]->size() >= m_options.write_batch || next + 1 == writing.size()) {
          co_await client.stream.write_all(*writing[next]);  // alive in `writing` meanwhile
          bytes += writing[next++]->size();
          continue;
        }
        // Sized first: a buffer grown by doubling would hold up to twice its bytes while
        // a write to a full socket waits, for each of 10,000 clients.
        std::size_t size = 0;
        std::size_t end = next;
        while (end < writing.size() && (size == 0 || size + writing[end]->size() <= m_options.write_batch))
          size += writing[end++]->size();
        batch.clear();
        batch.reserve(size);
        while (next < end) batch += *writing[next++];
        co_await client.stream.write_all(batch);
        bytes += batch.size();
      }
      const std::size_t cost = bytes + writing.size() * k_slot_bytes;
      writing.clear();
      // A big batch buffer is not kept between writes: 10,000 of them would be 640 MB.
      if (batch.capacity() > k_batch_keep) std::string().swap(batch);
      remove_backlog(client.release(cost));
      bump(m_bytes_written, bytes);
      bump(m_writes);
    }
    client.stream.shutdown_write();  // a clean end of stream after the last line
  } catch (const IoError& e) {
    // The peer is gone (EPIPE, ECONNRESET) or the stream was shut down (a drop): take no
    // more lines, and end the reader too.
    client.set_leave_reason(std::string("connection lost: ") + e.what());
    std::vector<Message> unsent;  // freed after the lock
    {
      std::lock_guard guard{client.lock};
      client.closing = true;
      unsent.swap(client.queue);
    }
    remove_backlog(client.release(static_cast<std::size_t>(-1)));
    try {
      client.stream.shutdown();
    } catch (const IoError&) {
    }
  }
}

void ChatServer::handle_line(Client& client, std::string_view line) {
  if (line.empty()) return;
  if (line.front() != '/') {
    bump(m_messages_broadcast);
    std::string text;
    text.reserve(client.nick.size() + 2 + line.size() + 1);
    text.append(client.nick).append(": ").append(line).push_back('\n');
    const Message message = std::make_shared<const std::string>(std::move(text));
    {
      std::shared_lock room{m_room};
      broadcast(message, &client);
    }
    process_drops_if_any();
    return;
  }
  const std::size_t space = line.find(' ');
  const std::string command = lower(line.substr(0, space));
  const std::string_view argument = space == std::string_view::npos ? std::string_view{} : trim(line.substr(space + 1));
  if (command == "/nick") {
    handle_nick(client, argument);
  } else if (command == "/who") {
    handle_who(client);
  } else if (command == "/quit") {
    reply(client, "* bye");
    client.quit = true;
    client.set_leave_reason("quit");
  } else {
    bump(m_error_replies);
    std::string_view shown = line.substr(0, std::min(space, std::size_t{32}));
    reply(client, "! unknown command: " + std::string(shown) + " (commands: /nick NAME, /who, /quit)");
  }
}

bool ChatServer::valid_nick(std::string_view name) const {
  if (name.empty() || name.size() > m_options.max_nick) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

void ChatServer::handle_nick(Client& client, std::string_view name) {
  if (!valid_nick(name)) {
    bump(m_error_replies);
    reply(client, "! invalid nick: use 1 to " + std::to_string(m_options.max_nick) + " of A-Z a-z 0-9 _ -");
    return;
  }
  std::string key = lower(name);
  std::unique_lock room{m_room};  // the check and the rename are one step
  if (auto found = m_by_nick.find(key); found != m_by_nick.end() && found->second != &client) {
    bump(m_error_replies);
    enqueue(client, std::make_shared<const std::string>("! nick taken: " + std::string(name) + "\n"));
  } else {
    std::string old = std::exchange(client.nick, std::string(name));
    if (client.member_index != k_not_member) {
      m_by_nick.erase(client.key);
      m_by_nick.emplace(key, &client);
    }
    client.key = std::move(key);
    enqueue(client, std::make_shared<const std::string>("* you are now " + client.nick + "\n"));
    if (old != client.nick) announce("* " + old + " is now " + client.nick, &client);
  }
  process_drops_locked();
}

void ChatServer::handle_who(Client& client) {
  std::string text;
  {
    std::shared_lock room{m_room};
    text = "* " + std::to_string(m_members.size()) + " online: ";
    std::vector<const std::string*> names;
    names.reserve(std::min(m_members.size(), k_who_max));
    for (const Client* member : m_members) {
      if (names.size() == k_who_max) break;
      names.push_back(&member->nick);
    }
    std::sort(names.begin(), names.end(), [](const std::string* a, const std::string* b) { return *a < *b; });
    for (std::size_t i = 0; i < names.size(); ++i) text.append(i ? ", " : "").append(*names[i]);
    if (m_members.size() > names.size()) text += ", and " + std::to_string(m_members.size() - names.size()) + " more";
  }
  reply(client, std::move(text));
}

void ChatServer::join(Client& client) {
  client.nick = next_guest_nick();
  client.key = lower(client.nick);
  client.member_index = m_members.size();
  m_members.push_back(&client);
  m_by_nick.emplace(client.key, &client);
  // Memory ordering: relaxed; joins are serialised by the room lock, so a plain max.
  if (m_members.size() > m_peak_clients.load(std::memory_order_relaxed))
    m_peak_clients.store(m_members.size(), std::memory_order_relaxed);
  enqueue(client, std::make_shared<const std::string>("* welcome to gearbox chat, you are " + client.nick +
                                                      " (commands: /nick NAME, /who, /quit)\n"));
  if (m_members.size() <= m_options.announce_limit) announce("* " + client.nick + " joined", &client);
}

void ChatServer::leave(Client& client, std::string_view reason) {
  if (client.member_index == k_not_member) return;
  const bool announced = !stopping() && m_members.size() <= m_options.announce_limit;
  Client* last = m_members.back();
  m_members[client.member_index] = last;
  last->member_index = client.member_index;
  m_members.pop_back();
  client.member_index = k_not_member;
  m_by_nick.erase(client.key);
  {
    std::lock_guard guard{m_drops_lock};  // it may be over its bound too: it is gone already
    std::erase(m_pending_drops, &client);
  }
  bump(m_disconnected);
  if (announced) {
    std::string text = "* " + client.nick + " left";
    if (!reason.empty() && reason != "left" && reason != "quit") text.append(" (").append(reason).append(")");
    announce(std::move(text), nullptr);
  }
}

std::string ChatServer::next_guest_nick() {
  for (;;) {
    std::string nick = "guest" + std::to_string(m_next_guest++);
    if (!m_by_nick.contains(nick)) return nick;  // someone may have taken it with /nick
  }
}

void ChatServer::reply(Client& client, std::string text) {
  text.push_back('\n');
  const Message message = std::make_shared<const std::string>(std::move(text));
  {
    std::shared_lock room{m_room};  // the client may be dropped: that needs it a member
    enqueue(client, message);
  }
  process_drops_if_any();
}

void ChatServer::announce(std::string text, const Client* except) {
  text.push_back('\n');
  broadcast(std::make_shared<const std::string>(std::move(text)), except);
}

void ChatServer::broadcast(const Message& message, const Client* except) {
  std::uint64_t delivered = 0;
  for (Client* member : m_members) {
    if (member != except && enqueue_line(*member, message)) ++delivered;
  }
  bump(m_deliveries, delivered);
  add_backlog(delivered * (message->size() + k_slot_bytes));  // one atomic per broadcast, not per client
}

bool ChatServer::enqueue(Client& client, const Message& message) {
  if (!enqueue_line(client, message)) return false;
  add_backlog(message->size() + k_slot_bytes);
  return true;
}

bool ChatServer::enqueue_line(Client& client, const Message& message) {
  const std::size_t cost = message->size() + k_slot_bytes;
  // Copied here, then moved into the queue. Copied by push_back itself, g++ reloads the
  // control block's address from the slot it has just stored to, and that load waits for
  // the store's cache miss (the slot is cold): 15% of the server's time at 10,000 clients.
  Message line = message;
  std::vector<Message> dropped_lines;  // freed after the lock, which is held for no free
  std::size_t released = 0;
  bool fits = false;
  bool wake = false;
  {
    std::lock_guard guard{client.lock};
    if (client.closing) return false;
    fits = client.queued_bytes + cost <= m_options.max_queued_bytes;
    if (fits) {
      wake = client.queue.empty();  // else the writer has been woken already (see Client::wake)
      client.queue.push_back(std::move(line));
      client.queued_bytes += cost;
    } else {
      client.closing = true;  // takes no more lines from now on: dropped
      dropped_lines.swap(client.queue);
      released = std::exchange(client.queued_bytes, 0);
      if (client.leave_reason.empty()) client.leave_reason = "too slow";
    }
  }
  if (fits) {
    if (wake) client.wake.set();  // the client is alive: the caller holds the room lock
    return true;
  }
  remove_backlog(released);
  schedule_drop(client);
  return false;
}

void ChatServer::schedule_drop(Client& client) {
  std::lock_guard guard{m_drops_lock};
  m_pending_drops.push_back(&client);
  m_drops_pending.store(true, std::memory_order_relaxed);
}

void ChatServer::process_drops_if_any() {
  if (!m_drops_pending.load(std::memory_order_relaxed)) return;
  std::unique_lock room{m_room};
  process_drops_locked();
}

void ChatServer::process_drops_locked() {
  if (m_dropping) return;  // the outer call takes care of drops that leave() causes
  m_dropping = true;
  for (;;) {
    Client* client = nullptr;
    {
      std::lock_guard guard{m_drops_lock};
      if (m_pending_drops.empty()) {
        m_drops_pending.store(false, std::memory_order_relaxed);
        break;
      }
      client = m_pending_drops.back();
      m_pending_drops.pop_back();
    }
    bump(m_dropped_slow);
    log("disconnected " + client->nick + ": too slow (over " + std::to_string(m_options.max_queued_bytes) +
        " bytes queued)");
    leave(*client, "too slow");
    client->wake.set();
    // Its reader and writer see the stream end and stop; the session closes it.
    try {
      client->stream.shutdown();
    } catch (const IoError&) {
    }
  }
  m_dropping = false;
}

void ChatServer::add_backlog(std::size_t bytes) noexcept {
  if (bytes == 0) return;
  // Memory ordering: relaxed throughout: counts that order no other data.
  const std::int64_t now = m_backlog.fetch_add(static_cast<std::int64_t>(bytes), std::memory_order_relaxed) +
                           static_cast<std::int64_t>(bytes);
  std::uint64_t peak = m_peak_backlog.load(std::memory_order_relaxed);
  while (now > 0 && static_cast<std::uint64_t>(now) > peak &&
         !m_peak_backlog.compare_exchange_weak(peak, static_cast<std::uint64_t>(now), std::memory_order_relaxed)) {
  }
}

void ChatServer::remove_backlog(std::size_t bytes) noexcept {
  if (bytes == 0) return;
  const auto low = static_cast<std::int64_t>(m_options.max_backlog_bytes / 2);
  const std::int64_t before = m_backlog.fetch_sub(static_cast<std::int64_t>(bytes), std::memory_order_relaxed);
  // The write that brings it down to half wakes the readers waiting in wait_for_backlog.
  if (before > low && before - static_cast<std::int64_t>(bytes) <= low) m_backlog_drained.set();
}

bool ChatServer::backlog_over() const noexcept {
  return m_backlog.load(std::memory_order_relaxed) > static_cast<std::int64_t>(m_options.max_backlog_bytes);
}

Task<void> ChatServer::wait_for_backlog() {
  bump(m_backlog_waits);
  // Cleared before the second look, so a drain to half after that look sets it again;
  // a drain before it shows in the look.
  m_backlog_drained.clear();
  if (!backlog_over()) co_return;
  try {
    // Bounded: clients that never read hold their queues until they pass
    // max_queued_bytes and are dropped, which takes lines from the others.
    co_await timeout(m_options.backlog_wait, wait_for(m_backlog_drained));
  } catch (const TimeoutError&) {
  }
}

void ChatServer::log(std::string_view what) const {
  if (m_options.log) m_options.log(what);
}

}  // namespace gearbox::chat
