// MpiLink: the one thread of a rank that talks MPI. Messages are a kind (the MPI tag) and
// bytes, sent to or received from another rank of MPI_COMM_WORLD, in order per pair.
//
// MPI threading level: MPI_THREAD_FUNNELED, asked for by the link's own thread, which then
// makes every MPI call of the process (init, sends, probes, receives, finalize): FUNNELED
// means "only the thread that initialised MPI calls it", which is exactly this, and Open
// MPI's cheapest level that allows other threads at all (MPI_THREAD_MULTIPLE would lock
// every call for a concurrency nobody here needs).
//
// Waiting: Open MPI has no descriptor to sleep on, and a rank blocked in MPI_Recv keeps a
// core busy (measured here: 0.9 s of CPU per second of waiting, with the TCP transport).
// So the link polls: MPI_Iprobe, and when nothing came and nothing is to be sent, a sleep
// that doubles from 1 us to k_max_idle_sleep; a local send() ends the sleep at once. An
// idle link costs ~1,000 cheap wake-ups a second; one that is busy never sleeps (a round
// trip over the TCP transport measured 15 us polled, 14 us blocking).
//
// Thread-safety: send() and stop() from any thread; the message handler runs on the link's
// thread (it may call send()).
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace gearbox::detail {

class MpiLink {
public:
  static constexpr std::chrono::microseconds k_max_idle_sleep{1000};
  // How long the link keeps polling without sleeping after it last sent or received.
  static constexpr std::chrono::microseconds k_busy_poll{100};

  struct Message {
    int peer = 0;  // the rank it came from
    int kind = 0;  // the MPI tag
    std::string bytes;
  };
  using OnMessage = std::function<void(Message)>;

  // Starts the thread, which initialises MPI (MPI_Init_thread); returns once it has.
  // std::runtime_error if MPI cannot be initialised, or gives less than FUNNELED.
  explicit MpiLink(OnMessage on_message);
  // stop().
  ~MpiLink();
  MpiLink(const MpiLink&) = delete;
  MpiLink& operator=(const MpiLink&) = delete;

  int rank() const noexcept { return m_rank; }
  int size() const noexcept { return m_size; }

  // Queues `bytes` for rank `peer` under `kind` (0 to 32767): sent in the order queued.
  void send(int peer, int kind, std::string bytes);
  // Sends what is queued, finalises MPI (MPI_Finalize: every rank must reach it) and ends
  // the thread. Idempotent; nothing can be sent after it.
  void stop();

private:
  struct Outgoing {
    int peer;
    int kind;
    std::string bytes;
  };
  void run(std::string* init_error);

  OnMessage m_on_message;
  int m_rank = -1;
  int m_size = 0;
  std::mutex m_mutex;
  std::condition_variable m_wake;   // a send or stop() while the link sleeps
  std::vector<Outgoing> m_outgoing;  // under m_mutex
  bool m_stopping = false;          // under m_mutex
  bool m_initialised = false;       // under m_mutex: the thread has finished MPI_Init_thread
  std::thread m_thread;
};

}  // namespace gearbox::detail
