// SharedBuffer: a block of bytes that crosses into a worker process without being copied,
// for large arguments and results of ProcessPool calls.
//
//   auto buffer = gb::SharedBuffer::create(256 << 20);   // writable, zero-filled
//   std::memcpy(buffer.writable().data(), pixels, size);
//   buffer.seal();                                         // read-only from now on
//   std::uint64_t sum = pool.submit(gb::remote<checksum>, buffer).get();
//   // in the worker: std::uint64_t checksum(gb::SharedBuffer b) { ... b.bytes() ... }
//
// It is an anonymous memory file (memfd_create): no name in /dev/shm, so nothing is left
// behind when a process crashes; the kernel frees it when the last descriptor and
// mapping go. seal() makes it immutable for good, so a worker can map it read-only and
// trust that nobody changes it underneath: the memfd refuses write(), new writable
// mappings and resizing (F_SEAL_FUTURE_WRITE, SHRINK, GROW, SEAL), and the creator's own
// mapping becomes read-only (mprotect) rather than being unmapped and mapped again, which
// for hundreds of MiB cost more than copying them. It is
// passed by descriptor (SCM_RIGHTS) when it is an argument or a result of a call; the
// receiving side maps it read-only. A worker may return a buffer it created and sealed.
//
// Copies share the same memory (like a shared_ptr). Thread-safety: a const SharedBuffer
// may be read from any number of threads; writable() and seal() need the only user.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>

#include <gearbox/process/codec.hpp>

namespace gearbox {

class SharedBuffer {
public:
  SharedBuffer() noexcept = default;  // empty: size() == 0, not valid()

  // A new zero-filled, writable buffer of `size` bytes. IoError if the memfd or mapping fails.
  static SharedBuffer create(std::size_t size);
  // A sealed copy of `bytes`.
  static SharedBuffer copy_of(std::span<const std::byte> bytes);
  // Maps a sealed memfd read-only, taking ownership of `fd` (closed on failure too).
  // std::invalid_argument if it is not sealed against writes. For the runtime's decoder.
  static SharedBuffer adopt_sealed(int fd);

  bool valid() const noexcept { return m_mapping != nullptr; }
  std::size_t size() const noexcept;
  bool sealed() const noexcept;
  std::span<const std::byte> bytes() const noexcept;
  // The bytes, writable: std::logic_error once sealed.
  std::span<std::byte> writable();
  // Seals the buffer: no more writes, ever (the writable mapping is replaced by a
  // read-only one). Idempotent.
  void seal();
  // The memfd (owned by the buffer), for the runtime's encoder.
  int fd() const noexcept;

  // cereal: the buffer travels as an index into the descriptors sent beside the bytes.
  template <class Archive>
  void save(Archive& archive) const {
    auto* scope = detail::EncodeScope::current();
    if (!scope) throw std::logic_error("gearbox: a SharedBuffer can only be encoded for a ProcessPool call");
    if (!valid() || !sealed()) throw std::logic_error("gearbox: seal() a SharedBuffer before passing it to a remote function");
    archive(static_cast<std::uint32_t>(scope->fds.size()));
    scope->fds.push_back(fd());
    scope->owners.push_back(m_mapping);
  }
  template <class Archive>
  void load(Archive& archive) {
    std::uint32_t index = 0;
    archive(index);
    auto* scope = detail::DecodeScope::current();
    if (!scope) throw std::logic_error("gearbox: a SharedBuffer can only be decoded from a ProcessPool message");
    *this = adopt_sealed(scope->take(index));
    if (scope->keep_alive) scope->keep_alive->push_back(m_mapping);
  }

private:
  struct Mapping;
  std::shared_ptr<Mapping> m_mapping;
};

}  // namespace gearbox
