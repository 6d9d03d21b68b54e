// The messages between rank 0 and the node agents (MPI tags), and the hello's encoding.
#pragma once

#include <string>
#include <vector>

namespace gearbox::detail::cluster {

enum Kind : int {
  hello = 1,     // agent -> 0: host, pid, the registered remote functions' names
  ping = 2,      // 0 -> agent: bytes to send back
  pong = 3,      // agent -> 0: the ping's bytes
  shutdown = 4,  // 0 -> agent: finalise MPI and exit
};

struct Hello {
  std::string host;
  long pid = 0;
  std::vector<std::string> functions;  // sorted
};

// One line each: host, pid, then a function name per line (names hold no newline).
std::string encode_hello(const Hello& hello);
// Throws std::runtime_error for bytes that are not a hello.
Hello decode_hello(const std::string& bytes);

// The rank of this process in an MPI job, from the launcher's environment (Open MPI's
// OMPI_COMM_WORLD_RANK, or PMIx's PMIX_RANK); -1 when not launched as an MPI job. Defined
// in src/process/init.cpp (gb::init reads it without MPI).
int rank_from_environment() noexcept;

}  // namespace gearbox::detail::cluster
