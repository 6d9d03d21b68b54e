#include <gearbox/cluster.hpp>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <iterator>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>

#include <gearbox/process/registry.hpp>

#include "cluster/mpi_link.hpp"
#include "cluster/protocol.hpp"

namespace gearbox {
namespace detail::cluster {

std::string encode_hello(const Hello& hello) {
  std::string bytes = hello.host + "\n" + std::to_string(hello.pid) + "\n";
  for (const std::string& name : hello.functions) bytes += name + "\n";
  return bytes;
}

Hello decode_hello(const std::string& bytes) {
  Hello hello;
  std::istringstream in{bytes};
  std::string pid;
  if (!std::getline(in, hello.host) || !std::getline(in, pid)) throw std::runtime_error("a malformed hello from an agent");
  hello.pid = std::strtol(pid.c_str(), nullptr, 10);
  for (std::string name; std::getline(in, name);) hello.functions.push_back(name);
  return hello;
}

namespace {

std::string host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return "?";
  return name;
}

Hello my_hello() { return {host_name(), static_cast<long>(::getpid()), registered_names()}; }

// "'a', 'b'" (at most 5 named).
std::string list_names(const std::vector<std::string>& names) {
  std::string text;
  for (std::size_t i = 0; i < names.size() && i < 5; ++i) text += (i ? ", '" : "'") + names[i] + "'";
  if (names.size() > 5) text += " and " + std::to_string(names.size() - 5) + " more";
  return text;
}

// Why the node that said `theirs` runs another build than this one, or empty.
std::string build_difference(const std::vector<std::string>& mine, const std::vector<std::string>& theirs) {
  std::vector<std::string> lacks, extra;
  std::set_difference(mine.begin(), mine.end(), theirs.begin(), theirs.end(), std::back_inserter(lacks));
  std::set_difference(theirs.begin(), theirs.end(), mine.begin(), mine.end(), std::back_inserter(extra));
  std::string why;
  if (!lacks.empty()) why += "it lacks the remote functions " + list_names(lacks);
  if (!extra.empty()) why += std::string(why.empty() ? "it has" : ", and has") + " remote functions rank 0 lacks: " + list_names(extra);
  return why;
}

}  // namespace

std::atomic<bool> g_cluster_made{false};  // seq_cst exchange: one Cluster per process

// A rank > 0 of a program that makes a Cluster (gb::init calls it; see process/init.cpp):
// says hello, answers pings, and returns the process's exit code when rank 0 says so.
int run_cluster_agent(int, char**) {
  std::mutex mutex;
  std::condition_variable changed;
  bool done = false;
  std::atomic<MpiLink*> self{nullptr};
  MpiLink link([&](MpiLink::Message message) {
    if (message.kind == ping) {
      self.load(std::memory_order_acquire)->send(message.peer, pong, std::move(message.bytes));
    } else if (message.kind == shutdown) {
      std::lock_guard lock{mutex};
      done = true;
      changed.notify_all();
    }
  });
  // Memory ordering: release, so that the link's thread sees the link built (a ping comes
  // only after the hello below, but the pointer is read on that thread).
  self.store(&link, std::memory_order_release);
  link.send(0, hello, encode_hello(my_hello()));
  {
    std::unique_lock lock{mutex};
    changed.wait(lock, [&] { return done; });
  }
  link.stop();
  return 0;
}

}  // namespace detail::cluster

namespace cluster = detail::cluster;

struct Cluster::Impl {
  std::mutex mutex;
  std::condition_variable changed;
  std::map<int, cluster::Hello> hellos;                 // under mutex
  std::map<std::string, std::promise<void>> pings;      // under mutex, by the ping's bytes
  std::uint64_t next_ping = 0;                          // under mutex
  std::vector<Node> nodes;
  std::unique_ptr<detail::MpiLink> link;                // made last, stopped first

