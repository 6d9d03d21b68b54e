#include "loop/provided_buffers.hpp"

#include <sys/mman.h>

#include <cerrno>

#include <gearbox/error.hpp>

namespace gearbox::detail {
namespace {

constexpr std::size_t k_entries_bytes = ProvidedBuffers::k_count * sizeof(io_uring_buf);
constexpr std::size_t k_memory_bytes = ProvidedBuffers::k_count * ProvidedBuffers::k_size;
constexpr int k_mask = static_cast<int>(ProvidedBuffers::k_count - 1);

void* map_anonymous(std::size_t bytes) {
  void* memory = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) throw IoError(errno, "mmap");
  return memory;
}

}  // namespace

ProvidedBuffers::ProvidedBuffers(io_uring& ring) {
  // The kernel wants the entries page-aligned; mmap gives that.
  m_ring_entries = static_cast<io_uring_buf_ring*>(map_anonymous(k_entries_bytes));
  try {
    m_memory = static_cast<std::byte*>(map_anonymous(k_memory_bytes));
  } catch (...) {
    ::munmap(m_ring_entries, k_entries_bytes);
    throw;
  }
  io_uring_buf_reg registration{};
  registration.ring_addr = reinterpret_cast<std::uintptr_t>(m_ring_entries);
  registration.ring_entries = k_count;
  registration.bgid = k_group;
  if (const int rc = io_uring_register_buf_ring(&ring, &registration, 0); rc < 0) {
    ::munmap(m_memory, k_memory_bytes);
    ::munmap(m_ring_entries, k_entries_bytes);
    throw IoError(-rc, "io_uring_register_buf_ring");
  }
  io_uring_buf_ring_init(m_ring_entries);
  for (unsigned id = 0; id < k_count; ++id)
    io_uring_buf_ring_add(m_ring_entries, m_memory + std::size_t{id} * k_size, k_size, static_cast<unsigned short>(id), k_mask,
                          static_cast<int>(id));
  io_uring_buf_ring_advance(m_ring_entries, k_count);
}

ProvidedBuffers::~ProvidedBuffers() {
  // Not unregistered: the ring has exited (see the header), and its registrations with it.
  ::munmap(m_memory, k_memory_bytes);
  ::munmap(m_ring_entries, k_entries_bytes);
}

void ProvidedBuffers::give_back(std::uint16_t id) noexcept {
  io_uring_buf_ring_add(m_ring_entries, m_memory + std::size_t{id} * k_size, k_size, id, k_mask, 0);
  // A release store of the tail: the kernel sees the entry written before it.
  io_uring_buf_ring_advance(m_ring_entries, 1);
  --m_held;
}

}  // namespace gearbox::detail
