#include "chat_server.hpp"

#include <algorithm>
#include <cctype>
#include <exception>
#include <optional>
#include <utility>

#include <gearbox/error.hpp>
#include <gearbox/join_handle.hpp>
#include <gearbox/loop.hpp>
#include <gearbox/net/buffered_reader.hpp>
#include <gearbox/sync/event.hpp>
#include <gearbox/task_group.hpp>
#include <gearbox/time.hpp>

namespace gearbox::chat {

namespace {

constexpr std::size_t k_not_member = static_cast<std::size_t>(-1);
// A drained queue keeps this many slots; a bigger one (after a burst) is freed, so an
// idle client costs no queue memory beyond it.
constexpr std::size_t k_queue_keep = 16;
// The writer's batch buffer is freed when the queue drains if it grew beyond this.
constexpr std::size_t k_batch_keep = 4096;
// What one queued line costs a client besides its text (its slot in the queue), counted
// against max_queued_bytes so that the bound holds for memory, not only for text.
constexpr std::size_t k_slot_bytes = sizeof(std::shared_ptr<const std::string>);

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

}  // namespace

// One connection. Lives in its session's coroutine frame; the reader and writer tasks
// refer to it and have ended before the session does.
struct ChatServer::Client {
  net::TcpStream stream;
  std::string nick;
  std::string key;                         // lower(nick): the key in m_by_nick
  std::size_t member_index = k_not_member;  // position in m_members, while a member

  // Outgoing lines: [head, size) not yet taken by the writer. queued_bytes also counts
  // the batch the writer is writing now.
  std::vector<Message> queue;
  std::size_t head = 0;
  std::size_t queued_bytes = 0;
  Event wake;            // set when the writer has something to do
  bool closing = false;  // no more lines are queued: the writer writes what is left and ends
  bool dropped = false;  // disconnected for passing max_queued_bytes
  bool quit = false;     // said /quit
  std::string leave_reason;

