// The loop's HTTP client: libcurl's multi-socket interface on the loop's reactor.
//
// libcurl tells which sockets it wants watched and for what (on_socket) and when it wants
// to be called back (on_timer); the loop tells libcurl, through
// curl_multi_socket_action, that a socket is ready or the time has come; finished
// transfers are collected with curl_multi_info_read and their tasks woken.
//
// The reactor is edge-triggered and libcurl expects level-triggered readiness: it may
// leave data unread, or want a socket that has been writable all along. So after each
// action the socket is polled (poll with a zero timeout) and the action repeated while it
// is still ready and wanted, a few times; a socket still ready after that, or one whose
// wanted directions changed, is looked at again on the next turn of the loop (the
// recheck timer), so that one busy transfer cannot starve the others.
//
// On a Runtime the same machinery runs on a thread of the Client's own, with a Loop (the
// Driver): libcurl wants its callbacks on one thread, and a worker's loop watches
// descriptors only through FdWatch. A fetch hands its transfer to the driver (Loop::post)
// and waits on the transfer's Event, which the driver sets from its thread.
#include <gearbox/http/client.hpp>

#include <poll.h>

#include <atomic>
#include <exception>
#include <latch>
#include <memory>
#include <mutex>
#include <optional>
#include <semaphore>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <gearbox/detail/io_watcher.hpp>
#include <gearbox/detail/timer_node.hpp>
#include <gearbox/detail/wait_lock.hpp>
#include <gearbox/loop.hpp>
#include <gearbox/sync/event.hpp>

#include "http/curl_transfer.hpp"

namespace gearbox::http {
namespace {

using gearbox::detail::LoopAccess;

constexpr int k_actions_per_event = 8;  // repeated actions on a socket that stays ready, per turn

// A transfer of the loop's Client: the easy handle and the task waiting for it.
struct LoopTransfer {
  LoopTransfer(const std::string& url, FetchOptions options, const ClientOptions& client)
      : transfer(url, std::move(options), client) {
    curl_easy_setopt(transfer.easy(), CURLOPT_PRIVATE, static_cast<void*>(this));  // found again when done
  }
  detail::CurlTransfer transfer;
  Event finished;  // set (with result) once libcurl is done with it and it left the multi
  CURLcode result = CURLE_OK;
  std::exception_ptr failure;  // the driver could not start it
  bool in_multi = false;
};

}  // namespace

class Client::Impl {
public:
  Impl(Loop& loop, const ClientOptions& options)
      : m_loop(&loop), m_timer(this, &Impl::on_timer_fired), m_recheck(this, &Impl::on_recheck_fired) {
    detail::init_curl();
    m_multi = curl_multi_init();
    if (!m_multi) throw std::runtime_error("gearbox::http: curl_multi_init failed");
    curl_multi_setopt(m_multi, CURLMOPT_SOCKETFUNCTION, &Impl::on_socket);
    curl_multi_setopt(m_multi, CURLMOPT_SOCKETDATA, static_cast<void*>(this));
    curl_multi_setopt(m_multi, CURLMOPT_TIMERFUNCTION, &Impl::on_timer);
    curl_multi_setopt(m_multi, CURLMOPT_TIMERDATA, static_cast<void*>(this));
    if (options.max_connections > 0) curl_multi_setopt(m_multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, options.max_connections);
    if (options.max_host_connections > 0)
      curl_multi_setopt(m_multi, CURLMOPT_MAX_HOST_CONNECTIONS, options.max_host_connections);
  }

  ~Impl() {
    // Every fetch has ended (the contract), so no easy handle is left in the multi.
    // Cleaning up closes the cached connections, through on_socket (which may arm the
    // recheck timer): the timers are disarmed after it.
    curl_multi_cleanup(m_multi);
    for (auto& [fd, socket] : m_sockets)
      if (socket->watching) LoopAccess::unwatch(*m_loop, fd, socket.get());
    LoopAccess::cancel_timer(*m_loop, &m_timer);
    LoopAccess::cancel_timer(*m_loop, &m_recheck);
  }

  Loop& loop() const noexcept { return *m_loop; }
  std::size_t active() const noexcept { return m_active.load(std::memory_order_relaxed); }

