// ProvidedBuffers: a ring's pool of receive buffers, registered with the kernel as a
// provided buffer ring (IORING_REGISTER_PBUF_RING, Linux 5.19). A multishot receive names
// the pool's group instead of a buffer: the kernel picks a free buffer for each arrival and
// reports its id in the completion, and the buffer is the program's until give_back().
//
// Memory: k_count buffers of k_size bytes (4 MiB), made once per ring, when its first
// socket reads by multishot receive.
//
// Thread-safety: the ring's thread only. Destroyed only after the ring has exited (the
// kernel writes into these buffers until then; its exit drops the registration).
#pragma once

#include <liburing.h>

#include <cstddef>
#include <cstdint>
#include <span>

namespace gearbox::detail {

class ProvidedBuffers {
public:
  static constexpr unsigned k_count = 1024;  // a power of two (the kernel's ring)
  static constexpr std::size_t k_size = 4096;
  static constexpr std::uint16_t k_group = 0;

  // Registers the pool with `ring`. Throws IoError (EINVAL: a kernel before 5.19).
  explicit ProvidedBuffers(io_uring& ring);
  ~ProvidedBuffers();
  ProvidedBuffers(const ProvidedBuffers&) = delete;
  ProvidedBuffers& operator=(const ProvidedBuffers&) = delete;

  // The first `size` bytes of buffer `id`, as a completion reported them.
  std::span<const std::byte> data(std::uint16_t id, std::size_t size) const noexcept {
    return {m_memory + std::size_t{id} * k_size, size};
  }
  // Hands buffer `id` back to the kernel, for a later arrival.
  void give_back(std::uint16_t id) noexcept;
  // Buffers the program holds (given by completions, not yet handed back).
  unsigned held() const noexcept { return m_held; }
  void note_taken() noexcept { ++m_held; }
  // Times a receive found none free (ENOBUFS).
  std::uint64_t ran_out() const noexcept { return m_ran_out; }
  void note_ran_out() noexcept { ++m_ran_out; }

private:
  io_uring_buf_ring* m_ring_entries = nullptr;  // shared with the kernel
  std::byte* m_memory = nullptr;                // k_count * k_size
  unsigned m_held = 0;
  std::uint64_t m_ran_out = 0;
};

}  // namespace gearbox::detail
