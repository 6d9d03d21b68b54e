// The per-thread cache behind coroutine frames and task records
// (include/gearbox/detail/frame_pool.hpp): blocks are reused by size class, a class keeps
// a bounded number, and a block freed on another thread joins that thread's cache.
#include <gearbox/detail/frame_pool.hpp>

#include <set>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace {

using gearbox::detail::FrameCache;

TEST(FrameCache, a_freed_block_serves_the_next_request_of_its_class) {
  FrameCache cache;
  void* first = cache.allocate(100);
  cache.deallocate(first, 100);
  EXPECT_EQ(cache.allocate(100), first);
  cache.deallocate(first, 100);
  // 97..104 bytes round to one class (104 = 16 * 6 + 8): any of them takes the block.
  EXPECT_EQ(cache.allocate(97), first);
  cache.deallocate(first, 97);
  void* next_class = cache.allocate(105);  // the next class up
  EXPECT_NE(next_class, first);
  cache.deallocate(next_class, 105);
}

TEST(FrameCache, a_class_size_is_what_malloc_would_hand_out_and_never_less_than_asked) {
  for (std::size_t size = 1; size <= 1032; ++size) {
    const std::size_t index = FrameCache::class_of(size);
    ASSERT_LT(index, FrameCache::k_classes) << size;
    EXPECT_GE(FrameCache::class_size(index), size) << size;
    EXPECT_LT(FrameCache::class_size(index), size + FrameCache::k_granule) << size;
    EXPECT_EQ(FrameCache::class_size(index) % 16, 8u) << size;  // 16 k + 8
  }
  EXPECT_GE(FrameCache::class_of(1033), FrameCache::k_classes);  // larger: straight to new
}

TEST(FrameCache, a_class_keeps_at_most_its_bound_and_frees_the_rest) {
  FrameCache cache;
  const std::size_t n = FrameCache::k_max_blocks + 40;
  std::vector<void*> blocks;
  for (std::size_t i = 0; i < n; ++i) blocks.push_back(cache.allocate(64));
  const std::set<void*> first_round(blocks.begin(), blocks.end());
  for (void* block : blocks) cache.deallocate(block, 64);
  std::size_t reused = 0;
  std::vector<void*> again;
  for (std::size_t i = 0; i < n; ++i) {
    again.push_back(cache.allocate(64));
    if (i < FrameCache::k_max_blocks) {
      EXPECT_TRUE(first_round.contains(again.back())) << i;  // the cached ones come first
      ++reused;
    }
  }
  EXPECT_EQ(reused, FrameCache::k_max_blocks);
  for (void* block : again) cache.deallocate(block, 64);
}

TEST(FrameCache, large_requests_are_not_cached) {
  FrameCache cache;
  void* big = cache.allocate(5000);
  cache.deallocate(big, 5000);  // goes back to operator delete (ASan would see a leak otherwise)
  void* small = cache.allocate(24);
  EXPECT_NE(small, big);
  cache.deallocate(small, 24);
}

TEST(FrameCache, a_block_freed_on_another_thread_joins_that_threads_cache) {
  if (!gearbox::detail::k_frame_cache) GTEST_SKIP() << "no thread caches under the sanitizers";
  void* block = gearbox::detail::frame_allocate(200);
  void* reused = nullptr;
  std::thread other([&] {
    gearbox::detail::frame_deallocate(block, 200);
    reused = gearbox::detail::frame_allocate(200);
    gearbox::detail::frame_deallocate(reused, 200);
  });
  other.join();
  EXPECT_EQ(reused, block);
}

}  // namespace