  void add(LoopTransfer& t) {
    if (const CURLMcode code = curl_multi_add_handle(m_multi, t.transfer.easy()); code != CURLM_OK)
      throw FetchError(CURLE_FAILED_INIT, std::string("gearbox::http: ") + curl_multi_strerror(code));
    t.in_multi = true;
    m_active.fetch_add(1, std::memory_order_relaxed);
  }

  // Takes the transfer out of the multi handle (done, cancelled or failed). Not from
  // inside a libcurl callback.
  void remove(LoopTransfer& t) noexcept {
    if (!t.in_multi) return;
    curl_multi_remove_handle(m_multi, t.transfer.easy());
    t.in_multi = false;
    m_active.fetch_sub(1, std::memory_order_relaxed);
  }

private:
  // A timer of this client's.
  struct Timer : gearbox::detail::TimerNode {
    Timer(Impl* owner, Fn fire) noexcept : TimerNode(fire), impl(owner) {}
    Impl* impl;
  };

  // One socket libcurl asked to be watched.
  struct Socket : gearbox::detail::IoWatcher {
    Socket(Impl* owner, int fd) : IoWatcher(&Impl::on_ready), impl(owner), fd(fd) {}
    Impl* impl;
    int fd;
    int wanted = 0;  // CURL_POLL_IN | CURL_POLL_OUT
    bool watching = false;
    bool retired = false;  // libcurl is done with it: an event still in the reactor's batch is ignored
  };

  static int on_socket(CURL*, curl_socket_t fd, int what, void* self, void*) noexcept {
    auto& impl = *static_cast<Impl*>(self);
    auto found = impl.m_sockets.find(fd);
    if (what == CURL_POLL_REMOVE) {
      if (found != impl.m_sockets.end()) {
        Socket& socket = *found->second;
        if (socket.watching) LoopAccess::unwatch(*impl.m_loop, fd, &socket);
        socket.watching = false;
        socket.retired = true;
        // Not freed yet: this may run inside the reactor's handling of a batch of events
        // that still holds one for this socket. Freed by the next timer callback.
        impl.m_retired.push_back(std::move(found->second));
        impl.m_sockets.erase(found);
        impl.schedule_recheck(-1);
      }
      impl.m_rechecks.erase(fd);
      return 0;
    }
    try {
      if (found == impl.m_sockets.end()) {
        auto socket = std::make_unique<Socket>(&impl, fd);
        LoopAccess::watch(*impl.m_loop, fd, socket.get(), gearbox::detail::io_events::readable | gearbox::detail::io_events::writable);
        socket->watching = true;
        found = impl.m_sockets.emplace(fd, std::move(socket)).first;
      }
    } catch (...) {
      return -1;  // libcurl fails the transfers on this socket
    }
    const int wanted = what & (CURL_POLL_IN | CURL_POLL_OUT);
    if (wanted != found->second->wanted) {
      // The edge for a direction newly wanted may have passed long ago: look next turn.
      found->second->wanted = wanted;
      impl.schedule_recheck(fd);
    }
    return 0;
  }

  static int on_timer(CURLM*, long timeout_ms, void* self) noexcept {
    auto& impl = *static_cast<Impl*>(self);
    LoopAccess::cancel_timer(*impl.m_loop, &impl.m_timer);
    if (timeout_ms >= 0)  // 0: as soon as possible, which is the next turn (never from inside libcurl)
      LoopAccess::add_timer(*impl.m_loop, &impl.m_timer, impl.m_loop->now() + std::chrono::milliseconds(timeout_ms));
    return 0;
  }

  static void on_timer_fired(gearbox::detail::TimerNode* node) noexcept {
    Impl& impl = *static_cast<Timer*>(node)->impl;
    impl.m_retired.clear();  // timers fire outside the reactor's batches
    impl.action(CURL_SOCKET_TIMEOUT, 0);
  }

  static void on_ready(gearbox::detail::IoWatcher* watcher, std::uint32_t events) noexcept {
    auto* socket = static_cast<Socket*>(watcher);
    Impl& impl = *socket->impl;
    if (socket->retired) return;
    if (events & gearbox::detail::io_events::detached) {  // the loop is gone (the contract was broken)
      socket->watching = false;
      return;
    }
    int mask = 0;
    if (events & (gearbox::detail::io_events::readable | gearbox::detail::io_events::hangup)) mask |= CURL_CSELECT_IN;
    if (events & gearbox::detail::io_events::writable) mask |= CURL_CSELECT_OUT;
    if (events & gearbox::detail::io_events::error) mask |= CURL_CSELECT_ERR;
    impl.drive(socket->fd, mask);
  }

