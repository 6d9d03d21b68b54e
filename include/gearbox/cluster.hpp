// gb::Cluster: the ranks of an MPI job (Open MPI's mpirun, or a batch system that launches
// MPI jobs) as nodes that serve rank 0, the first step of the process pool across machines.
//
//   int main(int argc, char** argv) {
//     gb::init(argc, argv);          // under mpirun, ranks > 0 become node agents here
//     if (gb::Cluster::launched_by_mpirun()) {
//       gb::Cluster cluster;         // every agent has said hello, with the same build
//       for (const auto& node : cluster.nodes()) std::printf("%s\n", node.host.c_str());
//     }
//   }
//
//   mpirun -n 3 ./program            (as root: --allow-run-as-root)
//
// Rank 0 runs main; every other rank is an agent: gb::init() turns it into one before main
// goes on, in a program linked with gearbox::cluster that makes a Cluster, and it never
// returns from init (it exits when the Cluster ends). No user code runs in an agent: Open
// MPI 4.1 ends the whole job when a rank dies abnormally, and has no fault tolerance
// (ULFM), so an agent must never crash. Without mpirun the program runs as always, and
// MPI is never initialised.
//
// Start: each agent sends its host, pid and the names of the remote functions it has
// registered (registry.hpp); a node whose names differ from rank 0's runs another build of
// the program and is refused: the constructor throws, naming the node and the functions
// that differ, after telling every agent to exit.
//
// Transport: one thread per rank talks MPI (src/cluster/mpi_link.hpp, MPI_THREAD_FUNNELED),
// polling with a short backoff so that an idle rank does not keep a core busy.
//
// Thread-safety: nodes() and ping() from any thread. One Cluster per run of the program
// (MPI can be initialised only once per process).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace gearbox {

class Cluster {
public:
  struct Node {
    int rank = 0;
    std::string host;
    long pid = 0;
  };

  // Whether this process is a rank of an MPI job (Open MPI's or PMIx's environment).
  static bool launched_by_mpirun() noexcept;

  // Initialises MPI and waits until every agent has said hello (at most start_timeout).
  // std::logic_error: not rank 0 of an MPI job, or a second Cluster in this run;
  // std::runtime_error: a node runs another build, or an agent did not answer in time.
  explicit Cluster(std::chrono::milliseconds start_timeout = std::chrono::seconds{60});
  // Tells every agent to exit, and finalises MPI.
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  // The agents, by rank (1 .. size-1).
  const std::vector<Node>& nodes() const noexcept;
  // One round trip of a small message to the agent of `rank` and back. std::out_of_range
  // for a rank that is not an agent.
  std::chrono::nanoseconds ping(int rank);

private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

}  // namespace gearbox
