// gb::init and the worker's side of the process pool: a blocking loop that receives a
// frame of calls, runs them in order and answers with a frame of results.
#include <cxxabi.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <typeinfo>

#include <gearbox/process/init.hpp>
#include <gearbox/process/registry.hpp>
#include <gearbox/process/shared_buffer.hpp>

#include "process/worker_protocol.hpp"
#include "process/wire.hpp"
#include "trace/recorder.hpp"

namespace gearbox {

namespace {

std::atomic<bool> g_initialized{false};  // set once by init() in a parent; read by pools (seq_cst)

namespace wire = detail::wire;
using SteadyTime = std::chrono::steady_clock;

[[noreturn]] void die(int code, const char* why) {
  std::fprintf(stderr, "gearbox worker %d: %s\n", static_cast<int>(::getpid()), why);
  ::_exit(code);
}

std::string demangle(const std::type_info* type) {
  if (!type) return "unknown exception";
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> name{abi::__cxa_demangle(type->name(), nullptr, nullptr, &status), std::free};
  return status == 0 && name ? std::string(name.get()) : std::string(type->name());
}

// The encoded (type name, message) of the exception being handled.
std::string describe_current_exception() {
  std::string type = demangle(abi::__cxa_current_exception_type());
  std::string message;
  try {
    throw;
  } catch (const std::exception& e) {
    message = e.what();
  } catch (...) {
  }
  std::string out;
  detail::encode_into(out, type, message);
  return out;
}

class Worker {
public:
  explicit Worker(int socket) : m_socket(socket), m_results(wire::Kind::results) {}

  [[noreturn]] void run(const std::string& initializer) {
    receive_welcome();
    if (!initializer.empty()) run_initializer(initializer);
    wire::FrameWriter hello{wire::Kind::hello};
    if (hello.send(m_socket) != 0) die(detail::k_exit_protocol, "cannot greet the pool");
    serve();
  }

private:
  void receive_welcome() {
    std::size_t size = 0;
    if (wire::receive(m_socket, m_frame, size) != 1 || m_frame.header.kind != static_cast<std::uint16_t>(wire::Kind::welcome) ||
        m_frame.fds.size() != 1)
      die(detail::k_exit_protocol, "no welcome from the pool");
    void* page = ::mmap(nullptr, sizeof(wire::Progress), PROT_READ | PROT_WRITE, MAP_SHARED, m_frame.fds[0], 0);
    if (page == MAP_FAILED) die(detail::k_exit_protocol, "cannot map the progress page");
    m_progress = static_cast<wire::Progress*>(page);
    m_frame.close_fds();
  }

  void run_initializer(const std::string& name) {
    std::string why;
    const detail::RemoteEntry* entry = detail::find_remote(name, &why);
    if (!entry) die(detail::k_exit_initializer, ("initializer: " + why).c_str());
    try {
      std::string ignored;
      entry->invoke(entry->function, {}, ignored);
    } catch (const std::exception& e) {
      die(detail::k_exit_initializer, ("initializer threw: " + std::string(e.what())).c_str());
    } catch (...) {
      die(detail::k_exit_initializer, "initializer threw");
    }
  }

  void set_running(std::uint64_t id) noexcept {
    // Memory ordering: the pool reads the page only after this process has died (after
    // waitid), which orders everything; relaxed is enough within this process.
    std::atomic_ref<std::uint64_t>(m_progress->running).store(id, std::memory_order_relaxed);
  }

  // The end of a worker that was not killed: its trace, if any, is left for the pool.
  [[noreturn]] static void exit_cleanly() {
    trace::detail::flush_worker();
    ::_exit(0);
  }

  [[noreturn]] void serve() {
    for (;;) {
      std::size_t size = 0;
      const int got = wire::receive(m_socket, m_frame, size);
      if (got == 0) exit_cleanly();  // the pool closed the socket: done
      if (got < 0) die(detail::k_exit_protocol, "bad frame from the pool");
      auto records = wire::parse(m_frame, size, wire::Kind::calls);
      if (!records) die(detail::k_exit_protocol, "malformed frame from the pool");
      for (auto& record : *records) {
        run_one(record);
        if (should_flush()) flush();
      }
      flush();
    }
  }