  static void on_recheck_fired(gearbox::detail::TimerNode* node) noexcept {
    Impl& impl = *static_cast<Timer*>(node)->impl;
    impl.m_retired.clear();  // timers fire outside the reactor's batches
    std::unordered_set<int> fds;
    fds.swap(impl.m_rechecks);
    for (const int fd : fds)
      if (fd >= 0) impl.drive(fd, impl.ready_and_wanted(fd));
  }

  // The directions of `fd` that libcurl wants and that are ready now (CURL_CSELECT_*).
  int ready_and_wanted(int fd) const noexcept {
    const auto found = m_sockets.find(fd);
    if (found == m_sockets.end() || found->second->wanted == 0) return 0;
    pollfd p{fd, 0, 0};
    if (found->second->wanted & CURL_POLL_IN) p.events |= POLLIN;
    if (found->second->wanted & CURL_POLL_OUT) p.events |= POLLOUT;
    if (::poll(&p, 1, 0) <= 0) return 0;
    int mask = 0;
    if (p.revents & (POLLIN | POLLHUP)) mask |= CURL_CSELECT_IN;
    if (p.revents & POLLOUT) mask |= CURL_CSELECT_OUT;
    if (p.revents & (POLLERR | POLLNVAL)) mask |= CURL_CSELECT_ERR;
    return mask;
  }

  // Tells libcurl `fd` is ready for `mask`, then again while it stays ready and wanted.
  // (The fd, not the Socket: an action may retire the socket and reuse its number.)
  void drive(int fd, int mask) noexcept {
    for (int i = 0; mask != 0; ++i) {
      if (i == k_actions_per_event) {
        schedule_recheck(fd);
        return;
      }
      action(fd, mask);
      mask = ready_and_wanted(fd);
    }
  }

  void action(curl_socket_t fd, int mask) noexcept {
    int running = 0;
    curl_multi_socket_action(m_multi, fd, mask, &running);
    collect_finished();
  }

  // Wakes the task of every transfer libcurl has finished.
  void collect_finished() noexcept {
    int left = 0;
    while (CURLMsg* message = curl_multi_info_read(m_multi, &left)) {
      if (message->msg != CURLMSG_DONE) continue;
      void* owner = nullptr;
      curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, &owner);
      LoopTransfer& t = *static_cast<LoopTransfer*>(owner);
      t.result = message->data.result;
      remove(t);         // out of the multi before the task can end its life
      t.finished.set();  // the task runs on a later turn (on a Runtime, perhaps at once)
    }
  }

  // Looks at `fd` again on the next turn (-1: nothing to look at, but run the timer
  // callback, which frees retired sockets).
  void schedule_recheck(int fd) {
    m_rechecks.insert(fd);
    LoopAccess::cancel_timer(*m_loop, &m_recheck);
    LoopAccess::add_timer(*m_loop, &m_recheck, m_loop->now());
  }

  Loop* m_loop;
  CURLM* m_multi = nullptr;
  Timer m_timer;    // libcurl's timeout
  Timer m_recheck;  // sockets to look at again on the next turn
  std::unordered_map<int, std::unique_ptr<Socket>> m_sockets;
  std::unordered_set<int> m_rechecks;
  std::vector<std::unique_ptr<Socket>> m_retired;  // see on_socket's CURL_POLL_REMOVE
  // Memory ordering: relaxed; a count read by active() from any thread, ordering nothing.
  std::atomic<std::size_t> m_active{0};
};

// libcurl on a thread of its own, for the fetches of tasks on a Runtime.
class Client::Driver {
public:
  // Throws what making the thread's Loop or libcurl's multi handle threw (out of
  // descriptors: IoError EMFILE), after the thread has ended.
  explicit Driver(const ClientOptions& options) {
    std::latch ready{1};
    std::exception_ptr failure;
    m_thread = std::thread([this, &options, &ready, &failure] {
      std::optional<Loop> loop;
      try {
        loop.emplace();
        m_impl = std::make_unique<Impl>(*loop, options);
      } catch (...) {
        failure = std::current_exception();
        ready.count_down();
        return;
      }
      m_loop = &*loop;
      ready.count_down();
      loop->run(until_stopped());
      m_impl.reset();  // on this thread, while its loop exists (it unwatches there)
    });
    ready.wait();
    if (failure) {
      m_thread.join();
      std::rethrow_exception(failure);
    }
  }
  ~Driver() {
    m_loop->post([this] { m_stop.set(); });
    m_thread.join();
  }

