// frame_allocate / frame_deallocate: the allocator of the async engine's per-task memory
// (coroutine frames, through TaskPromise's operator new, and task records, TaskCore's).
// A task's frame is allocated when it is called and freed when it ends, a million times
// a second in a busy program; each thread keeps a small cache of freed blocks by size
// class (16-byte steps up to 1 KiB, at most 128 blocks a class), so most of them never
// reach malloc. A block freed on another thread than the one that allocated it (a task
// that moved between workers of a Runtime) joins the freeing thread's cache: memory
// follows the work, and no lock is taken on either side.
//
// Bounds: at most 128 blocks a class (about 4 MiB if every class were full; a program's
// tasks use a few classes) cached per thread; a thread's cache is given back to malloc
// when the thread exits. Larger frames go straight to operator new.
// Under ASan or TSan there is no cache: the sanitizers must see every allocation and
// free to find a use after free or a race on reused memory.
//
// Thread-safety: each thread uses only its own cache.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>

namespace gearbox::detail {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool k_frame_cache = false;
#else
inline constexpr bool k_frame_cache = true;
#endif

class FrameCache {
public:
  // malloc's own granule: rounding a frame up costs no memory that malloc would not spend.
  static constexpr std::size_t k_granule = 16;
  static constexpr std::size_t k_classes = 65;  // up to 1032 bytes
  static constexpr std::uint32_t k_max_blocks = 128;

  // The calling thread's cache, made on first use; null once the thread is exiting.
  static FrameCache* local() noexcept {
    if (FrameCache* cache = t_cache) [[likely]]
      return cache;
    return make_local();
  }

  // Class i holds blocks of 16 i + 8 bytes: exactly what malloc hands out for such a
  // request (its chunks are 16-byte multiples less an 8-byte header), so rounding a
  // request up to its class costs no memory that malloc would not have spent.
  static constexpr std::size_t class_of(std::size_t size) noexcept { return (size + 7) / k_granule; }
  static constexpr std::size_t class_size(std::size_t index) noexcept { return index * k_granule + 8; }

  void* allocate(std::size_t size) {
    const std::size_t index = class_of(size);
    if (index >= k_classes) return ::operator new(size);
    if (Block* block = m_free[index]) {
      m_free[index] = block->next;
      --m_count[index];
      return block;
    }
    return ::operator new(class_size(index));
  }

  void deallocate(void* pointer, std::size_t size) noexcept {
    const std::size_t index = class_of(size);
    if (index < k_classes && m_count[index] < k_max_blocks) {
      auto* block = static_cast<Block*>(pointer);
      block->next = m_free[index];
      m_free[index] = block;
      ++m_count[index];
      return;
    }
    ::operator delete(pointer);
  }

  ~FrameCache();

private:
  struct Block {
    Block* next;
  };
  static FrameCache* make_local() noexcept;
  static inline thread_local constinit FrameCache* t_cache = nullptr;

  Block* m_free[k_classes] = {};
  std::uint32_t m_count[k_classes] = {};
};

inline void* frame_allocate(std::size_t size) {
  if constexpr (k_frame_cache) {
    if (FrameCache* cache = FrameCache::local()) return cache->allocate(size);
    // A thread past its cache's end (a frame made while thread-locals are destroyed):
    // the rounded size, so that any cache may take the block back.
    const std::size_t index = FrameCache::class_of(size);
    return ::operator new(index < FrameCache::k_classes ? FrameCache::class_size(index) : size);
  } else {
    return ::operator new(size);
  }
}

inline void frame_deallocate(void* pointer, std::size_t size) noexcept {
  if constexpr (k_frame_cache) {
    if (FrameCache* cache = FrameCache::local()) {
      cache->deallocate(pointer, size);
      return;
    }
  }
  ::operator delete(pointer);
}

}  // namespace gearbox::detail
