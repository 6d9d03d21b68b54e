#include <gearbox/detail/frame_pool.hpp>

namespace gearbox::detail {
namespace {

// Set when the thread's cache has been destroyed (the thread is exiting): a frame freed or
// made after that goes straight to operator delete/new, and no second cache is made.
thread_local bool t_done = false;

}  // namespace

FrameCache::~FrameCache() {
  for (std::size_t index = 0; index < k_classes; ++index) {
    while (Block* block = m_free[index]) {
      m_free[index] = block->next;
      ::operator delete(block);
    }
  }
}

// The thread's cache lives in a thread_local made on first use and destroyed, its blocks
// given back, when the thread exits.
FrameCache* FrameCache::make_local() noexcept {
  if (t_done) return nullptr;
  struct Holder {
    FrameCache cache;
    ~Holder() {
      t_cache = nullptr;
      t_done = true;
    }
  };
  thread_local Holder holder;
  t_cache = &holder.cache;
  return t_cache;
}

}  // namespace gearbox::detail
