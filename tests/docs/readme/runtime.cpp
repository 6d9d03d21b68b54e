// README's "Async on every core" sample, compiled.
#include <cstdint>

// README sample begin
#include <gearbox/gearbox.hpp>
namespace gb = gearbox;

gb::Task<std::int64_t> tree(std::int64_t first, std::int64_t size) {  // skynet
  if (size == 1) co_return first;
  std::vector<gb::JoinHandle<std::int64_t>> children;
  for (std::int64_t i = 0; i < 10; ++i) children.push_back(gb::spawn(tree(first + i * size / 10, size / 10)));
  std::int64_t sum = 0;
  for (auto& child : children) sum += co_await child;
  co_return sum;
}

int main() {
  gb::Runtime rt{{.threads = 4}};           // or gb::Loop loop; for one thread
  return rt.run(tree(0, 1'000'000)) == 499'999'500'000 ? 0 : 1;
}
// README sample end