  void run_one(wire::Record& record) {
    const auto start = SteadyTime::now();
    if (m_unflushed_since == SteadyTime::time_point{}) m_unflushed_since = start;
    set_running(record.id);
    if (trace::detail::on()) [[unlikely]]
      trace::detail::call_begin(record.id, record.name);
    std::string result;
    wire::Status status = wire::Status::ok;
    std::string unregistered;  // why the name was not found (find_remote)
    detail::EncodeScope encoded;
    {
      std::span<int> fds = record.fds;
      std::string_view args = record.bytes;
      SharedBuffer spilled;
      try {
        if (record.flags & wire::k_spilled) {
          spilled = SharedBuffer::adopt_sealed(std::exchange(fds.back(), -1));
          if (spilled.size() != record.spilled_size) throw detail::BadArguments("spilled arguments have the wrong size");
          fds = fds.first(fds.size() - 1);
          args = std::string_view(reinterpret_cast<const char*>(spilled.bytes().data()), spilled.size());
          m_owners.push_back(std::make_shared<SharedBuffer>(spilled));
        }
        detail::DecodeScope decoding{fds, &m_owners};  // unmapped after the answer is sent
        const detail::RemoteEntry* entry = detail::find_remote(record.name, &unregistered);
        if (!entry) {
          status = wire::Status::unregistered;
        } else {
          (record.flags & wire::k_chunk ? entry->invoke_chunk : entry->invoke)(entry->function, args, result);
        }
      } catch (const detail::BadArguments& e) {
        status = wire::Status::bad_arguments;
        result.clear();
        detail::encode_into(result, std::string("gearbox::BadArguments"), std::string(e.what()));
      } catch (...) {
        status = wire::Status::exception;
        result = describe_current_exception();
      }
    }
    if (trace::detail::on()) [[unlikely]]
      trace::detail::call_end();
    set_running(0);
    if (status == wire::Status::unregistered) detail::encode_into(result, unregistered);
    const auto run_us = std::chrono::duration_cast<std::chrono::microseconds>(SteadyTime::now() - start).count();

    std::vector<int> fds = encoded.fds;
    std::uint16_t flags = 0;
    if (result.size() > wire::k_inline_max) {
      SharedBuffer spill = SharedBuffer::copy_of(std::as_bytes(std::span(result.data(), result.size())));
      fds.push_back(spill.fd());
      m_owners.push_back(std::make_shared<SharedBuffer>(spill));
      flags |= wire::k_spilled;
    }
    if (m_results.size() + result.size() > wire::k_frame_budget || m_results.fd_count() + fds.size() > wire::k_max_fds)
      flush();
    m_results.add_result(record.id, status, result, result.size(), fds, flags, static_cast<std::uint32_t>(run_us));
    for (auto& owner : encoded.owners) m_owners.push_back(std::move(owner));
  }

  bool should_flush() const noexcept {
    return m_results.count() > 0 && SteadyTime::now() - m_unflushed_since >= std::chrono::microseconds(200);
  }

  void flush() {
    if (m_results.count() == 0) return;
    if (m_results.send(m_socket) != 0) exit_cleanly();  // the pool is gone
    m_results.reset(wire::Kind::results);
    m_owners.clear();
    m_unflushed_since = {};
  }

  int m_socket;
  wire::Frame m_frame;
  wire::FrameWriter m_results;
  // What the unsent results use (their descriptors) and the arguments' mappings: released
  // once the results are sent, so that unmapping is not on the way of the answer.
  std::vector<std::shared_ptr<const void>> m_owners;
  SteadyTime::time_point m_unflushed_since{};
  wire::Progress* m_progress = nullptr;
};

[[noreturn]] void become_worker(int argc, char** argv) {
  // argv: <name> --gearbox-worker <version> <parent pid> [<initializer>]
  if (argc < 4 || std::strcmp(argv[2], detail::k_protocol_tag) != 0)
    die(detail::k_exit_protocol, "started by a different version of the program");
  const long parent = std::strtol(argv[3], nullptr, 10);
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) die(detail::k_exit_protocol, "prctl(PR_SET_PDEATHSIG) failed");
  // The parent may have died before the line above: then we were re-parented already.
  if (::getppid() != parent) ::_exit(detail::k_exit_orphan);
  ::signal(SIGINT, SIG_IGN);
  trace::detail::start_worker_if_asked();
  Worker worker{wire::k_socket_fd};
  worker.run(argc > 4 ? argv[4] : "");
}

}  // namespace

namespace detail::cluster {
// A rank > 0 of an MPI job becomes a node agent and returns its exit code. Defined by
// gearbox::cluster (src/cluster/cluster.cpp), which a program links when it makes a
// Cluster; weak, so that a program without it (or without MPI) runs as always.
[[gnu::weak]] int run_cluster_agent(int argc, char** argv);

// Declared in src/cluster/protocol.hpp; here, so that init() needs no MPI.
int rank_from_environment() noexcept {
  for (const char* name : {"OMPI_COMM_WORLD_RANK", "PMIX_RANK"})
    if (const char* value = std::getenv(name)) return static_cast<int>(std::strtol(value, nullptr, 10));
  return -1;
}
}  // namespace detail::cluster

void init(int argc, char** argv) {
  if (argc >= 2 && argv && argv[1] && std::strcmp(argv[1], detail::k_worker_flag) == 0) become_worker(argc, argv);
  if (detail::cluster::run_cluster_agent != nullptr && detail::cluster::rank_from_environment() > 0)
    std::exit(detail::cluster::run_cluster_agent(argc, argv));
  g_initialized.store(true);
}

bool initialized() noexcept { return g_initialized.load(); }

}  // namespace gearbox
