#include "cluster/mpi_link.hpp"

#include <mpi.h>

#include <algorithm>
#include <cstdlib>
#include <list>
#include <stdexcept>
#include <utility>

namespace gearbox::detail {

MpiLink::MpiLink(OnMessage on_message) : m_on_message(std::move(on_message)) {
  std::string init_error;
  m_thread = std::thread([this, &init_error] { run(&init_error); });
  std::unique_lock lock{m_mutex};
  m_wake.wait(lock, [this] { return m_initialised; });
  if (!init_error.empty()) {
    lock.unlock();
    m_thread.join();
    throw std::runtime_error("gearbox: " + init_error);
  }
}

MpiLink::~MpiLink() { stop(); }

void MpiLink::send(int peer, int kind, std::string bytes) {
  {
    std::lock_guard lock{m_mutex};
    if (m_stopping) throw std::logic_error("gearbox: a message sent after the MPI link stopped");
    m_outgoing.push_back({peer, kind, std::move(bytes)});
  }
  m_wake.notify_one();
}

void MpiLink::stop() {
  {
    std::lock_guard lock{m_mutex};
    m_stopping = true;
  }
  m_wake.notify_one();
  if (m_thread.joinable()) m_thread.join();
}

void MpiLink::run(std::string* init_error) {
  // Open MPI's TCP transport progresses its sockets only when MPI is called, and then
  // only now and then (measured: 3 ms per round trip through MPI_Iprobe); with its
  // progress thread, which sleeps in poll(2) on them, a message is there when probed.
  // The user's setting (mpirun --mca, or the environment) wins.
  ::setenv("OMPI_MCA_btl_tcp_progress_thread", "1", /*overwrite=*/0);
  int provided = 0;
  int rc = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
  if (rc == MPI_SUCCESS && provided < MPI_THREAD_FUNNELED) {
    *init_error = "MPI gives thread level " + std::to_string(provided) + ", less than MPI_THREAD_FUNNELED";
    MPI_Finalize();
  } else if (rc != MPI_SUCCESS) {
    *init_error = "MPI_Init_thread failed";
  } else {
    MPI_Comm_rank(MPI_COMM_WORLD, &m_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &m_size);
  }
  const bool failed = !init_error->empty();
  {
    std::lock_guard lock{m_mutex};
    m_initialised = true;
  }
  m_wake.notify_all();
  if (failed) return;

  // Sends in flight: each keeps its bytes until MPI is done with them.
  struct InFlight {
    MPI_Request request;
    std::string bytes;
  };
  std::list<InFlight> in_flight;
  std::vector<Outgoing> batch;
  auto idle_sleep = std::chrono::microseconds{1};
  auto last_work = std::chrono::steady_clock::now();
  for (;;) {
    bool stopping;
    {
      std::lock_guard lock{m_mutex};
      batch.swap(m_outgoing);
      stopping = m_stopping;
    }
    bool worked = !batch.empty();
    for (Outgoing& out : batch) {
      InFlight& sending = in_flight.emplace_back(InFlight{MPI_REQUEST_NULL, std::move(out.bytes)});
      MPI_Isend(sending.bytes.data(), static_cast<int>(sending.bytes.size()), MPI_BYTE, out.peer, out.kind, MPI_COMM_WORLD,
                &sending.request);
    }
    batch.clear();
    for (auto it = in_flight.begin(); it != in_flight.end();) {
      int done = 0;
      MPI_Test(&it->request, &done, MPI_STATUS_IGNORE);
      it = done ? in_flight.erase(it) : std::next(it);
    }
    int arrived = 0;
    MPI_Status status;
    MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &arrived, &status);
    if (arrived) {
      int count = 0;
      MPI_Get_count(&status, MPI_BYTE, &count);
      Message message{status.MPI_SOURCE, status.MPI_TAG, std::string(static_cast<std::size_t>(count), '\0')};
      MPI_Recv(message.bytes.data(), count, MPI_BYTE, status.MPI_SOURCE, status.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      m_on_message(std::move(message));
      worked = true;
    }
    if (stopping && in_flight.empty()) {
      std::lock_guard lock{m_mutex};
      if (m_outgoing.empty()) break;
      continue;
    }
    const auto now = std::chrono::steady_clock::now();
    if (worked) {
      last_work = now;
      idle_sleep = std::chrono::microseconds{1};
      continue;
    }
    if (now - last_work < k_busy_poll) continue;  // an answer is likely on its way
    std::unique_lock lock{m_mutex};
    m_wake.wait_for(lock, idle_sleep, [this] { return !m_outgoing.empty() || m_stopping; });
    idle_sleep = std::min(idle_sleep * 2, k_max_idle_sleep);
  }
  MPI_Finalize();
}

}  // namespace gearbox::detail
