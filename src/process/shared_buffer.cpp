#include <gearbox/process/shared_buffer.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <gearbox/error.hpp>

namespace gearbox {

namespace {
constexpr int k_all_seals = F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
// For a buffer whose writable mapping exists: no write(), no new writable mapping, no
// resizing, no more seals; the mapping itself is then made read-only (see seal()).
constexpr int k_seals_keeping_the_mapping = F_SEAL_FUTURE_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
}

// Owns the memfd and its mapping (writable until sealed, then read-only).
struct SharedBuffer::Mapping {
  int fd = -1;
  std::byte* data = nullptr;
  std::size_t size = 0;
  bool sealed = false;

  ~Mapping() {
    if (data) ::munmap(data, size);
    if (fd >= 0) ::close(fd);
  }
  // `populate`: build the page tables now, in one call, rather than one fault per page
  // (for a mapping about to be read or written whole; several times faster for large ones).
  void map(int protection, bool populate) {
    if (size == 0) return;
    void* address = ::mmap(nullptr, size, protection, MAP_SHARED | (populate ? MAP_POPULATE : 0), fd, 0);
    if (address == MAP_FAILED) throw IoError(errno, "mmap");
    data = static_cast<std::byte*>(address);
  }
  void unmap() noexcept {
    if (data) ::munmap(data, size);
    data = nullptr;
  }
};

SharedBuffer SharedBuffer::create(std::size_t size) {
  auto mapping = std::make_shared<Mapping>();
  mapping->fd = ::memfd_create("gearbox-shared-buffer", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (mapping->fd < 0) throw IoError(errno, "memfd_create");
  if (::ftruncate(mapping->fd, static_cast<off_t>(size)) != 0) throw IoError(errno, "ftruncate");
  mapping->size = size;
  mapping->map(PROT_READ | PROT_WRITE, true);
  SharedBuffer buffer;
  buffer.m_mapping = std::move(mapping);
  return buffer;
}

SharedBuffer SharedBuffer::copy_of(std::span<const std::byte> bytes) {
  // write() fills the file without a page fault per page; mapped read-only once sealed.
  auto mapping = std::make_shared<Mapping>();
  mapping->fd = ::memfd_create("gearbox-shared-buffer", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (mapping->fd < 0) throw IoError(errno, "memfd_create");
  for (std::size_t done = 0; done < bytes.size();) {
    const ssize_t n = ::write(mapping->fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw IoError(errno, "write(memfd)");
    done += static_cast<std::size_t>(n);
  }
  mapping->size = bytes.size();
  if (::fcntl(mapping->fd, F_ADD_SEALS, k_all_seals) != 0) throw IoError(errno, "fcntl(F_ADD_SEALS)");
  mapping->sealed = true;
  mapping->map(PROT_READ, false);
  SharedBuffer buffer;
  buffer.m_mapping = std::move(mapping);
  return buffer;
}

SharedBuffer SharedBuffer::adopt_sealed(int fd) {
  auto mapping = std::make_shared<Mapping>();
  mapping->fd = fd;  // owned from here: closed on any failure below
  if (fd < 0) throw std::invalid_argument("gearbox: no descriptor for a SharedBuffer");
  const int seals = ::fcntl(fd, F_GET_SEALS);
  const bool no_writes = seals >= 0 && (seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)) != 0;
  if (!no_writes || (seals & F_SEAL_SHRINK) == 0) throw std::invalid_argument("gearbox: a SharedBuffer must arrive sealed");
  struct stat status {};
  if (::fstat(fd, &status) != 0) throw IoError(errno, "fstat");
  mapping->size = static_cast<std::size_t>(status.st_size);
  mapping->sealed = true;
  // Not MAP_POPULATE: a read fault maps its neighbours too (fault-around, 16 pages), which
  // for 256 MiB read once costs less than populating every page up front (measured: 26 ms
  // against 25 + 11 ms, summing included).
  mapping->map(PROT_READ, false);
  SharedBuffer buffer;
  buffer.m_mapping = std::move(mapping);
  return buffer;
}

std::size_t SharedBuffer::size() const noexcept { return m_mapping ? m_mapping->size : 0; }
bool SharedBuffer::sealed() const noexcept { return m_mapping && m_mapping->sealed; }
int SharedBuffer::fd() const noexcept { return m_mapping ? m_mapping->fd : -1; }

std::span<const std::byte> SharedBuffer::bytes() const noexcept {
  if (!m_mapping) return {};
  return {m_mapping->data, m_mapping->size};
}

std::span<std::byte> SharedBuffer::writable() {
  if (!m_mapping) return {};
  if (m_mapping->sealed) throw std::logic_error("gearbox: this SharedBuffer is sealed (read-only)");
  return {m_mapping->data, m_mapping->size};
}

void SharedBuffer::seal() {
  if (!m_mapping || m_mapping->sealed) return;
  // F_SEAL_FUTURE_WRITE keeps our mapping (unmapping 256 MiB of written pages takes the
  // kernel 20-30 ms, more than a memcpy of it) and refuses every new way to write; the
  // mapping is then made read-only, so no one writes the bytes again. An empty buffer has
  // no mapping.
  if (::fcntl(m_mapping->fd, F_ADD_SEALS, k_seals_keeping_the_mapping) == 0) {
    if (m_mapping->data && ::mprotect(m_mapping->data, m_mapping->size, PROT_READ) != 0)
      throw IoError(errno, "mprotect");
    m_mapping->sealed = true;
    return;
  }
  if (errno != EINVAL) throw IoError(errno, "fcntl(F_ADD_SEALS)");
  // A kernel before 5.1 (no F_SEAL_FUTURE_WRITE): F_SEAL_WRITE refuses while a writable
  // shared mapping exists, so drop it, seal, and map the bytes again read-only.
  m_mapping->unmap();
  if (::fcntl(m_mapping->fd, F_ADD_SEALS, k_all_seals) != 0) throw IoError(errno, "fcntl(F_ADD_SEALS)");
  m_mapping->sealed = true;
  m_mapping->map(PROT_READ, false);
}

}  // namespace gearbox
