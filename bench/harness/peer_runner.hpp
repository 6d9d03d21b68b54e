// Runs a benchmark's peer (the same work written for another runtime: Go, Asio, asyncio,
// oneTBB, std::async) as a child process and collects the figures it reports, so
// gearbox-bench can print gearbox and its peers side by side from one invocation.
//
// A peer is a program that does the work, times it itself, and prints one JSON object on
// a line of its own, at least {"ms": <number>, "result": <number or string>}. A peer
// that cannot do the work at the size asked (std::async cannot start a million threads)
// exits non-zero and may say why in an "error" string in that line. The peers live next
// to the gearbox-bench executable: bin/peer-asio-<bench>, bin/peer-go-<bench>,
// bin/peers/python/<bench>.py, bin/peer-tbb-<bench>, bin/peer-stdasync-<bench> (see
// bench/peers/).
//
//   for (const auto& spec : gearbox::bench::find_peers("skynet", n, {}))
//     auto peer = gearbox::bench::run_peer(spec, std::chrono::minutes{2});
//
// Nothing here throws: failures (a missing program, a non-zero exit, a signal, a
// timeout, output that is not JSON) come back as PeerResult::error.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace gearbox::bench {

// One peer to run: a name for reports ("asio", "go", "python", "tbb", "std::async") and
// its command line.
struct PeerSpec {
  std::string name;
  std::vector<std::string> argv;  // argv[0] is a path; a name with no '/' is looked up on PATH
};

// What one run of a peer produced.
struct PeerResult {
  std::string name;
  bool ok = false;         // exited with 0 and printed a JSON object with a numeric "ms"
  double ms = 0;           // the peer's own timing of the work (not its start-up)
  // The child's own peak resident set (VmHWM, sampled every 10 ms while it runs; not its
  // children's), 0 if unknown (it ended before the first sample).
  long peak_rss_kb = 0;
  nlohmann::json result;   // the peer's "result" field; null if it printed none
  nlohmann::json extra;    // the whole JSON object the peer printed; null if none
  std::string error;       // why ok == false; empty when ok
};

// Runs spec.argv as a child process and waits for it. The child's stdout is captured
// through a pipe, its stderr is the caller's stderr, its stdin is /dev/null, and its
// signal mask and common signal dispositions are reset to the defaults. If the child
// is still running `limit` after it started, it and everything it started are killed
// with SIGKILL: like timeout(1), the child leads a process group of its own. (So Ctrl-C
// at a terminal reaches the caller, not the peer; a peer whose caller died runs until
// its work is done and then fails to write its report.) The last line of stdout that is
// a JSON object is the peer's report; if the peer exited non-zero, a string "error" in
// that report is quoted in PeerResult::error.
//
// The child is always reaped before this returns, whatever happened. Never throws.
// Thread-safe: several threads may run peers at once (all descriptors are close-on-exec,
// so a child inherits only its own pipe). Blocks the calling thread for as long as the
// peer runs, so call it from a plain thread, not from a loop's thread. The caller must
// not reap children with waitpid(-1) or ignore SIGCHLD meanwhile (the exit status would
// be lost; that is reported as an error).
[[nodiscard]] PeerResult run_peer(const PeerSpec& spec, std::chrono::milliseconds limit);

// The directory that holds the running executable (from /proc/self/exe), or an empty
// path if it cannot be read. Thread-safe.
[[nodiscard]] std::filesystem::path executable_dir();

// The peers of benchmark `bench` that exist in `dir`, in this order:
//   asio:       dir/peer-asio-<bench>
//   go:         dir/peer-go-<bench>
//   python:     python3 dir/peers/python/<bench>.py   (python3 resolved on PATH)
//   tbb:        dir/peer-tbb-<bench>
//   std::async: dir/peer-stdasync-<bench>
// each given `--n <n>` followed by `extra_args`. Peers whose file is missing are left
// out. Thread-safe.
[[nodiscard]] std::vector<PeerSpec> find_peers_in(const std::filesystem::path& dir, const std::string& bench,
                                                  long n, const std::vector<std::string>& extra_args);

// find_peers_in(executable_dir(), ...): the peers installed next to this executable.
[[nodiscard]] std::vector<PeerSpec> find_peers(const std::string& bench, long n,
                                               const std::vector<std::string>& extra_args);

// The figures gearbox-bench prints for one peer: {"ok", "ms", "peak_rss_kb", "result"},
// "error" when not ok, and any other top-level field the peer reported (e.g.
// "ns_per_switch"). Lets a caller write `nlohmann::json j = peer_result;`.
void to_json(nlohmann::json& j, const PeerResult& peer);

}  // namespace gearbox::bench
