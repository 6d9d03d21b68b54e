// The process pool's wire format: one SOCK_SEQPACKET message is one frame, so message
// boundaries come from the kernel and a frame is never read in pieces.
//
//   frame  = FrameHeader, then `count` records back to back
//   record = CallRecord + name + arguments  (pool -> worker)
//          | ResultRecord + result          (worker -> pool)
//
// Descriptors travel with the frame (SCM_RIGHTS), consumed in record order: each record
// says how many are its own. A record flagged k_spilled carries its bytes in its last
// descriptor instead (a sealed memfd, see SharedBuffer), for anything above k_inline_max.
// Every length is checked against the bytes received: a frame that does not parse is
// rejected as a whole (from a worker, that counts as the worker's crash).
//
// All integers are in the host's byte order (both ends are the same executable).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace gearbox::detail::wire {

inline constexpr std::uint32_t k_magic = 0x50584247;  // "GBXP"
inline constexpr std::uint16_t k_version = 1;
inline constexpr std::size_t k_max_frame = 256 * 1024;   // what a receiver accepts
inline constexpr std::size_t k_frame_budget = 48 * 1024;  // what a sender aims for
inline constexpr std::size_t k_inline_max = 32 * 1024;   // larger bytes spill to a memfd
inline constexpr std::size_t k_max_fds = 192;            // per frame (the kernel allows 253)
inline constexpr int k_socket_fd = 3;                    // the worker's end of its socket

enum class Kind : std::uint16_t { welcome = 1, hello = 2, calls = 3, results = 4 };

enum class Status : std::uint32_t { ok = 0, exception = 1, unregistered = 2, bad_arguments = 3 };

inline constexpr std::uint16_t k_chunk = 1;    // call: the arguments are a chunk
inline constexpr std::uint16_t k_spilled = 2;  // the bytes are in the record's last descriptor

struct FrameHeader {
  std::uint32_t magic;
  std::uint16_t version;
  std::uint16_t kind;
  std::uint32_t count;     // records
  std::uint32_t fd_count;  // descriptors sent with the frame
};

struct CallRecord {
  std::uint64_t id;
  std::uint32_t name_size;
  std::uint32_t args_size;  // bytes inline, or the spilled memfd's size
  std::uint16_t fd_count;
  std::uint16_t flags;
  std::uint32_t reserved;
};

struct ResultRecord {
  std::uint64_t id;
  std::uint32_t status;  // Status
  std::uint32_t size;    // bytes inline, or the spilled memfd's size
  std::uint16_t fd_count;
  std::uint16_t flags;
  std::uint32_t run_us;  // how long the call ran, for the pool's batching
};

// The progress page a worker shares with its pool: which call it is running, so that
// after a crash the pool knows which one to blame.
struct Progress {
  // Values: 0 (between calls) or the id of the running call. Written by the worker only;
  // read by the pool after the worker died.
  std::uint64_t running;
};

// A frame being built.
class FrameWriter {
public:
  explicit FrameWriter(Kind kind) { reset(kind); }
  void reset(Kind kind);
  std::uint32_t count() const noexcept { return m_count; }
  std::size_t size() const noexcept { return m_bytes.size(); }
  std::size_t fd_count() const noexcept { return m_fds.size(); }
  // `bytes` go inline; with k_spilled in `flags` they are in the last of `fds` instead, and
  // `spilled_size` says how many.
  void add_call(std::uint64_t id, std::string_view name, std::string_view args, std::size_t spilled_size,
                std::span<const int> fds, std::uint16_t flags);
  void add_result(std::uint64_t id, Status status, std::string_view bytes, std::size_t spilled_size,
                  std::span<const int> fds, std::uint16_t flags, std::uint32_t run_us);
  // The header is completed here. Non-blocking sockets may fail with EAGAIN: returns the
  // errno of a failure, 0 on success. Never raises SIGPIPE.
  int send(int socket);

private:
  std::string m_bytes;
  std::vector<int> m_fds;
  std::uint32_t m_count = 0;
};

// A received frame: its bytes and the descriptors that came with it (owned: those not
// taken by a record are closed with the frame).
struct Frame {
  std::vector<char> bytes;
  std::vector<int> fds;
  FrameHeader header{};
  Frame() : bytes(k_max_frame) {}
  ~Frame() { close_fds(); }
  Frame(const Frame&) = delete;
  Frame& operator=(const Frame&) = delete;
  void close_fds() noexcept;
};

// Receives one frame. Returns 1 on a frame, 0 at end of stream, -errno on failure
// (-EAGAIN on a non-blocking socket with nothing to read), -EBADMSG for a frame that is
// truncated, has too many descriptors or a bad header.
int receive(int socket, Frame& frame, std::size_t& size);

// One parsed record (views into the frame).
struct Record {
  std::uint64_t id = 0;
  std::uint32_t status = 0;  // results
  std::string_view name;     // calls
  std::string_view bytes;    // inline bytes (empty when spilled)
  std::uint32_t spilled_size = 0;
  std::uint16_t flags = 0;
  std::uint32_t run_us = 0;
  std::span<int> fds;        // its descriptors, spilled one last
};

// Parses the records of a received frame of `kind`; nullopt if any length is wrong.
std::optional<std::vector<Record>> parse(Frame& frame, std::size_t size, Kind kind);

}  // namespace gearbox::detail::wire