  // Runs `fn` on the driver's thread, soon. Thread-safe.
  void post(std::function<void()> fn) { m_loop->post(std::move(fn)); }
  Impl& impl() noexcept { return *m_impl; }  // driver thread only (but active())

  // On the driver's thread: hands `t` to libcurl, or fails it at once.
  void start(LoopTransfer& t) noexcept {
    try {
      m_impl->add(t);
    } catch (...) {
      t.failure = std::current_exception();
      t.finished.set();
    }
  }

private:
  Task<void> until_stopped() {
    // The transfers' Events are shared with tasks on the Runtime's workers, so this
    // thread must take the primitives' locks, which a thread running a Loop skips (its
    // primitives are its own: see detail/wait_lock.hpp). Restored when run() returns.
    gearbox::detail::t_exclusive_loop_thread = false;
    co_await m_stop.wait();
  }

  std::thread m_thread;
  Loop* m_loop = nullptr;
  std::unique_ptr<Impl> m_impl;
  Event m_stop;  // the driver loop's own: set on its thread, through post
};

Client::Client(ClientOptions options) : m_options(std::move(options)) {}

Client::~Client() = default;

std::size_t Client::active() const noexcept {
  std::size_t count = m_impl ? m_impl->active() : 0;
  std::lock_guard lock{m_driver_mutex};
  return count + (m_driver ? m_driver->impl().active() : 0);
}

Client::Driver& Client::driver() {
  std::lock_guard lock{m_driver_mutex};  // the first fetches may come from two workers at once
  if (!m_driver) m_driver = std::make_unique<Driver>(m_options);
  return *m_driver;
}

Task<FetchResponse> Client::fetch_on_driver(std::string url, FetchOptions options) {
  Driver& driver = this->driver();
  LoopTransfer t(url, std::move(options), m_options);
  driver.post([&driver, &t] { driver.start(t); });
  try {
    co_await t.finished.wait();
  } catch (...) {
    // Cancelled: take the transfer back from libcurl before `t` goes. The driver's thread
    // never waits for a worker, so this wait is a few microseconds.
    std::binary_semaphore removed{0};
    driver.post([&driver, &t, &removed] {
      driver.impl().remove(t);
      removed.release();
    });
    removed.acquire();
    throw;
  }
  if (t.failure) std::rethrow_exception(t.failure);
  co_return t.transfer.finish(t.result);
}

Task<FetchResponse> Client::fetch(std::string url, FetchOptions options) {
  Loop& loop = Loop::current_or_throw();
  if (LoopAccess::runtime(loop)) co_return co_await fetch_on_driver(std::move(url), std::move(options));
  if (!m_impl) m_impl = std::make_unique<Impl>(loop, m_options);
  if (&m_impl->loop() != &loop) throw std::logic_error("gearbox::http: a Client serves the loop of its first fetch only");
  LoopTransfer t(url, std::move(options), m_options);
  m_impl->add(t);
  try {
    co_await t.finished.wait();
  } catch (...) {
    m_impl->remove(t);  // cancelled: abort the transfer
    throw;
  }
  m_impl->remove(t);
  co_return t.transfer.finish(t.result);
}

FetchResponse fetch_blocking(const std::string& url, const FetchOptions& options, const ClientOptions& client_options) {
  // One easy handle per thread, kept between calls: it keeps its connections alive.
  struct Cached {
    CURL* easy = nullptr;
    ~Cached() {
      if (easy) curl_easy_cleanup(easy);
    }
  };
  thread_local Cached cached;
  detail::CurlTransfer transfer(url, options, client_options, std::exchange(cached.easy, nullptr));
  const CURLcode code = curl_easy_perform(transfer.easy());
  FetchResponse response = transfer.finish(code);
  cached.easy = transfer.release_easy();
  return response;
}

}  // namespace gearbox::http