  JoinHandle<void> reader;
  JoinHandle<void> writer;
};

ChatServer::ChatServer(ChatOptions options) : m_options(std::move(options)) {}

ChatServer::~ChatServer() = default;

Task<void> ChatServer::run(net::TcpListener& listener) {
  m_listener = &listener;
  if (m_stopping) {
    listener.close();
    m_listener = nullptr;
    co_return;
  }
  TaskGroup sessions;
  std::exception_ptr failure;
  bool cancelled = false;
  std::uint64_t backoffs_seen = 0;
  try {
    while (!m_stopping) {
      net::TcpStream stream = co_await listener.accept();
      if (m_stopping) break;  // closes the stream
      ++m_stats.accepted;
      if (listener.accept_backoffs() > backoffs_seen) {
        backoffs_seen = listener.accept_backoffs();
        log("out of file descriptors at " + std::to_string(m_members.size()) +
            " clients: new clients wait until some leave (raise the limit with ulimit -n)");
      }
      sessions.spawn(session(std::move(stream)));
    }
  } catch (const Cancelled&) {
    cancelled = true;
  } catch (const IoError&) {
    if (!m_stopping) failure = std::current_exception();  // else: stop() closed the listener
  }
  if (failure || cancelled) stop();
  m_listener = nullptr;  // closed
  // Cancelled, join() cancels every session, waits for them and rethrows Cancelled.
  co_await sessions.join();
  if (failure) std::rethrow_exception(failure);
}

void ChatServer::stop(std::string_view goodbye) {
  if (m_stopping) return;
  m_stopping = true;
  if (m_listener) m_listener->close();
  auto message = std::make_shared<const std::string>(std::string(goodbye) + "\n");
  for (Client* client : m_members) {
    enqueue(*client, message);
    client->reader.cancel();  // the session then flushes the queue and closes
  }
  process_drops();
}

Task<void> ChatServer::session(net::TcpStream stream) {
  Client client;
  client.stream = std::move(stream);
  Loop& loop = Loop::current_or_throw();
  join(client);
  client.writer = loop.spawn(write_loop(client));
  client.reader = loop.spawn(read_loop(client));
  if (m_stopping) client.reader.cancel();

  bool cancelled = false;
  try {
    co_await client.reader;  // read_loop ends on /quit, end of stream, an error, a drop or stop()
  } catch (const Cancelled&) {
    cancelled = true;  // this session was cancelled (run() was): the reader has ended too
  } catch (const std::exception& e) {
    log("client " + client.nick + ": reader failed: " + e.what());
  }
  leave(client, client.leave_reason);
  client.closing = true;
  client.wake.set();
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
  client.stream.close();
  if (cancelled) throw Cancelled{};
}

Task<void> ChatServer::finish_writer(Client& client) { co_await client.writer; }

Task<void> ChatServer::read_loop(Client& client) {
  // One byte more than max_line, for the '\r' that read_line drops after nc -C or telnet.
  net::BufferedReader reader{client.stream, {.max_line = m_options.max_line + 1, .read_size = m_options.read_size}};
  const std::string too_long = "! line too long (the limit is " + std::to_string(m_options.max_line) + " bytes)";
  try {
    for (;;) {
      std::optional<std::string_view> line;
      try {
        line = co_await reader.read_line();
      } catch (const LineTooLong&) {
        ++m_stats.lines_received;
        ++m_stats.error_replies;
        reply(client, too_long);  // the reader skips the rest of that line
        continue;
      }
      if (!line) {
        if (client.leave_reason.empty()) client.leave_reason = "left";
        co_return;
      }
      ++m_stats.lines_received;
      if (line->size() > m_options.max_line) {
        ++m_stats.error_replies;
        reply(client, too_long);
        continue;
      }
      handle_line(client, *line);
      if (client.quit || client.closing) co_return;
    }
  } catch (const Cancelled&) {
    if (client.leave_reason.empty()) client.leave_reason = "server stopping";
    co_return;  // stop(): the session says goodbye
  } catch (const UnexpectedEof&) {
    if (client.leave_reason.empty()) client.leave_reason = "connection lost mid-line";
  } catch (const IoError& e) {
    if (client.leave_reason.empty()) client.leave_reason = std::string("connection lost: ") + e.what();
  }
}

Task<void> ChatServer::write_loop(Client& client) {
  std::string batch;
  try {
    for (;;) {
      if (client.head == client.queue.size()) {
        client.queue.clear();
        client.head = 0;
        if (client.queue.capacity() > k_queue_keep) client.queue.shrink_to_fit();
        if (batch.capacity() > k_batch_keep) std::string().swap(batch);
        if (client.closing) break;
        client.wake.clear();
        co_await client.wake.wait();
        continue;
      }
      std::size_t bytes = 0;
      std::size_t lines = 0;
      if (client.queue.size() - client.head == 1 || client.queue[client.head]->size() >= m_options.write_batch) {
        const Message message = std::move(client.queue[client.head++]);  // alive until written
        bytes = message->size();
        lines = 1;
        co_await client.stream.write_all(*message);
      } else {
        batch.clear();
        while (client.head < client.queue.size() &&
               (batch.empty() || batch.size() + client.queue[client.head]->size() <= m_options.write_batch)) {
          batch += *client.queue[client.head];
          client.queue[client.head++].reset();
          ++lines;
        }
        bytes = batch.size();
        co_await client.stream.write_all(batch);
      }
      client.queued_bytes -= std::min(bytes + lines * k_slot_bytes, client.queued_bytes);
      m_stats.bytes_written += bytes;
      ++m_stats.writes;
      // Under a steady flow the queue may never drain: drop the taken slots now and then.
      if (client.head >= 64 && client.head * 2 >= client.queue.size()) {
        client.queue.erase(client.queue.begin(), client.queue.begin() + static_cast<std::ptrdiff_t>(client.head));
        client.head = 0;
      }
    }
    client.stream.shutdown_write();  // a clean end of stream after the last line
  } catch (const IoError& e) {
    // The peer is gone (EPIPE, ECONNRESET) or the stream was closed (a drop): stop the
    // reader too, and take no more lines.
    if (client.leave_reason.empty()) client.leave_reason = std::string("connection lost: ") + e.what();
    client.closing = true;
    client.queue.clear();
    client.head = 0;
    client.queued_bytes = 0;
    client.stream.close();
  }
}

void ChatServer::handle_line(Client& client, std::string_view line) {
  if (line.empty()) return;
  if (line.front() != '/') {
    ++m_stats.messages_broadcast;
    std::string text;
    text.reserve(client.nick.size() + 2 + line.size() + 1);
    text.append(client.nick).append(": ").append(line).push_back('\n');
    broadcast(std::make_shared<const std::string>(std::move(text)), &client);
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
    client.leave_reason = "quit";
  } else {
    ++m_stats.error_replies;
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
    ++m_stats.error_replies;
    reply(client, "! invalid nick: use 1 to " + std::to_string(m_options.max_nick) + " of A-Z a-z 0-9 _ -");
    return;
  }
  std::string key = lower(name);
  if (auto found = m_by_nick.find(key); found != m_by_nick.end() && found->second != &client) {
    ++m_stats.error_replies;
    reply(client, "! nick taken: " + std::string(name));
    return;
  }
  std::string old = std::exchange(client.nick, std::string(name));
  if (client.member_index != k_not_member) {
    m_by_nick.erase(client.key);
    m_by_nick.emplace(key, &client);
  }
  client.key = std::move(key);
  reply(client, "* you are now " + client.nick);
  if (old != client.nick) announce("* " + old + " is now " + client.nick, &client);
}

void ChatServer::handle_who(Client& client) {
  std::string text = "* " + std::to_string(m_members.size()) + " online: ";
  std::vector<const std::string*> names;
  names.reserve(std::min(m_members.size(), k_who_max));
  for (const Client* member : m_members) {
    if (names.size() == k_who_max) break;
    names.push_back(&member->nick);
  }
  std::sort(names.begin(), names.end(), [](const std::string* a, const std::string* b) { return *a < *b; });
  for (std::size_t i = 0; i < names.size(); ++i) text.append(i ? ", " : "").append(*names[i]);
  if (m_members.size() > names.size()) text += ", and " + std::to_string(m_members.size() - names.size()) + " more";
  reply(client, std::move(text));
}

void ChatServer::join(Client& client) {
  client.nick = next_guest_nick();
  client.key = lower(client.nick);
  client.member_index = m_members.size();
  m_members.push_back(&client);
  m_by_nick.emplace(client.key, &client);
  m_stats.peak_clients = std::max<std::uint64_t>(m_stats.peak_clients, m_members.size());
  reply(client, "* welcome to gearbox chat, you are " + client.nick + " (commands: /nick NAME, /who, /quit)");
  if (m_members.size() <= m_options.announce_limit) announce("* " + client.nick + " joined", &client);
}

void ChatServer::leave(Client& client, std::string_view reason) {
  if (client.member_index == k_not_member) return;
  const bool announced = !m_stopping && m_members.size() <= m_options.announce_limit;
  Client* last = m_members.back();
  m_members[client.member_index] = last;
  last->member_index = client.member_index;
  m_members.pop_back();
  client.member_index = k_not_member;
  m_by_nick.erase(client.key);
  ++m_stats.disconnected;
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
  enqueue(client, std::make_shared<const std::string>(std::move(text)));
  process_drops();
}

void ChatServer::announce(std::string text, const Client* except) {
  text.push_back('\n');
  broadcast(std::make_shared<const std::string>(std::move(text)), except);
}

void ChatServer::broadcast(const Message& message, const Client* except) {
  for (Client* member : m_members) {
    if (member != except) enqueue(*member, message);
  }
  process_drops();  // after the loop: a drop changes m_members
}

bool ChatServer::enqueue(Client& client, const Message& message) {
  if (client.closing) return false;
  const std::size_t cost = message->size() + k_slot_bytes;
  if (client.queued_bytes + cost > m_options.max_queued_bytes) {
    schedule_drop(client);
    return false;
  }
  client.queue.push_back(message);
  client.queued_bytes += cost;
  ++m_stats.deliveries;
  client.wake.set();
  return true;
}

void ChatServer::schedule_drop(Client& client) {
  if (client.dropped) return;
  client.dropped = true;
  client.closing = true;  // takes no more lines from now on
  m_pending_drops.push_back(&client);
}

void ChatServer::process_drops() {
  if (m_dropping) return;  // the outer call takes care of drops that leave() causes
  m_dropping = true;
  while (!m_pending_drops.empty()) {
    Client& client = *m_pending_drops.back();
    m_pending_drops.pop_back();
    ++m_stats.dropped_slow;
    log("disconnected " + client.nick + ": too slow (over " + std::to_string(m_options.max_queued_bytes) +
        " bytes queued)");
    client.leave_reason = "too slow";
    leave(client, client.leave_reason);
    client.queue.clear();
    client.queue.shrink_to_fit();
    client.head = 0;
    client.queued_bytes = 0;
    client.wake.set();
    client.stream.close();  // the reader and the writer wake up with EBADF and end
  }
  m_dropping = false;
}

void ChatServer::log(std::string_view what) const {
  if (m_options.log) m_options.log(what);
}

}  // namespace gearbox::chat