  void on_message(detail::MpiLink::Message message) {
    std::lock_guard lock{mutex};
    if (message.kind == cluster::hello) {
      try {
        hellos[message.peer] = cluster::decode_hello(message.bytes);
      } catch (const std::runtime_error&) {
        hellos[message.peer] = {"(a malformed hello)", 0, {}};
      }
      changed.notify_all();
    } else if (message.kind == cluster::pong) {
      if (auto it = pings.find(message.bytes); it != pings.end()) {
        it->second.set_value();
        pings.erase(it);
      }
    }
  }

  void tell_agents_to_exit() {
    for (int rank = 1; rank < link->size(); ++rank) link->send(rank, cluster::shutdown, {});
  }

  ~Impl() {
    if (link) link->stop();
  }
};

bool Cluster::launched_by_mpirun() noexcept { return cluster::rank_from_environment() >= 0; }

Cluster::Cluster(std::chrono::milliseconds start_timeout) : m_impl(std::make_unique<Impl>()) {
  if (!launched_by_mpirun())
    throw std::logic_error("gearbox: Cluster: this process was not started by mpirun (no OMPI_COMM_WORLD_RANK or PMIX_RANK)");
  if (cluster::rank_from_environment() != 0)
    throw std::logic_error("gearbox: Cluster: only rank 0 makes the Cluster (call gb::init(argc, argv) first in main)");
  if (cluster::g_cluster_made.exchange(true))
    throw std::logic_error("gearbox: Cluster: one per run of the program (MPI is initialised only once per process)");
  Impl& impl = *m_impl;
  impl.link = std::make_unique<detail::MpiLink>([&impl](detail::MpiLink::Message m) { impl.on_message(std::move(m)); });
  const int agents = impl.link->size() - 1;
  std::unique_lock lock{impl.mutex};
  if (!impl.changed.wait_for(lock, start_timeout, [&] { return static_cast<int>(impl.hellos.size()) == agents; })) {
    const std::size_t came = impl.hellos.size();
    lock.unlock();
    impl.tell_agents_to_exit();
    throw std::runtime_error("gearbox: Cluster: " + std::to_string(agents - static_cast<int>(came)) + " of " +
                             std::to_string(agents) + " agents did not say hello within " +
                             std::to_string(start_timeout.count()) + " ms (does every rank run this program, and call gb::init?)");
  }
  const std::vector<std::string> mine = detail::registered_names();
  std::string refused;
  for (const auto& [rank, hello] : impl.hellos) {
    if (const std::string why = cluster::build_difference(mine, hello.functions); !why.empty())
      refused += "\n  rank " + std::to_string(rank) + " on " + hello.host + " (pid " + std::to_string(hello.pid) + "): " + why;
    impl.nodes.push_back({rank, hello.host, hello.pid});
  }
  lock.unlock();
  if (!refused.empty()) {
    impl.tell_agents_to_exit();
    throw std::runtime_error("gearbox: Cluster: refused nodes that run another build of this program:" + refused);
  }
}

Cluster::~Cluster() {
  if (m_impl && m_impl->link) m_impl->tell_agents_to_exit();
}

const std::vector<Cluster::Node>& Cluster::nodes() const noexcept { return m_impl->nodes; }

std::chrono::nanoseconds Cluster::ping(int rank) {
  if (rank < 1 || rank >= m_impl->link->size())
    throw std::out_of_range("gearbox: Cluster::ping: rank " + std::to_string(rank) + " is not an agent");
  std::future<void> answered;
  std::string bytes;
  {
    std::lock_guard lock{m_impl->mutex};
    bytes = std::to_string(m_impl->next_ping++);
    answered = m_impl->pings[bytes].get_future();
  }
  const auto start = std::chrono::steady_clock::now();
  m_impl->link->send(rank, cluster::ping, bytes);
  answered.wait();
  return std::chrono::steady_clock::now() - start;
}

}  // namespace gearbox
